"""Which label a step gets in an export, and how it becomes a training label.

``--prefer`` orders label sources; the first source that labeled a step wins (among several labels of the same
source, the newest). Sources are classes (``human``: judges ``human:*``; ``judge``: other kind-``judge`` labels such
as models; ``rule``; ``environment``) or judge ids, with wildcards (``model:*``, ``trajrec-rules@2``). Labels of
unlisted sources are not used. Candidates are the run's live labels and the checks recorded on steps.

``--label-map`` turns the chosen value into the exported label. Values are first read as a rating -1/0/+1
(pass/fail and good/bad/neutral words too, a float by its sign); a category that is none of these leaves the step
unlabeled under ``strict``/``lenient``.

==========  ==========  ==========  ==========  =============================================
map         -1          0           +1          scores (float values)
==========  ==========  ==========  ==========  =============================================
strict      false       false       true        true when > 0
lenient     false       true        true        true when >= 0
float       -1.0        0.0         1.0         passed through
unit        0.0         0.5         1.0         passed through
==========  ==========  ==========  ==========  =============================================
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import operator
from typing import Any, Iterable, Sequence, Union

from trajrec.recorder import Check
from trajrec.recorder.errors import TrajrecUsageError
from trajrec.recorder.spelling import option

from ..labels import Label, rating

__all__ = ["DEFAULT_PREFER", "LABEL_MAPS", "PREFER_CLASSES", "UNLABELED", "Candidate", "Preference",
           "candidates_by_step", "map_label", "origin"]

PREFER_CLASSES = ("human", "judge", "rule", "environment")
DEFAULT_PREFER = ("human", "judge", "rule")
LABEL_MAPS = ("strict", "lenient", "float", "unit")
#: What ``trl-stepwise`` does with steps no preferred source labeled.
UNLABELED = ("skip-episode", "truncate", "drop-step", "false", "neutral")


#: A label or a recorded check on a step: both have target, value, judge, kind, rationale, tags, author, score,
#: time and id.
Candidate = Union[Label, Check]


def origin(c: Candidate) -> str:
    """``"label"`` for a label added after recording (a :class:`Label` or the
    :class:`~trajrec.replay.label_model.LabelRow` an export reads), ``"recorded"`` for a check in the episode
    file."""
    return "recorded" if isinstance(c, Check) else "label"


def source_class(judge: str, kind: str) -> str:
    """The ``--prefer`` class word a label or check by ``judge`` of ``kind`` answers to (``human``, ``judge``,
    ``rule``, ``environment``)."""
    if judge.startswith("human:"):
        return "human"
    return kind if kind in PREFER_CLASSES else "judge"


class Preference:
    """A parsed ``--prefer`` list.

    >>> p = Preference("human,model:*")
    >>> p.rank(Label("ep", 0, "judge", "model:gpt@1", 1)), p.rank(Label("ep", 0, "rule", "trajrec-rules@2", 1))
    (1, None)
    """

    def __init__(self, spec: str | Sequence[str] = DEFAULT_PREFER) -> None:
        tokens = [t.strip() for t in (spec.split(",") if isinstance(spec, str) else spec) if t and t.strip()]
        if not tokens:
            raise TrajrecUsageError(f"{option('prefer')} needs at least one source: {', '.join(PREFER_CLASSES)} or a judge "
                                    "id such as human:ana or model:*")
        for t in tokens:
            if t in PREFER_CLASSES or ":" in t or "@" in t or any(ch in t for ch in "*?["):
                continue
            near = difflib.get_close_matches(t, PREFER_CLASSES, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise TrajrecUsageError(f"{option('prefer')}: unknown source {t!r}{hint}; use {', '.join(PREFER_CLASSES)} or a "
                                    "judge id (human:ana, trajrec-rules@2, model:*)")
        self.tokens = tuple(tokens)
        self._ranks: dict[tuple[str, str], int | None] = {}

    def rank(self, c: Candidate) -> int | None:
        """Position of the first token matching the candidate, or None when no token does."""
        key = (c.judge, c.kind)
        try:
            return self._ranks[key]
        except KeyError:
            return self.rank_source(c.judge, c.kind)

    def rank_source(self, judge: str, kind: str) -> int | None:
        """:meth:`rank` of a label or check by ``judge`` of ``kind``."""
        key = (judge, kind)
        try:
            return self._ranks[key]
        except KeyError:
            pass
        cls = source_class(judge, kind)
        found = None
        for i, t in enumerate(self.tokens):
            if t == cls if t in PREFER_CLASSES else fnmatch.fnmatchcase(judge, t):
                found = i
                break
        self._ranks[key] = found
        return found

    def choose(self, cands: Sequence[Candidate], label_map: str | None = None) -> Candidate | None:
        """The winning candidate (the first source in the preference; the newest label of it); with
        ``label_map``, None when the winner's value maps to no label (a category): the step is unlabeled then,
        as docs/EXPORT.md says; a lower-ranked source's label does not take its place."""
        if len(cands) == 1:  # type: ignore[arg-type]
            c = cands[0]  # type: ignore[index]
            ok = self.rank(c) is not None and (label_map is None or map_label(c.value, label_map) is not None)
            return c if ok else None
        best: tuple[Any, ...] | None = None
        win = None
        for c in cands:
            r = self.rank(c)
            if r is None:
                continue
            key = (-r, c.time or 0.0, c.id or "")
            if best is None or key > best:
                best, win = key, c
        if win is not None and label_map is not None and map_label(win.value, label_map) is None:
            return None
        return win

    @property
    def judge_ids(self) -> tuple[str, ...]:
        """The tokens that name judges (``human:ana``, ``model:*``), not classes: the ones a typo can hide in."""
        return tuple(t for t in self.tokens if t not in PREFER_CLASSES)

    def unmatched(self, judges: Iterable[str]) -> list[str]:
        """The judge-id tokens that match none of ``judges`` (judge ids compare case-sensitively).

        >>> Preference("human,human:Ana,model:*,trajrec-rules@2").unmatched(["human:ana", "trajrec-rules@2"])
        ['human:Ana', 'model:*']
        """
        judges = list(judges)
        return [t for t in self.judge_ids if not any(fnmatch.fnmatchcase(j, t) for j in judges)]

    def __str__(self) -> str:
        return ",".join(self.tokens)


