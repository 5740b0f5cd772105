"""trajrec: record, replay, label and export agent trajectories in Gymnasium-style tool environments.

The short public surface:

>>> from trajrec import Recorder, open_episode, open_run, TrajrecError

One import package holds every layer: ``trajrec.recorder`` (record model, file format, writer, reader, the
``Recorder`` wrapper), ``trajrec.replay`` (library, query grammar, runs, labels, exports, re-execution),
``trajrec.envs`` (the built-in tool environments; importing it registers the ``trajrec/*`` ids),
``trajrec.tui`` (the terminal viewer) and ``trajrec.cli`` (the ``trajrec`` command).

Names are loaded on first use, so ``import trajrec`` stays cheap for the command line.
"""

from __future__ import annotations

# Not `from typing import TYPE_CHECKING`: typing costs ~1.5 ms to import, which every command would pay before it
# can answer a Ctrl-C with its one line (trajrec/_launch.py). Type checkers read the name TYPE_CHECKING the same way.
TYPE_CHECKING = False

from trajrec._version import __version__

if TYPE_CHECKING:
    from typing import Any

    from trajrec.recorder import (
        Check,
        Episode,
        Recorder,
        Step,
        VectorRecorder,
        TrajrecError,
        TrajrecFormatError,
        TrajrecIOError,
        TrajrecUsageError,
        open_episode,
    )
    from trajrec.replay.query import QueryError
    from trajrec.replay.run import Run, open_run

_PUBLIC = {
    "Recorder": "trajrec.recorder",
    "VectorRecorder": "trajrec.recorder",
    "open_episode": "trajrec.recorder",
    "Episode": "trajrec.recorder",
    "Step": "trajrec.recorder",
    "Check": "trajrec.recorder",
    "TrajrecError": "trajrec.recorder",
    "TrajrecFormatError": "trajrec.recorder",
    "TrajrecIOError": "trajrec.recorder",
    "TrajrecUsageError": "trajrec.recorder",
    "open_run": "trajrec.replay.run",
    "Run": "trajrec.replay.run",
    "QueryError": "trajrec.replay.query",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'trajrec' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
