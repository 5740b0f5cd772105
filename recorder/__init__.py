"""trajrec's recorder: the record model, the episode file format, the writer, the reader and the wrapper.

>>> from trajrec.recorder import Recorder, open_episode
"""

from __future__ import annotations

from .codec import CodecWarning, Unencodable, UnknownExt
from .errors import (
    EmptyEpisodeError,
    EpisodeClosedError,
    EpisodeLockedError,
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
from .gymlike import GymLikeEnv, as_gym_env
from .vector import VectorRecorder
from .wrapper import Recorder

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
    "verdict",
]
