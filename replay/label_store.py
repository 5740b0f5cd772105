"""The label store of one run folder: checks added to recorded episodes after recording, by people and by automatic judges.

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

import contextlib
import difflib
import gc
import getpass
import json
import os
import re
import socket
import time as _time
import uuid
import warnings
from dataclasses import replace
from itertools import accumulate, compress, repeat
from operator import add, attrgetter, itemgetter, sub
from pathlib import Path
from typing import Any, Iterable, Iterator

from trajrec.recorder.errors import TrajrecIOError, TrajrecUsageError
from trajrec.recorder.storage import is_url

from trajrec.recorder.label_values import (_NOT_UNICODE, _TAG_OK, _bad_text, _validate_judge, _validate_kind,
                                          _validate_score, _validate_target, _validate_text, validate_value)

from .label_model import Label, LabelWarning
from .run_folder import create_new, private_dir

#: Where labels live, relative to the run folder.
LABELS_DIR = Path(".trajrec") / "labels"
_EPISODE_SUFFIX = ".msgpack.zst"  # an episode file's name (recorder.format.SUFFIX, not imported: format is msgpack's)

#: Tags trajrec's own labelers use; new tags close to one of these get a "did you mean" warning.
KNOWN_TAGS = ("failed", "repeated-mistake", "useful-recovery", "on-passing-path", "terminal-failure")

_UPDATABLE = ("value", "kind", "judge", "rationale", "tags", "author", "score")
_SLUG = re.compile(r"[^A-Za-z0-9_.]+")
#: Seconds a labels file must have been unchanged before an incomplete last line is reported as torn.
TORN_GRACE = 2.0
_CHUNK = 1 << 20  # bytes of labels-file lines decoded at a time


def default_annotator() -> str:
    """The name used for people's labels when none is given: ``$TRAJREC_ANNOTATOR``, else the login name."""
    name = os.environ.get("TRAJREC_ANNOTATOR")
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "anonymous"


def check_annotator(name: str, source: str) -> None:
    """Refuse an annotator name a person's judge (``human:<name>``) cannot be made of: empty, with spaces, or
    already a judge (``human:ana``, which would make a second person ``human:human:ana``). ``source`` names where
    the name came from in the message (``--annotator``, ``$TRAJREC_ANNOTATOR``).

    Raises:
        TrajrecUsageError: naming ``source``, the name and the fix.
    """
    def example(fixed: str) -> str:
        return f"{source} {fixed}" if source.startswith("--") else repr(fixed)

    if name.startswith("human:") and name[6:] and not any(c.isspace() for c in name):
        raise TrajrecUsageError(f"{source} is the person's name alone, got {name!r}; e.g. {example(name[6:])} "
                                f"(their labels are then judge {name!r})")
    if not name or any(c.isspace() for c in name):
        raise TrajrecUsageError(f"{source} is one word without spaces, got {name!r}; e.g. "
                                f"{example('_'.join(name.split()) or 'ana')}")


def _person(judge: str) -> str | None:
    """The person's name of a ``human:<name>`` judge, else None (an automatic judge)."""
    return judge[6:] if judge.startswith("human:") else None


def _new_id() -> str:
    return uuid.uuid4().hex


def _merged(extra: Any, changes: dict[str, Any] | None) -> Any:
    """A version's extra fields: the previous version's with ``changes`` applied (None removes a field)."""
    if not changes:
        return extra
    out = dict(extra)
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


# -- the store -------------------------------------------------------------------------------------------------


