"""Collecting many episodes: in this process, in worker processes, or as tasks on a Ray cluster.

Every episode is one task that runs its own :class:`~trajrec.recorder.Recorder`. A task records into a staging
folder (``<out>/.trajrec/staging/``) and, once the episode file is closed, renames it into ``<out>/`` and
writes a marker ``<out>/.trajrec/collect/<run_id>/seed-<seed>.json`` naming it. So:

* a task that is killed mid-episode leaves its partial file in staging: readable (``trajrec fsck`` reads it,
  every step it returned is there) but not part of the run;
* a retried task (Ray retries tasks whose worker died) starts that seed again, and a seed whose marker exists is
  never recorded twice: the run holds each seed once, whatever was retried or resumed;
* an exception raised by the env (in ``reset`` or ``step``) is part of the data: the Recorder records it (a failed
  step of kind ``exception``, outcome ``error``), the episode goes into the run like any other, and collection
  goes on with the next seed;
* an exception raised by the agent (its ``act`` or ``reset``, an :class:`~trajrec.recorder.errors.AgentError`
  such as a model server down, an ``act`` that breaks the contract below) is not the env's doing: the episode is
  closed with the summary's ``agent_error`` naming it, stays in staging (not part of the run, so resuming the run
  records that seed again once the agent is fixed), and the exception is raised; seeds already recorded stay in
  the run.

The agent contract: ``agent_fn(env, seed)`` returns an object with ``reset(obs, info)`` and
``act(obs, info) -> (action, note)``: always a 2-tuple whose second item is a mapping of note fields (see
:meth:`~trajrec.recorder.Recorder.note`) or None. The action is never guessed from another shape: an action that is
itself a pair, a list or an array goes in whole as the first item (``return (np.array([0.1, 0.2]), None)``).

>>> import tempfile
>>> import gymnasium as gym
>>> out = tempfile.mkdtemp()
>>> from trajrec.replay.library import find_episode_files
>>> results = collect(lambda: gym.make("CartPole-v1"), "random", episodes=3, out=out, progress=False)
>>> [r["seed"] for r in results], len(find_episode_files([out]))
([0, 1, 2], 3)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from trajrec.recorder.errors import AgentError, TrajrecError, TrajrecIOError, TrajrecUsageError, require

__all__ = ["BACKENDS", "AgentContractError", "collect", "collect_one"]

#: Where the work runs: ``local`` (this process), ``process`` (a process pool) or ``ray`` (a Ray cluster).
BACKENDS = ("local", "process", "ray")
RAY_PIP = "pip install 'trajrec[ray]'"

EnvFn = Callable[[], Any]
#: ``agent_fn(env, seed) -> agent`` with ``reset(obs, info)`` and ``act(obs, info) -> (action, note)``, or
#: ``"random"`` for an agent that samples the action space.
AgentFn = Callable[[Any, int], Any]


class _EnvRaised(Exception):
    """The env raised in ``reset``/``step`` (already recorded by the Recorder); carries the env's exception."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(str(exc))
        self.exc = exc


def _marker(out: Path, run_id: str, seed: int) -> Path:
    return out / ".trajrec" / "collect" / run_id / f"seed-{seed}.json"


