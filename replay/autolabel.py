"""Automatic labelers: trajrec's versioned rules, and a runner for any judge callable (a model, a script).

Both write through the :class:`~trajrec.replay.labels.LabelStore` of each episode's folder and are idempotent: a rerun
adds nothing when the judge says the same thing again, updates a label (a new version superseding the old) when
its value, rationale or tags changed, and deletes (tombstones) the judge's labels it no longer proposes.

Rules ``trajrec-rules@2`` (kind ``rule``), one label per target; see ``docs/LABELS.md``:

========================  ======  ===================  =======================================================
rule                      value   tags                 applies to
========================  ======  ===================  =======================================================
failed-step               -1      failed               a step that failed ("failed: <kind>: <message>")
repeated-mistake          -1      repeated-mistake     a failed retry whose action is the failed action it
                                                       retries, unchanged
useful-recovery           +1      useful-recovery      a step that recovers earlier failed steps
episode-verdict           +1/-1   -                    the episode, when its terminal check passed / failed
on-passing-path           +1      on-passing-path      every step that did not fail, in a passed episode
terminal-failure          -1      terminal-failure     the last step of a failed episode (none when the
                                                       terminal step was lost: not written, or damaged)
in-failed-episode          0      in-failed-episode    every other step of a failed episode (neutral: the rules
                                                       cannot tell whether it helped)
========================  ======  ===================  =======================================================

>>> import gymnasium as gym, tempfile
>>> from trajrec.recorder import Recorder
>>> env = Recorder(gym.make("CartPole-v1"), tempfile.mkdtemp())
>>> _ = env.reset(seed=0); _ = env.step(0); env.close()
>>> label_with_rules([env.out_dir]).added   # no failures, no verdict: nothing to say
0
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Protocol

from trajrec.recorder import Episode, ResetRecord, Step
from trajrec.recorder.codec import encodable_text
from trajrec.recorder.model_call import note_thought
from trajrec.recorder.errors import TrajrecError, TrajrecFormatError, TrajrecUsageError

from .labels import Label, LabelStore, validate_value
from trajrec.recorder.label_values import _NOT_UNICODE, _bad_text

if TYPE_CHECKING:
    from .exports.source import Source

__all__ = [
    "RULES_JUDGE",
    "AutoResult",
    "JudgeError",
    "Proposal",
    "StepContext",
    "apply_proposals",
    "judge_id_of",
    "label_with_judge",
    "label_with_rules",
    "load_judge",
    "rule_proposals",
]

#: The judge id of the rules; bump the version when any rule's meaning changes.
RULES_JUDGE = "trajrec-rules@2"

_MSG_MAX = 300


class JudgeError(TrajrecError):
    """Raised when a judge callable raises or returns something that is not a label; the labels it gave for
    earlier steps are kept, and a rerun resumes (it skips the steps already judged)."""


@dataclass(frozen=True)
class Proposal:
    """What a labeler says about one target: value, rationale, tags, optional score."""

    target: int | str
    value: Any
    rationale: str | None = None
    tags: tuple[str, ...] = ()
    score: float | None = None


@dataclass
class AutoResult:
    """Counts of one labeling run."""

    episodes: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0
    judge: str | None = None
    #: ``"FILE: why"`` for each episode left out because its file cannot be read (damaged bytes).
    unreadable: list[str] = field(default_factory=list)
    #: With ``keep_going``: one message per judge call that raised or gave an unusable value (that step got no
    #: label this run, and a rerun calls the judge on it again).
    judge_errors: list[str] = field(default_factory=list)

    def merge(self, other: AutoResult) -> None:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.deleted += other.deleted
        self.skipped += other.skipped

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        text = (f"{self.judge}: {self.episodes} episodes, {self.added} labels added, {self.updated} updated, "
                f"{self.unchanged} unchanged, {self.deleted} withdrawn")
        text += f", {self.skipped} steps already judged (skipped)" if self.skipped else ""
        text += f", {len(self.unreadable)} unreadable episodes left out" if self.unreadable else ""
        return text + (f", {len(self.judge_errors)} judge calls failed (rerun to retry them)"
                       if self.judge_errors else "")


# -- rules ------------------------------------------------------------------------------------------------------


def _clip(text: Any, n: int = _MSG_MAX) -> str:
    """Recorded text for a rule label's rationale: one line, at most ``n`` characters, lone surrogates (tool
    output decoded with surrogateescape) written as ``\\udcXX`` escapes, as the exports write them: a labels
    file holds UTF-8 only, and refusing the text would stop labeling the whole run."""
    s = " ".join(str(text).split())
    return encodable_text(s if len(s) <= n else s[: n - 1] + "…")


def _same_action(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    try:
        same = a == b
        return bool(same) if isinstance(same, bool) else bool(getattr(same, "all", lambda: False)())
    except (TypeError, ValueError):
        return repr(a) == repr(b)


def _terminal_check(ep: Episode) -> Any:
    judge = (ep.summary.get("checks") or {}).get("terminal_judge")
    found = None
    for c in ep.checks:
        if (c.target == "episode" and c.passed is not None and (judge is None or c.judge == judge)
                and "label_id" not in c.extra):  # (a label brought back as a check is no terminal check)
            found = c
    return found


def rule_proposals(ep: Episode) -> list[Proposal]:
    """What rules ``trajrec-rules@2`` say about an episode (pure: reads the episode, writes nothing)."""
    outcome = ep.summary.get("outcome")
    verdict = True if outcome == "passed" else False if outcome == "failed" else None
    n = len(ep)
    # The terminal step is not in the file when env steps were not written after the last step, or damage took
    # the steps to the end: then no written step is the one whose check failed, and none is labeled so.
    terminal_lost = any(g.first == n if not g.numbered else (g.n is None or (g.first or 0) + g.n >= n)
                        for g in ep.gaps)
    # The last step the file holds: before steps lost to damage up to the end (they keep their numbers).
    last = n - 1
    for g in ep.gaps:
        if g.numbered and g.first is not None and (g.n is None or g.first + g.n >= n):
            last = min(last, g.first - 1)
    out: list[Proposal] = []
    failed_actions: dict[int, Any] = {}
    for st in ep:
        i = st.index
        value: int | None = None
        why: list[str] = []
        tags: list[str] = []
        if st.failure is not None:
            failed_actions[i] = st.action
            value, tags = -1, ["failed"]
            why.append(f"failed: {_clip(st.failure.kind)}: {_clip(st.failure.message)}")
            j = st.retry_of
            if j is not None and j in failed_actions and _same_action(failed_actions[j], st.action):
                tags.append("repeated-mistake")
                why.append(f"repeats the failed action of step {j} unchanged")
        elif st.recovers:
            value, tags = 1, ["useful-recovery"]
            steps = ", ".join(str(k) for k in st.recovers)
            why.append(f"recovers failed step{'s' if len(st.recovers) > 1 else ''} {steps} of the same operation")
        if verdict is False and i == n - 1 and not terminal_lost:
            if value == 1:
                why.append("but the episode failed after it")
            value, tags = -1, [*([t for t in tags if t != "useful-recovery"]), "terminal-failure"]
            why.append("last step of an episode whose terminal check failed")
        elif verdict is True and st.failure is None:
            value = 1
            tags.append("on-passing-path")
            if not why:
                why.append("on the path of an episode whose terminal check passed")
        elif verdict is False and value is None:
            # Every step of a failed episode gets a label, so exports keep failed episodes by default.
            value, tags = 0, ["in-failed-episode"]
            why.append("a step of an episode whose terminal check failed; the rules cannot tell whether it helped")
            if terminal_lost and i == last:
                why.append("its terminal step was lost, so no written step is labeled as the terminal one")
        if value is not None:
            out.append(Proposal(i, value, "; ".join(why), tuple(tags)))
    if verdict is not None:
        check = _terminal_check(ep)
        # No check record (it went with a lost step): the summary still names the terminal judge.
        counted = ep.summary.get("checks")
        judge = check.judge if check is not None else (counted.get("terminal_judge")
                                                        if isinstance(counted, dict) else None)
        text = f"terminal check{' ' + _clip(judge) if judge else ''} {'passed' if verdict else 'failed'}"
        if check is not None and check.rationale:
            text += f": {_clip(check.rationale)}"
        out.append(Proposal("episode", 1 if verdict else -1, text, ()))
    return out


# -- writing proposals -------------------------------------------------------------------------------------------


def _typed(value: Any) -> tuple[str, Any]:
    # 1 == True in Python; a rating +1 and a verdict True are different labels.
    return (type(value).__name__, value)


def apply_proposals(store: LabelStore, episode_id: str, proposals: Iterable[Proposal], *, judge: str,
                    kind: str = "judge", author: str | None = None,
                    scope: Iterable[int | str] | None = None) -> AutoResult:
    """Make ``judge``'s live labels on the episode match ``proposals``, appending only what changed.

    Args:
        scope: the targets this run judged (default: every target). Live labels of ``judge`` on a target in scope
            with no proposal are withdrawn (tombstoned); labels outside the scope are left alone.
    """
    res = AutoResult(judge=judge)
    existing: dict[int | str, list[Label]] = {}
    for lab in store.current(episode_id, judge=judge):
        existing.setdefault(lab.target, []).append(lab)
    proposed: set[int | str] = set()
    for p in proposals:
        if p.target in proposed:
            raise TrajrecUsageError(f"{judge} proposed two labels for target {p.target!r} of {episode_id}; "
                                    "a labeler gives at most one label per target")
        proposed.add(p.target)
        value = validate_value(p.value)
        have = existing.get(p.target, [])
        want = (kind, _typed(value), p.rationale, tuple(p.tags), p.score)
        keep = next((lab for lab in have
                     if (lab.kind, _typed(lab.value), lab.rationale, tuple(lab.tags), lab.score) == want), None)
        if keep is not None:
            res.unchanged += 1
        elif have:
            keep = store.update(have[0].id, value=value, kind=kind, rationale=p.rationale, tags=p.tags,  # type: ignore[arg-type]
                                score=p.score)
            res.updated += 1
            have = [keep, *have[1:]]
        else:
            store.add(episode_id, p.target, value, kind=kind, judge=judge, rationale=p.rationale, tags=p.tags,
                      author=author, score=p.score)
            res.added += 1
        for extra in have:  # duplicates (two labelers ran at once): keep one
            if keep is not None and extra.id != keep.id:
                store.delete(extra.id)  # type: ignore[arg-type]
                res.deleted += 1
    in_scope = None if scope is None else set(scope)
    for target, labs in existing.items():
        if target not in proposed and (in_scope is None or target in in_scope):
            for lab in labs:
                store.delete(lab.id)  # type: ignore[arg-type]
                res.deleted += 1
    return res


class ProgressLike(Protocol):
    """Anything with ``advance(n)``, such as ``trajrec.progress.Progress``; told how many steps were done."""

    def advance(self, n: int = 1) -> None: ...


class _NoProgress:
    def advance(self, n: int = 1) -> None:
        pass


def _source(paths: Source | str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> Source:
    from .exports.source import Source

    # Labels are read and written one episode at a time (an EpisodeLabelWriter per folder): memory stays flat
    # however many labels the run has.
    return paths if isinstance(paths, Source) else Source(paths, write_labels=True)


def label_with_rules(paths: Source | str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
                     progress: ProgressLike | None = None) -> AutoResult:
    """Apply rules ``trajrec-rules@2`` to every episode under ``paths`` (a run folder or file, a list of them, or a
    :class:`Source`); labels go to each episode's run folder. ``progress.advance(n)`` is told the steps done."""
    src = _source(paths)
    bar = progress or _NoProgress()
    total = AutoResult(judge=RULES_JUDGE)
    for ref in src:
        try:
            with ref.open() as ep:
                proposals = rule_proposals(ep)
        except TrajrecFormatError as exc:  # a damaged file: leave it out, say so, label the others
            total.unreadable.append(f"{ref.path}: {exc}")
            bar.advance(ref.n_steps)
            continue
        res = apply_proposals(ref.store, ref.episode_id, proposals, judge=RULES_JUDGE, kind="rule")
        total.merge(res)
        total.episodes += 1
        bar.advance(ref.n_steps)
    _unreadable_files(src, total)
    return total


