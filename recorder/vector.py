"""The :class:`VectorRecorder`: records a ``gymnasium.vector.VectorEnv`` as one episode file per sub-env episode.

Each sub-env gets its own :class:`~trajrec.recorder.Recorder`, fed from the batched results through a small
stand-in env (:class:`_SubEnv`), so a sub-env episode is recorded exactly as the single-env recorder would record
it: same fields, failure/retry/recovery classification, state diffs, checks, per-step flush. What is vector-specific
is splitting the batch and following the autoreset mode (see Gymnasium's ``gymnasium/vector/vector_env.py``,
``AutoresetMode``):

- ``NEXT_STEP`` (the default): a sub-env that ended at step t is reset during step t+1, whose action for it is
  ignored; step t+1's observation and info for it are the reset's. Recorded as: the episode's last step at t, a new
  episode opened at t+1 (seed ``None``: the sub-env's generator goes on, as in a single env reset without a seed).
- ``SAME_STEP``: the sub-env resets inside step t; the last observation and info are in ``info["final_obs"]`` and
  ``info["final_info"]``. Recorded as: the last step from those, then a new episode from the returned observation
  and info. The state after that last step is gone (the sub-env has already reset), so that one step has no diff.
- ``DISABLED``: nothing resets by itself; ``reset(options={"reset_mask": mask})`` resets the sub-envs in ``mask``,
  each starting a new episode; the others go on.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from time import perf_counter
from typing import Any, Callable, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import iterate

from .classify import ActionKeyFn, FailureFn
from .errors import EpisodeClosedError, TrajrecUsageError
from .provenance import env_package, package_version
from .wrapper import _NO_STATE, Recorder, agent_action, state_unknown

try:  # Gymnasium >= 1.1
    from gymnasium.vector import AutoresetMode
except ImportError:  # pragma: no cover - Gymnasium 1.0 has only the next-step behaviour
    AutoresetMode = None  # type: ignore[assignment,misc]

# make_vec's own arguments: not the sub-env's constructor kwargs, so left out of each episode's task.
_VECTOR_KWARGS = ("num_envs", "vectorization_mode", "vector_kwargs", "wrappers")
# Numpy dtypes Gymnasium picks for plain Python int/float/bool info values when it batches them.
_PLAIN_DTYPES = (np.dtype(np.int64), np.dtype(np.float64), np.dtype(np.bool_))


def unbatch_info(infos: dict[str, Any], j: int) -> dict[str, Any]:
    """The info sub-env ``j`` returned, from the vector env's batched info (``{key: array, "_key": mask}``).

    Keys whose mask is false for ``j`` are left out; nested dicts are unbatched alike. A key without a mask
    (vector wrappers such as ``RecordEpisodeStatistics`` write ``{"episode": {"r": array, ...}, "_episode": mask}``)
    is kept, indexed at ``j`` when it holds one value per sub-env. Scalars Gymnasium put in an int64/float64/bool
    array (its choice for plain Python numbers) come back as Python numbers; other numpy scalars keep their dtype.

    >>> infos = {"n": np.array([3, 0]), "_n": np.array([True, False]), "msg": np.array(["a", None], dtype=object),
    ...          "_msg": np.array([True, True])}
    >>> unbatch_info(infos, 0), unbatch_info(infos, 1)
    ({'n': 3, 'msg': 'a'}, {'msg': None})
    """
    out: dict[str, Any] = {}
    # Gymnasium names the mask of key k f"_{k}", whatever k's type (key 7: "_7").
    masks = {f"_{k}" for k in infos if f"_{k}" in infos}
    for key, value in infos.items():
        if type(key) is str and key in masks:
            continue  # a mask
        mask = infos.get(f"_{key}")
        if mask is not None and not mask[j]:
            continue
        out[key] = _item(value, j)
    return out


def _item(value: Any, j: int) -> Any:
    if isinstance(value, dict):
        return unbatch_info(value, j)
    if isinstance(value, np.ndarray) and value.ndim >= 1:
        item = value[j]
        if value.dtype == object:
            return item
        if value.ndim == 1 and value.dtype in _PLAIN_DTYPES:
            return item.item()
        return item.copy() if isinstance(item, np.ndarray) else item
    if isinstance(value, (list, tuple)):
        return value[j]
    return value


class _SubEnv(gym.Env):  # type: ignore[type-arg]
    """Stands in for one sub-env: its ``reset``/``step`` hand the :class:`Recorder` what the batch held for it."""

    def __init__(self, vec: gym.vector.VectorEnv, spec: Any, name: str | None = None) -> None:
        #: The sub-env's class name, for episode ids when it has no env id (not this stand-in's).
        self._trajrec_name = name
        self.observation_space = vec.single_observation_space
        self.action_space = vec.single_action_space
        self.metadata = {k: v for k, v in vec.metadata.items() if k != "autoreset_mode"}
        self.spec = spec
        self.result: Any = None  # the tuple to return, or the exception to raise
        self.state: Any = _NO_STATE

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        return self._take()

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        return self._take()

    def _take(self) -> Any:
        result, self.result = self.result, None
        if isinstance(result, BaseException):
            raise result
        return result


class _SiblingRaised(Exception):
    """What sub-env ``j``'s stand-in raises for a vector step that raised in another sub-env: its recorder records
    ``failure`` (kind ``vector_error`` or ``not_run``) for the step, not the other sub-env's exception."""

    def __init__(self, failure: dict[str, Any]) -> None:
        super().__init__(failure["message"])
        self.trajrec_failure = failure


