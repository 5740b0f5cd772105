"""The label model: :class:`Label`, one version of a check added to a recorded episode after recording, and how
it reads from and writes to one line of a labels file."""

from __future__ import annotations

import math
import sys
from functools import partial
from itertools import compress, islice, repeat
from operator import le as _le
from types import MappingProxyType
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple

from trajrec.recorder.label_values import _TAG_OK, _bad_text, _value_problem
from trajrec.recorder.model import CHECK_KINDS, Check

#: Version of the label line format (the ``v`` field of each line).
LABEL_FORMAT = 1


class LabelWarning(UserWarning):
    """Warned when a labels file holds a line that cannot be read (a torn last line, a damaged line), or when a
    new tag looks like a misspelling of a known one."""


@dataclass(frozen=True, slots=True)
class Label:
    """One version of a label: a check added after recording, with the episode it is about.

    Attributes:
        episode_id: the episode the label is about.
        target: ``"episode"`` or a step index.
        kind: ``"rule"``, ``"environment"`` or ``"judge"`` (people are judges: ``judge="human:<name>"``).
        judge: who labeled, e.g. ``"human:ana"``, ``"trajrec-rules@2"``, ``"model:rubric@2"``.
        value: a rating -1/0/+1, a score (float), pass/fail (bool) or a category (str); None on a tombstone.
        id: this version's id (uuid4 hex); ``supersedes`` is the id of the version it replaces.
        deleted: True on a tombstone (the label was deleted).

    >>> Label("ep", 0, "judge", "human:bo", 1, id="x").check.to_record()["judge"]
    'human:bo'
    """

    episode_id: str
    target: int | str
    kind: str
    judge: str
    value: Any
    score: float | None = None
    rationale: str | None = None
    tags: tuple[str, ...] = ()
    author: str | None = None
    time: float | None = None
    supersedes: str | None = None
    id: str | None = None
    deleted: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def check(self) -> Check:
        """This label as a :class:`trajrec.recorder.Check` (its ``extra`` carries ``episode_id``)."""
        return Check(target=self.target, kind=self.kind, judge=self.judge, value=self.value, score=self.score,
                     rationale=self.rationale, tags=self.tags, author=self.author, time=self.time,
                     supersedes=self.supersedes, id=self.id, extra={**self.extra, "episode_id": self.episode_id})

    @property
    def passed(self) -> bool | None:
        """True/False when the value reads as a pass/fail verdict (a rating +1/-1 too), else None."""
        return self.check.passed

    @property
    def step(self) -> int | None:
        """The step index this label is about, or None for an episode label."""
        return self.target if isinstance(self.target, int) else None

    @property
    def is_human(self) -> bool:
        return self.judge.startswith("human:")

    def to_record(self, *, compact: bool = False) -> dict[str, Any]:
        """The label as one line of a labels file (a JSON object); ``compact`` leaves out empty fields."""
        rec: dict[str, Any] = {
            "v": LABEL_FORMAT,
            "id": self.id,
            "episode_id": self.episode_id,
            "target": self.target,
            "kind": self.kind,
            "judge": self.judge,
            "value": self.value,
            "score": self.score,
            "rationale": self.rationale,
            "tags": list(self.tags),
            "author": self.author,
            "time": self.time,
            "supersedes": self.supersedes,
            "deleted": self.deleted,
        }
        for k, v in self.extra.items():
            rec.setdefault(k, v)
        if compact:
            for k in _OPTIONAL:
                v = rec[k]
                if v is None or v is False or v == []:
                    del rec[k]
        return rec

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> Label:
        """Read one line of a labels file. Raises ValueError when a required field is missing or malformed."""
        if type(rec) is dict and rec.keys() <= _KNOWN:
            lab = _usual(cls, rec)
            if lab is not None:
                return lab
        lid, eid = rec.get("id"), rec.get("episode_id")
        if not isinstance(lid, str) or not lid:
            raise ValueError("no label id")
        if not isinstance(eid, str) or not eid:
            raise ValueError("no episode_id")
        target = rec.get("target", "episode")
        if not (target == "episode" or (type(target) is int and target >= 0)):
            raise ValueError(f"target {str(target)[:40]!r} is neither 'episode' nor a step index")
        problem = _line_problem(rec)
        if problem:
            raise ValueError(problem)
        # Lines omit empty fields. A run's labels all stay in memory (219,545 labels: 363 MB with a __dict__ per
        # label and a fresh string per field): slots and one copy of each repeated text (episode ids, judges,
        # kinds, authors, rules' rationales, tag lists) keep it to a few hundred bytes per label.
        d = {**_DEFAULTS, **rec}
        tags = d["tags"]
        tags = tuple(tags) if type(tags) is list else tags if type(tags) is tuple else (str(tags),)
        d["tags"] = _TAGS.setdefault(tags, tags) if len(_TAGS) < 4096 else tags
        for name in _SHARED:
            v = d[name]
            if type(v) is str:
                d[name] = _intern(v)
        extra = {k: d[k] for k in d if k not in _KNOWN} if not _KNOWN.issuperset(rec) else _NO_EXTRA
        lab = object.__new__(cls)
        put = object.__setattr__
        for name in _SLOTS:
            put(lab, name, d[name])
        put(lab, "extra", extra)
        return lab