def unmatched_message(unmatched: Sequence[str], judges: Sequence[str], flag: str = "prefer",
                      what: str = "label or recorded check") -> str:
    """What a warning says of judge ids (``--prefer`` entries, ``label ls --judge``) that matched no label or check:
    which, the judges there are (a near one first, as "did you mean": ids are case-sensitive), and that nothing
    came from them.

    >>> print(unmatched_message(["human:Ana"], ["human:ana", "trajrec-rules@2"]))  # doctest: +NORMALIZE_WHITESPACE
    prefer entry 'human:Ana' matched no label or recorded check (did you mean 'human:ana'? judge ids are
    case-sensitive); judges here: human:ana, trajrec-rules@2
    """
    near = []
    lowered = {j.lower(): j for j in judges}
    for t in unmatched:
        if t in PREFER_CLASSES:  # a class word is no misspelt judge id
            continue
        got = difflib.get_close_matches(t.lower(), list(lowered), n=1, cutoff=0.75)
        if got:
            near.append(repr(lowered[got[0]]))
    hint = f" (did you mean {' or '.join(near)}? judge ids are case-sensitive)" if near else ""
    shown = ", ".join(judges[:12]) + (f", ... ({len(judges)} judges)" if len(judges) > 12 else "")
    here = f"judges here: {shown}" if judges else f"there is no {what} here at all"
    entry = f"{'entry' if len(unmatched) == 1 else 'entries'} " if flag == "prefer" else ""
    return f"{option(flag).rstrip('=')} {entry}{', '.join(map(repr, unmatched))} matched no {what}{hint}; {here}"


def check_label_map(name: str) -> str:
    if name in LABEL_MAPS:
        return name
    near = difflib.get_close_matches(str(name), LABEL_MAPS, n=1, cutoff=0.5)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise TrajrecUsageError(f"{option('label_map')}: unknown map {name!r}{hint}; maps: {', '.join(LABEL_MAPS)}")


def check_unlabeled(name: str) -> str:
    if name in UNLABELED:
        return name
    near = difflib.get_close_matches(str(name), UNLABELED, n=1, cutoff=0.5)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise TrajrecUsageError(f"{option('unlabeled')}: unknown policy {name!r}{hint}; policies: {', '.join(UNLABELED)}")


def map_label(value: Any, label_map: str) -> bool | float | None:
    """The exported label of a value under a label map, or None when the value is not a rating or score.

    A float is a score under every map, whatever its value (EXPORT.md's ``--label-map`` table): ``float`` and
    ``unit`` keep it unchanged, so a score of 0.0 or -1.0 stays in score order (it is not read as the rating 0 or
    -1, which ``unit`` would move to 0.5 or 0.0).

    >>> [map_label(v, m) for m in LABEL_MAPS for v in (-1, 0, 1)]
    [False, False, True, False, True, True, -1.0, 0.0, 1.0, 0.0, 0.5, 1.0]
    >>> [map_label(v, "unit") for v in (-1.0, 0.0, 0.25, 1.0)]
    [-1.0, 0.0, 0.25, 1.0]
    """
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if label_map == "strict":
            return value > 0
        if label_map == "lenient":
            return value >= 0
        return value
    r = rating(value)
    if r is None:
        return None
    if label_map == "strict":
        return r == 1
    if label_map == "lenient":
        return r >= 0
    if label_map == "float":
        return float(r)
    return (r + 1) / 2


def fill_value(policy: str, label_map: str) -> bool | float | None:
    """The label ``false``/``neutral`` policies give an unlabeled step (that of a -1 or a 0 rating)."""
    if policy == "false":
        return map_label(-1, label_map)
    if policy == "neutral":
        return map_label(0, label_map)
    return None


_target = operator.attrgetter("target")
_INT = {int}


def candidates_by_step(labels: Iterable[Label], checks: Iterable[Check]) -> dict[int, list[Candidate]]:
    """Step index -> candidates: live labels and recorded checks that target a step."""
    out: dict[int, list[Candidate]] = {}
    if type(labels) is list and labels:
        # Usual: a label a step (rules label every step once): the map made in C loops, as the loop below makes it.
        targets = list(map(_target, labels))
        if set(map(type, targets)) == _INT and len(set(targets)) == len(targets):
            out = dict(zip(targets, map(list, zip(labels))))
            labels = ()
    for items in (labels, checks):
        for item in items:
            t = item.target
            if type(t) is int:
                lst = out.get(t)
                if lst is None:
                    out[t] = [item]
                else:
                    lst.append(item)
    return out