class LabelStore:
    """The labels of one run folder: append-only files under ``<run>/.trajrec/labels/``, merged on read.

    Args:
        run_dir: the run folder (the folder holding the episode files). Use :meth:`for_path` to accept a file.
        fsync: fsync after every label (survives power loss; costs a disk flush per label).

    Reading happens at construction; :meth:`refresh` picks up what other processes appended since (it remembers
    how far it read each file). Writing opens this store's own file at the first label.
    """

    #: The lines of the chunk just ingested, when :meth:`_ingest_chunk` counted them itself (None: counted after).
    _chunk_lines: int | None = None

    def __init__(self, run_dir: str | os.PathLike[str], *, fsync: bool = False) -> None:
        # A run on object storage (an fsspec URL) is read here without labels; labeling it is refused.
        self.remote = is_url(os.fspath(run_dir))
        self._where = os.fspath(run_dir)  # as given: Path() would fold a URL's "//"
        root = Path(run_dir)
        if not self.remote and root.exists() and not root.is_dir():
            raise TrajrecUsageError(f"{root} is a file; a label store lives in a run folder "
                                    "(use LabelStore.for_path(path) to accept an episode file)")
        self.run_dir = root
        self.dir = root / LABELS_DIR
        self.fsync = fsync
        self._fd: int | None = None
        self._fd_pid: int | None = None
        self._own: str | None = None  # name of this store's own file
        self._offsets: dict[str, int] = {}
        self._lines: dict[str, int] = {}  # complete lines read so far per file, for warnings that name a line
        self._warned: set[tuple[str, int]] = set()
        self._warned_steps: set[str | None] = set()  # ids of labels on missing steps warned about (once a store)
        # All versions, and the chains they form (see _ingest for the invariants).
        self._recs: dict[str, Label] = {}
        self._children: dict[str, list[str]] = {}
        self._root: dict[str, str] = {}
        self._leaves: dict[str, set[str]] = {}
        self._head: dict[str, Label] = {}
        self._live: dict[str, dict[str, Label]] = {}  # episode_id -> chain root -> live head
        self._by_episode: dict[str, list[str]] = {}  # episode_id -> ids of every version
        self._tags: set[str] = set(KNOWN_TAGS)
        self._dirty = False
        #: episode id -> (episode file, its steps, complete) of the episodes :meth:`add` checked targets of
        self._episode_steps: dict[str, tuple[str, int, bool]] = {}
        self._ids_listed: tuple[int, dict[str, str]] | None = None  # (folder mtime_ns, id -> file) when listed
        self.refresh()

    @classmethod
    def for_path(cls, path: str | os.PathLike[str], **kwargs: Any) -> LabelStore:
        """The store of the run holding ``path``: a file's folder, or the folder itself."""
        p = Path(path)
        if p.is_file():
            return cls(p.parent, **kwargs)
        if p.is_dir():
            return cls(p, **kwargs)
        raise TrajrecUsageError(f"{p}: no such file or folder; pass a run folder or an episode file")

    # -- writing ------------------------------------------------------------------------------------------------

    def add(self, episode_id: str, target: int | str, value: Any, *, kind: str = "judge", judge: str | None = None,
            rationale: str | None = None, tags: Iterable[str] = (), author: str | None = None,
            score: float | None = None, supersedes: str | None = None, time: float | None = None,
            **extra: Any) -> Label:
        """Add a label and return it.

        Args:
            episode_id: the episode (its header's ``episode_id``).
            target: ``"episode"`` or a step index.
            value: a rating -1/0/+1, a score (float), pass/fail (bool) or a category (str).
            kind: ``"judge"`` (people and model judges), ``"rule"`` or ``"environment"``.
            judge: who labels; default ``"human:<author>"`` (author defaulting to :func:`default_annotator`).
            supersedes: the id of a label (or recorded check) this one replaces. Default for a person's label
                (judge ``human:...``): that person's live label on the same target, if any, so a person has at
                most one live label per target (the new label's ``supersedes`` says which one it replaced).
            time: the label's time (default: now); meant for imports and tests.
            extra: more JSON-able fields kept with the label.

        Raises:
            TrajrecUsageError: an empty episode id or author, a bad kind, judge, target, value, score or tag; an
                episode id that no episode file of the run folder has, or a step its episode does not have. Those
                two are checked when the folder holds episode files (``*.msgpack.zst``, directly in it): a
                store of a folder without any (labels written before the recording is copied in) takes any id
                and step, and readers leave out labels on steps an episode does not have, with a warning.
        """
        if not isinstance(episode_id, str) or not episode_id:
            raise TrajrecUsageError(f"episode_id must be a non-empty str, got {episode_id!r}")
        if isinstance(author, str) and not author.strip():
            raise TrajrecUsageError(f"the annotator (author) is empty ({author!r}); give a name, e.g. 'ana', or "
                                    "None for $TRAJREC_ANNOTATOR, else the login name")
        kind = _validate_kind(kind)
        if judge is None:
            if author is None:
                author = default_annotator()
                check_annotator(author, "$TRAJREC_ANNOTATOR" if os.environ.get("TRAJREC_ANNOTATOR") else "the login name")
            else:
                check_annotator(author, "the annotator")
            judge = f"human:{author}"
        judge = _validate_judge(judge, kind)
        if author is None and judge.startswith("human:"):
            author = judge[6:]
        target = _validate_target(target)
        self._check_target(episode_id, target)
        older: list[Label] = []  # the person's older live labels on the target (merged label files): withdrawn
        if supersedes is None and judge.startswith("human:"):
            # One label per step and annotator: a person's second label on a target is a new version of the first
            # (as the viewer's rating again is), not a second live label.
            mine = self.current(episode_id, target, judge=judge)
            if mine:
                supersedes = mine[-1].id
                if time is None:  # a version is newer than the one it supersedes (the newer wins a race)
                    time = max(_time.time(), (mine[-1].time or 0.0) + 1e-6)
                older = [lab for lab in self.shadowed(episode_id) if lab.target == target and lab.judge == judge]
        label = Label(
            episode_id=episode_id,
            target=target,
            kind=kind,
            judge=judge,
            value=validate_value(value),
            score=_validate_score(score),
            rationale=_validate_text("rationale", rationale),
            tags=self._validate_tags(tags),
            author=_validate_text("author", author),
            time=_time.time() if time is None else float(time),
            supersedes=_validate_text("supersedes", supersedes),
            id=_new_id(),
            extra=extra,
        )
        label = self._append(label)
        for lab in older:  # the new label replaces every one of them, as it replaces the newest
            self.delete(lab.id or "", author=label.author)
        return label

    def update(self, label_id: str, *, extra: dict[str, Any] | None = None, **changes: Any) -> Label:
        """Append a new version of a label with ``changes`` applied (value, kind, judge, rationale, tags, author,
        score); the new version supersedes the live one. ``label_id`` may name any version of the label.
        ``extra``: extra fields to set on the new version (a None value removes the field).

        A **carrier** (a label whose ``carrier`` field is true: the neutral 0 value the viewer gives a note, tag or
        score on a target its annotator has not rated) stops being one when a value is given. When an update
        that gives no value leaves a carrier carrying nothing (no rationale, tags or score), the carrier is
        withdrawn instead: the returned version is a tombstone (``deleted``), as undo would write, so no 0 rating
        nobody gave is left behind to outrank the rules in exports (FINDINGS32 #4)."""
        bad = sorted(set(changes) - set(_UPDATABLE))
        if bad:
            what = ", ".join(bad)
            hint = (" (the target and episode of a label are fixed: delete it and add a new one)"
                    if set(bad) & {"target", "episode_id"} else "")
            raise TrajrecUsageError(f"cannot update {what}{hint}; updatable fields: {', '.join(_UPDATABLE)}")
        head = self._live_head(label_id, "update")
        owner = _person(head.judge)
        editor = changes.get("author")
        if owner is not None and editor is not None and editor != owner and "judge" not in changes:
            # A person's label edited by someone else would stay under the owner's judge: agreement and exports
            # would count the editor's opinion as the owner's.
            raise TrajrecUsageError(f"label {label_id} is {head.judge}'s: an edit by {editor} would be counted as "
                                    f"{owner}'s; use edit_as({label_id!r}, {editor!r}, ...) to add {editor}'s own "
                                    "label beside it")
        if head.extra.get("carrier") and "value" in changes and "carrier" not in (extra or {}):
            extra = {**(extra or {}), "carrier": None}  # a value given: no longer a carrier
        kind = _validate_kind(changes.get("kind", head.kind))
        new = replace(
            head,
            kind=kind,
            judge=_validate_judge(changes.get("judge", head.judge), kind),
            value=validate_value(changes["value"]) if "value" in changes else head.value,
            score=_validate_score(changes["score"]) if "score" in changes else head.score,
            rationale=_validate_text("rationale", changes.get("rationale", head.rationale)),
            tags=self._validate_tags(changes["tags"]) if "tags" in changes else head.tags,
            author=_validate_text("author", changes.get("author", head.author)),
            time=max(_time.time(), (head.time or 0.0) + 1e-6),
            supersedes=head.id,
            id=_new_id(),
            extra=_merged(head.extra, extra),
        )
        if new.extra.get("carrier") and not (new.rationale or new.tags or new.score is not None):
            return self.delete(head.id or "", author=new.author)  # the carrier carries nothing now: withdrawn
        return self._append(new)

    def edit_as(self, label_id: str, editor: str, **changes: Any) -> Label:
        """Edit a label as ``editor`` (a person's name): the editor's change is attributed to the editor.

        On the editor's own label (judge ``human:<editor>``), or on an automatic judge's label, this is
        :meth:`update` with ``author=editor``. On another person's label it is a new label of the editor's
        (judge ``human:<editor>``) on the same episode and target, with ``changes`` applied to the other
        person's live version and ``edit_of`` naming that version. The other person's label stays live beside
        it: agreement counts both opinions, exports take the newest person's label.

        When the editor already has a live label on that target, only ``changes`` are applied to it (a new
        version of the editor's own label, ``edit_of`` naming the other person's version): the editor's own
        value, rationale, tags and score that the edit does not name stay theirs. Copying the other person's
        fields over them would silently turn the editor's rating into the other person's and make agreement
        out of nothing (FINDINGS32 #3).

        Raises:
            TrajrecUsageError: as :meth:`update` (an unknown or deleted label, a field that cannot change).
        """
        if not isinstance(editor, str) or not editor.strip():
            raise TrajrecUsageError(f"the editor's name is empty ({editor!r}); give a name, e.g. 'ana'")
        head = self._live_head(label_id, "edit")
        owner = _person(head.judge)
        if owner is None or owner == editor or "judge" in changes:
            return self.update(label_id, **{**changes, "author": editor})
        bad = sorted(set(changes) - {"value", "rationale", "tags", "score"})
        if bad:
            raise TrajrecUsageError(f"cannot change {', '.join(bad)} in an edit of {head.judge}'s label; "
                                    "changeable: value, rationale, tags, score")
        own = self.current(head.episode_id, head.target, judge=f"human:{editor}")
        if own:  # the editor's own opinion on the step: only what the edit names changes
            return self.update(own[-1].id or "", extra={"edit_of": head.id}, **{**changes, "author": editor})
        carried = {"carrier": True} if head.extra.get("carrier") and "value" not in changes else {}
        return self.add(head.episode_id, head.target, changes.get("value", head.value), kind=head.kind,
                        judge=f"human:{editor}", author=editor, rationale=changes.get("rationale", head.rationale),
                        tags=changes.get("tags", head.tags), score=changes.get("score", head.score),
                        edit_of=head.id, **carried)

    def delete(self, label_id: str, *, author: str | None = None) -> Label:
        """Append a tombstone for a label (any version's id); it disappears from :meth:`current`, stays in
        :meth:`history`."""
        head = self._live_head(label_id, "delete")
        tomb = replace(head, value=None, score=None, deleted=True, author=author if author is not None else head.author,
                       time=max(_time.time(), (head.time or 0.0) + 1e-6), supersedes=head.id, id=_new_id())
        return self._append(tomb)

    def close(self) -> None:
        """Close this store's file (reading still works; the next write opens a new file)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:  # already closed by the OS at interpreter exit
                pass

    # -- reading ------------------------------------------------------------------------------------------------

    def current(self, episode_id: str | None = None, target: int | str | None = None,
                judge: str | None = None) -> list[Label]:
        """Live labels (the last version of each label, tombstones left out), sorted by episode, target, time."""
        self._settle()
        if episode_id is not None:
            pools: Iterable[dict[str, Label]] = [self._live.get(episode_id, {})]
        else:
            pools = self._live.values()
        out = [lab for pool in pools for lab in pool.values()
               if (target is None or lab.target == target) and (judge is None or lab.judge == judge)]
        out.sort(key=_order)
        return newest_per_person(out)[0]

    def shadowed(self, episode_id: str | None = None) -> list[Label]:
        """Live labels :meth:`current` leaves out: a person's older labels on a target where that person has a
        newer live one (one label per step and annotator is broken only by label files merged from two copies
        of a run, or two writes in the same moment). Sorted like :meth:`current`."""
        self._settle()
        pools = [self._live.get(episode_id, {})] if episode_id is not None else list(self._live.values())
        out = [lab for pool in pools for lab in pool.values()]
        out.sort(key=_order)
        return newest_per_person(out)[1]

    def history(self, key: str | tuple[str, int | str]) -> list[Label]:
        """Every version, oldest first: of one label (given any version's id), or of every label on
        ``(episode_id, target)``. Tombstones are included (``deleted=True``)."""
        self._settle()
        if isinstance(key, tuple):
            episode_id, target = key
            out = [self._recs[i] for i in self._by_episode.get(episode_id, ()) if self._recs[i].target == target]
        else:
            lid = self._resolve(key)
            root = self._root[lid]
            out = [self._recs[i] for i, r in self._root.items() if r == root]
        out.sort(key=lambda lab: (lab.time or 0.0, lab.id or ""))
        return out

    def versions(self, episode_id: str | None = None) -> list[Label]:
        """Every version (superseded ones and tombstones included) of an episode's labels, or of all, sorted like
        :meth:`current`."""
        self._settle()
        ids = self._by_episode.get(episode_id, []) if episode_id is not None else list(self._recs)
        return sorted((self._recs[i] for i in ids), key=_order)

    def get(self, label_id: str) -> Label:
        """The version with this id (or unique id prefix)."""
        return self._recs[self._resolve(label_id)]

    def live(self, label_id: str) -> Label | None:
        """The live version of the label ``label_id`` (or a unique prefix) is a version of: the one :meth:`current`
        lists, maybe a newer edit than ``label_id``; None when the label was deleted."""
        head = self._head[self._root[self._resolve(label_id)]]
        return None if head.deleted else head

    def orphans(self, *, versions: bool = False) -> list[Label]:
        """Live labels (every version with ``versions``) of episodes that no episode file directly in the run
        folder holds: their file was deleted or replaced (``import --overwrite`` gives a re-imported source a new
        id), renamed (``record --resume`` renames a stopped episode ``*.unfinished``) or moved. No reader shows
        them (they belong to no episode); their lines stay in the labels files, and they count again when a file
        of that episode comes back. Sorted like :meth:`current`. An episode file that cannot be read holds no
        id here: its labels are listed too."""
        self._settle()
        if not self._recs or self.remote:
            return []
        held = self._list_ids(os.fspath(self.run_dir)) or {}
        out = self.versions() if versions else self.current()
        return [lab for lab in out if lab.episode_id not in held]

    def labels_of(self, episode_id: str, n_steps: int) -> list[Label]:
        """Live labels of an episode of ``n_steps`` steps, as every reader of one episode takes them (exports, the
        viewer, agreement, ``ls --where``): :meth:`current`, without labels on steps the episode does not have
        (see :meth:`on_steps`)."""
        return self.on_steps(self.current(episode_id), episode_id, n_steps)

    def on_steps(self, labels: list[Any], episode_id: str, n_steps: int) -> list[Any]:
        """``labels`` of one episode (:class:`Label` s or :class:`~.label_model.LabelRow` s, sorted as
        :meth:`current` sorts them) without those on a step index ``n_steps`` or beyond, which the episode does
        not have: ``label add`` refuses such a step, so a line for one was written by another tool, or comes from
        labels copied beside another recording of the episode. Each is warned about once (a
        :class:`LabelWarning`) and left out; its line stays in the labels file."""
        if not labels:
            return labels
        last = labels[-1].target  # sorted by target, episode labels first: the last has the highest step
        if type(last) is not int or last < n_steps:
            return labels
        kept = [lab for lab in labels if type(lab.target) is not int or lab.target < n_steps]
        new = [lab for lab in labels if type(lab.target) is int and lab.target >= n_steps
               and lab.id not in self._warned_steps]
        if new:
            self._warned_steps.update(lab.id for lab in new)
            shown = ", ".join(f"step {lab.target} ({lab.judge}, id {str(lab.id)[:12]})" for lab in new[:3])
            more = f" and {len(new) - 3} more" if len(new) > 3 else ""
            steps = f"{n_steps} step{'' if n_steps == 1 else 's'}" + (f", 0..{n_steps - 1}" if n_steps else "")
            warnings.warn(f"labels in {self.dir}: {len(new)} label{'' if len(new) == 1 else 's'} of episode "
                          f"{episode_id} on steps it does not have ({steps}): {shown}{more}; left out (the lines "
                          "stay in the labels files: labels of another recording of this episode, or written by "
                          "another tool)", LabelWarning, stacklevel=3)
        return kept

    def labeled_steps(self, episode_id: str) -> set[int]:
        """Step indexes of an episode that carry at least one live label."""
        self._settle()
        return {lab.target for lab in self._live.get(episode_id, {}).values() if isinstance(lab.target, int)}

    def labeled_fraction(self, episode_id: str, n_steps: int) -> float:
        """Share of the episode's ``n_steps`` steps that carry at least one live label (0.0 for no steps)."""
        steps = self.labeled_steps(episode_id)
        if any(t >= n_steps for t in steps):
            self.labels_of(episode_id, n_steps)  # warns about the labels on missing steps
        if n_steps <= 0:
            return 0.0
        return sum(1 for t in steps if t < n_steps) / n_steps

    def episodes(self) -> set[str]:
        """Ids of the episodes that have live labels."""
        self._settle()
        return {eid for eid, pool in self._live.items() if pool}

    def has_labels(self, episode_id: str) -> bool:
        self._settle()
        return bool(self._live.get(episode_id))

    def tags(self) -> list[str]:
        """Every tag seen in this store plus trajrec's own tags, sorted (for completion in a UI)."""
        return sorted(self._tags)

    def __len__(self) -> int:
        """Number of live labels."""
        self._settle()
        return sum(len(pool) for pool in self._live.values())

    def __iter__(self) -> Iterator[Label]:
        return iter(self.current())

    def __repr__(self) -> str:
        return f"<LabelStore {os.fspath(self.run_dir)!r} live={len(self)} versions={len(self._recs)}>"

    def refresh(self) -> int:
        """Read what was appended to the labels files since the last read (other processes' labels).

        Returns the number of label versions read. Cheap when nothing changed: one ``stat`` per file.
        """
        if not self.dir.is_dir():
            return 0
        with _gc_paused():
            return self._refresh()

    def _refresh(self) -> int:
        added = 0
        try:
            entries = sorted(e.name for e in os.scandir(self.dir) if e.name.endswith(".jsonl") and e.is_file())
        except OSError as exc:
            raise TrajrecIOError(f"cannot list labels in {self.dir}: {exc.strerror}") from exc
        for name in entries:
            if name == self._own:
                continue  # this store's own lines are already in memory
            added += self._read_file(name)
        return added

    # -- internals ----------------------------------------------------------------------------------------------

    def _check_target(self, episode_id: str, target: int | str) -> None:
        """Refuse an episode id no episode file of this folder has, or a step beyond its episode's last one.

        The id's file is found by its name (``<episode_id>.msgpack.zst``, the name the Recorder gives it) when
        its header holds that id; an episode file named otherwise (or a file of that name holding another
        episode) is found through the folder's catalog (listed once, again when the folder
        changes). A folder with no episode file at all is not checked (nothing to check against); nor is a
        file that cannot be read (its labels stay the reader's business)."""
        if self.remote:
            return  # refused when written (read-only)
        known = self._episode_steps.get(episode_id)
        if known is None or (isinstance(target, int) and target >= known[1] and not known[2]):
            known = self._read_episode(episode_id)
            if known is None:
                return
        n = known[1]
        if isinstance(target, int) and target >= n:
            what = "(none to label)" if not n else "(0)" if n == 1 else f"(0..{n - 1})"
            raise TrajrecUsageError(f"step {target} is out of range: episode {episode_id} has {n} "
                                    f"step{'' if n == 1 else 's'} {what}; label a step it has, or the "
                                    "episode (target='episode')")

    def _read_episode(self, episode_id: str) -> tuple[str, int, bool] | None:
        """(file, steps, complete) of the episode, read from its index; None when the folder cannot say."""
        from trajrec.recorder import read_index
        from trajrec.recorder.errors import TrajrecFormatError

        folder = os.fspath(self.run_dir)
        path = os.path.join(folder, episode_id + _EPISODE_SUFFIX)
        index = None
        if "/" not in episode_id and os.sep not in episode_id and os.path.isfile(path):
            try:
                index = read_index(path)
            except (TrajrecFormatError, OSError):
                return None  # an unreadable file: its steps are unknown here
            # The name is a hint, the header says: a file named after this id may hold another episode (a copy
            # under the wrong name), so the id is then looked up among the headers, as `trajrec label add` does.
            held = (index.get("header") or {}).get("episode_id")
            if held is not None and held != episode_id:
                index = None
        if index is None:
            listed = self._list_ids(folder)
            if listed is None:
                self._refuse_a_parent_folder(folder, episode_id)
                return None  # no episode file here or below: nothing to check against
            found = listed.get(episode_id)
            if found is None:
                near = difflib.get_close_matches(episode_id, list(listed), n=1, cutoff=0.6)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise TrajrecUsageError(
                    f"no episode {episode_id!r} in {folder}{hint}: its {len(listed)} episode file"
                    f"{'' if len(listed) == 1 else 's'} hold other episodes; pass the header's episode_id "
                    f"(`trajrec ls {folder}` lists them), or open the store of the episode's own folder")
            path = found
            try:
                index = read_index(path)
            except (TrajrecFormatError, OSError):
                return None  # an unreadable file: its steps are unknown here
        known = (path, int(index.get("steps") or 0), bool(index.get("complete", True)))
        self._episode_steps[episode_id] = known
        return known

    @staticmethod
    def _refuse_a_parent_folder(folder: str, episode_id: str) -> None:
        """Refuse a label for a folder whose episodes are all in subfolders (``trajrec demo``'s layout): every
        reader looks for an episode's labels in the folder that holds its file, so this one would be read by no
        one (FINDINGS16 #1)."""
        below: list[str] = []
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d != ".trajrec")
            if root != folder and any(f.endswith(_EPISODE_SUFFIX) for f in files):
                if episode_id + _EPISODE_SUFFIX in files:
                    below = [root]
                    break
                below.append(root)
        if below:
            raise TrajrecUsageError(
                f"{folder} holds no episode file itself (its episodes are in subfolders, e.g. {below[0]}): labels "
                f"are read from the folder that holds the episode's file; open LabelStore({below[0]!r}) "
                "(`trajrec label add` finds the folder itself)")

    def _list_ids(self, folder: str) -> dict[str, str] | None:
        """Episode id -> file of the episode files directly in ``folder`` (through the catalog); None without
        any. Listed again when the folder's mtime changed (a file added or renamed)."""
        try:
            mtime = os.stat(folder).st_mtime_ns
            names = [e.name for e in os.scandir(folder) if e.name.endswith(_EPISODE_SUFFIX) and e.is_file()]
        except OSError:
            return None
        if not names:
            return None
        if self._ids_listed is not None and self._ids_listed[0] == mtime:
            return self._ids_listed[1]
        from .library import scan

        ids = {}
        for batch in scan([os.path.join(folder, n) for n in sorted(names)]):
            for e in batch.entries:
                if not e.error:
                    ids.setdefault(e.episode_id, e.path)
        self._ids_listed = (mtime, ids)
        return ids

    def _validate_tags(self, tags: Iterable[str]) -> tuple[str, ...]:
        if isinstance(tags, str):
            tags = [tags]
        out: list[str] = []
        for tag in tags:
            if not isinstance(tag, str) or not _TAG_OK.match(tag):
                raise TrajrecUsageError(f"a tag is one word without spaces or commas (e.g. 'wrong-tool'), got {tag!r}")
            if _bad_text(tag):
                raise TrajrecUsageError(f"the tag {tag!r} {_NOT_UNICODE}")
            if tag not in self._tags:
                near = difflib.get_close_matches(tag, sorted(self._tags), n=1, cutoff=0.85)
                if near:
                    warnings.warn(f"new tag {tag!r} is close to the existing tag {near[0]!r}; did you mean "
                                  f"{near[0]!r}?", LabelWarning, stacklevel=3)
            if tag not in out:
                out.append(tag)
        return tuple(out)

    def _resolve(self, label_id: str) -> str:
        self._settle()
        if not isinstance(label_id, str) or not label_id:
            raise TrajrecUsageError(f"a label id is a hex string, got {label_id!r}")
        if label_id in self._recs:
            return label_id
        matches = self.matching_ids(label_id)
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise TrajrecUsageError(f"label id prefix {label_id!r} matches {len(matches)} label versions: "
                                    f"{self.describe_ids(matches)}; give more characters")
        near = difflib.get_close_matches(label_id, list(self._recs), n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise TrajrecUsageError(f"no label with id {label_id!r} in {self.dir}{hint}; `trajrec label ls "
                                f"{self.run_dir}` lists the ids")

    def matching_ids(self, prefix: str) -> list[str]:
        """Ids of every version (tombstones included) whose id starts with ``prefix``."""
        self._settle()
        if prefix in self._recs:
            return [prefix]
        return [i for i in self._recs if i.startswith(prefix)]

    def describe_ids(self, ids: list[str], limit: int = 6) -> str:
        """``ids`` as a short list for an error: each id with its episode end, target and judge; live labels
        first, then old versions, then tombstones, each group by id."""
        def rank(i: str) -> int:  # live labels first: they are what a prefix is usually meant to pick
            lab = self._recs[i]
            return 2 if lab.deleted else 0 if self._head.get(self._root.get(i, i)) is lab else 1

        def one(i: str) -> str:
            lab = self._recs[i]
            state = ("", ", old version", ", deleted")[rank(i)]
            return f"{i} ({lab.episode_id[-8:]} {lab.target} {lab.judge}{state})"
        shown = sorted(ids, key=lambda i: (rank(i), i))[:limit]
        more = f", and {len(ids) - limit} more" if len(ids) > limit else ""
        return ", ".join(one(i) for i in shown) + more

    def _live_head(self, label_id: str, verb: str) -> Label:
        lid = self._resolve(label_id)
        head = self._head[self._root[lid]]
        if head.deleted:
            raise TrajrecUsageError(f"cannot {verb} label {label_id}: it was deleted (tombstone {head.id}); add a "
                                    "new label instead")
        return head

    def _open_own(self, label: Label) -> int:
        pid = os.getpid()
        if self._fd is not None and self._fd_pid == pid:
            return self._fd
        # A forked child must not append to its parent's file: that would break "one file per writer".
        self._fd = None
        if self.remote:
            raise TrajrecUsageError(f"{self._where} is on remote storage, which trajrec reads but does not "
                                    "label; copy the run to a local folder to label it")
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)  # the folder the user named
        except OSError as exc:
            raise TrajrecIOError(f"cannot create the run folder {self.run_dir}: {exc.strerror}") from exc
        try:
            private_dir(self.run_dir, *LABELS_DIR.parts)  # never through a link planted in the run folder
        except TrajrecIOError as exc:
            raise TrajrecIOError(f"cannot create the labels folder {self.dir}: {exc} (labels are stored inside the run "
                                 "folder, so it must be writable)") from exc
        who = _SLUG.sub("_", label.author or label.judge.replace("human:", ""))[:40] or "labels"
        host = _SLUG.sub("_", socket.gethostname())[:40]
        import secrets  # here: it loads OpenSSL's hashes (hmac), ~3.5 MB for every reader of labels

        for _attempt in range(10):
            name = f"{who}-{host}-{pid}-{secrets.token_hex(4)}.jsonl"
            try:
                fd = create_new(self.dir / name, os.O_WRONLY | os.O_APPEND)
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise TrajrecIOError(f"cannot create a labels file in {self.dir}: {exc.strerror}") from exc
        else:
            raise TrajrecIOError(f"cannot create a new labels file in {self.dir}: names keep colliding")
        self._fd, self._fd_pid, self._own = fd, pid, name
        self._offsets[name] = 0
        return fd

    def _append(self, label: Label) -> Label:
        try:
            line = json.dumps(label.to_record(compact=True), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise TrajrecUsageError(f"label fields must be JSON data (extra fields included): {exc}") from exc
        try:
            data = (line + "\n").encode("utf-8")
        except UnicodeEncodeError as exc:  # text the field checks do not see (extra fields): nothing is written
            raise TrajrecUsageError(f"a label field {_NOT_UNICODE} (at {line[max(0, exc.start - 30):exc.end + 10]!r})"
                                    ) from exc
        fd = self._open_own(label)
        start = None
        try:
            start = os.fstat(fd).st_size  # only this store writes this file: the line starts here
            # One write of the whole line: O_APPEND puts it at the end atomically with respect to the offset,
            # and a crash can only cut this line, never an earlier one.
            n = os.write(fd, data)
            while n < len(data):  # a short write (disk nearly full, signal); finish the line rather than tear it
                n += os.write(fd, data[n:])
            if self.fsync:
                os.fsync(fd)
        except OSError as exc:
            self._drop_torn_line(fd, start)
            raise TrajrecIOError(f"cannot write a label to {self.dir / (self._own or '?')}: {exc.strerror}; this "
                                 "label was not saved (labels saved before are intact)") from exc
        assert self._own is not None
        self._offsets[self._own] = self._offsets.get(self._own, 0) + len(data)
        self._ingest(label)
        return label

    def _drop_torn_line(self, fd: int, start: int | None) -> None:
        """After a failed write, cut the own file back to the end of its last whole line, so the next label
        does not run on from a torn one; when that fails too, leave the file and start a new one."""
        try:
            if start is None:
                raise OSError("the line's start is unknown")
            os.ftruncate(fd, start)
        except OSError:
            self._fd = None  # the next add opens a fresh file; the torn line stays last in this one
            try:
                os.close(fd)
            except OSError:
                pass

    def _read_file(self, name: str) -> int:
        path = self.dir / name
        start = self._offsets.get(name, 0)
        n = 0
        pos = start  # file offset of the first byte not yet ingested
        carry = b""  # bytes after the last newline read so far
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                size = st.st_size
                if size < start:
                    warnings.warn(f"labels file {path} shrank from {start} to {size} bytes (edited by hand?); "
                                  "reading it again from the start", LabelWarning, stacklevel=3)
                    start = pos = 0
                if size == start:
                    return 0
                if start == 0:
                    self._lines[name] = 0
                fh.seek(start)
                remaining = size - start
                # Read and ingest ~1 MB at a time: a 200,000-label file read whole (and sliced) held twice its
                # size in bytes at the peak, more than the labels themselves.
                while remaining > 0:
                    block = fh.read(min(_CHUNK, remaining))
                    if not block:
                        break
                    remaining -= len(block)
                    buf = carry + block if carry else block
                    cut = buf.rfind(b"\n") + 1
                    if not cut:
                        carry = buf
                        continue
                    lines = self._lines.get(name, 0)
                    self._chunk_lines = None
                    n += self._ingest_chunk(path, pos, buf[:cut], lines)
                    counted = self._chunk_lines  # (when the ingest counted the chunk's lines itself)
                    self._lines[name] = lines + (buf.count(b"\n", 0, cut) if counted is None else counted)
                    pos += cut
                    carry = buf[cut:]
        except FileNotFoundError:
            return n  # deleted between listing and reading
        except OSError as exc:
            raise TrajrecIOError(f"cannot read labels file {path}: {exc.strerror}") from exc
        tail = carry  # what follows the last newline may be a line being written
        if tail.strip():
            # A line written in the last moments may still be arriving (a write that crosses a page boundary
            # becomes visible in pieces): warn about a torn line only once its file has stopped changing.
            settled = _time.time() - st.st_mtime > TORN_GRACE
            rec = self._parse_line(path, pos, tail, torn_ok=True, warn=settled)
            if rec is not _TORN:
                if rec is not None:
                    n += self._ingest_last(path, pos, tail, rec)  # type: ignore[arg-type]
                pos += len(tail)  # a whole line that only lacks its newline
        self._offsets[name] = pos
        return n

    def _ingest_last(self, path: Path, offset: int, raw: bytes, lab: Label) -> int:
        """Ingest a file's last line that lacks its newline (``raw``, at ``offset``), read as ``lab``: in its
        place in file order, after the file's other lines."""
        return self._ingest(lab)

    def _ingest_chunk(self, path: Path, start: int, body: bytes, line: int) -> int:
        if not body:
            return 0
        # One pass of the C scanner over the whole chunk, each value ending where its line ends (decode_lines):
        # not the lines joined by commas into one array, where two damaged lines (a raw newline inside a text)
        # could form one valid label together. Any odd line (blank, damaged) sends the chunk down the
        # line-by-line path, which warns about each bad line.
        recs = decode_lines([body[:-1]])
        try:
            labels = None if recs is None else [Label.from_record(r) for r in recs]
        except (ValueError, AttributeError, TypeError, RecursionError):
            labels = None
        n = 0
        if labels is not None:
            for lab in labels:
                n += self._ingest(lab)
            return n
        pos = 0
        while pos < len(body):
            nl = body.index(b"\n", pos)
            raw = body[pos:nl]
            line += 1
            if raw.strip():
                rec = self._parse_line(path, start + pos, raw, torn_ok=False, line=line)
                if rec is not None:
                    n += self._ingest(rec)  # type: ignore[arg-type]
            pos = nl + 1
        return n

    def _parse_line(self, path: Path, offset: int, raw: bytes, *, torn_ok: bool,
                    warn: bool = True, line: int | None = None) -> Label | None | object:
        try:
            try:
                rec = json.loads(raw)
            except RecursionError:
                raise ValueError("nested too deep") from None
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
            return Label.from_record(rec)
        except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            key = (str(path), offset)
            if warn and key not in self._warned:
                self._warned.add(key)
                if torn_ok:
                    warnings.warn(f"labels file {path}: skipped an incomplete last line ({len(raw)} bytes at byte "
                                  f"{offset}); its writer stopped mid-label. Every label before it is intact.",
                                  LabelWarning, stacklevel=4)
                else:
                    where = f"line {line} (byte {offset})" if line is not None else f"the line at byte {offset}"
                    warnings.warn(f"labels file {path}: skipped {where}: {str(exc)[:200]}; the other labels are "
                                  "read", LabelWarning, stacklevel=4)
            return _TORN if torn_ok else None

    def _ingest(self, lab: Label) -> int:
        """Add one version to the chains. Invariants (after :meth:`_settle`): ``_root`` maps every id to the first
        version of its chain; ``_leaves`` holds, for chains of two or more versions, the versions nothing
        supersedes (a one-version chain's leaf is its root); ``_head`` maps each root to the winning leaf."""
        lid = lab.id
        assert lid is not None
        if lid in self._recs:
            return 0
        self._recs[lid] = lab
        eid = lab.episode_id
        by_ep = self._by_episode.get(eid)
        if by_ep is None:
            self._by_episode[eid] = [lid]
        else:
            by_ep.append(lid)
        if lab.tags:
            self._tags.update(lab.tags)
        parent = lab.supersedes
        if parent is None and not self._dirty and lid not in self._children:
            # The common case, a new label: its own one-version chain.
            self._root[lid] = lid
            self._head[lid] = lab
            if not lab.deleted:
                pool = self._live.get(eid)
                if pool is None:
                    self._live[eid] = {lid: lab}
                else:
                    pool[lid] = lab
            return 1
        if parent is not None:
            self._children.setdefault(parent, []).append(lid)
        if self._dirty or lid in self._children or (parent is not None and parent in self._recs
                                                    and parent not in self._root):
            # A version arrived after one that supersedes it (files are read in name order, not time order):
            # rebuild the chains once, lazily, instead of patching them.
            self._dirty = True
            return 1
        if parent is None or parent not in self._recs:
            root = lid  # supersedes something outside this store (a recorded check) or nothing
            self._leaves[root] = {lid}
        else:
            root = self._root[parent]
            leaves = self._leaves.get(root)
            if leaves is None:
                leaves = self._leaves[root] = {root}
            leaves.discard(parent)
            leaves.add(lid)
        self._root[lid] = root
        self._set_head(root)
        return 1

    def _set_head(self, root: str) -> None:
        leaves = self._leaves.get(root)
        if leaves is None or len(leaves) == 1:
            head = self._recs[next(iter(leaves)) if leaves else root]
        else:  # concurrent edits of one version: the newest wins
            head = max((self._recs[i] for i in leaves), key=lambda lab: (lab.time or 0.0, lab.id or ""))
        old = self._head.get(root)
        self._head[root] = head
        if old is not None and old.episode_id != head.episode_id:
            self._live.get(old.episode_id, {}).pop(root, None)
        pool = self._live.setdefault(head.episode_id, {})
        if head.deleted:
            pool.pop(root, None)
        else:
            pool[root] = head

    def _settle(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self._root, self._leaves, self._head, self._live = {}, {}, {}, {}
        recs = self._recs
        for lid in recs:
            # Follow supersedes up to the first version known here; a cycle (hand-edited files) stops the walk.
            seen = {lid}
            cur = lid
            while True:
                parent = recs[cur].supersedes
                if parent is None or parent not in recs or parent in seen:
                    break
                if parent in self._root:
                    cur = self._root[parent]
                    break
                seen.add(parent)
                cur = parent
            self._root[lid] = cur
        roots: set[str] = set()
        for lid, root in self._root.items():
            roots.add(root)
            if not any(c in recs for c in self._children.get(lid, ())):
                self._leaves.setdefault(root, set()).add(lid)
        for root in roots:
            if root not in self._leaves:  # a pure cycle: treat its root as the leaf
                self._leaves[root] = {root}
            self._set_head(root)


_TORN = object()


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around bulk loads: labels form no cycles, and 100,000 new objects would
    otherwise trigger a dozen full collections (it halves the load time)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


#: One JSON value at a given place of a text (the C scanner ``json.loads`` uses): ``(value, end)``.
_scan = json.JSONDecoder().scan_once
_first, _second = itemgetter(0), itemgetter(1)


def decode_lines(blocks: list[bytes]) -> list[Any] | None:
    """Each line's JSON value, as ``json.loads(line)`` gives it, for lines given in blocks (one or more lines
    joined by newlines each), with one pass of the C scanner over all of them; None when any line is not exactly
    one JSON value on its own (blank, damaged, text around it, not UTF-8), which the caller then reads line by
    line (naming the bad one).

    Each value must end where its line ends: decoding the lines as one array would let two damaged lines
    form valid JSON together (one opening an array the next one closes), which line by line are two bad lines.
    """
    if not blocks:
        return []
    try:
        text = b"\n".join(blocks).decode("utf-8", "surrogatepass")  # as json.loads decodes UTF-8 bytes
        ends = list(accumulate(map(add, map(len, text.split("\n")), repeat(1))))
        n = len(ends)
        found = list(map(_scan, repeat(text, n), [0, *ends[:-1]]))
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError
        return None
    # A line the scanner cannot start raises StopIteration, which ends list(map(...)) early: a shorter list.
    if len(found) != n or list(map(_second, found)) != list(map(sub, ends, repeat(1))):
        return None
    return list(map(_first, found))



def newest_per_person(labels: list[Any]) -> tuple[list[Any], list[Any]]:
    """``(kept, left_out)``: ``labels`` (:class:`Label` s or :class:`~.label_model.LabelRow` s, sorted as
    :meth:`LabelStore.current` sorts them, newest last on each target) with only the newest live label of each
    person (judge ``human:NAME``) on each target, and the older ones left out.

    A person has one live label per target (``add``, ``edit`` and the viewer write new versions of it), but
    label files merged from two copies of a run (each annotator labeling their own copy, ``*.jsonl`` copied
    together) can hold two (FINDINGS32 #9): every reader then takes the newest, as exports choose among one
    source's labels (``label ls``, ``agreement``, exports, the viewer alike), and ``label ls`` says which it left out.
    """
    if len(labels) < 2:
        return labels, []
    # The usual cases, checked in C loops (no Python code a label: 100,000 labels in a few ms): one label a target
    # (one episode's labels by one labeler), else one label per judge and target.
    targets = list(map(_target_of, labels))
    if len(set(targets)) == len(targets):
        return labels, []
    judges = list(map(_judge_of, labels))
    people = {j for j in set(judges) if j.startswith("human:")}
    if not people:
        return labels, []
    mine = list(map(people.__contains__, judges))  # only people's labels are looked at (keys made for them only)
    keys = list(zip(compress(map(_episode_of, labels), mine), compress(targets, mine), compress(judges, mine)))
    if len(set(keys)) == len(keys):
        return labels, []
    index = list(compress(range(len(labels)), mine))
    last = dict(zip(keys, index))  # the last (newest) index of each person and target
    dropped = set(index) - set(last.values())
    return ([lab for i, lab in enumerate(labels) if i not in dropped],
            [lab for i, lab in enumerate(labels) if i in dropped])


_judge_of, _episode_of, _target_of = attrgetter("judge"), attrgetter("episode_id"), attrgetter("target")


def _order(lab: Label) -> tuple[Any, ...]:
    t = lab.target
    return (lab.episode_id, -1 if t == "episode" else t, lab.time or 0.0, lab.id or "")
