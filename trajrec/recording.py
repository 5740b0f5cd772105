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

    try:
        base = gym.make(job.env_id, **dict(job.env_kwargs))
    except gym.error.Error as exc:
        import difflib

        known = sorted(gym.registry)
        near = difflib.get_close_matches(job.env_id, known, n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else "; `trajrec envs` lists the built-in ones"
        raise TrajrecUsageError(f"cannot make env {job.env_id!r}: {exc}{hint}") from exc
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
    with ``backend="ray"`` as Ray tasks (see :func:`trajrec.collect.collect`)."""
    from trajrec.recorder.storage import is_url

    if not is_url(job.out):  # a URL records through a local outbox (see trajrec.recorder.storage)
        try:
            Path(job.out).mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # read-only file system, a file in the way, permissions
            raise TrajrecIOError(f"cannot create the output folder {job.out}: {exc.strerror or exc}; pass --out a "
                                 "folder you can write to") from exc
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


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over episode summaries: solved rate, failures, retries, recoveries, checks by kind and judge, and
    the model calls' tokens, latency and cost when there were any."""
    total = len(results)
    passed = sum(1 for r in results if r.get("outcome") == "passed")
    out: dict[str, Any] = {
        "episodes": total,
        "steps": sum(r.get("steps", 0) for r in results),
        "solved": passed,
        "solved_rate": passed / total if total else 0.0,
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
