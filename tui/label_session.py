"""``LabelSession``: one annotator labeling one episode in the viewer: rate, note, tag, score, category, the
episode's verdict, undo, next unlabeled.

No widget and no textual: the episode screen turns keys into calls and redraws from :meth:`LabelSession.labels_at`
and :meth:`LabelSession.progress`. Labels go to the label store of the episode's run folder
(:class:`trajrec.replay.labels.LabelStore`, append-only); the episode file is never touched.

A key must stay well under 100 ms whatever the number of labels, so the session keeps its own index of the
episode's live labels by step (built once by :meth:`LabelSession.reload`) and patches it with each version it
writes: a key costs one ``os.write`` and a few dict operations, never a pass over the store.

>>> import tempfile
>>> from trajrec.replay.labels import LabelStore
>>> store = LabelStore(tempfile.mkdtemp())
>>> session = LabelSession(store, "ep-1", 4, "ana")
>>> session.rate(0, 1).what, session.rate(0, -1).what, session.progress()
('rated +1', 'rated -1', (1, 1))
>>> [lab.value for lab in LabelStore(store.run_dir).current("ep-1")]
[-1]
>>> session.undo().what, session.mine_at(0).value, session.next_unlabeled(0)
('rated -1', 1, 1)
>>> session.set_verdict(True).what, session.set_score(EPISODE, 0.8).what, session.progress()
('verdict pass', 'score 0.8', (1, 1))
>>> lab = session.mine_at(EPISODE); (lab.target, lab.value, lab.score)
('episode', True, 0.8)
"""

from __future__ import annotations

import gc
import threading
import warnings
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Callable

from trajrec.recorder import TrajrecUsageError
from trajrec.replay.labels import Label, LabelStore, LabelWarning, parse_value

#: The target of a label on the whole episode (as ``trajrec label add --step episode`` writes it).
EPISODE = "episode"

#: A label's target: a step index or :data:`EPISODE`.
Target = int | str

#: Tags offered by ``t`` unless ``--tags`` or ``$TRAJREC_TAGS`` say otherwise.
DEFAULT_TAGS = ("useful-recovery", "repeated-mistake", "fake-reasoning", "lucky-guess")


def parse_tags(text: str, *, source: str = "--tags") -> tuple[str, ...]:
    """The tag list of ``--tags`` / ``$TRAJREC_TAGS`` (``source``, for errors): comma-separated words, in order,
    duplicates dropped.

    >>> parse_tags(" useful-recovery, lucky-guess,,useful-recovery")
    ('useful-recovery', 'lucky-guess')
    """
    tags: list[str] = []
    for raw in text.split(","):
        tag = raw.strip()
        if not tag:
            continue
        if any(c.isspace() for c in tag):
            raise TrajrecUsageError(f"{source}: a tag is one word without spaces, got {tag!r} in {text!r}; join "
                                    f"its words with '-' (e.g. {'-'.join(tag.split())!r})")
        if tag not in tags:
            tags.append(tag)
    if not tags:
        raise TrajrecUsageError(f"{source}: no tags in {text!r}; give a comma-separated list, e.g. "
                                f"{','.join(DEFAULT_TAGS[:2])}")
    return tuple(tags)


def rating_text(value: Any) -> str:
    """A label value as the viewer shows it: ratings ``+1``/``0``/``-1``, ``pass``/``fail``, scores, categories."""
    if isinstance(value, bool):
        return "pass" if value else "fail"
    if isinstance(value, int):
        return f"{value:+d}" if value else "0"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def where(target: Target) -> str:
    """``"step 1,234"`` or ``"episode"``: a target as the status line names it."""
    return f"step {target:,}" if isinstance(target, int) else "episode"


def parse_score(text: str) -> float | None:
    """A score typed into the viewer's prompt: a finite number (as ``trajrec label add --score`` takes it), or
    None for an empty answer (the score is cleared).

    Raises:
        TrajrecUsageError: the text is not a finite number (the message says what to type).

    >>> parse_score(" 0.75"), parse_score("1"), parse_score("")
    (0.75, 1.0, None)
    """
    text = text.strip()
    if not text:
        return None
    try:
        score = float(text)
    except ValueError:
        score = None
    if score is None or score != score or score in (float("inf"), float("-inf")):
        raise TrajrecUsageError(f"not a finite number: {text[:30]!r}; a score is a number like 0.75 or -2 "
                                "(empty clears it)")
    return score