_MAX_EXTRA_DEPTH = 32
_isfinite = math.isfinite
_ABSENT = object()


def _usual(cls: type[Label], rec: dict[str, Any]) -> Label | None:
    """The label of a line with the usual fields and values (no extra fields, text in ASCII, a checked judge and
    tag list, a rating, verdict or finite score), built without the general checks; None sends any other line
    to them (:meth:`Label.from_record`), which give the same label for the lines accepted here."""
    get = rec.get
    lid, eid, kind, judge = get("id"), get("episode_id"), get("kind", "judge"), get("judge", "unknown")
    if not (type(lid) is str and lid and lid.isascii() and type(eid) is str and eid and eid.isascii()
            and kind in CHECK_KINDS and type(judge) is str and judge in _GOOD_JUDGES):
        return None
    target = get("target", "episode")
    if not (target == "episode" or (type(target) is int and target >= 0)):
        return None
    value, deleted = get("value"), get("deleted", False)
    tv = type(value)
    if not (tv is bool or (tv is int and -1 <= value <= 1) or (tv is float and _isfinite(value))
            or (value is None and deleted is True)) or type(deleted) is not bool:
        return None
    for name in ("rationale", "author", "supersedes"):
        v = get(name)
        if v is not None and not (type(v) is str and v.isascii()):
            return None
    score, t = get("score"), get("time")
    if (score is not None and not (type(score) in (int, float) and _isfinite(score))) or (
            t is not None and not (type(t) in (int, float) and _isfinite(t))):
        return None
    tags = get("tags", _ABSENT)
    if tags is _ABSENT:
        tags = ()
    elif type(tags) is list:
        try:
            tags = _TAGS.get(tuple(tags))
        except TypeError:
            return None
        if tags is None:
            return None
    else:
        return None
    rationale, author = get("rationale"), get("author")
    return _usual_label(cls, eid, target, kind, judge, value, score, rationale, tags, author, t, get("supersedes"),
                        lid, deleted)


def _usual_label(cls: Any, eid: str, target: Any, kind: str, judge: str, value: Any, score: Any, rationale: Any,
                 tags: Any, author: Any, t: Any, supersedes: Any, lid: Any, deleted: Any) -> Any:
    """A label of checked fields and no extra ones (a usual line), built through the slots' own setters: a frozen
    dataclass refuses setattr, and object.__setattr__ costs twice as much. Repeated text is interned."""
    lab = object.__new__(cls)
    (s_eid, s_target, s_kind, s_judge, s_value, s_score, s_rationale, s_tags, s_author, s_time, s_supersedes, s_id,
     s_deleted, s_extra) = _SETTERS
    s_eid(lab, _intern(eid))
    s_target(lab, target)
    s_kind(lab, _intern(kind))
    s_judge(lab, _intern(judge))
    s_value(lab, value)
    s_score(lab, score)
    s_rationale(lab, _intern(rationale) if rationale is not None else None)
    s_tags(lab, tags)
    s_author(lab, _intern(author) if author is not None else None)
    s_time(lab, t)
    s_supersedes(lab, supersedes)
    s_id(lab, lid)
    s_deleted(lab, deleted)
    s_extra(lab, _NO_EXTRA)
    return lab


