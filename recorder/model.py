"""The record model: what an episode holds, as Python objects.

An episode is one record in four parts (see ``docs/FORMAT.md``): the **task** and **provenance** in the header,
the **behavior** (the reset, then one :class:`Step` per ``env.step``) and the **checks** (:class:`Check`).
The byte layout lives in :mod:`trajrec.recorder.format`; this module only knows fields.
"""

from __future__ import annotations

import operator
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, NamedTuple

from .codec import numpy_if_loaded
from .model_call import ModelUsage

CHECK_KINDS = ("rule", "environment", "judge")

_PASS_WORDS = frozenset({"pass", "passed", "ok", "success", "succeeded", "correct", "true", "good", "yes"})
_FAIL_WORDS = frozenset({"fail", "failed", "error", "failure", "incorrect", "wrong", "false", "bad", "no"})


class Failure(NamedTuple):
    """Why a step failed.

    ``kind`` is ``"exception"`` (``env.step`` raised), ``"tool_error"`` (``info["error"]`` was set) or a kind
    returned by the user's ``failure_fn``.
    """

    kind: str
    message: str
    traceback: str | None = None
    type: str | None = None

    @classmethod
    def from_record(cls, rec: Mapping[str, Any] | None) -> Failure | None:
        if not rec:
            return None
        return cls(str(rec.get("kind", "unknown")), str(rec.get("message", "")), rec.get("traceback"), rec.get("type"))


class DiffRow(NamedTuple):
    """One change of the state: ``path`` (keys from the root), DeepDiff's action name, new and old value."""

    path: list[Any]
    action: str
    value: Any
    old_value: Any


@dataclass(frozen=True)
class Check:
    """One checking signal: a recorded check or a label added later.

    Attributes:
        target: ``"episode"`` or a step index.
        kind: ``"rule"``, ``"environment"`` or ``"judge"``.
        judge: who checked, as ``id@version`` (``"pytest@8"``, ``"human:ana"``, ``"model:rubric@2"``).
        value: a rating -1/0/+1, a score, pass/fail as a bool, or a category string.

    >>> Check(target=3, kind="rule", judge="unittest@py3", value=False).passed
    False
    """

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
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        """True/False when the value reads as a pass/fail verdict, else None."""
        return verdict(self.value)

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> Check:
        known = {"target", "kind", "judge", "value", "score", "rationale", "tags", "author", "time", "supersedes", "id", "t"}
        return cls(
            target=rec.get("target", "episode"),
            kind=str(rec.get("kind", "rule")),
            judge=str(rec.get("judge", "unknown")),
            value=rec.get("value"),
            score=rec.get("score"),
            rationale=rec.get("rationale"),
            tags=tuple(rec.get("tags") or ()),
            author=rec.get("author"),
            time=rec.get("time"),
            supersedes=rec.get("supersedes"),
            id=rec.get("id"),
            extra={k: v for k, v in rec.items() if k not in known},
        )

    def to_record(self) -> dict[str, Any]:
        rec = {
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
            "id": self.id,
        }
        rec.update(self.extra)
        return rec