def _unreadable_files(src: Source, total: AutoResult) -> None:
    """Add the files whose index could not be read (a damaged header frame, not an episode) to
    ``total.unreadable``: listing skips them, and a labeler must say so rather than label the others silently."""
    total.unreadable.extend(f"{path}: {err}" for path, err in src.errors)


# -- judges ------------------------------------------------------------------------------------------------------


@dataclass
class StepContext:
    """What a judge callable receives: the step and its context. Attributes also read as ``ctx["name"]``.

    Attributes:
        episode_id, header, task, provenance, summary: the episode's (``task["text"]`` is the goal).
        reset: the reset record (``reset.observation``; ``tools`` are the OpenAI tool schemas when the env gave
            them).
        step: the :class:`trajrec.recorder.Step` to judge; None when judging the whole episode.
        index: the step index, or ``"episode"``.
        n_steps: the episode's length.
        previous: one small dict per earlier step (index, action, observation clipped to 500 characters,
            reward, failed, failure, retry_of, recovers, thought).
        labels: live labels already on this target (any judge).
    """

    episode_id: str
    header: dict[str, Any]
    task: dict[str, Any]
    provenance: dict[str, Any]
    summary: dict[str, Any]
    reset: ResetRecord
    tools: list[Any] | None
    step: Step | None
    n_steps: int
    labels: list[Label] = field(default_factory=list)
    _history: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def index(self) -> int | str:
        return self.step.index if self.step is not None else "episode"

    @property
    def previous(self) -> list[dict[str, Any]]:
        return self._history[: self.step.index] if self.step is not None else list(self._history)

    def __getitem__(self, key: str) -> Any:
        if key.startswith("_") or not hasattr(self, key):
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