def _depth_over(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:  # iterative: a hostile line may nest deeper than Python's recursion limit
        v, d = stack.pop()
        if d > limit:
            return True
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return False


def _line_problem(rec: Mapping[str, Any]) -> str | None:
    """Why a labels-file line is not a label as :meth:`LabelStore.add` writes one, or None. Reading checks what
    writing checks, so an odd line (hand-edited, another tool) is skipped instead of failing every reader."""
    kind, judge = rec.get("kind", "judge"), rec.get("judge", "unknown")
    if kind not in CHECK_KINDS:
        return f"kind {str(kind)[:40]!r} is not one of {', '.join(CHECK_KINDS)}"
    if not (type(judge) is str and judge in _GOOD_JUDGES):
        if _bad_text(judge) or not judge or any(c.isspace() for c in judge):
            return "judge is not a name without spaces"
        if len(_GOOD_JUDGES) < 4096:  # a run has a handful of judges: each is checked once
            _GOOD_JUDGES.add(judge)
    deleted = rec.get("deleted", False)
    if type(deleted) is not bool:
        return "deleted is not true/false"
    if not deleted or rec.get("value") is not None:
        problem = _value_problem(rec.get("value"))
        if problem:
            return problem
    for name in ("rationale", "author", "supersedes"):
        v = rec.get(name)
        if v is not None and _bad_text(v):
            return f"{name} is not text"
    for name in ("score", "time"):
        v = rec.get(name)
        if v is not None and (type(v) not in (int, float) or not math.isfinite(v)):
            return f"{name} is not a finite number"
    tags = rec.get("tags", ())
    if type(tags) is list and _known_tags(tags):
        pass  # a tag list already read and checked
    elif type(tags) is not list or not all(type(t) is str and _TAG_OK.match(t) and not _bad_text(t) for t in tags):
        if tags != ():
            return "tags is not a list of words"
    if not _KNOWN.issuperset(rec) and _depth_over({k: v for k, v in rec.items() if k not in _KNOWN},
                                                  _MAX_EXTRA_DEPTH):
        return f"extra fields nest more than {_MAX_EXTRA_DEPTH} deep"
    if _bad_text(rec["id"]) or _bad_text(rec["episode_id"]):
        return "id or episode_id is not text"
    return None


_DEFAULTS: dict[str, Any] = {"v": LABEL_FORMAT, "id": None, "episode_id": None, "target": "episode", "kind": "judge",
                             "judge": "unknown", "value": None, "score": None, "rationale": None, "tags": (),
                             "author": None, "time": None, "supersedes": None, "deleted": False}
_KNOWN = frozenset(_DEFAULTS)
_OPTIONAL = ("score", "rationale", "tags", "author", "supersedes", "deleted")  # left out of lines when empty
_FIELDS = frozenset(_DEFAULTS) - {"v"}
_SLOTS = tuple(k for k in _DEFAULTS if k != "v")
#: Text fields that repeat across a run's labels, kept once (``sys.intern``: freed with their last label).
_SHARED = ("episode_id", "kind", "judge", "author", "rationale")
_intern = sys.intern
_TAGS: dict[tuple[str, ...], tuple[str, ...]] = {}  # tag lists seen, kept once (bounded: 4,096 distinct lists)
_GOOD_JUDGES: set[str] = set()  # judge names already checked


def _known_tags(tags: list[Any]) -> bool:
    try:
        return tuple(tags) in _TAGS  # only lists that passed the check are there
    except TypeError:  # an unhashable item: not a tag list
        return False


_SETTERS = tuple(Label.__dict__[name].__set__ for name in (  # the order _usual unpacks them in
    "episode_id", "target", "kind", "judge", "value", "score", "rationale", "tags", "author", "time", "supersedes",
    "id", "deleted", "extra"))
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})  # shared by the labels without extra fields (read-only)


class LabelRow(NamedTuple):
    """A label as an export reads it: :class:`Label`'s fields in its order, without extra fields; what
    :func:`usual_rows` gives for lines it accepts. Formats read the same attributes from it as from a
    :class:`Label` (``value``, ``judge``, ``kind``, ``time``, ``id``...); :meth:`label` builds the :class:`Label`.
    """

    episode_id: str
    target: int | str
    kind: str
    judge: str
    value: Any
    score: float | None
    rationale: str | None
    tags: tuple[str, ...]
    author: str | None
    time: float | None
    supersedes: str | None
    id: str
    deleted: bool

    def label(self) -> Label:
        """The :class:`Label` of this row (the one :meth:`Label.from_record` gives for its line)."""
        return _usual_label(Label, *self)  # type: ignore[no-any-return]


_new_row = partial(tuple.__new__, LabelRow)
_NONE = type(None)
_KINDS = frozenset(CHECK_KINDS)
_TEXT_OR_NONE = frozenset({str, _NONE})
_NUMBER_OR_NONE = frozenset({int, float, _NONE})
_I64_MAX = 2**63 - 1
_get = dict.get
_INT_OR_TEXT = frozenset({int, str})
_EPISODE_FIRST = {"episode": -1}  # the sort key of a target: episode labels before step 0


def _column(recs: list[dict[str, Any]], name: str, default: Any = None) -> list[Any]:
    return list(map(_get, recs, repeat(name), repeat(default)))


def _ascii_or_none(col: list[Any]) -> bool:
    return set(map(type, col)) <= _TEXT_OR_NONE and all(map(str.isascii, filter(None, col)))