def _sync_raiser(base: Any, exc: BaseException) -> int | None:
    """The index of the sub-env whose step (or autoreset) raised ``exc`` inside ``SyncVectorEnv.step`` ``base``:
    the loop's ``i`` in that frame of the traceback (it steps the sub-envs in order and stops at the exception,
    so the sub-envs before it ran and those after did not). None when it cannot be told (the exception came from
    outside the loop, or a Gymnasium whose step names it otherwise)."""
    code = gym.vector.SyncVectorEnv.step.__code__
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code is code and frame.f_locals.get("self") is base:
            i = frame.f_locals.get("i")
            return i if type(i) is int and 0 <= i < base.num_envs else None
        tb = tb.tb_next
    return None


def _closed_pipes(base: Any) -> set[int] | None:
    """The workers of ``AsyncVectorEnv`` ``base`` it has shut down (a worker whose env raised: Gymnasium closes
    its pipe and sets it to None); None for another vector env."""
    pipes = getattr(base, "parent_pipes", None) if isinstance(base, gym.vector.AsyncVectorEnv) else None
    if not isinstance(pipes, list):
        return None
    return {j for j, pipe in enumerate(pipes) if pipe is None}


def _sub_specs(vec: gym.vector.VectorEnv, n: int) -> list[Any]:
    """Each sub-env's ``EnvSpec`` (None where there is none): the vector env's own (``make_vec``: its kwargs less
    make_vec's arguments), else the sub-envs' (a ``SyncVectorEnv`` or ``AsyncVectorEnv`` built from
    ``gymnasium.make`` calls), so each episode's task names the env id, entry point and kwargs to replay it."""
    EnvSpec = gym.envs.registration.EnvSpec
    spec = getattr(vec, "spec", None)
    if isinstance(spec, EnvSpec):
        kwargs = {k: v for k, v in spec.kwargs.items() if k not in _VECTOR_KWARGS}
        return [dataclasses.replace(spec, kwargs=kwargs)] * n
    subs = getattr(vec, "envs", None)  # SyncVectorEnv keeps its sub-envs in this process
    if isinstance(subs, (list, tuple)) and len(subs) == n:
        specs = [getattr(e, "spec", None) for e in subs]
    else:
        try:  # AsyncVectorEnv: asked of each worker (a spec is plain data)
            specs = list(vec.get_attr("spec"))
        except Exception:  # noqa: BLE001  (a vector env without get_attr, or a spec that does not pickle)
            return [None] * n
    if len(specs) != n:
        return [None] * n
    return [s if isinstance(s, EnvSpec) else None for s in specs]


