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


class TrajrecIOError(TrajrecError, OSError):
    """Raised when writing an episode file fails (disk full, permission denied, closed file)."""


class EpisodeClosedError(TrajrecError, RuntimeError):
    """Raised when a closed :class:`~recorder.Recorder` is asked to record more."""


class StepIndexError(TrajrecError, IndexError):
    """Raised when a step index is outside the episode."""
