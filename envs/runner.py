"""Running one episode of an agent in an env, the loop the CLI and the tests share."""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym


class Agent(Protocol):
    """What :func:`run_episode` needs from an agent (the scripted agents in :mod:`trajrec.envs.agents` fit)."""

    def reset(self, observation: Any, info: dict[str, Any]) -> None: ...

    def act(self, observation: Any, info: dict[str, Any]) -> tuple[Any, dict[str, Any]]: ...


def run_episode(env: gym.Env, agent: Agent, *, seed: int, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Reset ``env`` and ``agent``, then step until the episode terminates or truncates.

    When ``env`` has a ``note`` method (the trajrec ``Recorder`` wrapper does), each step's agent note
    (``{"thought": ...}``) is passed as ``env.note(**note)`` just before ``env.step``, so it is
    recorded with that step.

    Args:
        env: The env, possibly wrapped.
        agent: Has ``reset(observation, info)`` and ``act(observation, info) -> (action, note)``.
        seed: Passed to ``env.reset``.
        options: Passed to ``env.reset`` (e.g. ``{"task_id": ...}``).

    Returns:
        ``{"steps", "return", "terminated", "truncated"}``.

    >>> import trajrec.envs, gymnasium as gym
    >>> from trajrec.envs.agents import make_agent
    >>> env = gym.make("trajrec/MathCalc-v0")
    >>> run_episode(env, make_agent("trajrec/MathCalc-v0", seed=0, skill=1.0), seed=0)
    {'steps': 2, 'return': 1.0, 'terminated': True, 'truncated': False}
    """
    observation, info = env.reset(seed=seed, options=options)
    agent.reset(observation, info)
    note = getattr(env, "note", None)
    steps, total, terminated, truncated = 0, 0.0, False, False
    while not (terminated or truncated):
        action, fields = agent.act(observation, info)
        if callable(note) and fields:
            note(**fields)
        observation, reward, terminated, truncated, info = env.step(action)
        steps += 1
        total += float(reward)
    return {"steps": steps, "return": total, "terminated": bool(terminated), "truncated": bool(truncated)}