def collect_one(env_fn: EnvFn, agent_fn: AgentFn | str, seed: int, out: str | os.PathLike[str], run_id: str,
                recorder_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record the episode of ``seed`` into ``out`` unless this run already holds it; returns its summary with
    ``path``, ``seed`` and ``skipped`` (True when an earlier attempt had finished it).

    An exception the env raises is recorded (outcome ``error``; the summary's ``error`` names the step and the
    exception type, the failed step or reset holds its message) and the episode goes into the run as usual;
    nothing is raised for it. An exception from the agent closes the episode
    with ``agent_error``, leaves it in staging and is raised (see the module docstring).

    Raises:
        TrajrecUsageError: ``agent.act()`` returned something other than ``(action, note)``; nothing of that
            return is stepped or recorded (an episode with no step yet leaves no file at all).
        AgentError: the agent could not act (e.g. its model server failed).
        Exception: whatever else the agent's own code raised.
        TrajrecIOError: the finished file cannot be moved into ``out``.
    """
    from trajrec.recorder import Recorder, open_episode

    from .recording import RandomAgent

    out = Path(out)
    marker = _marker(out, run_id, seed)
    if marker.exists():
        done = json.loads(marker.read_text())
        dest = out / done["file"]
        if not dest.exists() and os.path.exists(done["staged"]):
            os.replace(done["staged"], dest)  # the earlier attempt died between its marker and its move
        if dest.exists():
            with open_episode(dest) as ep:
                return {**ep.summary, "path": str(dest), "seed": seed, "skipped": True}
    # A fresh staging folder per attempt: an earlier attempt's partial file stays where fsck can read it.
    staging = out / ".trajrec" / "staging" / f"{run_id}-seed-{seed}-{os.getpid()}-{time.time_ns()}"
    staging.mkdir(parents=True, exist_ok=True)
    env = Recorder(env_fn(), staging, run_id=run_id, **(recorder_kwargs or {}))
    try:
        agent = RandomAgent(env, seed) if agent_fn == "random" else agent_fn(env, seed)  # type: ignore[operator]
        env.agent = env.agent or {"name": getattr(agent, "name", type(agent).__qualname__), "seed": seed}
        try:
            _run_episode(env, agent, seed)
        except _EnvRaised:
            pass  # recorded by the Recorder (a failed step or reset, outcome "error"): data like any other episode
        except TrajrecError as exc:
            if isinstance(exc, AgentContractError) and exc.steps == 0:
                # Only the reset was recorded: the seed leaves no file, and a resumed run records it anew.
                env.close()
                shutil.rmtree(staging, ignore_errors=True)
                raise
            if isinstance(exc, AgentError):  # no action (a model server down): closed as an error, no step made up
                _end_with_agent_error(env, str(exc), exc.note)
            elif isinstance(exc, AgentContractError):
                _end_with_agent_error(env, str(exc), {})
            raise  # a Recorder error (disk full...) or a contract error: the episode stays in staging
        except Exception as exc:  # the agent's own code: said in the file, which stays in staging
            _end_with_agent_error(env, f"the agent raised {type(exc).__name__}: {exc}", {})
            raise
        summary = env.end_episode() or env.last_summary or {}
        path = Path(env.episode_path)
    finally:
        env.close()
    dest = out / path.name
    try:
        # The marker first, naming both places: a retry after a death between these two lines finishes the move
        # instead of recording the seed again.
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"file": dest.name, "staged": str(path), "seed": seed, "run_id": run_id}))
        os.replace(tmp, marker)
        os.replace(path, dest)  # same file system: atomic, so the run never shows half a file
    except OSError as exc:
        raise TrajrecIOError(f"cannot move {path} into {out}: {exc.strerror or exc}") from exc
    shutil.rmtree(staging, ignore_errors=True)
    return {**summary, "path": str(dest), "seed": seed, "skipped": False}


class AgentContractError(TrajrecUsageError):
    """``agent.act()`` returned something other than ``(action, note)``; ``steps``: steps recorded before it."""

    def __init__(self, message: str, steps: int) -> None:
        super().__init__(message)
        self.steps = steps


def _end_with_agent_error(env: Any, message: str, note: dict[str, Any]) -> None:
    try:
        env.end_episode_with_error(message, **note)
    except TrajrecError:
        pass  # no open episode (the reset itself failed): nothing to end; the caller raises the agent's exception


def _check_act(agent: Any, seed: int, out: Any, steps: int) -> tuple[Any, Mapping[str, Any] | None]:
    """``out`` as ``(action, note)``, or a :class:`AgentContractError` naming the agent and the contract."""
    if isinstance(out, tuple) and len(out) == 2 and (out[1] is None or isinstance(out[1], Mapping)):
        return out
    if isinstance(out, tuple) and len(out) == 2:
        got = f"a pair whose second item is {_a(out[1])}, not a note mapping or None"
    elif isinstance(out, tuple):
        got = f"a tuple of {len(out)} items"
    else:
        got = _a(out)
    name = getattr(agent, "name", None) or type(agent).__qualname__
    raise AgentContractError(
        f"agent {name!s} (seed {seed}, step {steps}): act(obs, info) must return a tuple (action, note) with note "
        f"a mapping of note fields or None; got {got}. Return (action, None) when there is no note; an action "
        "that is itself a pair or an array goes in whole as the first item", steps)


def _a(value: Any) -> str:
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _run_episode(env: Any, agent: Any, seed: int) -> None:
    try:
        observation, info = env.reset(seed=seed)
    except TrajrecError:
        raise  # the Recorder's own (a usage error, a full disk): not the env's failure
    except Exception as exc:  # noqa: BLE001  (the env's: recorded as a failed reset)
        raise _EnvRaised(exc) from exc
    agent.reset(observation, info)
    terminated = truncated = False
    steps = 0
    while not (terminated or truncated):
        action, note = _check_act(agent, seed, agent.act(observation, info), steps)
        if note:
            env.note(**note)
        try:
            observation, _reward, terminated, truncated, info = env.step(action)
        except TrajrecError:
            raise
        except Exception as exc:  # noqa: BLE001  (the env's: recorded as a failed step)
            raise _EnvRaised(exc) from exc
        steps += 1


def collect(env_fn: EnvFn, agent_fn: AgentFn | str, *, episodes: int, out: str | os.PathLike[str],
            seed: int = 0, backend: str = "local", workers: int | None = None, address: str | None = None,
            run_id: str | None = None, max_retries: int = 3, progress: bool | Any = True,
            recorder_kwargs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Record ``episodes`` episodes (seeds ``seed`` .. ``seed + episodes - 1``) into ``out``, one task each.

    Args:
        env_fn: builds a fresh env in the task (on a Ray worker, in that worker's process).
        agent_fn: ``agent_fn(env, seed) -> agent``, or ``"random"``.
        backend: ``local``, ``process`` (``workers`` processes) or ``ray``.
        address: the Ray cluster to join (``ray.init(address=...)``); None starts or joins a local one.
        run_id: names the run; reusing a run id resumes it (seeds already recorded are skipped). None: a new run
            with a fresh id (``collect-<UTC time>-<6 hex digits>``, in every result's ``run_id`` and in the note
            of an exception that stops collection), with a warning when ``out`` already holds collect runs.
        max_retries: how often Ray re-runs a task whose worker died.
        progress: a progress bar on stderr (True), none (False), or an object with ``advance(n)``.

    Returns:
        One summary per seed (the episode summary plus ``path``, ``seed``, ``skipped``, ``run_id``), in seed
        order. A seed whose env raised is there too, with outcome ``error`` and ``error`` naming the step and
        exception type (e.g. ``"step 1 raised RuntimeError"``): an env exception is recorded data and collection
        goes on.

    Raises:
        TrajrecUsageError: an unknown backend, a bad count or run id; or ``agent.act()`` returned something other
            than a tuple ``(action, note)`` with note a mapping or None (raised before that return is stepped).
        MissingDependencyError: ``backend="ray"`` without Ray installed (``pip install 'trajrec[ray]'``).
        AgentError: an agent could not act (its model server failed); its episode stays in staging with
            ``agent_error``, seeds recorded before stay in the run, and resuming the run records that seed again.
        Exception: whatever else an agent's own code raised, handled as AgentError is.
    """
    if backend not in BACKENDS:
        raise TrajrecUsageError(f"unknown backend {backend!r}; backends: {', '.join(BACKENDS)}")
    if not isinstance(episodes, int) or episodes < 1:
        raise TrajrecUsageError(f"episodes must be a positive int, got {episodes!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TrajrecUsageError(f"out {out} exists and is not a folder; pass a folder for the episode files")
    out.mkdir(parents=True, exist_ok=True)
    if run_id is None:
        run_id = _new_run_id(out)
    elif not isinstance(run_id, str) or not run_id or run_id != Path(run_id).name or run_id in (".", ".."):
        raise TrajrecUsageError(f"run_id must be a non-empty name without a path separator, got {run_id!r}")
    seeds = list(range(seed, seed + episodes))
    bar = _progress(progress, len(seeds), backend)
    try:
        if backend == "local":
            results = []
            for s in seeds:
                results.append(collect_one(env_fn, agent_fn, s, out, run_id, recorder_kwargs))
                bar.advance()
        elif backend == "process":
            with ProcessPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
                futures = [pool.submit(collect_one, env_fn, agent_fn, s, str(out), run_id, recorder_kwargs)
                           for s in seeds]
                results = []
                for fut in as_completed(futures):
                    results.append(fut.result())
                    bar.advance()
        else:
            results = _collect_ray(env_fn, agent_fn, seeds, out, run_id, address, max_retries, recorder_kwargs, bar)
    except (Exception, KeyboardInterrupt) as exc:
        # The run id is what resumes the run: a generated one is otherwise seen nowhere but in the markers' folder.
        add_note = getattr(exc, "add_note", None)  # Python 3.11+
        if add_note is not None:
            add_note(f"trajrec collect: the run id is {run_id!r}; seeds recorded so far stay in {out}; call collect "
                     f"again with run_id={run_id!r} to record the rest (a call without it starts a new run)")
        raise
    finally:
        close = getattr(bar, "close", None)
        if callable(close):
            close()
    return sorted(({**r, "run_id": run_id} for r in results), key=lambda r: r["seed"])


def _new_run_id(out: Path) -> str:
    """A fresh run id for a call without one (``collect-<UTC time>-<6 hex digits>``: never an earlier call's, so a
    call without ``run_id`` never resumes by chance), with a warning when ``out`` already holds collect runs: their
    seeds are recorded again beside them unless the caller passes the run id to resume."""
    runs_dir = out / ".trajrec" / "collect"
    try:
        earlier = sorted(p.name for p in runs_dir.iterdir() if p.is_dir())
    except OSError:
        earlier = []
    if earlier:
        shown = ", ".join(map(repr, earlier[-3:])) + (f" and {len(earlier) - 3} more" if len(earlier) > 3 else "")
        warnings.warn(f"{out} already holds collect runs ({shown}); this call records a new run beside them, so its "
                      f"seeds can be in the folder twice. To resume a run instead, pass its id: "
                      f"collect(..., run_id={earlier[-1]!r})", UserWarning, stacklevel=3)
    return f"collect-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def _collect_ray(env_fn: EnvFn, agent_fn: AgentFn | str, seeds: Iterable[int], out: Path, run_id: str,
                 address: str | None, max_retries: int, recorder_kwargs: dict[str, Any] | None,
                 bar: Any) -> list[dict[str, Any]]:
    ray = require("ray", RAY_PIP, "the ray backend")
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                 include_dashboard=False, configure_logging=False)
    task = ray.remote(max_retries=max_retries, retry_exceptions=False)(collect_one)
    pending = [task.remote(env_fn, agent_fn, s, str(out), run_id, recorder_kwargs) for s in seeds]
    results = []
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        results.extend(ray.get(done))
        bar.advance(len(done))
    return results


class _NoProgress:
    def advance(self, n: int = 1) -> None:
        pass


def _progress(progress: bool | Any, total: int, backend: str) -> Any:
    if progress is True:
        from .progress import Progress

        bar = Progress(total, f"collect ({backend})", unit=" episodes")
        bar.__enter__()
        bar.close = lambda: bar.__exit__(None, None, None)  # type: ignore[attr-defined]
        return bar
    if progress is False or progress is None:
        return _NoProgress()
    return progress

