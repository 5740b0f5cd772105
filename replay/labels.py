"""Labels: checks added to recorded episodes after recording, by people and by automatic judges.

The pieces: :mod:`.label_model` (:class:`Label` and its line format), :mod:`.label_values` (what a value may
be, checked on write and on read), :mod:`.label_store` (:class:`LabelStore`, one run folder) and
:mod:`.label_stores` (:class:`LabelStores`, many). This module gathers their public names.

A label is a :class:`trajrec.recorder.Check` plus the ``episode_id`` it is about. Episode files are never rewritten:
labels live beside them in the run folder, so copying or moving the folder keeps them::

    <run>/.trajrec/labels/<writer>-<host>-<pid>-<random>.jsonl

Each writing process (each :class:`LabelStore` that adds a label) appends to a file of its own, one label per
line, each line written with a single ``os.write`` on an ``O_APPEND`` descriptor. A crash loses at most the line
being written; a torn last line is skipped with a :class:`LabelWarning` when reading. Two processes labeling the
same run never touch the same file, and readers merge every file, so nothing is lost.

Editing or deleting appends: :meth:`LabelStore.update` writes a new version whose ``supersedes`` names the old
one, :meth:`LabelStore.delete` writes a tombstone (``deleted: true``). The versions of one label form a chain;
the live version is the chain's last one (when two processes edit the same version at once, the newer by time
wins and both stay in :meth:`LabelStore.history`).

>>> import tempfile
>>> store = LabelStore(tempfile.mkdtemp())
>>> lab = store.add("ep-1", 3, -1, judge="human:ana", rationale="wrong file", tags=["typo"])
>>> lab.check.passed, lab.author
(False, 'ana')
>>> lab2 = store.update(lab.id, value=0)
>>> [l.value for l in store.current("ep-1")], len(store.history(lab.id))
([0], 2)
>>> _ = store.delete(lab2.id)
>>> store.current("ep-1"), store.labeled_steps("ep-1")
([], set())
"""

from __future__ import annotations

from .label_model import LABEL_FORMAT, Label, LabelWarning
from .label_store import KNOWN_TAGS, LABELS_DIR, TORN_GRACE, LabelStore, default_annotator
from .label_stores import LabelStores
from .label_values import parse_value, rating, validate_value

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
