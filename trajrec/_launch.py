"""The ``trajrec`` command's entry point (``[project.scripts]``, ``python -m trajrec``).

It imports nothing before the command's own modules, so that a Ctrl-C while they load (the first tenth of a
second or so of every command) ends the command as a Ctrl-C at any later moment does: one line,
``trajrec COMMAND: interrupted``, and exit status 130, not Python's traceback of the import it interrupted.
(A Ctrl-C still earlier, while Python itself starts, is Python's to report.)
"""

from __future__ import annotations

import sys


def console_main() -> None:
    """Load :mod:`trajrec.cli` and run its :func:`~trajrec.cli.console_main`; a Ctrl-C that it does not answer
    itself (while it loads, or before it parsed its options) ends the command with one line.

    Raises:
        SystemExit: always (the command's exit status; 130 when a Ctrl-C came while the modules loaded).
    """
    try:
        from trajrec.cli import console_main as run

        run()
    except BaseException as exc:
        # The command answers a Ctrl-C itself from the moment it parsed its options; one that lands before
        # (or between its own handlers: an import on the way) ends it here, the same way.
        if isinstance(exc, SystemExit) or not _interrupted(exc):
            raise
        command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
        sys.stderr.write(f"trajrec{' ' + command if command else ''}: interrupted\n")
        sys.stderr.flush()
        raise SystemExit(130) from None


def _interrupted(exc: BaseException) -> bool:
    """``exc`` is a Ctrl-C, or an error Python raised because of one: a KeyboardInterrupt inside a class body's
    ``__set_name__`` reaches the importer as ``RuntimeError("Error calling __set_name__ ...")`` caused by it."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    return False