def _package_from_entry_point(spec: Any) -> dict[str, Any] | None:
    entry = getattr(spec, "entry_point", None)
    if not isinstance(entry, str) or ":" not in entry:
        return None
    module, _, cls = entry.partition(":")
    top = module.split(".")[0]
    return {"module": module, "class": cls, "package": top,
            "version": package_version(top) or package_version(top.replace("_", "-"))}


class VectorRecorder(gym.vector.VectorWrapper):
    """Records every sub-env episode of a vector env to ``out_dir``, one file per episode.

    Works with ``SyncVectorEnv``, ``AsyncVectorEnv`` and any ``VectorEnv`` in the ``NEXT_STEP``, ``SAME_STEP`` or
    ``DISABLED`` autoreset mode (read from ``metadata["autoreset_mode"]``). Every step of every sub-env is in its
    file when ``step`` returns. If the vector env raises, the step is recorded as failed in every open sub-env
    episode (the sub-env that raised: kind ``exception``; the others, when it is known which one raised:
    ``not_run`` or ``vector_error``, see :meth:`step`), then the exception is re-raised. Misuse is refused
    before the vector env is called, so nothing is stepped or recorded: ``step`` before the first ``reset``
    (:class:`~trajrec.TrajrecUsageError`), ``step`` or ``reset`` after ``close``
    (:class:`~trajrec.recorder.errors.EpisodeClosedError`), a batch of actions whose length is not ``num_envs``
    (:class:`~trajrec.TrajrecUsageError`).

    A context manager: ``with VectorRecorder(vec, out) as envs:`` calls :meth:`close` on the way out, whatever
    raised, so every sub-env episode file is finished (an episode cut short by an exception ends ``stopped``).

    Args:
        env: the vector env.
        out_dir: folder for the episode files.
        agent, task, provenance, failure_fn, action_key, frame_steps, frame_bytes, compression_level, fsync: as
            for :class:`~trajrec.recorder.Recorder`, applied to each sub-env.
        run_id: shared by every sub-env's episodes; default a new id.
        states: record each sub-env's ``state_dict()`` as state diffs when the sub-envs have one (one
            ``call("state_dict")`` per step: for an ``AsyncVectorEnv`` that is one more round trip to the workers).

    >>> import gymnasium as gym, tempfile
    >>> envs = VectorRecorder(gym.make_vec("CartPole-v1", num_envs=2), tempfile.mkdtemp())
    >>> obs, info = envs.reset(seed=0)
    >>> obs, rewards, terminated, truncated, info = envs.step(envs.action_space.sample())
    >>> envs.close()
    >>> [len(paths) for paths in envs.episode_paths]
    [1, 1]
    >>> with VectorRecorder(gym.make_vec("CartPole-v1", num_envs=2), tempfile.mkdtemp()) as envs:
    ...     obs, info = envs.reset(seed=0)
    """

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        out_dir: str | os.PathLike[str],
        *,
        agent: str | dict[str, Any] | None = None,
        task: dict[str, Any] | None = None,
        provenance: dict[str, Any] | None = None,
        failure_fn: FailureFn | None = None,
        action_key: ActionKeyFn | None = None,
        run_id: str | None = None,
        states: bool = True,
        frame_steps: int = 1024,
        frame_bytes: int = 1 << 20,
        compression_level: int = 3,
        fsync: bool = False,
    ) -> None:
        if isinstance(env, type):
            raise TrajrecUsageError(f"VectorRecorder got the class {env.__name__}, not a vector env; pass an "
                                    f"instance: VectorRecorder({env.__name__}(...), out_dir)")
        if not isinstance(env, gym.vector.VectorEnv):
            hint = ("; for a single env use trajrec.Recorder(env, out_dir)" if isinstance(env, gym.Env) or
                    callable(getattr(env, "step", None)) else "")
            raise TrajrecUsageError(f"VectorRecorder expects a gymnasium.vector.VectorEnv, got {type(env).__name__}"
                                    f"{hint}")
        if provenance is not None and not isinstance(provenance, dict):
            raise TrajrecUsageError(f"provenance must be a dict or None, got {type(provenance).__name__}")
        super().__init__(env)
        mode = env.metadata.get("autoreset_mode")
        if AutoresetMode is not None:
            mode = AutoresetMode(mode) if mode is not None and not isinstance(mode, AutoresetMode) else mode
            mode = mode or AutoresetMode.NEXT_STEP
        self.autoreset_mode = mode
        self._mode_name = getattr(mode, "value", "NextStep")
        self.run_id = run_id or f"run-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
        n = env.num_envs
        specs = _sub_specs(env, n)
        subs = getattr(env, "envs", None)  # SyncVectorEnv keeps its sub-envs in this process
        names = ([type(getattr(s, "unwrapped", s)).__name__ for s in subs]
                 if isinstance(subs, (list, tuple)) and len(subs) == n else [None] * n)
        self._subs = [_SubEnv(env, spec, name) for spec, name in zip(specs, names)]
        self.recorders: list[Recorder[Any, Any]] = []
        for j, sub in enumerate(self._subs):
            package = (env_package(subs[j]) if isinstance(subs, (list, tuple)) and len(subs) == n
                       else _package_from_entry_point(specs[j]))
            prov: dict[str, Any] = {"vector": {"index": j, "num_envs": n, "class": type(env).__name__,
                                               "autoreset_mode": self._mode_name}}
            if package is not None:
                prov["env_package"] = package
            prov.update(provenance or {})
            self.recorders.append(Recorder(
                sub, out_dir, agent=agent, task=task, provenance=prov, state_fn=_sub_state,
                failure_fn=failure_fn, action_key=action_key, run_id=self.run_id, frame_steps=frame_steps,
                frame_bytes=frame_bytes, compression_level=compression_level, fsync=fsync))
        self._states = states
        self._state_ok: bool | None = None  # decided at the first reset
        self._autoreset = np.zeros(n, dtype=np.bool_)  # NEXT_STEP: sub-env j resets during the next step
        self._closed = False
        self._was_reset = False  # step before the first reset is refused, as Recorder refuses it
        self._env_raised: BaseException | None = None  # the vector env's last exception (recorded, not the agent's)
        self._base = env.unwrapped  # the vector env under any vector wrappers: who raised is asked of it
        self._async = isinstance(self._base, gym.vector.AsyncVectorEnv)

    def __enter__(self) -> "VectorRecorder":
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        """Close, as :meth:`close`. An exception from the agent's own code (not the vector env's, which its
        ``step`` or ``reset`` recorded; not a stop such as Ctrl-C) first ends every open sub-env episode as
        ``error``, with ``agent_error`` naming the exception and its traceback, as ``with Recorder(...)`` does:
        the data tells an agent that crashed from a run that was stopped."""
        if isinstance(exc, Exception) and exc is not self._env_raised and not self._closed:
            for rec in self.recorders:
                rec._end_with_agent_exception(exc)
        self.close()
        return False

    # -- public API ---------------------------------------------------------------------------------------------

    @property
    def episode_paths(self) -> list[list[Any]]:
        """The episode files written so far, per sub-env."""
        return [rec.episode_paths for rec in self.recorders]

    def note(self, index: int, **fields: Any) -> None:
        """Attach the agent's note (thought, model call...) to sub-env ``index``'s next step."""
        self._recorder(index).note(**fields)

    def check(self, index: int, value: Any, **kwargs: Any) -> dict[str, Any]:
        """Record a check in sub-env ``index``'s current episode (arguments as :meth:`Recorder.check`)."""
        return self._recorder(index).check(value, **kwargs)

    # -- gymnasium API ------------------------------------------------------------------------------------------

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the vector env and start a new episode file for every sub-env it reset.

        Args:
            seed: an int (sub-env ``j`` gets ``seed + j``, as Gymnasium seeds them), a list of ``num_envs``
                seeds (None for unseeded), or None.
            options: passed on; ``options["reset_mask"]`` (``DISABLED`` mode) resets only the sub-envs in the
                mask, and only those start a new episode; the others' episodes go on.

        Returns:
            The vector env's batched ``(observations, infos)``, unchanged.

        Raises:
            EpisodeClosedError: this VectorRecorder is closed.
            TrajrecUsageError: a list of seeds whose length is not ``num_envs``.
            Exception: whatever the vector env raised; first recorded as a failed reset of every sub-env being
                reset (an episode with outcome ``error``).
            TrajrecIOError: an episode file cannot be written (disk full...).
        """
        if self._closed:
            raise EpisodeClosedError("cannot reset: this VectorRecorder is closed; create a new one to record "
                                     "more episodes")
        n = self.num_envs
        if seed is not None and not isinstance(seed, int):
            try:
                count = len(seed)
            except TypeError:
                raise TrajrecUsageError(f"VectorRecorder.reset(seed=...) takes an int, a list of {n} seeds or None, "
                                        f"got {type(seed).__name__}") from None
            if count != n:
                raise TrajrecUsageError(f"VectorRecorder.reset(seed=...) got {count} seeds for {n} sub-envs; "
                                        f"pass one seed per sub-env, an int or None")
        seeds = [seed + j for j in range(n)] if isinstance(seed, int) else list(seed) if seed is not None else [None] * n
        mask = None
        sub_options = options
        if options is not None and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"]).copy()
            # What is left is what each masked sub-env got; nothing left reads as a plain reset (options None).
            sub_options = {k: v for k, v in options.items() if k != "reset_mask"} or None
            options = dict(options)  # Gymnasium pops reset_mask from the dict it is given; keep the caller's
        t0 = time.time()
        p0 = perf_counter()
        try:
            # Gymnasium's vector envs take a list of seeds too; VectorEnv.reset's annotation says int only.
            obs, infos = self.env.reset(seed=seed, options=options)  # type: ignore[arg-type]
        except BaseException as exc:
            self._env_raised = exc
            timing = (t0, perf_counter() - p0)
            for j in range(n):
                if mask is None or mask[j]:
                    self._feed(j, exc, _NO_STATE, timing)
                    try:
                        self.recorders[j].reset(seed=seeds[j] if j < len(seeds) else None, options=sub_options)
                    except BaseException:  # noqa: S110  (it is exc, recorded; raised once below)
                        pass
            raise
        timing = (t0, perf_counter() - p0)
        states = self._read_states()
        items = iterate(self.env.observation_space, obs)
        for j, obs_j in enumerate(items):
            if mask is not None and not mask[j]:
                continue
            self._autoreset[j] = False
            self._feed(j, (obs_j, unbatch_info(infos, j)), states[j], timing)
            self.recorders[j].reset(seed=seeds[j], options=sub_options)
        self._was_reset = True
        return obs, infos

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Step every sub-env with its action and record each sub-env's step in its episode file.

        In ``NEXT_STEP`` mode a sub-env whose episode ended the step before is reset by this step instead (its
        action is ignored, as Gymnasium ignores it): its new episode starts here. In ``SAME_STEP`` mode an
        ending step is recorded from ``info["final_obs"]``/``info["final_info"]`` and the new episode starts
        from the returned observation. Every sub-env's step is in its file when this returns.

        Args:
            actions: the batch, one action per sub-env (``num_envs`` long along the first axis; for a Dict or
                Tuple action space, each leaf is).

        Returns:
            The vector env's batched ``(observations, rewards, terminated, truncated, infos)``, unchanged.

        Raises:
            TrajrecUsageError: ``step`` before the first ``reset``, or a batch whose length is not
                ``num_envs``; refused before the vector env is called, so nothing is stepped or recorded.
            EpisodeClosedError: this VectorRecorder is closed (likewise refused before anything runs).
            Exception: whatever the vector env raised, re-raised unchanged after it is recorded as a failed step
                of every open sub-env episode: kind ``exception`` for the sub-env that raised; for the others,
                when it is known which one raised (``SyncVectorEnv``, ``AsyncVectorEnv``), kind ``not_run`` (a
                ``SyncVectorEnv`` stops at the exception: the sub-envs after it never took their action) or
                ``vector_error`` (the sub-env took its action, the vector env dropped its result), with
                ``raised_by``; when it is not, kind ``exception`` for every one. A ``SyncVectorEnv``'s sub-envs'
                states are read after the step, as a single env's after a step that raised.
            TrajrecIOError: an episode file cannot be written (disk full...).
        """
        if self._closed:
            raise EpisodeClosedError("cannot step: this VectorRecorder is closed; create a new one to record "
                                     "more episodes")
        if not self._was_reset:
            raise TrajrecUsageError("cannot step before reset(): call envs.reset() to start the sub-env episodes")
        n = self.num_envs
        _check_batch(self.single_action_space, actions, n)
        sent = agent_action(actions)  # the batch as the agent sent it: the vector env may change it in place
        closed_before = _closed_pipes(self._base) if self._async else None
        t0 = time.time()
        p0 = perf_counter()
        try:
            obs, rewards, terminated, truncated, infos = self.env.step(actions)
        except BaseException as exc:
            self._env_raised = exc
            timing = (t0, perf_counter() - p0)
            results = self._raised_results(exc, closed_before)
            for j, action in enumerate(iterate(self.env.action_space, sent)):
                if self._is_open(j) and not self._autoreset[j]:
                    self._feed(j, *results[j], timing)
                    try:
                        self.recorders[j].step(action)
                    except BaseException:  # noqa: S110  (it is exc, recorded; raised once below)
                        pass
            raise
        timing = (t0, perf_counter() - p0)
        states = self._read_states()
        same_step = self._mode_name == "SameStep"
        next_step = self._mode_name == "NextStep"
        # Python bools and floats once per batch, not a numpy scalar per sub-env (what a single env returns).
        terms, truncs = np.asarray(terminated).tolist(), np.asarray(truncated).tolist()
        rews = rewards.tolist() if isinstance(rewards, np.ndarray) and rewards.dtype.kind in "fiub" else list(rewards)
        for j, (action, obs_j) in enumerate(zip(iterate(self.env.action_space, sent),
                                                iterate(self.env.observation_space, obs))):
            rec = self.recorders[j]
            info_j = unbatch_info(infos, j) if infos else {}
            term, trunc, reward = bool(terms[j]), bool(truncs[j]), rews[j]
            done = term or trunc
            if next_step and self._autoreset[j]:
                # This step reset sub-env j and ignored its action: a new episode starts here.
                self._autoreset[j] = False
                self._feed(j, (obs_j, info_j), states[j], timing)
                rec.reset(seed=None, options=None)
                continue
            if not self._is_open(j):
                continue  # DISABLED mode refuses to step an ended sub-env, so nothing comes here to lose
            if same_step and done:
                final_obs = infos["final_obs"][j]
                final_info = unbatch_info(infos["final_info"], j) if "final_info" in infos else {}
                # The sub-env has already reset: its state after this last step is gone, so the step's state is
                # marked unknown (never the state from before the step, which replay would find diverging).
                self._feed(j, (final_obs, reward, term, trunc, final_info), _SAME_STEP_UNKNOWN, timing)
                rec.step(action)
                reset_info = {k: v for k, v in info_j.items() if k not in ("final_obs", "final_info")}
                self._feed(j, (obs_j, reset_info), states[j], timing)
                rec.reset(seed=None, options=None)
                continue
            self._feed(j, (obs_j, reward, term, trunc, info_j), states[j], timing)
            rec.step(action)
            if done and next_step:
                self._autoreset[j] = True
        return obs, rewards, terminated, truncated, infos

    def close(self, **kwargs: Any) -> None:
        """Finish every open sub-env episode file (end record, index; an episode not ended by its env ends with
        outcome ``stopped``), then close the vector env. Calling it again does nothing; ``step`` and ``reset``
        after it raise :class:`~trajrec.recorder.errors.EpisodeClosedError`. ``with VectorRecorder(...)`` calls
        it on the way out."""
        if self._closed:
            return
        self._closed = True
        try:
            for rec in self.recorders:
                rec.close()  # finishes its file; its stand-in env owns nothing to close
        finally:
            self.env.close(**kwargs)

    # -- internals ----------------------------------------------------------------------------------------------

    def _recorder(self, index: int) -> Recorder[Any, Any]:
        if not (isinstance(index, int) and 0 <= index < self.num_envs):
            raise TrajrecUsageError(f"sub-env index must be an int from 0 to {self.num_envs - 1}, got {index!r}")
        return self.recorders[index]

    def _is_open(self, j: int) -> bool:
        writer = self.recorders[j]._writer
        return writer is not None and not writer.closed

    def _feed(self, j: int, result: Any, state: Any, timing: tuple[float, float]) -> None:
        sub = self._subs[j]
        sub.result = result
        sub.state = state
        self.recorders[j]._timing = timing

    def _raised_results(self, exc: BaseException, closed_before: set[int] | None) -> list[tuple[Any, Any]]:
        """What each sub-env's stand-in hands its recorder for a vector step that raised ``exc``: ``(result,
        state)``, the result an exception to raise.

        The sub-env that raised gets ``exc`` (a failed step of kind ``exception``, as a single env's). When it is
        known which one raised (a ``SyncVectorEnv``: the loop's index; an ``AsyncVectorEnv``: the one worker it
        shut down), the others get a failure of their own instead of an exception they never raised: kind
        ``not_run`` for a sub-env the vector env never reached (``SyncVectorEnv`` stops at the exception), kind
        ``vector_error`` for one that took its action but whose result the vector env dropped; both name the
        sub-env that raised (``raised_by``). When it is not known (another vector env, several workers raising
        at once), every sub-env gets ``exc``. A stop (Ctrl-C) goes to every sub-env as it is.

        Each sub-env's state is read after the step, as the single Recorder reads a raising step's state, when
        the sub-envs are in this process (``SyncVectorEnv``): the change a sub-env made shows on this step, not
        the next. An ``AsyncVectorEnv`` that raised has shut a worker down and cannot be asked (nor is another
        vector env that raised): each sub-env's state after the step is marked unknown (``trajrec.StateNotRead``,
        see :func:`~trajrec.recorder.wrapper.state_unknown`), as is a ``SyncVectorEnv``'s whose state read raised.
        """
        n = self.num_envs
        if not isinstance(exc, Exception):
            return [(exc, _NO_STATE)] * n
        raised_by: int | None = None
        ran: Callable[[int], bool] = lambda j: True  # noqa: E731
        base = self._base
        if isinstance(base, gym.vector.SyncVectorEnv):
            raised_by = _sync_raiser(base, exc)
            ran = lambda j: raised_by is not None and j < raised_by  # noqa: E731
        elif closed_before is not None:
            closed = _closed_pipes(base)
            new = sorted((closed or set()) - closed_before)
            raised_by = new[0] if len(new) == 1 else None
        # A state that cannot be read is marked unknown on the step (state_at says so, replay skips it), never
        # left as the state from before the step: the sub-env may well have changed it (FINDINGS34 B1).
        what_raised = f"{type(exc).__name__}: {_short(exc)}"
        if isinstance(base, gym.vector.SyncVectorEnv):
            try:
                states = self._read_states()
            except Exception as read_exc:  # noqa: BLE001  (a state_dict that raises after the failed step)
                states = [state_unknown(f"the {type(base).__name__} raised {what_raised}, and reading the sub-envs' "
                                        f"state_dict() after it raised {type(read_exc).__name__}: "
                                        f"{_short(read_exc)}")] * n
        else:
            states = [state_unknown(f"the {type(base).__name__} raised {what_raised} in this step; a vector env that "
                                    "raised (an AsyncVectorEnv shuts the worker down) is not asked for its sub-envs' "
                                    "state after it")] * n
        if raised_by is None:
            return [(exc, states[j]) for j in range(n)]
        what = what_raised
        out: list[tuple[Any, Any]] = []
        for j in range(n):
            if j == raised_by:
                out.append((exc, states[j]))
            elif ran(j):
                out.append((_SiblingRaised({
                    "kind": "vector_error", "raised_by": raised_by,
                    "message": f"sub-env {raised_by} raised {what}; this sub-env took its action, but the vector "
                               "env returned no result for it"}), states[j]))
            else:
                out.append((_SiblingRaised({
                    "kind": "not_run", "raised_by": raised_by,
                    "message": f"not stepped: sub-env {raised_by} raised {what} before {type(base).__name__} "
                               "reached this sub-env, so it never took its action"}), states[j]))
        return out

    def _read_states(self) -> list[Any]:
        none = [_NO_STATE] * self.num_envs
        if not self._states or self._state_ok is False:
            return none
        call: Callable[..., Any] | None = getattr(self.env, "call", None)
        if call is None:
            self._state_ok = False
            return none
        if self._state_ok is None:
            # has_wrapper_attr asks without raising in the workers (an AsyncVectorEnv shuts a worker down on error).
            try:
                self._state_ok = all(call("has_wrapper_attr", "state_dict"))
            except (AttributeError, NotImplementedError):
                self._state_ok = False
            if not self._state_ok:
                return none
        return list(call("state_dict"))


