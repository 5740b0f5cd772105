"""The :class:`Recorder` wrapper: records every reset and step of a Gymnasium env to episode files."""

from __future__ import annotations

import functools
import os
import re
import secrets
import time
import warnings
from pathlib import Path
from time import perf_counter
from typing import Any, Callable, Generic, SupportsFloat, TypeVar

import gymnasium as gym
import numpy as np

from . import writer as _writer_module
from .codec import STATE_NOT_READ, Unencodable, bounded_repr, sanitize, user_stacklevel
from .classify import ActionKeyFn, Classifier, FailureFn, LostStep, exception_failure, recorder_error
from .diff import StateTracker, copy_state
from .errors import AgentError, EpisodeClosedError, TrajrecIOError, TrajrecUsageError
from .format import MAX_FRAME_BYTES_SETTING, SUFFIX, new_compressor
from .gymlike import as_gym_env
from .model import CHECK_KINDS, as_step_index, normalize_check, truthy
from .model_call import INTERRUPTED_CALL, INTERRUPTED_STEP
from .provenance import gather
from .storage import Outbox, is_url
from .writer import MARK_FAILURE, MARK_RECOVERY, MARK_RETRY, EpisodeWriter

ObsType = TypeVar("ObsType")
ActType = TypeVar("ActType")

_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


# Actions that cannot change in place, recorded as they are (the common ones: a check costs less than a call).
_ATOMIC_ACTIONS = frozenset({int, float, str, bool, bytes, type(None), np.int64, np.int32, np.float64, np.float32})


def agent_action(action: Any) -> Any:
    """The action as the agent sent it, kept apart from the env's object.

    An env may change the action it is given in place (``np.clip(a, low, high, out=a)``, a tool env popping or
    normalising argument keys); the file must hold what the agent chose, so the recorder copies the action by
    value before ``env.step`` (:func:`~trajrec.recorder.diff.copy_state`: immutable values are shared, not
    copied). An action that cannot be copied (one that contains itself) is recorded as it is, and the codec marks
    the cycle in its place.
    """
    try:
        return copy_state(action)
    except Exception:  # noqa: BLE001  (RecursionError on a self-reference; a hostile __deepcopy__ is handled inside)
        return action


