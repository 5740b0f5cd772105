"""The exceptions trajrec raises.

Every error derives from :class:`TrajrecError`. Errors about bytes on disk also derive from ``ValueError``
and carry the file and the byte offset where reading went wrong.
"""

from __future__ import annotations

import os


class TrajrecError(Exception):
    """Base class of every error raised by trajrec."""


class TrajrecUsageError(TrajrecError, ValueError):
    """Raised when an argument passed to a trajrec API or command is not acceptable."""


class TrajrecFormatError(TrajrecError, ValueError):
    """Raised when a file is not a trajrec episode, or its bytes are damaged beyond what the reader tolerates.

    Attributes:
        path: the file being read.
        offset: byte offset in the file where the problem was found (``None`` when not known).
    """

    def __init__(self, path: str | os.PathLike[str], offset: int | None, message: str) -> None:
        self.path = os.fspath(path)
        self.offset = offset
        where = f"{self.path}" if offset is None else f"{self.path} at byte {offset}"
        super().__init__(f"{where}: {message}")


class ResetLostError(TrajrecFormatError):
    """Raised when an episode's reset record was lost to damaged bytes with step 0, and ``fsck --repair``
    recorded that loss (its index's ``damaged`` rows hold step 0): a repaired file, nothing more to repair. Its
    readable steps have no reset (no first observation, no task prompt), so exports leave it out under one named
    reason instead of calling it unreadable.
    """


class EmptyEpisodeError(TrajrecFormatError):
    """Raised when an episode file holds nothing: its writer was killed before its first write finished.

    Nothing was lost (``reset`` never returned); readers skip such a file and ``trajrec fsck --repair``
    removes it.
    """

    def __init__(self, path: str | os.PathLike[str], detail: str) -> None:
        super().__init__(path, 0, f"empty episode, nothing recorded ({detail}: the writer was killed before its "
                         f"first write finished); `trajrec fsck --repair {os.fspath(path)}` removes it")


class EpisodeLockedError(TrajrecError, OSError):
    """Raised when ``fsck --repair`` is asked to rewrite a file that a live Recorder is still writing."""


class TrajrecIOError(TrajrecError, OSError):
    """Raised when writing an episode file fails (disk full, permission denied, closed file)."""


class EpisodeClosedError(TrajrecError, RuntimeError):
    """Raised when a closed :class:`~trajrec.recorder.Recorder` is asked to record more."""


class AgentError(TrajrecError, RuntimeError):
    """The agent could not choose an action (e.g. its model server failed every attempt): not an env failure.

    Attributes:
        note: what the agent would have noted for the step (``{"model_call": {...}}`` with its ``error``);
            ``Recorder.end_episode_with_error(str(exc), **exc.note)`` keeps it in the summary's ``agent_error``.
    """

    def __init__(self, message: str, note: dict | None = None) -> None:
        super().__init__(message)
        self.note = dict(note or {})


class StepIndexError(TrajrecError, IndexError):
    """Raised when a step index is outside the episode."""


class MissingDependencyError(TrajrecError, ImportError):
    """Raised when an optional dependency is not installed; the message names the exact ``pip install``."""


def require(module: str, pip: str, purpose: str):  # type: ignore[no-untyped-def]
    """Import an optional dependency, or raise :class:`MissingDependencyError` naming ``pip`` (the install command).

    >>> require("json", "pip install json", "this example").__name__
    'json'
    >>> require("no_such_module_x", "pip install 'trajrec[x]'", "the x export")
    Traceback (most recent call last):
    ...
    trajrec.recorder.errors.MissingDependencyError: the x export needs no_such_module_x, which is not installed: pip install 'trajrec[x]'
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"{purpose} needs {module.split('.')[0]}, which is not installed: "
                                     f"{pip}") from exc