_SAME_STEP_UNKNOWN = state_unknown("the sub-env ended here and reset within the same vector step (autoreset mode "
                                   "SAME_STEP), so its state after this last step was never seen")


def _batch_lengths(single: Any, actions: Any) -> list[int]:
    """The first-axis length of every leaf of ``actions``, laid out as Gymnasium batches the single action space
    ``single`` (a Dict or Tuple space batches per key/entry; any other space is one sequence or array of
    actions); -1 for a leaf with no length (a scalar: a wrong batch too, reported by the caller)."""
    spaces = gym.spaces
    if isinstance(single, spaces.Dict) and isinstance(actions, dict):
        return [n for k, sub in single.spaces.items() if k in actions for n in _batch_lengths(sub, actions[k])]
    if isinstance(single, spaces.Tuple) and isinstance(actions, tuple) and len(actions) == len(single.spaces):
        return [n for sub, a in zip(single.spaces, actions) for n in _batch_lengths(sub, a)]
    if isinstance(actions, (str, bytes)):
        return [-1]  # one Text action, not a batch of characters
    try:
        return [len(actions)]
    except TypeError:
        return [-1]


def _check_batch(single: Any, actions: Any, n: int) -> None:
    """Refuse a batch of actions that is not one action per sub-env, before anything is stepped or recorded.

    Raises:
        TrajrecUsageError: a leaf of ``actions`` is not ``n`` long along its first axis.
    """
    for got in _batch_lengths(single, actions):
        if got != n:
            what = str(got) if got >= 0 else f"a {type(actions).__name__} with no length"
            raise TrajrecUsageError(f"VectorRecorder.step() expected a batch of {n} actions (one per sub-env), got "
                                    f"{what}; pass a sequence or array of {n} actions (e.g. envs.action_space.sample())")


def _short(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001  (an exception whose __str__ raises)
        return "<unprintable message>"
    return text if len(text) <= 500 else text[:500] + "..."


def _sub_state(sub: gym.Env) -> Any:  # type: ignore[type-arg]
    # Always a _SubEnv: the sub-env recorders wrap nothing else.
    return sub.state  # type: ignore[attr-defined]
