"""Two recorded episodes compared step by step (``trajrec diff A B``): a replay against its original, two
agents on one task, two seeds.

The reset is compared first, as ``trajrec replay`` compares it (for an LLM agent its observation is the prompt): a
*compared reset* of failure, observation, info and, when both episodes carry state, the state the reset left.
Then each step becomes a *compared record* (action, failure, observation, reward, terminated, truncated, info and,
when both episodes carry state, the state after the step) and the two records are compared the way
:mod:`trajrec.replay.replayer` compares a replay with its recording: a cheap equality test first, DeepDiff rows
only for a field that differs, the same ``--ignore`` paths (a step field's path leaves it out at the reset too;
``reset.observation`` only at the reset).

>>> StepDiff(3, (DivergenceRow(("reward",), "values_changed", 0.0, 1.0),)).fields
('reward',)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from trajrec.recorder import Episode, Step
from trajrec.recorder.codec import state_not_read
from trajrec.recorder.errors import ResetLostError, TrajrecUsageError
from trajrec.recorder.model import Gap

from .render import one_line
from .replayer import DivergenceRow, _deep_rows, _equal, _explained, _prune, _Seg, parse_ignore, render_rows

#: The fields of a compared step, in the order differences name them.
STEP_FIELDS: tuple[str, ...] = ("action", "failure", "observation", "reward", "terminated", "truncated", "info",
                                "state")

#: The fields of the compared reset, in the order differences name them (the reset has no action, reward or flags).
RESET_FIELDS: tuple[str, ...] = ("failure", "observation", "info", "state")

#: Task fields compared between the two headers (what makes two episodes the same task).
TASK_FIELDS: tuple[str, ...] = ("env_id", "env_kwargs", "seed", "options", "id", "text")

#: What an ignore path of ``trajrec diff`` may start with: a step field (left out at the reset too), ``task``
#: (``task.seed``, ``task.env_kwargs.size``; ``task`` alone leaves the task comparison out) or ``reset``
#: (``reset.observation``, ``reset.info.difficulty``, ``reset.state.clock``: at the reset only; ``reset`` alone
#: leaves the reset comparison out).
IGNORE_FIELDS: tuple[str, ...] = (*STEP_FIELDS, "task", "reset")

#: The two sides of a difference in JSON (the replay's comparison says recorded/replayed).
SIDES = ("a", "b")


def _fields(rows: Sequence[DivergenceRow], order: Sequence[str]) -> tuple[str, ...]:
    seen = {str(r.path[0]) for r in rows if r.path}
    return tuple(f for f in order if f in seen)


@dataclass(frozen=True)
class StepDiff:
    """The differences at one step (``rows`` empty: the step is the same in both)."""

    step: int
    rows: tuple[DivergenceRow, ...]
    #: The sides (``"A"``, ``"B"``) whose state after this step the recording marks unknown (the recorder could not
    #: read it: ``trajrec.recorder.state_not_read``): the state is then not compared at this step.
    state_unknown: tuple[str, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        """The compared fields that differ, in :data:`STEP_FIELDS` order."""
        return _fields(self.rows, STEP_FIELDS)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "fields": list(self.fields), "rows": [r.to_dict(SIDES) for r in self.rows]}


@dataclass
class EpisodeDiff:
    """What :func:`diff_episodes` found.

    Attributes:
        a, b: the two files.
        steps_a, steps_b: their numbers of steps.
        task: differences between the two tasks (env id, kwargs, seed, reset options, task id and text).
        steps: the differing steps among the first ``min(steps_a, steps_b)``, in order.
        compared: how many steps were compared.
        gaps_a, gaps_b: where each episode's recording is not whole (:attr:`Episode.gaps`): env steps a failed
            write kept out of the file, or steps lost to damage. Step ``k`` of one side is then not the env's
            ``k``-th step, so two episodes are only the same when their gaps are too.
        reset: differences between the two resets (failure, observation, info, state at reset: see
            :func:`reset_diff`); the first observation is an LLM agent's prompt, so two episodes whose steps all
            agree are still not the same when their resets differ.
        not_compared_a, not_compared_b: per side, what a repaired file lost and so was not compared:
            ``"header record lost (task unknown): task not compared"`` (the task is unknown, not different),
            ``"reset record lost ...: reset not compared"``. As with gaps, two episodes are only the same when
            these are too.
    """

    a: str
    b: str
    steps_a: int
    steps_b: int
    task: list[DivergenceRow] = field(default_factory=list)
    steps: list[StepDiff] = field(default_factory=list)
    compared: int = 0
    gaps_a: list[Gap] = field(default_factory=list)
    gaps_b: list[Gap] = field(default_factory=list)
    reset: list[DivergenceRow] = field(default_factory=list)
    not_compared_a: list[str] = field(default_factory=list)
    not_compared_b: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return (not self.task and not self.reset and not self.steps and self.steps_a == self.steps_b
                and self.gaps_a == self.gaps_b and self.not_compared_a == self.not_compared_b)

    @property
    def reset_fields(self) -> tuple[str, ...]:
        """The compared reset fields that differ, in :data:`RESET_FIELDS` order."""
        return _fields(self.reset, RESET_FIELDS)

    def gap_lines(self) -> list[str]:
        """``"B: 2 env steps not written before step 2: ..."``, one line per gap of each side, A's first; then what a
        side lost and was not compared (``"B: header record lost (task unknown): task not compared"``)."""
        return ([f"{side}: {g.text()}" for side, gaps in (("A", self.gaps_a), ("B", self.gaps_b)) for g in gaps]
                + [f"{side}: {what}" for side, lines in (("A", self.not_compared_a), ("B", self.not_compared_b))
                   for what in lines])

    @property
    def first(self) -> int | None:
        """The first step that differs (or the first step only one episode has), None when none does."""
        if self.steps:
            return self.steps[0].step
        return self.compared if self.steps_a != self.steps_b else None

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "same": self.same, "steps_a": self.steps_a, "steps_b": self.steps_b,
                "compared": self.compared, "first_difference": self.first,
                "task": [r.to_dict(SIDES) for r in self.task],
                "reset_fields": list(self.reset_fields), "reset": [r.to_dict(SIDES) for r in self.reset],
                "differing_steps": len(self.steps),
                # Per side, the gaps in the exports' ``lost`` form (``{"before": k, "n": n}`` for env steps never
                # written, ``[first, n]`` for steps lost to damage), and the lines the text output prints.
                "lost_a": [g.to_json() for g in self.gaps_a], "lost_b": [g.to_json() for g in self.gaps_b],
                "not_compared_a": list(self.not_compared_a), "not_compared_b": list(self.not_compared_b),
                "gaps": self.gap_lines()}

    def summary(self) -> str:
        if self.same:
            if self.not_compared_a:  # both sides lost the same parts: equal in what both hold, no more
                return (f"same: {self.compared} steps and every compared field equal (on both sides: "
                        + "; ".join(self.not_compared_a) + ")")
            return f"same: {self.compared} steps, task, reset and every compared field equal"
        parts = []
        if self.task:
            parts.append("the tasks differ (" + ", ".join(sorted({str(r.path[0]) for r in self.task})) + ")")
        # What one side lost (its task or reset unknown) and the other did not: named, never called a difference.
        for side, lines, other in (("A", self.not_compared_a, self.not_compared_b),
                                   ("B", self.not_compared_b, self.not_compared_a)):
            parts.extend(f"{side}'s {what}" for what in lines if what not in other)
        if self.reset:
            parts.append("the resets differ (" + ", ".join(self.reset_fields) + ")")
        if self.steps:
            parts.append(f"{len(self.steps)} of {self.compared} steps differ, the first at step {self.steps[0].step}")
        if self.gaps_a != self.gaps_b:
            sides = [(side, gaps) for side, gaps in (("A", self.gaps_a), ("B", self.gaps_b)) if gaps]
            lost = "; ".join(f"{side} lost {'some' if any(g.n is None for g in gaps) else sum(g.n for g in gaps)}"
                             for side, gaps in sides)
            if any(not g.numbered for _side, gaps in sides for g in gaps):
                parts.append(f"steps are renumbered across a gap ({lost}): step k of each file may not be the env's "
                             "same step")
            else:  # only steps lost to damage: they keep their numbers, the others are compared as they are
                parts.append(f"steps lost to damage are not compared ({lost})")
        if self.steps_a != self.steps_b:
            longer, extra = ("A", self.steps_a - self.steps_b) if self.steps_a > self.steps_b else (
                "B", self.steps_b - self.steps_a)
            parts.append(f"{longer} has {extra} more step{'s' if extra != 1 else ''} "
                         f"({self.steps_a} against {self.steps_b})")
        return "; ".join(parts)


def _compared(episode: Episode, step: Step, with_state: bool) -> dict[str, Any]:
    failure = step.failure
    rec = {"action": step.action, "failure": None if failure is None else {"kind": failure.kind,
                                                                          "message": failure.message},
           "observation": step.observation, "reward": step.reward, "terminated": step.terminated,
           "truncated": step.truncated, "info": step.info}
    if with_state:
        rec["state"] = episode.state_at(step.index)
    return rec


def _compared_reset(episode: Episode, with_state: bool) -> dict[str, Any]:
    reset = episode.reset
    failure = reset.failure
    rec = {"failure": None if failure is None else {"kind": failure.kind, "message": failure.message},
           "observation": reset.observation, "info": reset.info}
    if with_state:
        rec["state"] = reset.state  # _prune copies what it changes: the reader's cached reset stays as read
    return rec


def _rows(a: dict[str, Any], b: dict[str, Any], ignores: Sequence[tuple[_Seg, ...]],
          fields: Sequence[str] = STEP_FIELDS) -> list[DivergenceRow]:
    for segs in ignores:
        a, b = _prune(a, segs), _prune(b, segs)
    rows: list[DivergenceRow] = []
    for key in fields:
        if key not in a and key not in b:
            continue
        x, y = a.get(key), b.get(key)
        # Strict in every field, state included: both sides are files rebuilt by one reader (replay alone is loose
        # on state, where a re-run's exact state meets a file recorded before state diffs were exact).
        if _equal(x, y, False):
            continue
        try:  # DeepDiff only on a field known to differ (it costs ~1 ms on a 9 KB state)
            found = _deep_rows({key: x}, {key: y}, False)
        except Exception:  # DeepDiff cannot walk some objects: the whole-field row still tells the truth
            found = []
        # What DeepDiff takes for equal (-0.0 and 0.0, 2 and 2.0 in a list) is named at its own path, not the field's.
        found = _explained(found, x, y, key, False)
        rows.extend(found or [DivergenceRow((key,), "values_changed", x, y)])
    return rows


def _parse_ignores(ignore: Sequence[str]) -> list[tuple[_Seg, ...]]:
    if isinstance(ignore, str):
        ignore = [ignore]
    parsed = []
    for p in ignore:
        segs = parse_ignore(p, IGNORE_FIELDS)
        # reset.* (every field of the reset, as * is any key elsewhere) and reset.*.elapsed are paths like any other.
        if (segs[0].value == "reset" and len(segs) > 1 and segs[1].kind != "any"
                and (segs[1].kind != "key" or segs[1].value not in RESET_FIELDS)):
            word = str(segs[1].value)
            close = ([f for f in RESET_FIELDS if len(word) >= 3 and f.startswith(word)]
                     or difflib.get_close_matches(word, list(RESET_FIELDS), n=1, cutoff=0.75))
            hint = f" (did you mean 'reset.{close[0]}'?)" if close else ""
            raise TrajrecUsageError(f"ignore path {p!r}: after 'reset.' comes a field of the reset{hint}: "
                                    f"{', '.join(RESET_FIELDS)} (e.g. reset.observation, reset.info.difficulty), or * for all of them")
        parsed.append(segs)
    return parsed


def reset_diff(a: Episode, b: Episode, *, ignore: Sequence[str] = (), state: bool = True) -> list[DivergenceRow]:
    """The differences between the two resets: failure, observation (an LLM agent's prompt), info and, when both
    episodes recorded state and ``state`` is true, the state the reset left (``state_at(-1)``). Empty when they agree.

    Ignore paths as for :func:`iter_step_diffs`: a step field's path (``info.elapsed``, ``state.clock``) leaves it out
    here too, as ``trajrec replay`` leaves it out at the reset and every step; ``reset.PATH`` (``reset.observation``,
    ``reset.info.difficulty``) leaves it out at the reset only; ``reset`` alone leaves the reset comparison out.

    Raises:
        TrajrecUsageError: an ignore path that does not parse.
        TrajrecFormatError: a reset record that cannot be read (one ``fsck --repair`` recorded as lost is not
            compared: :attr:`EpisodeDiff.gap_lines` names that loss).
    """
    parsed = _parse_ignores(ignore)
    if any(segs[0].value == "reset" and len(segs) == 1 for segs in parsed):
        return []
    ignores = [segs[1:] if segs[0].value == "reset" else segs for segs in parsed if segs[0].value != "task"]
    try:
        with_state = state and a.has_state and b.has_state
        ra, rb = _compared_reset(a, with_state), _compared_reset(b, with_state)
    except ResetLostError:  # lost in a repaired file: nothing to compare; diff_episodes names it (not_compared_a/b)
        return []
    if with_state and (state_not_read(ra["state"]) is not None or state_not_read(rb["state"]) is not None):
        del ra["state"], rb["state"]  # unknown, not different: diff_episodes names it (not_compared_a/b)
    return _rows(ra, rb, ignores, RESET_FIELDS)


def iter_step_diffs(a: Episode, b: Episode, *, ignore: Sequence[str] = (), state: bool = True) -> Iterator[StepDiff]:
    """Every compared step, in order (the same ones with empty ``rows``), over the steps both episodes have and
    can read (a step ``fsck --repair`` declared lost on either side is left out: see ``EpisodeDiff.gap_lines``).

    Args:
        a, b: the episodes.
        ignore: paths left out, as for ``trajrec replay --ignore`` (``info.elapsed``, ``state.clock``...), starting
            with a field of :data:`IGNORE_FIELDS` (``task...`` paths apply to :func:`diff_episodes`' task rows,
            ``reset...`` paths to :func:`reset_diff`).
        state: compare the state after each step too (when both episodes recorded state).

    Raises:
        TrajrecUsageError: an ignore path that does not parse.
        TrajrecFormatError: a step that cannot be read.
    """
    ignores = [segs for segs in _parse_ignores(ignore) if segs[0].value not in ("task", "reset")]
    with_state = state and a.has_state and b.has_state
    for i in range(min(len(a), len(b))):
        # A step fsck --repair declared lost on either side (its number kept, its record gone) is not compared:
        # the gap is named instead (EpisodeDiff.gap_lines), and the steps around it still line up by number.
        if (a.lost and a._lost_at(i)) or (b.lost and b._lost_at(i)):
            continue
        ra, rb = _compared(a, a[i], with_state), _compared(b, b[i], with_state)
        unknown: tuple[str, ...] = ()
        if with_state:
            # A state the recording marks unknown (an AsyncVectorEnv that raised, a state_fn that raised) is not the
            # env's state: comparing it would call a difference what is only not known. Left out on both sides.
            unknown = tuple(side for side, rec in (("A", ra), ("B", rb)) if state_not_read(rec["state"]) is not None)
            if unknown:
                del ra["state"], rb["state"]
        yield StepDiff(i, tuple(_rows(ra, rb, ignores)), unknown)


def diff_episodes(a: Episode, b: Episode, *, ignore: Sequence[str] = (), state: bool = True) -> EpisodeDiff:
    """Compare two episodes: their tasks, their resets (see :func:`reset_diff`), then step by step (see
    :func:`iter_step_diffs`)."""
    out = EpisodeDiff(a.path, b.path, len(a), len(b), gaps_a=list(a.gaps), gaps_b=list(b.gaps))
    parsed = _parse_ignores(ignore)
    task_ignores = [segs[1:] for segs in parsed if segs[0].value == "task"]
    ta: dict[str, Any] = {k: a.task.get(k) for k in TASK_FIELDS}
    tb: dict[str, Any] = {k: b.task.get(k) for k in TASK_FIELDS}
    task_ignored = any(not segs for segs in task_ignores)
    reset_ignored = any(segs[0].value == "reset" and len(segs) == 1 for segs in parsed)
    # A repaired file whose header record was lost has no task: it is unknown, not different (its fields would all
    # read None), so the task is not compared and the loss is named; the same for a reset record lost to damage.
    for ep, lines in ((a, out.not_compared_a), (b, out.not_compared_b)):
        if ep.header_lost is not None and not task_ignored:
            lines.append("header record lost (task unknown): task not compared")
        if not reset_ignored:
            try:
                ep.reset  # noqa: B018  (decoded once, cached by the reader)
            except ResetLostError:
                with_what = "with the header record" if ep.header_lost is not None else "with step 0"
                lines.append(f"reset record lost to damage ({with_what}): reset not compared")
    if task_ignored or a.header_lost is not None or b.header_lost is not None:  # the tasks are not compared
        ta, tb = {}, {}
    for segs in task_ignores:
        if segs:
            ta, tb = _prune(ta, segs), _prune(tb, segs)
    for key in ta:
        if not _equal(ta[key], tb.get(key), False):
            out.task.append(DivergenceRow((key,), "values_changed", ta[key], tb.get(key)))
    out.reset = reset_diff(a, b, ignore=ignore, state=state)
    unknown: dict[str, list[int]] = {"A": [], "B": []}
    if not reset_ignored and state and a.has_state and b.has_state:
        for ep, side in ((a, "A"), (b, "B")):
            try:
                if state_not_read(ep.reset.state) is not None:
                    unknown[side].append(-1)  # (-1: the reset, as state_at(-1))
            except ResetLostError:
                pass  # named above
    for d in iter_step_diffs(a, b, ignore=ignore, state=state):
        out.compared += 1
        if d.rows:
            out.steps.append(d)
        for side in d.state_unknown:
            unknown[side].append(d.step)
    for side, lines in (("A", out.not_compared_a), ("B", out.not_compared_b)):
        steps = [k for k in unknown[side] if k >= 0]
        where = (["the reset"] if -1 in unknown[side] else []) + ([_steps_text(steps)] if steps else [])
        if where:
            lines.append(f"state unknown after {' and '.join(where)} (the recording marks it so): state not "
                         "compared there")
    return out


def _steps_text(steps: list[int]) -> str:
    """``step 3`` or ``steps 3, 7-9`` for ascending step numbers."""
    runs: list[list[int]] = []
    for k in steps:
        if runs and k == runs[-1][1] + 1:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    text = ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in runs)
    return f"step {text}" if len(steps) == 1 else f"steps {text}"


def render_step_diff(d: StepDiff, a: Episode, *, width: int = 100, limit: int = 20) -> str:
    """``step 3 differs in observation, reward (A → B):`` and a line per difference."""
    action = "" if "action" in d.fields else f"\n  action: {one_line(a[d.step].action, width - 10)}"
    return (f"step {d.step} differs in {', '.join(d.fields)} (A → B):{action}\n"
            + render_rows(list(d.rows), width=width, limit=limit))


def render_reset_diff(rows: Sequence[DivergenceRow], *, width: int = 100, limit: int = 20) -> str:
    """``reset differs in observation, info (A → B):`` and a line per difference."""
    return (f"reset differs in {', '.join(_fields(rows, RESET_FIELDS))} (A → B):\n"
            + render_rows(list(rows), width=width, limit=limit))


__all__ = ["IGNORE_FIELDS", "RESET_FIELDS", "STEP_FIELDS", "TASK_FIELDS", "EpisodeDiff", "StepDiff", "diff_episodes",
           "iter_step_diffs", "render_reset_diff", "render_step_diff", "reset_diff"]