def _step_summary(st: Step) -> dict[str, Any]:
    obs = st.observation
    text = obs if isinstance(obs, str) else json.dumps(obs, default=repr)
    return {
        "index": st.index,
        "action": st.action,
        "observation": text if len(text) <= 500 else text[:499] + "…",
        "reward": st.reward,
        "failed": st.failure is not None,
        "failure": st.failure._asdict() if st.failure is not None else None,
        "retry_of": st.retry_of,
        "recovers": list(st.recovers),
        "thought": note_thought(st.note),
    }


def judge_id_of(fn: Callable[..., Any]) -> str:
    """The judge id labels are recorded under: the callable's ``judge_id`` attribute, else
    ``model:<module>.<qualname>``."""
    jid = getattr(fn, "judge_id", None)
    if isinstance(jid, str) and jid:
        return jid
    module = getattr(fn, "__module__", None) or "unknown"
    name = getattr(fn, "__qualname__", None) or getattr(type(fn), "__qualname__", "judge")
    return f"model:{module}.{name}"


def load_judge(spec: str) -> Callable[..., Any]:
    """Import a judge from ``module:function`` (dotted module, attribute path) or ``path/to/file.py:function``.

    The current folder is searched first, as with ``python -m``.
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise TrajrecUsageError(f"--judge expects MODULE:FUNCTION (e.g. myjudges:rubric) or FILE.py:FUNCTION, "
                                f"got {spec!r}")
    mod_name, _, attr = spec.rpartition(":")
    if not mod_name or not attr:
        raise TrajrecUsageError(f"--judge expects MODULE:FUNCTION, got {spec!r}")
    if mod_name.endswith(".py") or os.sep in mod_name:
        path = Path(mod_name)
        if not path.is_file():
            raise TrajrecUsageError(f"judge file {path} not found")
        # The file's stem names the module, so judge ids read model:<stem>.<function> (as with MODULE:FUNCTION)
        # and stay the same from run to run, which is what makes reruns skip steps already judged.
        name = path.stem
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise TrajrecUsageError(f"cannot import {path} as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        other = sys.modules.get(name)
        if other is None or getattr(other, "__file__", None) == module.__file__:
            sys.modules[name] = module
        module_spec.loader.exec_module(module)
    else:
        cwd = os.getcwd()
        if cwd not in sys.path and "" not in sys.path:
            sys.path.insert(0, cwd)
        try:
            module = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name and mod_name.startswith(exc.name):
                raise TrajrecUsageError(f"cannot import judge module {mod_name!r}: {exc}; run from the folder that "
                                        "holds it, add its folder to PYTHONPATH, or pass FILE.py:FUNCTION") from exc
            raise
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            import difflib

            names = [n for n in dir(obj) if not n.startswith("_")]
            near = difflib.get_close_matches(part, names, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise TrajrecUsageError(f"{mod_name} has no attribute {part!r}{hint}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise TrajrecUsageError(f"{spec} is a {type(obj).__name__}, not a callable judge")
    return obj  # type: ignore[no-any-return]


def _proposal(result: Any, target: int | str, judge: str, where: str | None = None) -> Proposal | None:
    """The proposal of a judge's answer, or None when it says nothing; ``where`` names the call in errors (default:
    the judge and the step).

    Raises:
        JudgeError: an answer that cannot be a label (no value, a bad value, rationale or tag)."""
    if where is None:
        where = f"judge {judge} on step {target}" if target != "episode" else f"judge {judge} on the episode"
    if result is None:
        return None
    rationale: Any = None
    tags: Any = ()
    score: Any = None
    if isinstance(result, Mapping):
        if "value" not in result:
            raise JudgeError(f"{where} returned a dict without 'value' (keys: {', '.join(map(str, result))}); "
                             "return {'value': +1|0|-1|True|False|<float>|<category>, 'rationale': '...'}")
        value = result["value"]
        rationale, tags, score = result.get("rationale"), result.get("tags") or (), result.get("score")
    elif isinstance(result, tuple):
        if not 1 <= len(result) <= 3:
            raise JudgeError(f"{where} returned a tuple of {len(result)} items; return (value, rationale) or "
                             "(value, rationale, tags)")
        value, rationale, tags = (*result, None, ())[:3]
    else:
        value = result
    try:
        value = validate_value(value)
    except TrajrecUsageError as exc:
        raise JudgeError(f"{where} returned an unusable value: {exc}") from None
    if rationale is not None and not isinstance(rationale, str):
        rationale = str(rationale)
    if isinstance(tags, str):
        tags = (tags,)
    tags = tuple(str(t) for t in tags or ())
    for name, text in (("rationale", rationale), *(("tag", t) for t in tags)):
        if text is not None and _bad_text(text):  # would fail when written: refused here, as a bad value is
            raise JudgeError(f"{where} returned an unusable {name}: {text[:60]!r} {_NOT_UNICODE}")
    return Proposal(target, value, rationale, tags, score)


class _CallFailed:
    """What a judge call gave when it raised under ``keep_going``: no proposal, and the step left out of scope."""

    __slots__ = ()


_CALL_FAILED = _CallFailed()


def _kept_going(fn: Callable[..., Any], total: AutoResult, judge: str) -> Callable[..., Any]:
    """``fn`` (the judge whose id is ``judge``) with its exceptions (and unusable results) turned into
    :data:`_CALL_FAILED` and a message naming the judge, the episode and the step in ``total.judge_errors``
    (appended from the calling threads: list.append is atomic)."""

    def call(ctx: Any) -> Any:
        target = ctx.step.index if ctx.step is not None else "episode"
        where = (f"judge {judge} on episode {ctx.episode_id} "
                 + (f"step {target}" if target != "episode" else "(whole episode)"))
        try:
            result = fn(ctx)
        except Exception as exc:  # noqa: BLE001  (the user's judge; reported, the run goes on)
            total.judge_errors.append(f"{where} raised {type(exc).__name__}: {exc}")
            return _CALL_FAILED
        try:
            _proposal(result, target, judge, where)  # an unusable value counts as a failed call too
        except Exception as exc:  # noqa: BLE001  (a JudgeError names the call; anything else gets its name here)
            total.judge_errors.append(str(exc) if isinstance(exc, JudgeError) else
                                      f"{where} returned an unusable answer: {type(exc).__name__}: {exc}")
            return _CALL_FAILED
        return result

    for attr in ("concurrency", "judge_id", "version", "__name__", "__module__", "__qualname__"):
        if hasattr(fn, attr):
            try:
                setattr(call, attr, getattr(fn, attr))
            except (AttributeError, TypeError):
                pass
    return call


def _raise_judge(judge: str, episode_id: str, target: int | str, exc: BaseException) -> None:
    frames = traceback.extract_tb(exc.__traceback__)
    at = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    raise JudgeError(f"judge {judge} raised {type(exc).__name__}: {exc}{at} on episode {episode_id} "
                     f"{'step ' + str(target) if target != 'episode' else '(whole episode)'}; the labels it gave "
                     "before are saved, rerun to resume") from exc


def label_with_judge(paths: Source | str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
                     judge: Callable[..., Any] | str, *,
                     rejudge: bool = False, progress: ProgressLike | None = None, concurrency: int = 1,
                     keep_going: bool = False) -> AutoResult:
    """Run a judge callable over every step of every episode under ``paths``.

    The callable gets a :class:`StepContext` and returns ``{"value": ..., "rationale": ...}`` (optionally
    ``tags``, ``score``), a tuple ``(value, rationale[, tags])``, a bare value, or None to say nothing.
    Labels are recorded with kind ``judge`` under :func:`judge_id_of`. A callable whose ``targets`` attribute is
    ``"episode"`` (or ``"both"``) is also called once per episode with ``ctx.step = None``.

    Steps the judge already labeled are skipped unless ``rejudge`` (model calls cost money); with ``rejudge``
    changed answers update the labels.

    ``concurrency`` > 1 calls the judge on that many threads at once (a model judge waits on the network): the
    steps of the next episodes are judged while earlier ones finish, and each episode's labels are written in step
    order once its calls are done, so the labels are the ones one thread gives. The callable must be thread-safe
    (an HTTP client is; retrying rate-limit errors with backoff stays the judge's job, as the OpenAI client does);
    a judge whose ``concurrency`` attribute is 1 is called on one thread whatever is asked.

    Raises:
        JudgeError: the judge raised or returned an unusable value (labels of the steps before are saved);
            with ``keep_going`` such a call is counted in ``AutoResult.judge_errors`` instead, its step gets no
            label this run (nor loses one it had), and the run goes on.
        TrajrecUsageError: not a callable, bad ``targets``, ``concurrency`` not a positive int.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise TrajrecUsageError(f"concurrency is a number of judge calls at once (1 or more), got {concurrency!r}")
    fn = load_judge(judge) if isinstance(judge, str) else judge
    if not callable(fn):
        raise TrajrecUsageError(f"judge must be callable or 'module:function', got {type(fn).__name__}")
    jid = judge_id_of(fn)
    targets = getattr(fn, "targets", "steps")
    if targets not in ("steps", "episode", "both"):
        raise TrajrecUsageError(f"{jid}.targets must be 'steps', 'episode' or 'both', got {targets!r}")
    src = _source(paths)
    bar = progress or _NoProgress()
    total = AutoResult(judge=jid)
    limit = getattr(fn, "concurrency", None)
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1:
        concurrency = min(concurrency, limit)
    if keep_going:
        fn = _kept_going(fn, total, jid)
    if concurrency > 1:
        _judge_concurrently(src, fn, jid, targets, rejudge, bar, total, concurrency)
        _unreadable_files(src, total)
        return total
    for ref in src:
        try:
            eid = ref.episode_id
            done = {lab.target for lab in ref.store.current(eid, judge=jid)} if not rejudge else set()
            proposals: list[Proposal] = []
            scope: list[int | str] = []
            with ref.open() as ep:
                history: list[dict[str, Any]] = []
                live: dict[int | str, list[Label]] = {}
                for lab in ref.store.current(eid):
                    live.setdefault(lab.target, []).append(lab)
                tools = ep.reset.info.get("tools") if isinstance(ep.reset.info, dict) else None
                base = {"episode_id": eid, "header": ep.header, "task": ep.task, "provenance": ep.provenance,
                        "summary": ep.summary, "reset": ep.reset, "tools": tools, "n_steps": len(ep)}
                try:
                    if targets in ("steps", "both"):
                        for st in ep:
                            if st.index in done:
                                total.skipped += 1
                            else:
                                ctx = StepContext(**base, step=st,
                                                  labels=live.get(st.index, []),
                                                  _history=history)
                                try:
                                    result = fn(ctx)
                                except Exception as exc:  # the user's judge: report where, keep earlier labels
                                    _raise_judge(jid, eid, st.index, exc)
                                if result is not _CALL_FAILED:  # (keep_going: counted, the step left as it is)
                                    p = _proposal(result, st.index, jid)
                                    scope.append(st.index)
                                    if p is not None:
                                        proposals.append(p)
                            history.append(_step_summary(st))
                            bar.advance()
                    if targets in ("episode", "both") and "episode" not in done:
                        ctx = StepContext(**base, step=None, labels=live.get("episode", []),
                                          _history=history)
                        try:
                            result = fn(ctx)
                        except Exception as exc:  # the user's judge: report where, keep earlier labels
                            _raise_judge(jid, eid, "episode", exc)
                        if result is not _CALL_FAILED:
                            p = _proposal(result, "episode", jid)
                            scope.append("episode")
                            if p is not None:
                                proposals.append(p)
                finally:
                    total.merge(apply_proposals(ref.store, eid, proposals, judge=jid, kind="judge", scope=scope))
        except TrajrecFormatError as exc:  # a damaged file: its earlier steps keep their labels; say so
            total.unreadable.append(f"{ref.path}: {exc}")
            continue
        total.episodes += 1
    _unreadable_files(src, total)
    return total


@dataclass
class _EpisodeCalls:
    """One episode's judge calls in flight (:func:`_judge_concurrently`): ``(target, future)`` in step order."""

    ref: Any
    eid: str
    calls: list[tuple[int | str, Any]] = field(default_factory=list)
    #: The damage that stopped reading the episode's steps (the calls before it are kept).
    damage: TrajrecFormatError | None = None


def _judge_concurrently(src: Any, fn: Callable[..., Any], jid: str, targets: str, rejudge: bool, bar: Any,
                        total: AutoResult, concurrency: int) -> None:
    """:func:`label_with_judge` with ``concurrency`` calls at once: episodes are read in order and their calls
    submitted to a thread pool (at most ``4 * concurrency`` waiting), and each episode's results are taken in step
    order, so its labels and the errors raised are the ones a single thread gives."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="trajrec-judge")
    pending: deque[_EpisodeCalls] = deque()
    waiting = 0

    def submit(ref: Any) -> _EpisodeCalls:
        eid = ref.episode_id
        job = _EpisodeCalls(ref, eid)
        done = {lab.target for lab in ref.store.current(eid, judge=jid)} if not rejudge else set()
        live: dict[int | str, list[Label]] = {}
        for lab in ref.store.current(eid):
            live.setdefault(lab.target, []).append(lab)
        history: list[dict[str, Any]] = []  # appended in step order; a call reads only the part before its step
        try:
            with ref.open() as ep:
                tools = ep.reset.info.get("tools") if isinstance(ep.reset.info, dict) else None
                base = {"episode_id": eid, "header": ep.header, "task": ep.task, "provenance": ep.provenance,
                        "summary": ep.summary, "reset": ep.reset, "tools": tools, "n_steps": len(ep)}
                if targets in ("steps", "both"):
                    for st in ep:
                        if st.index in done:
                            total.skipped += 1
                            bar.advance()
                        else:
                            ctx = StepContext(**base, step=st, labels=live.get(st.index, []), _history=history)
                            job.calls.append((st.index, pool.submit(fn, ctx)))
                        history.append(_step_summary(st))
                if targets in ("episode", "both") and "episode" not in done:
                    ctx = StepContext(**base, step=None, labels=live.get("episode", []), _history=list(history))
                    job.calls.append(("episode", pool.submit(fn, ctx)))
        except TrajrecFormatError as exc:  # the steps before the damage are judged and saved, as in one thread
            job.damage = exc
        return job

    def finish(job: _EpisodeCalls) -> None:
        nonlocal waiting
        proposals: list[Proposal] = []
        scope: list[int | str] = []
        try:
            for target, fut in job.calls:
                try:
                    result = fut.result()
                except Exception as exc:  # the user's judge: report where, keep the labels of the steps before
                    _raise_judge(jid, job.eid, target, exc)
                if result is not _CALL_FAILED:  # (keep_going: counted, the step left as it is)
                    p = _proposal(result, target, jid)
                    scope.append(target)
                    if p is not None:
                        proposals.append(p)
                if target != "episode":
                    bar.advance()
        finally:
            waiting -= len(job.calls)
            total.merge(apply_proposals(job.ref.store, job.eid, proposals, judge=jid, kind="judge", scope=scope))
        if job.damage is not None:
            total.unreadable.append(f"{job.ref.path}: {job.damage}")
        else:
            total.episodes += 1

    try:
        for ref in src:
            job = submit(ref)
            pending.append(job)
            waiting += len(job.calls)
            while pending and waiting > 4 * concurrency:
                finish(pending.popleft())
        while pending:
            finish(pending.popleft())
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # calls not started are dropped; running ones end first
        raise
    pool.shutdown(wait=True)