def by_value(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields of a :meth:`Recorder.note` (or a check's extra fields) as they are when given: each value that
    could change in place copied by :func:`agent_action`, the atomic ones (most notes' text) as they are. A note is
    made before ``env.step`` but written after it, and the agent often notes the very object it sends as the
    action (a parsed tool call), which the env may change in place."""
    return {k: v if type(v) in _ATOMIC_ACTIONS else agent_action(v) for k, v in fields.items()}


def _call_list(note: dict[str, Any]) -> list[Any] | None:
    """The model calls of note fields as one list (``model_call`` then ``model_calls``); None when
    ``model_calls`` is there but not a list (it cannot take the other calls)."""
    calls = [note["model_call"]] if "model_call" in note else []
    many = note.get("model_calls", [])
    return calls + many if type(many) is list else None


def _join_calls(fields: dict[str, Any]) -> None:
    """One :meth:`Recorder.note` call giving both ``model_call`` and a ``model_calls`` list: the call joins the list,
    first (:func:`_call_list`'s order, as a later note's calls joining these find them), as it would in two
    calls. A ``model_calls`` that is no list is left as given (it cannot take the call)."""
    calls = _call_list(fields)
    if calls is not None:
        del fields["model_call"]
        fields["model_calls"] = calls


class Recorder(gym.Wrapper[ObsType, ActType, ObsType, ActType], gym.utils.RecordConstructorArgs, Generic[ObsType, ActType]):
    """Records every episode of ``env`` to ``out_dir``, one compressed msgpack file per ``reset``.

    Each step is in the file when ``step`` returns, so a killed process loses nothing it handed to the agent.
    Exceptions raised by the env are recorded, then re-raised unchanged.

    Args:
        env: the environment to record: a ``gymnasium.Env``, or any object with Gymnasium's
            ``reset(*, seed=None, options=None) -> (obs, info)`` and
            ``step(action) -> (obs, reward, terminated, truncated, info)`` (see :mod:`trajrec.recorder.gymlike`).
        out_dir: folder for the episode files (created if missing).
        agent: who acts: a name, or a dict (name, version, model, sampling settings...) stored in provenance.
        task: task fields merged over those the env reports in ``reset``'s ``info["task"]`` (id, text, split,
            verification).
        provenance: extra provenance fields (lineage, generator, teacher, filters...), merged last.
        state_fn: ``state_fn(env) -> state``; default: ``env.unwrapped.state_dict()`` when it exists.
        failure_fn: ``failure_fn(step) -> None | bool | str | dict`` given the step as a dict (action,
            observation, reward, terminated, truncated, info); None keeps the default verdict, False clears it,
            True/str/dict mark a failure (a str names its kind); a numpy bool counts as the bool, any other
            answer warns once and keeps the default verdict.
        action_key: ``action_key(action) -> hashable``: the operation an action performs, for retries.
        run_id: stored in provenance; default: a new id per Recorder.
        frame_steps / frame_bytes: close a zstd frame after this many steps / uncompressed bytes.
        compression_level: zstd level (1-19). 3 (the default) uses zstd's own finder with its long-distance
            matcher and 4 and up the lazy finder, tuned for the small per-step blocks; 1 and 2 use zstd's own
            parameters: faster (a text tool env's step ~1 µs less) for ~15% more bytes (docs/PERFORMANCE.md,
            "Recording").
        fsync: fsync at every frame end (survives power loss, costs a disk flush per frame).

    >>> import gymnasium as gym, tempfile
    >>> env = Recorder(gym.make("CartPole-v1"), tempfile.mkdtemp(), agent="random")
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(0)
    >>> env.close()
    >>> from trajrec.recorder import open_episode
    >>> len(open_episode(env.episode_path))
    1
    """

    def __init__(
        self,
        env: gym.Env[ObsType, ActType],
        out_dir: str | os.PathLike[str],
        *,
        agent: str | dict[str, Any] | None = None,
        task: dict[str, Any] | None = None,
        provenance: dict[str, Any] | None = None,
        state_fn: Callable[[gym.Env[Any, Any]], Any] | None = None,
        failure_fn: FailureFn | None = None,
        action_key: ActionKeyFn | None = None,
        run_id: str | None = None,
        frame_steps: int = 1024,
        frame_bytes: int = 1 << 20,
        compression_level: int = 3,
        fsync: bool = False,
    ) -> None:
        if isinstance(env, type):  # Recorder(KVToolEnv, out): its unbound reset/step look right until called
            raise TrajrecUsageError(f"Recorder got the class {env.__name__}, not an env; pass an instance: "
                                    f"Recorder({env.__name__}(...), out_dir)")
        # An object with Gymnasium's reset/step but not its base class gets a thin adapter; others a clear refusal.
        env = as_gym_env(env)
        if not isinstance(out_dir, (str, os.PathLike)):
            raise TrajrecUsageError(f"out_dir must be a path (str or os.PathLike), got {type(out_dir).__name__}")
        for name, fn in (("state_fn", state_fn), ("failure_fn", failure_fn), ("action_key", action_key)):
            if fn is not None and not callable(fn):
                raise TrajrecUsageError(f"{name} must be callable or None, got {type(fn).__name__}")
        if isinstance(agent, str):
            agent = {"name": agent}
        if agent is not None and not isinstance(agent, dict):
            raise TrajrecUsageError(f"agent must be a name or a dict of agent fields, got {type(agent).__name__}")
        for name, value in (("task", task), ("provenance", provenance)):
            if value is not None and not isinstance(value, dict):
                raise TrajrecUsageError(f"{name} must be a dict or None, got {type(value).__name__}")
        if not (isinstance(frame_steps, int) and frame_steps >= 1):
            raise TrajrecUsageError(f"frame_steps must be an int >= 1, got {frame_steps!r}")
        if not (isinstance(frame_bytes, int) and 1024 <= frame_bytes <= MAX_FRAME_BYTES_SETTING):
            raise TrajrecUsageError(f"frame_bytes must be an int in 1024..{MAX_FRAME_BYTES_SETTING}, got {frame_bytes!r}")
        if not (isinstance(compression_level, int) and 1 <= compression_level <= 19):
            raise TrajrecUsageError(f"compression_level must be an int from 1 to 19, got {compression_level!r}")
        # A URL (s3://bucket/run): record into a local outbox, upload each episode when its file is closed.
        self.outbox: Outbox | None = Outbox(out_dir) if is_url(os.fspath(out_dir)) else None
        out = self.outbox.folder if self.outbox is not None else Path(out_dir)
        if out.exists() and not out.is_dir():
            raise TrajrecUsageError(f"out_dir {out} exists and is not a folder; pass a folder path for the episode files")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # read-only file system, a file where a folder should be, permissions
            raise TrajrecIOError(f"cannot create the output folder {out}: {exc.strerror or exc}; pass a folder "
                                 "you can write to") from exc

        try:
            gym.utils.RecordConstructorArgs.__init__(self, out_dir=os.fspath(out_dir), agent=agent, task=task,
                                                     run_id=run_id, frame_steps=frame_steps, frame_bytes=frame_bytes,
                                                     compression_level=compression_level, fsync=fsync)
        except Exception:  # noqa: BLE001  (Gymnasium deep-copies these; a task holding a live object cannot be)
            gym.utils.RecordConstructorArgs.__init__(self, out_dir=os.fspath(out_dir), agent=None, task=None,
                                                     run_id=run_id, frame_steps=frame_steps, frame_bytes=frame_bytes,
                                                     compression_level=compression_level, fsync=fsync)
        gym.Wrapper.__init__(self, env)

        self.out_dir = out
        self.agent = agent
        self.task = task or {}
        self.extra_provenance = provenance or {}
        self.run_id = run_id or f"run-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
        if state_fn is None:
            sd = getattr(env.unwrapped, "state_dict", None)
            if callable(sd):
                state_fn = lambda _env, _sd=sd: _sd()  # noqa: E731
        self._state_fn = state_fn
        self._classifier = Classifier(failure_fn, action_key)
        self._failure_fn = failure_fn
        self._tracker = StateTracker()
        # The tracker holds a copy with parts marked as fallbacks (a self-reference, over-deep nesting): later
        # states are marked the same way before they are diffed, or every diff would fail on those parts again.
        self._marked_state = False
        self._writer_opts = {"level": compression_level, "frame_steps": frame_steps, "frame_bytes": frame_bytes,
                             "fsync": fsync, "compressor": new_compressor(compression_level)}
        self._writer: EpisodeWriter | None = None
        self._episode_path: Path | None = None
        self._step = 0
        self._note: dict[str, Any] = {}
        # Steps the env took whose records could not be written (disk full...): the next record that is written
        # says how many and why (``recorder_errors``, where "write"), and the summary counts them (``lost_steps``).
        self._lost: dict[str, Any] | None = None
        #: The exception the env's last reset or step raised (recorded there): not the agent's, for __exit__ and
        #: `trajrec record` (which goes on with the next seed after it).
        self._env_raised: BaseException | None = None
        #: The step that ended the open episode (it returned terminated or truncated), or None: the steps after it
        #: (no reset between: undefined in Gymnasium) are recorded marked ``after_end`` (see ``step``).
        self._end_step: int | None = None
        self._closed = False
        self._close_retry: EpisodeWriter | None = None  # a close that failed for want of space (close() retries it)
        self._has_state = False
        self._warned: set[str] = set()
        self._check_seq = 0
        self.episode_paths: list[Path] = []
        self.episode_urls: list[str] = []  # episodes uploaded to a URL out_dir
        self.last_summary: dict[str, Any] | None = None

    _warned_after_end: str | None = None  # the episode file whose step after its end was warned about

    # (time, duration) to record instead of the measured ones: set by the vector recorder, whose sub-env steps
    # happen inside one batched call that it times itself.
    _timing: tuple[float, float] | None = None

    #: Usual steps (see ``step``) skip classification and go to :meth:`EpisodeWriter.write_usual_step`; tests
    #: turn this off on an instance to compare the files the general path writes.
    _bare_steps = True

    # -- public API ---------------------------------------------------------------------------------------------

    @property
    def episode_path(self) -> Path | None:
        """The file of the current (or last) episode; None before the first reset."""
        return self._episode_path

    def note(self, **fields: Any) -> None:
        """Attach the agent's note (thought, messages, model call metadata...) to the next step.

        The values are taken as they are now (those that could change in place are copied), not as they are when
        the step is written after ``env.step``. Several calls before one step add up; a second ``model_call``
        joins the first in ``model_calls``, as a ``model_call`` joins a ``model_calls`` list noted before, after or
        in the same call (the note then holds ``model_calls`` alone), any other key given again replaces the earlier value with a
        ``RuntimeWarning`` (docs/RECORDING.md).

        Raises:
            EpisodeClosedError: the Recorder is closed (the note would belong to no step).
        """
        if self._closed:
            raise EpisodeClosedError("cannot note: this Recorder is closed, so the note would reach no step")
        fields = by_value(fields)
        if "model_call" in fields and "model_calls" in fields:
            _join_calls(fields)
        pending = self._note
        if pending and (not pending.keys().isdisjoint(fields) or "model_calls" in pending
                        or ("model_call" in pending and "model_calls" in fields)):
            self._merge_note(pending, fields)
        pending.update(fields)

    def _merge_note(self, pending: dict[str, Any], fields: dict[str, Any]) -> None:
        """A second :meth:`note` before the same step naming a key the pending note has: model calls are kept
        both, in the documented list ``model_calls`` (the summary, ``report`` and the exports count every call in
        it, after the calls noted before); any other key (also a second ``model_calls`` list) is replaced, with a
        warning (once per key) saying how to keep both."""
        # Two model_calls lists are not joined: the later one may be the earlier one grown (counted twice then).
        if (("model_call" in fields or "model_calls" in fields) and ("model_call" in pending or "model_calls" in pending)
                and ("model_call" in fields or "model_call" in pending)):
            before, after = _call_list(pending), _call_list(fields)
            if before is not None and after is not None:
                for note in (pending, fields):
                    note.pop("model_call", None)
                    note.pop("model_calls", None)
                pending["model_calls"] = before + after
        for key in pending.keys() & fields.keys():
            if f"note:{key}" not in self._warned:
                self._warned.add(f"note:{key}")
                warnings.warn(f"trajrec: note({key}=...) replaces the {key!r} an earlier note() gave the same step "
                              f"(warned once per key): give both values in one note() call, e.g. a list, to keep "
                              f"both", RuntimeWarning, stacklevel=user_stacklevel())

    def check(self, value: Any, *, kind: str = "rule", judge: str, target: int | str = "step",
              rationale: str | None = None, tags: list[str] | tuple[str, ...] = (), score: float | None = None,
              author: str | None = None, **extra: Any) -> dict[str, Any]:
        """Record a check of the last step (``target="step"``), of step ``i``, or of the whole episode.

        Args:
            value: the verdict: True/False, a rating -1/0/+1 (int), a score (finite float) or a category (a short
                text): the values a label takes (:func:`trajrec.recorder.label_values.validate_value`), so every
                export reads it as it reads a label.
            kind: ``"rule"``, ``"environment"`` or ``"judge"``.
            judge: who checked, as ``id@version`` (e.g. ``"pytest@8"``).

        Returns:
            The check as stored.

        Raises:
            TrajrecUsageError: a value a label could not hold (a rating 5, None, NaN, a dict), an unknown kind, a
                judge without a name, or a target that is not a recorded step; nothing is written.
            EpisodeClosedError: the Recorder is closed.
        """
        writer = self._require_writer("check")
        from .label_values import validate_value  # (difflib, for its hints: loaded by the first check)

        try:
            value = validate_value(value)
        except TrajrecUsageError as exc:
            raise TrajrecUsageError(f"check(value={bounded_repr(value)[:80]}): {exc}") from None
        if kind not in CHECK_KINDS:
            raise TrajrecUsageError(f"check kind must be one of {', '.join(CHECK_KINDS)}, got {kind!r}")
        if not isinstance(judge, str) or not judge.strip() or any(c.isspace() for c in judge):
            # Labels refuse such a judge too, and `--prefer JUDGE` could not name it.
            raise TrajrecUsageError(f"check needs judge='<id>@<version>' naming who checked, without spaces, "
                                    f"e.g. judge='pytest@8'; got {judge!r}")
        if target == "step":
            if self._step == 0:
                raise TrajrecUsageError("check(target='step') needs a step first; use target='episode' before any step")
            target = self._step - 1
        elif target != "episode" and type(target) is not int and as_step_index(target) is not None:
            target = as_step_index(target)  # a numpy int (an argmax over steps, say) is that step's index
        if target != "episode" and not (type(target) is int and 0 <= target < self._step):
            steps = f"a recorded step index 0..{self._step - 1}" if self._step else "(no step is recorded yet)"
            raise TrajrecUsageError(f"check target must be 'step', 'episode' or {steps}, got {target!r}")
        rec = normalize_check({"value": value, "kind": kind, "judge": judge, "target": target, "rationale": rationale,
                               "tags": list(tags), "score": score, "author": author, **by_value(extra)},
                              default_target=target, check_id=self._next_check_id())
        writer.write_check(rec)
        return rec

    # -- gymnasium API ------------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[ObsType, dict[str, Any]]:
        """Finish the current episode file (if any) and start a new one with the env's reset.

        Recorded in the new file's reset record: ``seed``, ``options``, the observation and info the env returned,
        the wall-clock time and duration, the env's state (``state_fn``) when it has one, and the task and

        Returns:
            The env's ``(observation, info)``, unchanged.

        Raises:
            EpisodeClosedError: this Recorder is closed.
            Exception: whatever the env's reset raised, after it is recorded as an episode whose reset failed
                (outcome ``error``); a KeyboardInterrupt/SystemExit leaves no file.
            TrajrecIOError: the episode file cannot be created or written (disk full, permissions).
        """
        if self._closed:
            raise EpisodeClosedError("this Recorder is closed; create a new one to record more episodes")
        # A note made while no episode was open (before the first reset, after end_episode: a system prompt, a
        # plan) goes with the new episode's first step; one left after an open episode's last step reaches none.
        open_episode = self._writer is not None and not self._writer.closed
        self._drop_pending_note("reset()" if open_episode else None)
        self._finish_episode()
        self._ended_by_call: str | None = None
        self._step = 0
        self._end_step = None
        self._env_raised = None
        self._lost = None
        self._check_seq = 0
        self._classifier.reset()
        self._classifier.errors.clear()
        t0 = time.time()
        p0 = perf_counter()
        try:
            obs, info = self.env.reset(seed=seed, options=options)
        except BaseException as exc:
            if not isinstance(exc, Exception):  # a stop (Ctrl-C, exit) before the episode began: no file
                raise
            self._env_raised = exc  # the env's, recorded here: not the agent's (for __exit__, `trajrec record`)
            # The env's own exception reaches the agent unchanged, whatever happens while recording it.
            try:
                writer = self._open_episode(seed, options, None)
                writer.write_reset({"seed": seed, "options": options, "observation": None, "info": None,
                                    "time": t0, "duration": perf_counter() - p0, "failure": exception_failure(exc)})
                self._finish_episode()
            except Exception as rec_exc:  # noqa: BLE001  (reported, then the env's exception goes on)
                self._warn_lost("the failed reset", rec_exc)
            raise
        duration = perf_counter() - p0
        if self._timing is not None:
            t0, duration = self._timing
        writer = self._open_episode(seed, options, info)
        try:
            record: dict[str, Any] = {"seed": seed, "options": options, "observation": obs, "info": info,
                                      "time": t0, "duration": duration, "failure": None}
            self._has_state = False
            errors: list[dict[str, Any]] = []
            if self._state_fn is not None:
                state = self._read_state(errors)
                if state is _STATE_FN_RAISED:
                    # state_fn raised: the reset's state is a marked value saying so (read back as an Unencodable,
                    # never taken for the state), and the first step it answers diffs the whole state in.
                    error = errors[-1]
                    state = Unencodable(STATE_NOT_READ, f"<state_fn raised at reset: {error['type']}: "
                                                                f"{error['message']}>")
                elif type(state) is _NoState and state.why is not None:
                    state = Unencodable(STATE_NOT_READ, f"<state not read at reset: {state.why}>")
                if state is not _NO_STATE:
                    record["state"] = self._copy_state(state, errors)
                    self._has_state = True
            if errors:
                record["recorder_errors"] = errors
            writer.write_reset(record)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                self._drop_unstarted(writer)  # a stop before the reset was written: leave no empty file
            raise
        return obs, info

    def _drop_unstarted(self, writer: EpisodeWriter) -> None:
        """Remove the file of an episode stopped (Ctrl-C, exit) before anything of it was written."""
        self._writer = None
        try:
            writer.abort()
        except Exception:  # noqa: BLE001  (the stop goes on; the file check below decides)
            pass
        try:
            if os.path.getsize(writer.path) == 0:
                os.unlink(writer.path)
                if self.episode_paths and os.path.normpath(self.episode_paths[-1]) == os.path.normpath(writer.path):
                    self.episode_paths.pop()
        except OSError:
            pass  # already gone, or not ours to remove

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env and append the step to the episode file; it is in the file when this returns.

        Recorded: the action as the agent sent it (a copy taken before the env could change it), the observation,
        reward, terminated, truncated and info, the pending :meth:`note`, the time and duration, the diff of the
        env's state against the previous step, and the failure verdict (``info["error"]``, ``failure_fn``, an
        exception) with retry/recovery marks. A step after the one that ended the episode (terminated or
        truncated) with no ``reset`` between is recorded too, marked ``after_end``, with a ``RuntimeWarning`` once
        per episode; the summary keeps the episode's first end (docs/RECORDING.md, "Steps after the end").

        Returns:
            The env's ``(observation, reward, terminated, truncated, info)``, unchanged.

        Raises:
            TrajrecUsageError: before the first ``reset()``, or after the episode ended (``end_episode()``).
            EpisodeClosedError: this Recorder is closed.
            Exception: whatever the env's step raised, after it is recorded as a failed step (kind
                ``exception``); a KeyboardInterrupt/SystemExit records no step, the episode ends ``stopped``
                (its ``end_time`` the stop time), and the step's note (if any) is kept with its action in the
                summary's ``agent_error`` (``interrupted_step``), its model calls counted in ``summary.model``.
            TrajrecIOError: the step cannot be written (disk full); the env has stepped, and the next record
                written counts the lost step (the summary counts its reward, end flags and failure).
        """
        writer = self._writer
        if writer is None or writer.closed or self._closed:
            writer = self._require_writer("step")
        i = self._step
        after_end = self._end_step is not None
        if after_end:
            self._warn_after_end(i, writer)
        sent = action if type(action) in _ATOMIC_ACTIONS else agent_action(action)
        t0 = time.time()
        p0 = perf_counter()
        try:
            obs, reward, terminated, truncated, info = self.env.step(action)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # KeyboardInterrupt, SystemExit, GeneratorExit: a stop, not the env failing; the step never
                # completed, so it is not recorded, and the episode closes as "stopped". Its note is the agent's
                # work for this step, made before env.step() as it should be (no warning at close()): the model
                # call that chose the action is a paid call, so the note is kept with the action in the summary's
                # agent_error and counts in the model totals, as a call cut short by a stop is (FINDINGS33 #1).
                note, self._note = self._note, {}
                if note:
                    self._keep_interrupted_note(writer, i, sent, note)
                # The episode's end_time is the stop time, as for a stop while the agent waits on its model: the
                # last step's time would leave the interrupted step out of the episode's wall time.
                writer.summary.end_time = time.time()
                raise
            duration = perf_counter() - p0
            if self._timing is not None:
                t0, duration = self._timing
            self._env_raised = exc
            # The env's own exception reaches the agent unchanged, whatever happens while recording it.
            try:
                failure, retry_of, _ = self._classifier.classify(i, sent, None, exc)
                record = {"t": "step", "i": i, "action": sent, "observation": None, "reward": None,
                          "terminated": False, "truncated": False, "info": None, "time": t0, "duration": duration,
                          "failure": failure}
                if retry_of is not None:
                    _put_links(record, retry_of, None)
                if after_end:
                    record["after_end"] = True
                if self._note:
                    record["note"], self._note = self._note, {}
                # The env may have changed its state before raising (a file deleted, then an I/O error): read it
                # here too, or the change would show as the next step's.
                errs: list[dict[str, Any]] = []
                resync = self._diff_state(record, errs) if self._has_state else False
                if self._lost is not None:
                    errs.append(self._lost)
                self._take_errors(record, errs)
                writer.write_step(record, self._tracker.state, self._has_state, force_snapshot=resync)
                self._lost = None
                self._step = i + 1
            except Exception as rec_exc:  # noqa: BLE001  (reported, then the env's exception goes on)
                if isinstance(rec_exc, TrajrecIOError):  # only the write raises it: the record was made
                    self._count_lost(rec_exc, writer, record)
                self._warn_lost(f"step {i}, which raised {type(exc).__name__}", rec_exc)
            raise
        duration = perf_counter() - p0
        if self._timing is not None:
            t0, duration = self._timing
        # "t" first: a fixed prefix for every step record helps zstd match across the tiny per-step blocks.
        record = {"t": "step", "i": i, "action": sent, "observation": obs, "reward": reward, "terminated": terminated,
                  "truncated": truncated, "info": info, "time": t0, "duration": duration}
        classifier = self._classifier
        if after_end:
            record["after_end"] = True  # (an eleventh field: never the usual step below)
        elif ((terminated if type(terminated) is bool else truthy(terminated))
              or (truncated if type(truncated) is bool else truthy(truncated))):
            self._end_step = i
        try:
            # A plain step: no note, no failure_fn, an info dict without "checks", no error of a user callable
            # waiting, nothing lost before it. The usual step is a plain one whose info has no "error" and whose
            # operation has no failed step waiting for a retry or a recovery: classify would answer
            # (None, None, None), so it is not asked, and the record carries none of the optional fields the
            # writer looks for.
            plain = (self._bare_steps and type(info) is dict and not self._note and self._failure_fn is None
                     and not classifier.errors and self._lost is None and "checks" not in info and not after_end)
            usual = plain and info.get("error") is None and (not classifier._pending or classifier.quiet_for(sent))
        except Exception:  # noqa: BLE001  (a hostile key in info: the general path records what it raises)
            plain = usual = False
        errors: list[dict[str, Any]] = []
        flags = 0
        if not usual:
            if self._note:
                record["note"], self._note = self._note, {}
            step_view = None
            if self._failure_fn is not None:
                step_view = {"action": sent, "observation": obs, "reward": reward, "terminated": terminated,
                             "truncated": truncated, "info": info}
            try:
                failure, retry_of, recovers = classifier.classify(i, sent, info, None, step_view)
            except Exception as exc:  # noqa: BLE001  (a hostile value in info or action; the step is still recorded)
                self._recorder_error(errors, "classify", exc)
                failure, retry_of, recovers = None, None, None
            # The step's marks as writer.step_mark gives them: on a plain step, classify found a failure from
            # info["error"] alone (a "tool_error", never an "exception": nothing was raised, no failure_fn).
            if failure is not None:
                record["failure"] = failure
                flags = MARK_FAILURE
            if retry_of is not None or recovers:
                if _put_links(record, retry_of, recovers):
                    plain = False  # lost_links is no field write_usual_step writes
                if "retry_of" in record:
                    flags |= MARK_RETRY
                if "recovers" in record:
                    flags |= MARK_RECOVERY
            if not plain and type(info) is dict:
                try:
                    checks = info.get("checks")  # (looking it up may raise too: a hostile key)
                    if checks:
                        record["checks"] = self._info_checks(checks, i)
                except Exception as exc:  # noqa: BLE001  (checks the env reported that are not checks)
                    self._recorder_error(errors, "info.checks", exc)
        has_state = self._has_state
        resync = False
        if has_state:
            # _diff_state inline for a state read and diffed without trouble (two calls fewer on the hot path);
            # anything else (state_fn raised, no state, a marked copy, the diff raised) goes through it.
            try:
                state = self._state_fn(self.env)  # type: ignore[misc]
            except Exception as exc:  # noqa: BLE001  (as _read_state: the step is still recorded)
                self._recorder_error(errors, "state_fn", exc, "its state is stored as a marked value saying so")
                state = _STATE_FN_RAISED
            if type(state) is _NoState or self._marked_state:
                resync = self._diff_read(record, errors, state)
            else:
                try:
                    rows = self._tracker.update(state)
                except Exception as exc:  # noqa: BLE001  (as _diff_read: a full snapshot on this step)
                    resync = self._diff_failed(state, errors, exc)
                else:
                    if rows:
                        record["diff"] = rows
        if plain and not (errors or resync or classifier.errors):
            # The usual step, or a plain one with a failure, retry or recovery (its marks in flags): the record
            # holds the ten fields, a diff and at most those three fields.
            try:
                # The C write first (writer.write_usual_step would call it: one Python call less a step); what it
                # did not write whole goes to write_usual_step with its answer.
                usual_write = _writer_module._usual_write
                done = None if usual_write is None else usual_write(writer, record, has_state, flags)
                if done is not True:
                    writer.write_usual_step(record, self._tracker.state, has_state, flags, done)
            except TrajrecIOError as exc:
                self._count_lost(exc, writer, record)  # as below: the next record says the step is missing
                raise
            self._step = i + 1
            return obs, reward, terminated, truncated, info
        # Anything else (or the state diff failed: its error goes on the record) takes the general write.
        if self._lost is not None:
            errors.append(self._lost)
        if errors or self._classifier.errors:
            self._take_errors(record, errors)
        try:
            # Ten fields (those set above) and no more: none of the optional ones the writer would look for.
            writer.write_step(record, self._tracker.state, self._has_state, force_snapshot=resync,
                              bare=len(record) == 10)
        except TrajrecIOError as exc:
            # The env took this step but its record is not in the file: the agent gets the error, and the next
            # record written (or the summary, if none is) says that steps are missing before it.
            self._count_lost(exc, writer, record)
            raise
        self._lost = None
        self._step = i + 1
        return obs, reward, terminated, truncated, info

    def _warn_after_end(self, i: int, writer: EpisodeWriter) -> None:
        """Step ``i`` comes after the step that ended the episode, with no reset between: warn once per episode.

        Gymnasium leaves such a step undefined (its envs warn, and step on); the Recorder does the same and does
        not refuse it (it would change what the agent sees): the step is recorded, marked ``after_end``, and the
        summary keeps the episode's first end (``terminated``/``truncated``, ``return``, the outcome)."""
        if self._warned_after_end == writer.path:
            return
        self._warned_after_end = writer.path
        end = self._end_step
        how = "terminated" if writer.summary.terminated else "truncated"
        warnings.warn(f"trajrec: step {i} of {os.path.basename(writer.path)} comes after step {end}, which ended the "
                      f"episode ({how}=True), with no reset() between: Gymnasium leaves such a step undefined. It is "
                      "recorded, marked after_end, and the summary keeps the episode's first end (outcome, return, "
                      "terminated/truncated); call env.reset() when a step returns terminated or truncated "
                      "(warned once per episode)", RuntimeWarning, stacklevel=user_stacklevel())

    def _keep_interrupted_note(self, writer: EpisodeWriter, i: int, action: Any, note: dict[str, Any]) -> None:
        """A stop (Ctrl-C) came while the env ran step ``i``: keep the step's ``note`` and ``action`` in the
        summary's ``agent_error`` (``{"message", "interrupted": true, "interrupted_step": {"i", "action"}, **note}``),
        its model calls counted in ``summary.model``; the outcome stays ``stopped``. The stop goes on whatever
        happens here (a failure to keep it is warned about)."""
        try:
            writer.summary.add_agent_error(f"{INTERRUPTED_STEP} {i}",
                                           {**note, "interrupted_step": {"i": i, "action": action}}, interrupted=True)
        except Exception as exc:  # noqa: BLE001  (a hostile note: the stop goes on)
            self._warn_lost(f"the note of step {i}, which a stop cut short", exc)

    def _count_lost(self, exc: TrajrecIOError, writer: EpisodeWriter, record: dict[str, Any]) -> None:
        """Step ``record``'s write failed with ``exc``: the next record written (or the summary at close) says one
        more env step is missing, and the summary counts what the env returned for it (reward, end, failure)."""
        writer.summary.add_unwritten_step(record)
        # Its number goes to the next step written: a later retry or recovery of it must not link to that step.
        self._classifier.lose(record["i"])
        lost = 1 + (self._lost["lost_steps"] if self._lost is not None else 0)
        self._lost = {**recorder_error("write", exc), "lost_steps": lost}

    def end_episode(self) -> dict[str, Any] | None:
        """Finish the current episode file now (end record and index) and return its summary.

        ``reset`` and ``close`` do this too; call it when the env stays open but the episode is over and no
        more checks will come (a long-lived worker, say). Returns None when no episode is open.
        """
        if self._writer is None or self._writer.closed:
            return None
        self._drop_pending_note("end_episode()")
        ended = os.path.basename(self._writer.path)
        self._finish_episode()
        self._ended_by_call = ended  # step() and check() then say the episode was ended, not "before reset()"
        return self.last_summary

    def end_episode_with_error(self, message: str, *, interrupted: bool = False, **note: Any) -> dict[str, Any] | None:
        """End the current episode with outcome ``error`` because the agent could not act (its model server
        failed), without stepping the env: ``message`` and ``note`` (e.g. ``model_call=...``) go in the summary's
        ``agent_error``, apart from the env's failures. ``interrupted=True``: the agent was stopped (Ctrl-C) while
        choosing; its call so far is kept the same way but the outcome is ``stopped``. Returns the summary."""
        writer = self._require_writer("end the episode")
        # By value, as a note: the summary is written at the end (or again by a close() retried after a full disk).
        writer.summary.add_agent_error(message, {**self._note, **by_value(note)}, interrupted=interrupted)
        self._note = {}
        return self.end_episode()

    def close(self) -> None:
        """Finish the current episode file (end record and index), then close the env.

        When the end record and index could not be written (a full disk, a file-size limit: the error says so),
        calling ``close()`` again retries writing them, and only them, into that file.
        """
        retry = getattr(self, "_close_retry", None)
        if retry is not None:
            self._close_writer(retry)  # raises again while there is still no room
        if self._closed:
            return
        try:
            self._drop_pending_note("close()")
            self._finish_episode()
        finally:
            self._closed = True
            super().close()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        """Close, as :meth:`close`. An exception from the agent's own code (not the env's, which its step
        recorded; not a stop such as Ctrl-C) first ends the open episode as ``error``, with ``agent_error``
        naming the exception and its traceback (and an :class:`AgentError`'s ``note``: the failed model call), so
        the data tells an agent that crashed from one stopped. A stop
        that carries ``trajrec_note`` (the model call in flight) keeps it, the episode ``stopped``."""
        if isinstance(exc, Exception) and exc is not self._env_raised:
            self._end_with_agent_exception(exc)
        elif isinstance(exc, KeyboardInterrupt):
            self.end_interrupted_call(exc)
        self.close()
        return False

    def end_interrupted_call(self, stop: BaseException) -> bool:
        """End the open episode keeping the model call a stop cut short, when ``stop`` carries it as
        ``trajrec_note`` (:class:`~trajrec.openai_agent.OpenAIToolAgent` sets it on a Ctrl-C while it waits on its
        model): ``agent_error`` holds the call (``interrupted``), the outcome stays ``stopped``. False (nothing
        done) without such a note or an open episode."""
        note = getattr(stop, "trajrec_note", None)
        if not note or self._writer is None or self._writer.closed:
            return False
        self.end_episode_with_error(INTERRUPTED_CALL, interrupted=True, **note)
        return True

    def _end_with_agent_exception(self, exc: Exception) -> None:
        """End the open episode, if any, as ``error`` with ``agent_error`` naming ``exc`` (the agent's exception,
        which goes on: a failure to record it is warned about, not raised)."""
        if self._writer is None or self._writer.closed:
            return
        try:
            failure = exception_failure(exc)
            # An AgentError carries what the agent would have noted (the failed model call, its attempts): kept,
            # as `trajrec record` keeps it (FINDINGS21 #3: it was dropped here, leaving no model totals).
            note = exc.note if isinstance(exc, AgentError) and isinstance(getattr(exc, "note", None), dict) else {}
            self.end_episode_with_error(f"{failure['type']}: {failure['message']}",
                                        **{**note, "traceback": failure["traceback"]})
        except Exception as rec_exc:  # noqa: BLE001  (the agent's exception goes on; the episode closes)
            self._warn_lost("the agent's exception", rec_exc)

    def _drop_pending_note(self, at: str | None) -> None:
        """Forget the note no step took (``at``: what ended its episode), with a warning; None: keep it for the
        next episode's first step (it was made while no episode was open)."""
        if self._note and at is not None:
            when = ("after the episode's last step" if self._writer is not None and not self._writer.closed
                    else "while no episode was open")
            warnings.warn(f"trajrec: a note ({', '.join(map(str, self._note))}) made {when} reached no step and is "
                          f"not recorded ({at} came next): note() goes with the next step, so call it before "
                          "env.step()", RuntimeWarning, stacklevel=user_stacklevel())
            self._note = {}

    def __del__(self) -> None:
        writer = getattr(self, "_writer", None)
        if writer is not None and not writer.closed:
            warnings.warn(f"Recorder was dropped without close(); finishing {writer.path}. "
                          "Call env.close() when done recording.", ResourceWarning, stacklevel=2)
            try:
                writer.close()
            except Exception as exc:  # interpreter shutdown may have torn down modules; the file stays readable
                warnings.warn(f"could not write the index of {writer.path} ({exc}); the file is readable "
                              f"without it, and `trajrec fsck --repair` adds it", ResourceWarning, stacklevel=2)

    # -- internals ----------------------------------------------------------------------------------------------

    def _require_writer(self, what: str) -> EpisodeWriter:
        if self._closed:
            raise EpisodeClosedError(f"cannot {what}: this Recorder is closed")
        ended = getattr(self, "_ended_by_call", None)
        if ended and self._writer is None:
            raise TrajrecUsageError(f"cannot {what}: the episode {ended} was ended by "
                                    "end_episode(); call env.reset() to start the next one")
        if self._writer is None or self._writer.closed:
            raise TrajrecUsageError(f"cannot {what} before reset(): call env.reset() to start an episode")
        return self._writer

    def _next_check_id(self) -> str:
        self._check_seq += 1
        return f"c{self._check_seq}"

    def _info_checks(self, checks: Any, i: int) -> list[dict[str, Any]]:
        if isinstance(checks, dict):
            checks = [checks]
        if not isinstance(checks, (list, tuple)):
            checks = [{"value": checks}]
        return [normalize_check(c, default_target=i, check_id=self._next_check_id()) for c in checks]

    def _diff_state(self, record: dict[str, Any], errors: list[dict[str, Any]]) -> bool:
        """Read the state after the step into ``record["diff"]``; True when the diff chain broke and the step
        must store a full snapshot. Errors (of ``state_fn``, of the diff) go to ``errors``, never to the agent."""
        return self._diff_read(record, errors, self._read_state(errors))

    def _diff_read(self, record: dict[str, Any], errors: list[dict[str, Any]], state: Any) -> bool:
        """:meth:`_diff_state` for a state already read (or ``_STATE_FN_RAISED``, its error in ``errors``)."""
        if state is _NO_STATE:
            return False
        if state is _STATE_FN_RAISED:
            # The state after this step is a marked value saying so (``state_at`` gives it back, never the state
            # of the step before); the next step state_fn answers diffs the whole state back in.
            error = errors[-1]
            state = Unencodable(STATE_NOT_READ, f"<state_fn raised after step {record['i']}: "
                                                f"{error['type']}: {error['message']}>")
        elif type(state) is _NoState:
            # A stand-in's state_fn that knows the state cannot be read (a VectorRecorder sub-env whose vector env
            # raised, or that reset within the step): marked as unknown, with why, as for a raising state_fn.
            state = Unencodable(STATE_NOT_READ, f"<state not read after step {record['i']}: {state.why}>")
        resync = False
        try:
            rows = self._tracker.update(sanitize(state) if self._marked_state else state)
        except Exception as exc:  # noqa: BLE001  (an object in the state whose comparison or copy raises)
            rows, resync = None, self._diff_failed(state, errors, exc)
        if rows:
            record["diff"] = rows
        return resync

    def _diff_failed(self, state: Any, errors: list[dict[str, Any]], exc: Exception) -> bool:
        """The diff of ``state`` raised: the walk may have stopped half way, so start over from a full snapshot on
        this step (returns True: the step stores one)."""
        self._recorder_error(errors, "state diff", exc, "this step stores a full snapshot instead")
        self._copy_state(state, errors)
        return True

    def _read_state(self, errors: list[dict[str, Any]]) -> Any:
        try:
            return self._state_fn(self.env)  # type: ignore[misc]
        except Exception as exc:  # a broken state_fn must not take the agent down; the step is still recorded
            self._recorder_error(errors, "state_fn", exc, "its state is stored as a marked value saying so")
            return _STATE_FN_RAISED

    def _copy_state(self, state: Any, errors: list[dict[str, Any]]) -> Any:
        """Start the tracker over from ``state``; a state it cannot copy (a self-reference, nesting deeper than
        Python's recursion limit) is copied with those parts marked as fallbacks."""
        try:
            copied = self._tracker.reset(state)
            self._marked_state = False
            return copied
        except Exception as exc:  # noqa: BLE001  (RecursionError and whatever a hostile container raises)
            self._recorder_error(errors, "state copy", exc, "the parts that cannot be copied are stored marked, "
                                 "and later steps diff the state with them marked")
            self._marked_state = True
            return self._tracker.reset(sanitize(state))

    def _recorder_error(self, errors: list[dict[str, Any]], where: str, exc: Exception,
                        instead: str = "the step is recorded without it") -> None:
        """Keep an error raised while recording a step, for its ``recorder_errors``; warn once per place."""
        error = recorder_error(where, exc)
        errors.append(error)
        if where not in self._warned:
            self._warned.add(where)
            warnings.warn(f"{where} raised {error['type']}: {error['message']}; {instead} (recorded on the step "
                          "as recorder_errors; warned once)", RuntimeWarning, stacklevel=user_stacklevel())

    def _take_errors(self, record: dict[str, Any], errors: list[dict[str, Any]]) -> None:
        if self._classifier.errors:
            errors = self._classifier.errors + errors
            self._classifier.errors = []
        if errors:
            record["recorder_errors"] = errors

    def _warn_lost(self, what: str, exc: Exception) -> None:
        warnings.warn(f"trajrec could not record {what}: {type(exc).__name__}: {exc}", RuntimeWarning,
                      stacklevel=user_stacklevel())

    def _open_episode(self, seed: Any, options: Any, info: Any) -> EpisodeWriter:
        spec = self.env.spec
        env_id = spec.id if spec is not None else None
        task: dict[str, Any] = {
            "env_id": env_id,
            "env_kwargs": dict(spec.kwargs) if spec is not None else {},
            "entry_point": (spec.entry_point if isinstance(spec.entry_point, str) else None) if spec is not None else None,
            "max_episode_steps": spec.max_episode_steps if spec is not None else None,
            # Wrappers applied after gymnasium.make, innermost first, so replay can apply them again.
            "wrappers": wrapper_records(self.env, spec),
            "seed": seed,
            "options": options,
            "id": None,
            "text": None,
            "split": None,
            "verification": [],
        }
        if spec is not None and getattr(spec, "disable_env_checker", False) is True:
            # Kept only when set, so replay rebuilds the env as it was made (the checker's warnings off).
            task["disable_env_checker"] = True
        reported = info.get("task") if isinstance(info, dict) else None
        if isinstance(reported, dict):
            task.update(reported)
        task.update(self.task)
        provenance = gather(self.env, agent=self.agent, extra=self.extra_provenance, run_id=self.run_id)
        unwrapped = self.env.unwrapped
        sub_name = getattr(unwrapped, "_trajrec_name", None)  # a VectorRecorder's stand-in names its sub-env
        slug = _slug(env_id or (sub_name if isinstance(sub_name, str) else type(unwrapped).__name__))
        stamp = time.strftime("%Y%m%dT%H%M%S")
        folder = os.fspath(self.out_dir)
        for attempt in range(10):
            episode_id = f"{slug}-{stamp}-{secrets.token_hex(4)}"
            name = f"{episode_id}{SUFFIX}"
            path = self.out_dir / name
            header = {"episode_id": episode_id, "task": task, "provenance": provenance}
            try:
                # The writer gets the name as text: formatting the Path's text costs ~1 µs a file.
                self._writer = EpisodeWriter(os.path.join(folder, name), header, **self._writer_opts)
                break
            except TrajrecIOError as exc:
                # Names carry 32 random bits; only a collision (O_EXCL refused) is worth another try.
                if not isinstance(exc.__cause__, FileExistsError) or attempt == 9:
                    raise
        self._episode_path = path
        self.episode_paths.append(path)
        assert self._writer is not None  # the loop either opened a writer or raised
        return self._writer

    def _finish_episode(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None and writer.unstarted:
            # A stop landed between the file's creation and its reset record, outside reset()'s own guard (as
            # the writer was handed back): no empty file is left for every reader to skip (nor for `--resume`).
            self._drop_unstarted(writer)
            return
        if writer is not None and not writer.closed:
            if self._lost is not None:  # the last steps' records were lost and no record came after them
                writer.summary.lost_steps += self._lost["lost_steps"]
                self._lost = None
            self._close_writer(writer)

    def _close_writer(self, writer: EpisodeWriter) -> None:
        """Close ``writer`` (or retry its failed close), then upload the file when recording to a URL. A close that
        failed for want of space is kept: the next :meth:`close` retries it."""
        try:
            self.last_summary = writer.close()
        except TrajrecIOError:
            self._close_retry = writer if writer.close_failed else None
            raise
        self._close_retry = None
        if self.outbox is not None:
            try:
                self.episode_urls.append(self.outbox.upload(writer.path))
            except TrajrecIOError as exc:
                # Recording goes on: the closed file waits in the outbox for `trajrec sync`.
                warnings.warn(str(exc), RuntimeWarning, stacklevel=user_stacklevel())


#: Wrapper classes (``module:Class``) already warned about for not recording their arguments: once per process.
_WARNED_WRAPPERS: set[str] = set()


def wrapper_records(env: Any, spec: Any) -> list[dict[str, Any]]:
    """``task.wrappers``: the wrappers Gymnasium lists in ``spec.additional_wrappers`` (applied after
    ``gymnasium.make``, innermost first), each ``{"name", "entry_point", "kwargs"}``.

    Gymnasium knows a wrapper's constructor arguments only when the class is a
    ``gymnasium.utils.RecordConstructorArgs`` (its own wrappers are); for any other class its spec says ``None``.
    Such a wrapper whose constructor takes nothing but ``env`` has ``kwargs`` ``{}`` (nothing to record); any other
    gets ``kwargs`` ``None``, *unknown* (a ``{}`` would read as "no arguments", and replay would rebuild it with
    its defaults without a word), and one warning per wrapper class.
    """
    if spec is None:
        return []
    out = []
    for w in spec.additional_wrappers:
        kwargs = w.kwargs
        if kwargs is None and not _takes_only_env(env, w.entry_point):
            if w.entry_point not in _WARNED_WRAPPERS:
                _WARNED_WRAPPERS.add(w.entry_point)
                warnings.warn(
                    f"wrapper {w.name} ({w.entry_point}) does not record its constructor arguments (it is not a "
                    "gymnasium.utils.RecordConstructorArgs): task.wrappers marks its kwargs as unknown (null), and "
                    "`trajrec replay` would rebuild it with its defaults; to record them, subclass "
                    "gymnasium.utils.RecordConstructorArgs and call RecordConstructorArgs.__init__(self, <your "
                    "arguments>) in its __init__ (warned once per wrapper class)", RuntimeWarning,
                    stacklevel=user_stacklevel())
            out.append({"name": w.name, "entry_point": w.entry_point, "kwargs": None})
        else:
            out.append({"name": w.name, "entry_point": w.entry_point, "kwargs": dict(kwargs or {})})
    return out


def _takes_only_env(env: Any, entry_point: Any) -> bool:
    """Whether the wrapper of class ``entry_point`` (``module:Class``) in ``env``'s chain takes no argument but
    ``env``: then it has none to record. False when the class is not found or its signature cannot be read."""
    import inspect

    e, seen = env, 0
    while e is not None and seen < 1000:  # a chain of wrappers: each holds the next as .env
        cls = type(e)
        if f"{cls.__module__}:{cls.__name__}" == entry_point:
            try:
                params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # self
            except (TypeError, ValueError):
                return False
            return len(params) <= 1 and all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        nxt = getattr(e, "env", None)
        e, seen = (None if nxt is e else nxt), seen + 1
    return False


def _put_links(record: dict[str, Any], retry_of: int | LostStep | None,
               recovers: list[int | LostStep] | None) -> bool:
    """Put :meth:`Classifier.classify`'s links on step ``record``: ``retry_of`` and ``recovers`` name written steps
    only; a link to a failed step whose record was lost (a full disk) goes in ``lost_links`` instead, as the
    place of that step (``{"retry_of": k, "recovers": [k, ...]}``: lost right before step k), never as the number
    of the step written next. True when the record got ``lost_links``."""
    lost: dict[str, Any] = {}
    if retry_of is not None:
        if type(retry_of) is LostStep:
            lost["retry_of"] = retry_of.before
        else:
            record["retry_of"] = retry_of
    if recovers:
        written = [k for k in recovers if type(k) is not LostStep]
        if written:
            record["recovers"] = written
        if len(written) < len(recovers):
            lost["recovers"] = [k.before for k in recovers if type(k) is LostStep]
    if lost:
        record["lost_links"] = lost
    return bool(lost)


@functools.lru_cache(maxsize=64)
def _slug(name: str) -> str:
    """An env id or class name as it starts an episode's file name."""
    return _SLUG.sub("_", name.split("/")[-1])


class _NoState:
    """No state to record (``_NO_STATE``), a raising ``state_fn`` (``_STATE_FN_RAISED``, its error in the step's
    errors), or (``why`` set, from :func:`state_unknown`) a state a stand-in env knows it cannot read."""

    __slots__ = ("why",)

    def __init__(self, why: str | None = None) -> None:
        self.why = why


def state_unknown(why: str) -> _NoState:
    """What a ``state_fn`` of trajrec's own returns when the env's state after a step cannot be read (``why``
    says why, e.g. the vector env raised): the step records the marked value ``trajrec.StateNotRead`` (as for a
    raising ``state_fn``, without a ``recorder_errors`` entry: nothing went wrong in the recorder), so
    ``state_at`` never gives the state from before the step."""
    return _NoState(why)


_NO_STATE = _NoState()
#: What :meth:`Recorder._read_state` gives when ``state_fn`` raised (its error is in the step's errors).
_STATE_FN_RAISED = _NoState()