def parse_category(text: str) -> str:
    """A category typed into the viewer's prompt: one line of text that reads as a category, as
    ``trajrec label add --value TEXT`` would read it (not a rating, verdict or number: those have their keys).

    Raises:
        TrajrecUsageError: empty text, text that reads as a rating, verdict or score, or one a typo away from those
            words (the store's own check).

    >>> parse_category(" wrong-tool ")
    'wrong-tool'
    """
    text = text.strip()
    if not text:
        raise TrajrecUsageError("empty category: type a name, e.g. wrong-tool (escape cancels)")
    value = parse_value(text)  # (raises for a near-miss of a rating word: 'godo', did you mean 'good')
    if not isinstance(value, str):
        raise TrajrecUsageError(f"{text[:30]!r} reads as {rating_text(value)}, not a category: rate with + - 0, "
                                "give the episode's verdict with P p / P f, a score with # (P s for the episode)")
    return value


def is_carrier(label: Label) -> bool:
    """Whether ``label`` is a carrier: the neutral 0 value a note, tag or score was given on a target its
    annotator had not rated (the ``carrier`` field), not a rating anyone gave."""
    return bool(label.extra.get("carrier"))


def _carrier(label: Label) -> dict[str, Any]:
    return {"carrier": True} if is_carrier(label) else {}


def _after(label: Label) -> float:
    """A time after ``label``'s: a version must be newer than the one it supersedes."""
    import time

    return max(time.time(), (label.time or 0.0) + 1e-6)


@dataclass(frozen=True)
class Change:
    """One labeling action of the session, as undo needs it.

    Attributes:
        step: the step labeled, or :data:`EPISODE` for the episode as a whole.
        before: the annotator's label on the target before the action (None: the action added it).
        after: the version the action wrote.
        what: what it did, for the status line (``"rated +1"``, ``"tag lucky-guess on"``).
        warning: what the store warned about (a new tag close to a known one), if anything.
    """

    step: Target
    before: Label | None
    after: Label
    what: str
    warning: str | None = None


