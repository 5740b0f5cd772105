"""Labels: checks added to recorded episodes after recording, by people and by automatic judges.

The pieces: :mod:`.label_model` (:class:`Label` and its line format), :mod:`trajrec.recorder.label_values` (what a
value may be, checked on write and on read, and by ``Recorder.check``), :mod:`.label_store` (:class:`LabelStore`, one run folder) and
:mod:`.label_stores` (:class:`LabelStores`, many). This module gathers their public names.

How labels are stored (one append-only file per writing process, supersede chains, tombstones) is described in
:mod:`.label_store`.

>>> import tempfile
>>> lab = LabelStore(tempfile.mkdtemp()).add("ep-1", 3, -1, judge="human:ana")
>>> lab.check.passed
False
"""

from __future__ import annotations

from .label_model import LABEL_FORMAT, Label, LabelWarning
from .label_store import KNOWN_TAGS, LABELS_DIR, TORN_GRACE, LabelStore, default_annotator
from .label_stores import LabelStores
from trajrec.recorder.label_values import parse_value, rating, validate_value

__all__ = [
    "KNOWN_TAGS",
    "LABELS_DIR",
    "LABEL_FORMAT",
    "Label",
    "LabelStore",
    "LabelWarning",
    "default_annotator",
    "LabelStores",
    "TORN_GRACE",
    "parse_value",
    "rating",
    "validate_value",
]