def verdict(value: Any) -> bool | None:
    """Read a check value as pass (True), fail (False) or neither (None).

    A numpy bool or integer (what ``np.all(...)`` or a comparison on an array returns) reads as its Python value,
    so the recorder's summary and every reader of the stored value give the same verdict.

    >>> [verdict(v) for v in (True, "fail", 1, -1, 0, 0.7, "category:typo")]
    [True, False, True, False, None, None, None]
    """
    value = plain_scalar(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return True if value > 0 else False if value < 0 else None
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _PASS_WORDS:
            return True
        if low in _FAIL_WORDS:
            return False
    return None


def plain_scalar(value: Any) -> Any:
    """``value`` as a Python ``bool``/``int``/``float``/``str`` when it is a numpy scalar of one, else unchanged.

    The stored form of a numpy scalar is its Python value (the codec writes it so), so deciding on the plain
    value makes the recorder agree with every later reader. Costs one type test for Python values; numpy is only
    looked up when it is already imported (a numpy value cannot exist otherwise).

    >>> import numpy as np
    >>> [plain_scalar(v) for v in (np.True_, np.int64(-1), np.float32(0.5), "x")]
    [True, -1, 0.5, 'x']
    """
    if type(value) in _PLAIN:
        return value
    np = numpy_if_loaded()  # (an import of numpy under way in another thread is waited for)
    if np is not None and isinstance(value, np.generic) and isinstance(value, (np.bool_, np.integer, np.floating, np.str_)):
        return value.item()
    return value


_PLAIN = frozenset((bool, int, float, str, type(None)))


#: Outcomes of an episode that did not run to its end (unless its last step terminated or truncated it).
UNENDED_OUTCOMES = frozenset({"stopped", "error", "incomplete", "unreadable", None, ""})


def lost_steps(index: Mapping[str, Any]) -> list[tuple[int, int | None, str]]:
    """The step ranges an index declares unreadable: ``(first, n, why)`` per range, ``n`` None for "every step
    from ``first`` on, if any" (a damaged tail whose length is unknown).

    ``fsck --repair`` writes them (the index key ``damaged``) when it keeps a file's readable frames around
    damaged ones; readers skip these steps and say so instead of calling the file complete.
    """
    out: list[tuple[int, int | None, str]] = []
    for row in index.get("damaged") or ():
        if isinstance(row, dict) and isinstance(row.get("first"), int) and not row.get("unverified"):
            n = row.get("n")
            out.append((row["first"], n if isinstance(n, int) else None, str(row.get("why") or "damaged bytes")))
    return out


class Gap(NamedTuple):
    """A place where an episode's recording is not whole: steps the env took that no reader can show.

    Two kinds, told apart by ``numbered``:

    * ``numbered`` True: steps ``first .. first + n - 1`` were recorded, then lost to damaged bytes (``fsck
      --repair`` declared them in the index's ``damaged`` rows); ``n`` None: every step from ``first`` on, if any.
    * ``numbered`` False: ``n`` env steps whose records could not be written while recording (a write failed: disk
      full, a file-size limit). The Recorder numbers only the steps it wrote, so these have no step number: they
      were taken right before step ``first`` (the step whose ``recorder_errors`` says so), ``first == len(ep)``
      when they came last. ``first`` is None when only the summary's count is known (see :func:`gaps`).
    """

    first: int | None
    n: int | None
    why: str
    numbered: bool

    def text(self) -> str:
        """``"steps 8..15 lost: damaged bytes"`` or ``"2 env steps not written before step 2: ..."``."""
        if self.numbered:
            span = (f"any steps from {self.first} on" if self.n is None
                    else f"steps {self.first}..{self.first + self.n - 1}")  # type: ignore[operator]
            return f"{span} lost: {self.why}"
        where = "" if self.first is None else f" before step {self.first}"
        return f"{self.n} env step{'s' if self.n != 1 else ''} not written{where}: {self.why}"

    def to_json(self) -> list[int | None] | dict[str, Any]:
        """The exports' ``lost`` entry: ``[first, n]`` for numbered steps (``n`` null: to the end), ``{"before":
        k, "n": n}`` for env steps never written (``before``: the step written right after them; the number of
        steps when they came last; null when unknown)."""
        return [self.first, self.n] if self.numbered else {"before": self.first, "n": self.n}


#: Why steps were not written, when the step after them does not say (they came last, or an older writer).
WRITE_FAILED = "a write failed while recording (disk full, file-size limit)"


def gaps(index: Mapping[str, Any]) -> list[Gap]:
    """Every gap of an episode that its index tells, in step order: the numbered ranges ``fsck --repair`` declared
    lost (:func:`lost_steps`, empty frames left out) and the env steps a failed write kept out of the file (the
    summary's ``lost_steps``, placed by its ``lost_before`` rows ``[k, n]``: ``n`` env steps lost right before step
    ``k``; what ``lost_steps`` counts beyond them came after the last written step).

    A summary written before trajrec kept ``lost_before`` (only the count, ``lost_steps``) gives one gap of unknown
    place (``first`` None); :attr:`Episode.gaps` finds the places in the step records. An empty list: the
    recording is whole (as far as the index tells: :attr:`Episode.complete` says whether the writer closed it).
    """
    out = [Gap(f, n, why, True) for f, n, why in lost_steps(index) if n != 0]
    summary = index.get("summary")
    total = summary.get("lost_steps") if isinstance(summary, Mapping) else None
    if type(total) is int and total > 0:
        rows = summary.get("lost_before")
        placed = [(k, n) for k, n in rows if type(k) is int and type(n) is int and n > 0] if (
            isinstance(rows, list) and all(isinstance(r, list) and len(r) == 2 for r in rows)) else None
        if placed is None:
            out.append(Gap(None, total, WRITE_FAILED, False))
        else:
            out += [Gap(k, n, WRITE_FAILED, False) for k, n in placed]
            rest = total - sum(n for _k, n in placed)
            if rest > 0:  # lost after the last written step: no record came after them to say so
                steps = index.get("steps")
                out.append(Gap(steps if type(steps) is int else 0, rest, WRITE_FAILED, False))
        out.sort(key=gap_order)
    return out


def gap_order(g: Gap) -> tuple[bool, int, bool]:
    """Sort key putting gaps in the order they happened: by ``first``; at the same ``first``, the env steps not
    written *before* step ``first`` come ahead of the numbered range that starts at ``first`` (they were taken
    earlier in the run); a gap of unknown place last."""
    return (g.first is None, g.first or 0, g.numbered)


def ran_to_end(summary: Mapping[str, Any], complete: bool = True) -> bool:
    """Whether an episode summary is of an episode that ran to its end: judged, terminated or truncated, in a
    file that was closed (``complete``). One that was stopped (interrupted, the agent gave up), raised (outcome
    ``error``) or never closed did not: the episodes the filter word ``incomplete`` selects (with the files that lost
    steps), and those ``trajrec record --resume`` records again (but for those an env exception ended, kept unless
    ``--retry-errors``: see ``trajrec.recording.resume_keeps``).

    >>> ran_to_end({"outcome": "passed"}), ran_to_end({"outcome": "stopped"})
    (True, False)
    >>> ran_to_end({"outcome": "error", "truncated": True}), ran_to_end({"outcome": "passed"}, complete=False)
    (True, False)
    """
    if not complete:
        return False
    if summary.get("terminated") is True or summary.get("truncated") is True:
        return True
    return summary.get("outcome") not in UNENDED_OUTCOMES


def normalize_check(raw: Mapping[str, Any], *, default_target: int | str, default_kind: str = "environment",
                    check_id: str | None = None, now: float | None = None) -> dict[str, Any]:
    """Bring a check reported by an env or a caller into the stored shape.

    ``target`` may be ``"episode"``, ``"step"`` (the step it came with) or an int. A ``kind`` other than
    :data:`CHECK_KINDS` becomes ``default_kind``, the given one kept as ``kind_given`` (as a target that is no step
    index is kept as ``target_given``).
    """
    if not isinstance(raw, Mapping):
        raw = {"value": raw}
    rec: dict[str, Any] = dict(raw)
    target = rec.get("target", default_target)
    if target is None or (type(target) is str and target == "step"):
        target = default_target
    elif type(target) is not int and not isinstance(target, str):
        # A step index as a numpy int or a whole float is that index; anything else (a bool, a fraction, an
        # object) is no target: the check stays on the step it came with, the given value kept beside it. A
        # reader refuses a target that is neither text nor an int, so this never writes a file it cannot read.
        index = as_step_index(target)
        if index is None:
            rec["target_given"] = repr(target)[:200]
            target = default_target
        else:
            target = index
    rec["target"] = target
    if "step" in rec and type(rec["step"]) is not int:  # (the index copy's field: an int, as the target)
        index = as_step_index(rec["step"])
        if index is None:
            rec["step_given"] = repr(rec.pop("step"))[:200]
        else:
            rec["step"] = index
    kind = rec.get("kind")
    if kind and (type(kind) is not str or kind not in CHECK_KINDS):
        # A kind outside the model's three (an env's "unit", say): the check is kept as the default kind, the
        # given one beside it, so no reader takes it for a model judge's verdict or drops it.
        rec["kind_given"] = str(kind)[:200]
        kind = None
    rec["kind"] = str(kind or default_kind)
    rec["judge"] = str(rec.get("judge") or f"{rec['kind']}:unnamed")
    rec["value"] = plain_scalar(rec.get("value"))  # stored as read back: the summary decides on the same value
    tags = rec.get("tags")
    rec["tags"] = [str(t) for t in tags] if isinstance(tags, (list, tuple, set, frozenset)) else ([] if tags is None else [str(tags)])
    rec.setdefault("time", time.time() if now is None else now)
    if check_id is not None and not rec.get("id"):
        rec["id"] = check_id
    return rec


def as_step_index(value: Any) -> int | None:
    """``value`` as a step index when it is one in another type (a numpy int, a whole float), else None."""
    if isinstance(value, bool):
        return None
    try:
        import numpy as np

        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if isinstance(value, int):  # an int subclass (IntEnum)
        return int(value)
    return None


_EMPTY: tuple[Any, ...] = ()


def _lazy_failure(rec: Mapping[str, Any], extra: tuple[Check, ...]) -> Failure | None:
    return Failure.from_record(rec.get("failure"))


def _lazy_recovers(rec: Mapping[str, Any], extra: tuple[Check, ...]) -> list[int]:
    return list(rec.get("recovers") or ())


def _lazy_diff(rec: Mapping[str, Any], extra: tuple[Check, ...]) -> list[DiffRow]:
    return [DiffRow(*row) for row in rec.get("diff") or ()]


def _lazy_checks(rec: Mapping[str, Any], extra: tuple[Check, ...]) -> list[Check]:
    checks = [Check.from_record(c) for c in rec.get("checks") or ()]
    checks.extend(extra)
    return checks


def _lazy_errors(rec: Mapping[str, Any], extra: tuple[Check, ...]) -> list[dict[str, Any]]:
    return list(rec.get("recorder_errors") or ())


def _lazy_lost_links(rec: Mapping[str, Any], extra: tuple[Check, ...]) -> dict[str, Any]:
    links = rec.get("lost_links")
    return dict(links) if isinstance(links, Mapping) else {}


#: The :class:`Step` fields a step read from a file builds when first read (each builds new objects).
_LAZY_FIELDS = {"failure": _lazy_failure, "recovers": _lazy_recovers, "diff": _lazy_diff, "checks": _lazy_checks,
                "recorder_errors": _lazy_errors, "after_end": lambda rec, extra: rec.get("after_end") is True,
                "lost_links": _lazy_lost_links}


@dataclass(slots=True)
class Step:
    """One ``env.step``, as recorded.

    ``reward`` etc. are what the env returned; ``failure`` is None or a :class:`Failure`; ``retry_of`` is the
    failed step of the same operation this step repeats; ``recovers`` lists the failed steps this successful
    step recovers; ``diff`` the state changes; ``checks`` the checks recorded for this step. ``retry_of`` and
    ``recovers`` name written steps only: a link to a failed step whose record could not be written (a full disk)
    is in ``lost_links`` (``{"retry_of": k, "recovers": [k, ...]}``, k: that step was lost right before step k).

    A step read from a file (:meth:`from_record`) builds its failure, diff rows, checks and lists from the
    stored record the first time they are read, then keeps them: a walk that looks at the action and the reward
    does not build the rest. Fields read, compare and assign as usual.
    """

    index: int
    action: Any
    observation: Any
    reward: Any
    terminated: bool
    truncated: bool
    info: Any
    time: float
    duration: float
    note: dict[str, Any] | None
    failure: Failure | None
    retry_of: int | None
    recovers: list[int]
    diff: list[DiffRow]
    checks: list[Check]
    recorder_errors: list[dict[str, Any]] = field(default_factory=list)
    #: taken after the step that ended the episode (terminated or truncated), with no reset between: not part of
    #: the episode's end, return or outcome (docs/RECORDING.md)
    after_end: bool = False
    lost_links: dict[str, Any] = field(default_factory=dict)
    # The stored record and the index's checks on this step, while some field is still to be built from them.
    _src: Mapping[str, Any] | None = field(default=None, init=False, repr=False, compare=False)
    _extra: tuple[Check, ...] = field(default=(), init=False, repr=False, compare=False)

    @classmethod
    def from_record(cls, rec: Mapping[str, Any], extra_checks: Iterable[Check] = ()) -> Step:
        """The step of a stored record (as the reader gives it: checked, shared, never modified). ``extra_checks``:
        checks recorded on this step outside its record (copied now).

        The plain fields are set now; ``failure``, ``recovers``, ``diff``, ``checks`` and ``recorder_errors``
        (new objects each) are built from the record when first read.

        Raises:
            KeyError: the record has no ``"i"``.
        """
        step = _new_step(cls)
        get = rec.get
        try:
            # Every step a Recorder writes has these nine fields: one C call reads them.
            (step.index, step.action, step.observation, step.reward, term, trunc, step.info, step.time,
             step.duration) = _USUAL_FIELDS(rec)
        except KeyError:
            step.index = rec["i"]
            step.action = get("action")
            step.observation = get("observation")
            step.reward = get("reward")
            term = get("terminated", False)
            trunc = get("truncated", False)
            info = get("info", _EMPTY)
            step.info = {} if info is _EMPTY else info  # (a default {} would be a new dict for every step)
            step.time = get("time", 0.0)
            step.duration = get("duration", 0.0)
        step.terminated = term if type(term) is bool else truthy(term)
        step.truncated = trunc if type(trunc) is bool else truthy(trunc)
        step.note = get("note")
        step.retry_of = get("retry_of")
        step._src = rec
        step._extra = extra_checks if type(extra_checks) is tuple else tuple(extra_checks)
        return step

    def __getattr__(self, name: str) -> Any:
        # Called only for a slot not set yet: a lazy field of a step read from a file, built now from its record.
        build = _LAZY_FIELDS.get(name)
        if build is None:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute {name!r}")
        try:
            rec = self._src
        except AttributeError:
            rec = None
        if rec is None:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute {name!r}")
        value = build(rec, self._extra)
        object.__setattr__(self, name, value)
        return value

    @property
    def failed(self) -> bool:
        return self.failure is not None


_new_step = object.__new__
_USUAL_FIELDS = operator.itemgetter("i", "action", "observation", "reward", "terminated", "truncated", "info", "time",
                                    "duration")


@dataclass(slots=True)
class ResetRecord:
    """What ``env.reset`` was called with and returned."""

    seed: int | None
    options: Any
    observation: Any
    info: Any
    state: Any
    time: float
    duration: float
    failure: Failure | None
    recorder_errors: list[dict[str, Any]] = field(default_factory=list)
    lost_links: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> ResetRecord:
        return cls(
            seed=rec.get("seed"),
            options=rec.get("options"),
            observation=rec.get("observation"),
            info=rec.get("info", {}),
            state=rec.get("state"),
            time=rec.get("time", 0.0),
            duration=rec.get("duration", 0.0),
            failure=Failure.from_record(rec.get("failure")),
            recorder_errors=list(rec.get("recorder_errors") or ()),
        )


def truthy(value: Any) -> bool:
    """``bool(value)``, or False when the value has no truth value (a numpy array of several items, an object
    whose ``__bool__`` raises): recorded values are kept as given, flags derived from them must not raise."""
    if type(value) is bool:
        return value
    try:
        return bool(value)
    except Exception:  # noqa: BLE001  (any user __bool__)
        return False


_SUMMARY_OPTIONAL = frozenset(("failure", "retry_of", "recovers", "lost_links", "note", "checks", "recorder_errors"))


class SummaryBuilder:
    """Running totals of an episode, fed step and check records; the writer and the crash scanner share it."""

    __slots__ = ("steps", "ret", "failures", "retries", "recoveries", "terminated", "truncated", "error",
                 "checks_total", "checks_passed", "checks_failed", "by_kind", "by_judge", "verdict", "verdict_judge",
                 "start_time", "end_time", "last_step", "model", "agent_error", "lost_steps", "lost_before", "after_end")

    def __init__(self) -> None:
        self.steps = 0
        self.ret = 0.0
        self.failures = 0
        self.retries = 0
        self.recoveries = 0
        self.terminated = False
        self.truncated = False
        self.error: str | None = None
        self.checks_total = 0
        self.checks_passed = 0
        self.checks_failed = 0
        self.by_kind: dict[str, int] = {}
        self.by_judge: dict[str, int] = {}
        self.verdict: bool | None = None
        self.verdict_judge: str | None = None
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.last_step: int | None = None
        self.model = ModelUsage()  # tokens, latency, cost of the model calls in the steps' notes
        self.agent_error: dict[str, Any] | None = None  # the agent could not act (see add_agent_error)
        self.lost_steps = 0  # env steps whose records could not be written (a write failed: disk full...)
        #: ``[k, n]`` per gap: ``n`` of them were lost right before step ``k`` (the rest of lost_steps came last)
        self.lost_before: list[list[int]] = []
        #: steps taken after the step that ended the episode, with no reset between (marked ``after_end``)
        self.after_end = 0

    def add_agent_error(self, message: str, note: Mapping[str, Any], *, interrupted: bool = False) -> None:
        """The agent failed to choose an action (e.g. its model server did not answer): the episode ends as
        ``error`` with no step taken; ``note`` (the failed ``model_call``) counts in the model totals.
        ``interrupted``: the agent was stopped (Ctrl-C) while choosing: ``agent_error`` says so
        (``"interrupted": True``), the outcome stays ``stopped`` and ``end_time`` is now, the stop time."""
        self.model.add_note(note, "agent_error")
        if interrupted:
            self.agent_error = {"message": message, "interrupted": True, **note}
            self.end_time = time.time()
            return
        self.agent_error = {"message": message, **note}
        self.error = f"the agent failed: {message}"

    def add_reset(self, rec: Mapping[str, Any]) -> None:
        self.start_time = rec.get("time")
        if rec.get("failure"):
            self.error = f"reset raised {rec['failure'].get('type') or 'an exception'}"

    def add_step(self, rec: Mapping[str, Any], bare: bool = False) -> None:
        """Count step record ``rec``; ``bare``: the caller knows it holds none of the optional fields (failure,
        retry_of, recovers, note, checks, recorder_errors), so they are not looked for."""
        self.steps += 1
        get = rec.get
        self.last_step = get("i")
        if not bare and get("after_end") is True:
            # A step after the episode's end (no reset between): in the file and counted in steps, failures, model
            # calls and checks, but the episode's end stays the first one: return, terminated, truncated, error.
            self.after_end += 1
            self.end_time = get("time")
            if not rec.keys().isdisjoint(_SUMMARY_OPTIONAL):
                self._add_optional(rec, after_end=True)
            return
        reward = get("reward")
        if type(reward) is float:  # the usual case, without the try below
            self.ret += reward
        else:
            try:
                if reward is not None and not isinstance(reward, (str, bytes, bytearray)):  # text is no number
                    self.ret += float(reward)
            except Exception:  # noqa: BLE001  (huge ints, arrays, objects whose __float__ raises)
                pass  # non-numeric rewards are recorded as given and left out of the return
        term, trunc = get("terminated"), get("truncated")
        self.terminated = term if type(term) is bool else truthy(term)
        self.truncated = trunc if type(trunc) is bool else truthy(trunc)
        self.end_time = get("time")
        # Most steps carry none of the optional fields: one C-level test instead of five lookups (this runs for
        # every recorded step).
        if not bare and not rec.keys().isdisjoint(_SUMMARY_OPTIONAL):
            self._add_optional(rec)

    def add_unwritten_step(self, rec: Mapping[str, Any]) -> None:
        """Count step record ``rec`` that the env took but whose write failed (disk full): the summary tells of the
        env's episode, not only of what reached the file. Its reward adds to ``return``, its terminated/truncated
        set the episode's end (so the outcome is the env's), its failure, retry and recovery count in
        ``failures``/``retries``/``recoveries`` (an exception also sets ``error``), and its note's model calls and
        its checks count in ``model`` and ``checks``. ``steps`` and ``last_step`` stay those of the written steps;
        the step itself is counted in ``lost_steps`` by whoever places the gap (the next record's
        ``recorder_errors``, or the Recorder at close), so ``rec``'s own ``recorder_errors`` are not read here.

        Only the Recorder calls this, on its lost-step paths; a reader rebuilding a summary from the records of a
        file with no index (a crash) cannot, as these values are in no record.
        """
        steps, last_step = self.steps, self.last_step
        self.add_step({k: v for k, v in rec.items() if k != "recorder_errors"})
        self.steps, self.last_step = steps, last_step

    def _add_optional(self, rec: Mapping[str, Any], after_end: bool = False) -> None:
        get = rec.get
        failure = get("failure")
        # ``is not None`` and an exact dict (what the Recorder writes) first: an isinstance test against typing's
        # Mapping costs ~1 µs, on every failed step.
        if failure is not None and (type(failure) is dict or isinstance(failure, Mapping)) and failure:
            self.failures += 1
            if failure.get("kind") == "exception" and not after_end:
                self.error = f"step {rec.get('i')} raised {failure.get('type') or 'an exception'}"
        # A retry or recovery of a failed step whose record was lost (a full disk) links to it in lost_links:
        # a retry or recovery all the same.
        lost_links = get("lost_links")
        if type(lost_links) is not dict:
            lost_links = {}
        if get("retry_of") is not None or lost_links.get("retry_of") is not None:
            self.retries += 1
        if get("recovers") or lost_links.get("recovers"):
            self.recoveries += 1
        note = get("note")
        if note:
            self.model.add_note(note, f"step {get('i')} note")
        checks = get("checks")
        if checks:
            for check in checks:
                self.add_check(check)
        errors = get("recorder_errors")
        if errors and type(errors) is list:
            for error in errors:
                if type(error) is dict and error.get("where") == "write":
                    lost = error.get("lost_steps")
                    if type(lost) is int and lost > 0:
                        self.lost_steps += lost
                        self.lost_before.append([rec.get("i"), lost])

    def add_check(self, check: Mapping[str, Any]) -> None:
        self.checks_total += 1
        kind = str(check.get("kind"))
        judge = str(check.get("judge"))
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        self.by_judge[judge] = self.by_judge.get(judge, 0) + 1
        v = verdict(check.get("value"))
        if v is True:
            self.checks_passed += 1
        elif v is False:
            self.checks_failed += 1
        if check.get("target") == "episode" and v is not None and "label_id" not in check:
            # The latest episode-level verdict is the terminal check. A check with a label_id is a label brought
            # back as a check (`import atif` of trajrec's own export): in its run it was a label, and a label never
            # decides the outcome, so the imported run keeps the outcome, hence the training labels (kto, dpo),
            # of the run it came from (FINDINGS32 #7).
            self.verdict = v
            self.verdict_judge = judge

    def outcome(self, finished: bool) -> str:
        if self.verdict is not None:
            return "passed" if self.verdict else "failed"
        if self.error:
            return "error"
        if self.terminated:
            return "terminated"
        if self.truncated:
            return "truncated"
        return "stopped" if finished else "incomplete"

    def to_dict(self, *, finished: bool) -> dict[str, Any]:
        out = {
            "steps": self.steps,
            "return": self.ret,
            "outcome": self.outcome(finished),
            "terminated": self.terminated,
            "truncated": self.truncated,
            "error": self.error,
            "failures": self.failures,
            "retries": self.retries,
            "recoveries": self.recoveries,
            "checks": {
                "total": self.checks_total,
                "passed": self.checks_passed,
                "failed": self.checks_failed,
                "by_kind": dict(self.by_kind),
                "by_judge": dict(self.by_judge),
                "terminal_judge": self.verdict_judge,
            },
            "start_time": self.start_time,
            "end_time": self.end_time,
            "finished": finished,
        }
        if self.model.calls:  # only episodes with model calls carry it; readers default to zeros
            out["model"] = self.model.to_dict()
        if self.agent_error is not None:  # an agent-side failure, kept apart from the env's failures
            out["agent_error"] = self.agent_error
        if self.after_end:  # only episodes stepped on after their end carry it
            out["after_end"] = self.after_end
        if self.lost_steps:  # only files that lost records carry it
            out["lost_steps"] = self.lost_steps
            # Where they were, so readers place the gaps from the index alone (see gaps()).
            out["lost_before"] = [list(row) for row in self.lost_before]
        return out