class LabelSession:
    """One annotator (``judge = "human:<annotator>"``) labeling the steps of one episode through ``store``.

    Each step, and the episode as a whole (target :data:`EPISODE`), carries at most one label of the annotator:
    rating a step again, noting, tagging or scoring it writes a new version of that label (``store.update``), never
    a second one. A label has one value: a rating, a verdict (the episode's pass/fail) or a category, and a score
    beside it. :meth:`undo` takes back this session's
    actions, last first; the store keeps every version.

    Args:
        store: the store of the episode's run folder.
        episode_id: the episode.
        n_steps: its number of steps (labels on other targets are not this session's business).
        annotator: who labels.
        lock: held around every use of ``store`` when other threads use it too (the library's scan).
        refresh: reads what other writers appended to ``store`` and returns the number of versions read (default
            ``store.refresh``; the viewer passes its ``LabelSource.refresh``, which counts them for the library).
    """

    def __init__(self, store: LabelStore, episode_id: str, n_steps: int, annotator: str, *,
                 lock: AbstractContextManager[Any] | None = None,
                 refresh: Callable[[], int] | None = None) -> None:
        self.store = store
        self._refresh = refresh if refresh is not None else store.refresh
        self.episode_id = episode_id
        self.n_steps = n_steps
        self.annotator = annotator
        self.judge = f"human:{annotator}"
        self._lock = lock if lock is not None else threading.RLock()
        # target (a step, or EPISODE for the episode as a whole) -> live labels of any judge, oldest first
        self._by_step: dict[Target, list[Label]] = {}
        self._mine: dict[Target, Label] = {}  # target -> the annotator's live label (the newest, if several)
        self._undo: list[Change] = []
        self._redo: list[Change] = []  # changes undone, last on top; a new action empties it
        self._written: set[str] = set()  # ids of the versions this session wrote (undo takes back only these)
        self.notice: str | None = None  # labels left out at the last reload (on steps the episode does not have)
        self.reloads = 0  # times the index was rebuilt: the screen redraws every step when it changes
        self._noticed: set[str | None] = set()
        self.reload()

    # -- reading ------------------------------------------------------------------------------------------------

    def reload(self) -> None:
        """Rebuild the index from the store (after ``store.refresh()`` read other writers' labels)."""
        # The index makes a list per labeled step and no reference cycles: pausing the cyclic collector
        # saves the full collections those allocations trigger (measured: 180 -> 50 ms for 100,000 labels).
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            with self._lock, warnings.catch_warnings():
                warnings.simplefilter("ignore", LabelWarning)  # said on screen below (the store warns once a process)
                every = self.store.current(self.episode_id)
                labels = self.store.on_steps(every, self.episode_id, self.n_steps)
            # Labels on steps the episode does not have are left out; the screen says so once a session each.
            new = [lab for lab in every if type(lab.target) is int and lab.target >= self.n_steps
                   and lab.id not in self._noticed]
            self._noticed.update(lab.id for lab in new)
            self.notice = (f"{len(new)} label{'' if len(new) == 1 else 's'} on steps this episode does not have "
                           f"({self.n_steps} steps) left out: "
                           + ", ".join(f"step {lab.target} by {lab.judge} (id {str(lab.id)[:12]})" for lab in new[:3])
                           + (f" and {len(new) - 3} more" if len(new) > 3 else "")
                           + "; their lines stay in the labels files") if new else None
            by_step: dict[Target, list[Label]] = {}
            mine: dict[Target, Label] = {}
            # Labels on the whole episode (a colleague's verdict, the rules' episode-verdict, the annotator's own)
            # sit under EPISODE: the header shows them.
            for lab in labels:  # sorted by target, then time: the annotator's newest comes last
                t = lab.target
                if (isinstance(t, int) and t < self.n_steps) or t == EPISODE:
                    by_step.setdefault(t, []).append(lab)
                    if lab.judge == self.judge:
                        mine[t] = lab
            self._by_step, self._mine = by_step, mine
            self.reloads += 1
        finally:
            if was_enabled:
                gc.enable()

    def labels_at(self, step: Target) -> list[Label]:
        """The live labels on ``step``: the annotator's first, then the others, oldest first."""
        labels = self._by_step.get(step, [])
        return sorted(labels, key=lambda lab: lab.judge != self.judge)

    def episode_labels(self) -> list[Label]:
        """The live labels on the whole episode (target :data:`EPISODE`): the annotator's first, then the others,
        oldest first (with the session's own writes)."""
        return self.labels_at(EPISODE)

    def mine_at(self, step: Target) -> Label | None:
        """The annotator's live label on ``step`` (:data:`EPISODE`: on the episode as a whole)."""
        return self._mine.get(step)

    def is_mine(self, label: Label) -> bool:
        return label.judge == self.judge

    def has_others(self, step: int) -> bool:
        """True when someone other than the annotator labeled ``step``."""
        return any(lab.judge != self.judge for lab in self._by_step.get(step, ()))

    def progress(self) -> tuple[int, int]:
        """(steps the annotator labeled, steps anyone labeled): labels on the whole episode do not count."""
        return len(self._mine) - (EPISODE in self._mine), len(self._by_step) - (EPISODE in self._by_step)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def next_unlabeled(self, start: int, direction: int = 1) -> int | None:
        """The first step after ``start`` (before it with ``direction=-1``; wrapping around, ``start`` itself
        last) without the annotator's label; None when every step has one."""
        n = self.n_steps
        for k in range(1, n + 1):
            step = (start + k * direction) % n
            if step not in self._mine:
                return step
        return None

    def next_labeled(self, start: int, direction: int = 1) -> int | None:
        """The nearest step after ``start`` (before it with ``direction=-1``; no wrapping) that anyone labeled;
        None when there is none that way."""
        steps = [s for s in self._by_step if type(s) is int and (s > start if direction > 0 else s < start)]
        if not steps:
            return None
        return min(steps) if direction > 0 else max(steps)

    # -- writing ------------------------------------------------------------------------------------------------

    def catch_up(self) -> bool:
        """Read what other writers appended to the store since the last read, and rebuild the index if anything
        came; True if it did.

        Every write calls this first, so that it decides between adding the annotator's label and updating it on
        the store as it is now: the same annotator in a second viewer (or a terminal) may have labeled the step
        a moment ago, and adding beside that label would leave two live labels of one annotator on the step
        (FINDINGS17 #2). Cheap when nothing changed: a listing of the labels folder and a ``stat`` per file.

        Raises:
            TrajrecIOError: the labels folder cannot be listed.
        """
        with self._lock:
            read = self._refresh()
        if read:
            self.reload()
        return bool(read)

    def rate(self, step: int, value: int) -> Change | None:
        """Rate ``step`` -1/0/+1; None when the annotator's label already says so."""
        self.catch_up()
        mine = self._mine.get(step)
        if (mine is not None and type(mine.value) is int and mine.value == value  # (True == 1: pass is no +1)
                and not is_carrier(mine)):  # (0 on a carrier: the annotator's own 0 now, kept when emptied)
            return None
        return self._write(step, f"rated {rating_text(value)}", value=value)

    def set_verdict(self, passed: bool) -> Change | None:
        """The annotator's verdict on the whole episode: value pass (True) or fail (False) on target
        :data:`EPISODE`, as ``trajrec label add --step episode --value pass`` writes it (its score, rationale and
        tags stay). None when the label already says so."""
        self.catch_up()
        mine = self._mine.get(EPISODE)
        if mine is not None and type(mine.value) is bool and mine.value == passed:
            return None
        was = f" (was {rating_text(mine.value)})" if mine is not None and type(mine.value) is not int else ""
        return self._write(EPISODE, f"verdict {rating_text(passed)}{was}", value=passed)

    def set_score(self, step: Target, score: float | None) -> Change | None:
        """Set (None: clear) the score of the annotator's label on ``step`` (a step or :data:`EPISODE`): the
        label's ``score`` field, kept beside its value as ``trajrec label add --score`` keeps it. A target not
        labeled yet gets a neutral (0) value to carry it. None when nothing changes."""
        self.catch_up()
        mine = self._mine.get(step)
        if score == (mine.score if mine is not None else None):
            return None
        return self._write(step, f"score {score:g}" if score is not None else "score cleared", score=score)

    def set_category(self, step: Target, category: str) -> Change | None:
        """Make ``category`` (see :func:`parse_category`) the value of the annotator's label on ``step`` (a step
        or :data:`EPISODE`), as ``trajrec label add --value CATEGORY`` does: a label has one value, so the
        category takes the place of a rating or verdict (its score, rationale and tags stay). None when the
        label already says so."""
        self.catch_up()
        mine = self._mine.get(step)
        if mine is not None and type(mine.value) is str and mine.value == category:
            return None
        was = f" (was {rating_text(mine.value)})" if mine is not None else ""
        return self._write(step, f"category {category}{was}", value=category)

    def set_rationale(self, step: Target, text: str) -> Change | None:
        """Set (empty: clear) the rationale of the annotator's label on ``step``; a step not rated yet gets a
        neutral (0) label to carry it. None when nothing changes."""
        rationale = text.strip() or None
        self.catch_up()
        mine = self._mine.get(step)
        if rationale == (mine.rationale or None if mine is not None else None):
            return None
        return self._write(step, "note" if rationale else "note cleared", rationale=rationale)

    def toggle_tag(self, step: Target, tag: str) -> Change:
        """Add ``tag`` to the annotator's label on ``step``, or take it off; a step not rated yet gets a
        neutral (0) label to carry it."""
        self.catch_up()
        mine = self._mine.get(step)
        tags = list(mine.tags) if mine is not None else []
        if tag in tags:
            tags.remove(tag)
            what = f"tag {tag} off"
        else:
            tags.append(tag)
            what = f"tag {tag} on"
        return self._write(step, what, tags=tags)

    def undo(self) -> Change | None:
        """Take back the session's last action (a new label is deleted, an edit restored); returns it, or None
        when there is nothing to undo. Both leave a new version in the store (it is append-only)."""
        if not self._undo:
            return None
        change = self._undo.pop()  # dropped even if the store refuses (the label was deleted meanwhile)
        with self._lock:
            # Another process (the same annotator in a terminal) may have edited the label since: undo takes back
            # this session's versions only while the live one is one it wrote, never someone else's newer edit.
            self.store.refresh()
            live = self.store.live(change.after.id or "")
            if live is not None and live.id not in self._written:
                raise TrajrecUsageError(
                    f"{where(change.step)}'s label was changed since this session's {change.what} "
                    f"({live.author or live.judge} made it {rating_text(live.value)}"
                    + (f": {live.rationale!r}" if live.rationale else "")
                    + f", version {str(live.id)[:12]}): not undone; label it again to change it")
            old = change.before
            if old is None:
                new = self.store.delete(change.after.id or "", author=self.annotator)
            elif change.after.deleted:  # a carrier the action withdrew: back as a new version after the tombstone
                new = self.store.add(self.episode_id, change.step, old.value, kind=old.kind, judge=old.judge,
                                     author=self.annotator, score=old.score, rationale=old.rationale, tags=old.tags,
                                     supersedes=change.after.id, time=_after(change.after), **_carrier(old))
            else:
                new = self.store.update(change.after.id or "", value=old.value, score=old.score,
                                        rationale=old.rationale, tags=old.tags,
                                        extra={"carrier": True if is_carrier(old) else None})
            self._written.add(new.id or "")
        self._apply(change.step, new)
        self._redo.append(change)
        return change

    def redo(self) -> Change | None:
        """Do again the action :meth:`undo` took back last (its value, score, rationale and tags, as a new version;
        a label undo deleted comes back as a new label); returns the new change (undo takes it back again), or
        None when there is nothing to redo. A new labeling action empties what can be redone.

        Raises:
            TrajrecUsageError: the label was changed since by someone else (not redone, as with undo).
        """
        if not self._redo:
            return None
        undone = self._redo.pop()
        self.catch_up()
        mine = self._mine.get(undone.step)
        if mine is not None and mine.id not in self._written:
            raise TrajrecUsageError(
                f"{where(undone.step)}'s label was changed since this session's undo ({mine.author or mine.judge} "
                f"made it {rating_text(mine.value)}, version {str(mine.id)[:12]}): not redone; label it again "
                "to change it")
        done = undone.after
        rest = self._redo
        if done.deleted:  # the action withdrew a carrier: empty it again (which withdraws it)
            change = self._write(undone.step, undone.what, score=None, rationale=None, tags=[])
        else:
            change = self._write(undone.step, undone.what, value=done.value, score=done.score,
                                 rationale=done.rationale, tags=list(done.tags),
                                 extra={"carrier": True if is_carrier(done) else None})
        self._redo = rest  # (_write empties it: a new action)
        return change

    def _write(self, step: Target, what: str, **fields: Any) -> Change:
        before = self._mine.get(step)
        with self._lock, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LabelWarning)
            if before is None:
                extra = {k: v for k, v in (fields.pop("extra", None) or {}).items() if v is not None}
                if "value" not in fields:
                    # A note, tag or score on a target not rated yet rides on a neutral 0 nobody gave: marked, so
                    # that emptying it again withdraws it (store.update) instead of leaving a 0 rating behind.
                    extra["carrier"] = True
                after = self.store.add(self.episode_id, step, fields.pop("value", 0), kind="judge",
                                       judge=self.judge, author=self.annotator, **fields, **extra)
            else:
                # (an update that empties a carrier returns its tombstone: the carrier is withdrawn)
                after = self.store.update(before.id or "", **fields)
        self._written.add(after.id or "")
        self._apply(step, after)
        if after.deleted and before is not None:
            what += " (the neutral 0 that carried it is withdrawn: nothing rated here)"
        change = Change(step, before, after, what, "; ".join(str(w.message) for w in caught) or None)
        self._undo.append(change)
        self._redo = []
        return change

    def _apply(self, step: Target, new: Label) -> None:
        """Patch the index with a version just written: it replaces the version it supersedes."""
        labels = self._by_step.get(step, [])
        kept = [lab for lab in labels if lab.id != new.supersedes]
        if len(kept) == len(labels) and new.supersedes is not None:
            # It superseded a version this index has not seen (another writer's edit): read the store again.
            self.reload()
            return
        if not new.deleted:
            kept.append(new)
        mine = [lab for lab in kept if lab.judge == self.judge]
        if kept:
            self._by_step[step] = kept
        else:
            self._by_step.pop(step, None)
        if mine:
            self._mine[step] = mine[-1]
        else:
            self._mine.pop(step, None)
