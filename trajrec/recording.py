"""Recording many episodes, in this process or in worker processes (used by ``trajrec record`` and ``demo``)."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from trajrec.recorder.errors import TrajrecIOError, TrajrecUsageError


@dataclass(frozen=True)
class Job:
    env_id: str
    out: str
    agent: str = "scripted"
    skill: float = 0.6
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    run_id: str | None = None
    # The openai agent's model and server (see trajrec.openai_agent.OpenAIAgentConfig); pairs keep Job hashable.
    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    sampling: tuple[tuple[str, Any], ...] = ()
    prices: tuple[tuple[str, float], ...] = ()
    request_timeout: float = 60.0
    retries: int = 3


_WORKER: dict[Job, Any] = {}  # one Recorder per job in each worker process


def _make_recorder(job: Job) -> Any:
    import gymnasium as gym
    from trajrec import envs  # noqa: F401  (registers trajrec/* ids)
    from trajrec.recorder import Recorder

    if job.env_id not in gym.registry:
        import difflib

        # One suggestion, ours: gymnasium's own message has one too, and several guesses read as noise.
        near = difflib.get_close_matches(job.env_id, sorted(gym.registry), n=1, cutoff=0.75)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise TrajrecUsageError(f"no env with id {job.env_id!r}; {hint}(`trajrec envs` lists the built-in ones)")
    try:
        base = gym.make(job.env_id, **dict(job.env_kwargs))
    except gym.error.Error as exc:
        raise TrajrecUsageError(f"cannot make env {job.env_id!r}: {exc}") from exc
    except TypeError as exc:  # a --kwarg the constructor does not take, or a value of the wrong type
        reason = str(exc).split(" was raised from the environment creator")[0]
        given = ", ".join(f"{k}={v!r}" for k, v in job.env_kwargs) or "none"
        raise TrajrecUsageError(f"cannot make env {job.env_id!r} with the --kwarg values given ({given}): {reason}; "
                                "fix or drop the --kwarg") from exc
    return Recorder(base, job.out, run_id=job.run_id)


def _agent_for(job: Job, env: Any, seed: int) -> Any:
    if job.agent == "random":
        return _RandomAgent(env, seed)
    if job.agent == "openai":
        from trajrec.openai_agent import OpenAIAgentConfig, OpenAIToolAgent

        if not job.model:
            raise TrajrecUsageError("--agent openai needs --model M (the model id the server knows)")
        config = OpenAIAgentConfig(model=job.model, base_url=job.base_url, api_key=os.environ.get(job.api_key_env),
                                   sampling=dict(job.sampling), timeout=job.request_timeout, retries=job.retries,
                                   prices=dict(job.prices) or None)
        return OpenAIToolAgent(config)
    from trajrec.envs.agents import make_agent

    try:
        return make_agent(job.env_id, seed=seed, skill=job.skill)
    except ValueError as exc:
        raise TrajrecUsageError(f"{exc}; use --agent random for envs without a scripted agent") from exc


class _RandomAgent:
    """Samples the action space: the baseline agent for any env."""

    def __init__(self, env: Any, seed: int) -> None:
        self.space = env.action_space
        self.space.seed(seed)

    def reset(self, observation: Any, info: dict[str, Any]) -> None:
        pass

    def act(self, observation: Any, info: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        return self.space.sample(), {}


def record_one(job: Job, seed: int, recorder: Any = None) -> dict[str, Any]:
    """Record one episode of ``job`` with ``seed``; returns its summary plus ``path`` and ``seed``."""
    from trajrec.envs.runner import run_episode

    env = recorder if recorder is not None else _worker_recorder(job)
    agent = _agent_for(job, env, seed)
    if job.agent == "openai":
        env.agent = {**agent.describe(), "class": type(agent).__qualname__, "seed": seed}
    else:
        env.agent = {"name": job.agent, "class": type(agent).__qualname__, "seed": seed,
                     "skill": job.skill if job.agent == "scripted" else None}
    run_episode(env, agent, seed=seed)
    summary = env.end_episode() or {}
    return {**summary, "path": str(env.episode_path), "seed": seed}


def _worker_recorder(job: Job) -> Any:
    rec = _WORKER.get(job)
    if rec is None:
        rec = _WORKER[job] = _make_recorder(job)
    return rec


def _worker_record(job: Job, seed: int) -> dict[str, Any]:
    return record_one(job, seed)


def _make_env(job: Job) -> Any:
    import gymnasium as gym
    from trajrec import envs  # noqa: F401  (registers trajrec/* ids)

    return gym.make(job.env_id, **dict(job.env_kwargs))


def _job_agent(job: Job, env: Any, seed: int) -> Any:
    agent = _agent_for(job, env, seed)
    env.agent = {"name": job.agent, "class": type(agent).__qualname__, "seed": seed,
                 "skill": job.skill if job.agent == "scripted" else None}
    return agent


class _Advance:
    def __init__(self, on_done: Callable[[dict[str, Any]], None] | None) -> None:
        self.on_done = on_done

    def advance(self, n: int = 1) -> None:
        if self.on_done:
            for _ in range(n):
                self.on_done({})


def record_many(job: Job, seeds: list[int], *, workers: int = 1,
                on_done: Callable[[dict[str, Any]], None] | None = None, backend: str = "process",
                address: str | None = None) -> list[dict[str, Any]]:
    """Record one episode per seed; with ``workers`` > 1 in that many processes, each writing its own files;
    with ``backend="ray"`` as Ray tasks (see :func:`trajrec.collect.collect`).

    Raises:
        TrajrecUsageError: the env cannot be made, or ``job.out`` cannot be a folder (a file has its name, no
            permission, a read-only file system).
    """
    from trajrec.recorder.storage import is_url

    if not is_url(job.out):  # a URL records through a local outbox (see trajrec.recorder.storage)
        make_out_dir(job.out)
    results: list[dict[str, Any]] = []
    if backend == "ray":
        import functools

        from .collect import collect

        probe = _make_recorder(job)  # a bad env id or agent fails here, with the CLI's message
        probe.close()
        _agent_for(job, probe, 0)
        return collect(functools.partial(_make_env, job), functools.partial(_job_agent, job),
                       episodes=len(seeds), seed=seeds[0], out=job.out, backend="ray", address=address,
                       run_id=job.run_id, progress=_Advance(on_done))
    if workers <= 1:
        rec = _make_recorder(job)
        try:
            for seed in seeds:
                res = record_one(job, seed, rec)
                results.append(res)
                if on_done:
                    on_done(res)
        finally:
            rec.close()
        return results
    # Validate the env id and agent here, where the error reads best, before starting workers.
    probe = _make_recorder(job)
    probe.close()
    _agent_for(job, probe, 0)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_worker_record, job, seed) for seed in seeds]
        for fut in as_completed(futures):
            res = fut.result()
            results.append(res)
            if on_done:
                on_done(res)
    results.sort(key=lambda r: r["seed"])
    return results


def make_out_dir(out: str) -> None:
    """Create the output folder ``out`` (and its parents).

    Raises:
        TrajrecUsageError: it cannot be a folder; the message says why.
    """
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise TrajrecUsageError(f"--out {out}: a file has that name; give a folder (it is created if missing)") \
            from None
    except OSError as exc:
        raise TrajrecUsageError(f"--out {out}: cannot create the folder: {exc.strerror or exc}; give a folder you "
                                "can write to") from None


def existing_seeds(out: str, env_id: str) -> tuple[list[str], set[int]]:
    """The episode files directly in ``out`` (sorted), and the seeds of those recorded from ``env_id``.

    A file that cannot be read counts as a file but gives no seed.
    """
    from trajrec.recorder import SUFFIX, read_index
    from trajrec.recorder.errors import TrajrecError

    folder = Path(out)
    if not folder.is_dir():
        return [], set()
    files = sorted(str(p) for p in folder.glob(f"*{SUFFIX}") if p.is_file() and not p.is_symlink())
    seeds: set[int] = set()
    for path in files:
        try:
            task = (read_index(path).get("header") or {}).get("task") or {}
        except (TrajrecError, OSError):
            continue
        if task.get("env_id") == env_id and isinstance(task.get("seed"), int):
            seeds.add(task["seed"])
    return files, seeds


def plan_seeds(out: str, env_id: str, seeds: list[int], *, resume: bool = False,
               overwrite: bool = False) -> tuple[list[int], int]:
    """The seeds to record into ``out``, and how many were skipped as already recorded.

    A folder that already holds episode files is only recorded into with ``resume`` (seeds recorded from
    ``env_id`` before are skipped) or ``overwrite`` (its episode files are deleted first; label files stay).

    Raises:
        TrajrecUsageError: the folder holds episodes and neither flag was given.
    """
    files, done = existing_seeds(out, env_id)
    if not files:
        return list(seeds), 0
    if overwrite:
        for path in files:
            os.remove(path)
        return list(seeds), 0
    if resume:
        todo = [s for s in seeds if s not in done]
        return todo, len(seeds) - len(todo)
    raise TrajrecUsageError(
        f"{out} already holds {len(files)} episode file{'s' if len(files) != 1 else ''}; recording into it again "
        "would add duplicates. Pass --resume to record only the seeds not recorded yet, --overwrite to delete "
        "those files first, or another folder")


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over episode summaries: solved rate (over episodes a terminal check judged), failures, retries,
    recoveries, checks by kind and judge, and the model calls' tokens, latency and cost when there were any."""
    total = len(results)
    passed = sum(1 for r in results if r.get("outcome") == "passed")
    judged = sum(1 for r in results if r.get("outcome") in ("passed", "failed"))
    out: dict[str, Any] = {
        "episodes": total,
        "steps": sum(r.get("steps", 0) for r in results),
        "solved": passed,
        "judged": judged,
        "solved_rate": passed / judged if judged else None,
        "failures": sum(r.get("failures", 0) for r in results),
        "retries": sum(r.get("retries", 0) for r in results),
        "recoveries": sum(r.get("recoveries", 0) for r in results),
        "checks_by_kind": {},
        "checks_by_judge": {},
        "outcomes": {},
    }
    model: dict[str, Any] = {}
    for r in results:
        for key, value in (r.get("model") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                model[key] = model.get(key, 0) + value
    if model:
        out["model"] = model
    for r in results:
        out["outcomes"][r.get("outcome")] = out["outcomes"].get(r.get("outcome"), 0) + 1
        checks = r.get("checks") or {}
        for k, n in (checks.get("by_kind") or {}).items():
            out["checks_by_kind"][k] = out["checks_by_kind"].get(k, 0) + n
        for k, n in (checks.get("by_judge") or {}).items():
            out["checks_by_judge"][k] = out["checks_by_judge"].get(k, 0) + n
    return out


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def iter_seeds(start: int, n: int) -> Iterator[int]:
    return iter(range(start, start + n))