def _finite_or_none(col: list[Any]) -> bool:
    # filter(None) drops None (and zeros, finite anyway); isfinite of an int too big for a float raises.
    return set(map(type, col)) <= _NUMBER_OR_NONE and all(map(_isfinite, filter(None, col)))


def usual_rows(recs: list[Any], episode_id: str) -> list[LabelRow] | None:
    """One episode's decoded label lines as :class:`LabelRow` s, live labels only and sorted as
    :meth:`~.label_store.LabelStore.current` sorts them; or None when any line needs more than that.

    Accepts what :func:`_usual` accepts, checked a field at a time over all the lines (C loops instead of a
    Python pass per line), and only when no line edits or deletes another and no id repeats (then every version
    is live). Anything else (an odd line, a judge or tag list not checked yet, an edit chain) gives None: the
    caller builds :class:`Label` s with :meth:`Label.from_record` and resolves the chains, which gives the same
    labels for the lines accepted here (``tests/labels/test_label_fast_path.py`` compares them).

    Args:
        recs: the decoded lines (JSON values), all placed under ``episode_id``.
        episode_id: the episode they were found under; every line must name it.
    """
    n = len(recs)
    if not n:
        return []
    try:
        if set(map(type, recs)) != {dict} or not _KNOWN.issuperset(set().union(*recs)):
            return None
        ids = _column(recs, "id")
        if (set(map(type, ids)) != {str} or not all(ids) or not all(map(str.isascii, ids))
                or len(set(ids)) != n):
            return None
        eids = _column(recs, "episode_id")
        if not (episode_id and episode_id.isascii() and eids.count(episode_id) == n
                and set(map(type, eids)) == {str}):
            return None
        kinds = _column(recs, "kind", "judge")
        judges = _column(recs, "judge", "unknown")
        if not set(kinds) <= _KINDS or set(map(type, judges)) != {str} or not set(judges) <= _GOOD_JUDGES:
            return None
        targets = _column(recs, "target", "episode")
        ttypes = set(map(type, targets))
        if ttypes == {int}:
            if min(targets) < 0:
                return None
        elif ttypes == _INT_OR_TEXT:  # steps and the episode: C loops (a generator cost ~0.2 µs a label)
            if (sum(map(isinstance, targets, repeat(str))) != targets.count("episode")
                    or min(compress(targets, map(isinstance, targets, repeat(int)))) < 0):
                return None
        elif ttypes != {str} or targets.count("episode") != n:
            return None
        deleted = _column(recs, "deleted", False)
        if set(map(type, deleted)) != {bool} or any(deleted):
            return None  # a tombstone: the chains decide
        values = _column(recs, "value")
        vtypes = set(map(type, values))
        if not vtypes <= {bool, int, float} or not all(map(_isfinite, values)):
            return None
        if vtypes == {int}:
            if min(values) < -1 or max(values) > 1:
                return None
        elif int in vtypes and not all(-1 <= v <= 1 for v in values if type(v) is int):
            return None
        supersedes = _column(recs, "supersedes")
        if supersedes.count(None) != n:
            return None  # an edit: the chains decide
        rationales, authors = _column(recs, "rationale"), _column(recs, "author")
        if not _ascii_or_none(rationales) or not _ascii_or_none(authors):
            return None
        scores, times = _column(recs, "score"), _column(recs, "time")
        if not _finite_or_none(scores) or not _finite_or_none(times):
            return None
        tags = _column(recs, "tags", ())  # a tuple only where the line has no tags (JSON gives lists)
        tag_types = set(map(type, tags))
        if tag_types != {tuple}:
            if not tag_types <= {list, tuple}:
                return None
            keys = list(map(tuple, tags))
            if tag_types == {list}:
                if not set(keys) <= _TAGS.keys():
                    return None
            elif not set(compress(keys, map(isinstance, tags, repeat(list)))) <= _TAGS.keys():
                return None
            tags = list(map(_TAGS.get, keys, keys))  # each list as the one tuple kept for it
    except (TypeError, OverflowError):  # an unhashable kind, judge or tag; a number too big for a float
        return None
    rows = list(map(_new_row, zip(repeat(episode_id, n), targets, kinds, judges, values, scores, rationales, tags,
                                  authors, times, supersedes, ids, deleted)))
    keys = list(zip(targets if ttypes == {int} else map(_EPISODE_FIRST.get, targets, targets),
                    times if None not in times else [tm or 0.0 for tm in times], ids))
    if not all(map(_le, keys, islice(keys, 1, None))):  # as LabelStore.current sorts (one episode: no episode id in the key)
        order = sorted(range(n), key=keys.__getitem__)
        rows = list(map(rows.__getitem__, order))
    return rows

