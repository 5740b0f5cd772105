"""trajrec's recorder: the record model, the episode file format, the writer, the reader and the wrapper.

>>> from trajrec.recorder import Recorder, open_episode
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .codec import CodecWarning, Unencodable, UnknownExt, state_not_read
from .errors import (
    EmptyEpisodeError,
    EpisodeClosedError,
    EpisodeLockedError,
    ResetLostError,
    StepIndexError,
    TrajrecError,
    TrajrecFormatError,
    TrajrecIOError,
    TrajrecUsageError,
)
from .format import FORMAT_VERSION, SUFFIX
from .fsck import FsckReport, fsck
from .model import Check, DiffRow, Failure, ResetRecord, Step, normalize_check, verdict
from .reader import Episode, open_episode, read_index, read_records
from .version import __version__

if TYPE_CHECKING:
    from .gymlike import GymLikeEnv, as_gym_env
    from .vector import VectorRecorder
    from .wrapper import Recorder

#: Names whose modules import gymnasium (~11 MB, a third of the command line's start-up): loaded on first use, so
#: reading, exporting and listing episodes never import it.
_LAZY = {"GymLikeEnv": "gymlike", "as_gym_env": "gymlike", "VectorRecorder": "vector", "Recorder": "wrapper"}

__all__ = [
    "FORMAT_VERSION",
    "SUFFIX",
    "Check",
    "CodecWarning",
    "DiffRow",
    "EmptyEpisodeError",
    "Episode",
    "EpisodeClosedError",
    "EpisodeLockedError",
    "Failure",
    "FsckReport",
    "GymLikeEnv",
    "Recorder",
    "ResetLostError",
    "ResetRecord",
    "Step",
    "StepIndexError",
    "TrajrecError",
    "TrajrecFormatError",
    "TrajrecIOError",
    "TrajrecUsageError",
    "Unencodable",
    "UnknownExt",
    "VectorRecorder",
    "__version__",
    "as_gym_env",
    "fsck",
    "normalize_check",
    "open_episode",
    "read_index",
    "read_records",
    "state_not_read",
    "verdict",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
