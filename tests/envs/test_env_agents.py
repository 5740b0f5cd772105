"""Scripted agents: the interface, determinism, and the mess they make across seeds."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import gymnasium as gym
import pytest
from trajrec import envs
from trajrec.envs.agents import AGENTS, ScriptedMathAgent, make_agent
from trajrec.envs.runner import run_episode

SEEDS = range(20)


def action_key(action):
    """The recorder's default operation key: a tool call's tool, a command line's first word."""
    try:
        payload = json.loads(action)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("tool"), str):
        return payload["tool"]
    words = action.split()
    return action if action.lstrip().startswith("{") or not words else words[0]


class Capture(gym.Wrapper):
    """Keeps every step and the notes the runner attaches (like the trajrec Recorder's note())."""

    def __init__(self, env):
        super().__init__(env)
        self.steps, self.notes, self.pending = [], [], None

    def note(self, **fields):
        self.pending = fields

    def reset(self, **kwargs):
        self.steps, self.notes = [], []
        return self.env.reset(**kwargs)

    def step(self, action):
        result = self.env.step(action)
        self.steps.append((action, result))
        self.notes.append(self.pending)
        self.pending = None
        return result


def classify(steps):
    """Count failures, retries and recoveries the way DESIGN.md defines them, plus episode verdicts."""
    counts = Counter()
    failed = {}
    for i, (action, (_, _, _, _, info)) in enumerate(steps):
        key = action_key(action)
        if key in failed:
            counts["retry"] += 1
        if info.get("error"):
            counts["failure"] += 1
            failed.setdefault(key, []).append(i)
        elif key in failed:
            counts["recovery"] += 1
            del failed[key]
        for check in info.get("checks", []):
            if check["target"] == "episode":
                counts["pass" if check["value"] is True else "fail"] += 1
    return counts


def _kwargs(env_id):
    return {"timeout": 1.0} if "CodeRepair" in env_id else {}


def _run_seeds(env_id, seeds):
    env = Capture(gym.make(env_id, **_kwargs(env_id)))
    runs = []
    for seed in seeds:
        summary = run_episode(env, make_agent(env_id, seed=seed), seed=seed)
        runs.append((summary, list(env.steps), list(env.notes)))
    env.close()
    return runs


@pytest.fixture(scope="module")
def episodes():
    # CodeRepair's checks run in subprocesses (most of the time here): two envs take half the seeds each, so
    # both cores run them; every episode is still its seed's own (the envs share nothing).
    with ThreadPoolExecutor(2) as pool:
        halves = {env_id: [pool.submit(_run_seeds, env_id, SEEDS[i::2]) for i in (0, 1)] for env_id in envs.ENV_IDS}
        out = {}
        for env_id, (even, odd) in halves.items():
            runs = [None] * len(SEEDS)
            runs[0::2], runs[1::2] = even.result(), odd.result()
            out[env_id] = runs
    return out


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_agents_make_failures_retries_recoveries_and_both_verdicts(episodes, env_id):
    total = Counter()
    for _, steps, _ in episodes[env_id]:
        counts = classify(steps)
        assert counts["pass"] + counts["fail"] == 1  # exactly one final verdict per episode
        total += counts
    for kind in ("failure", "retry", "recovery", "pass", "fail"):
        assert total[kind] > 0, (env_id, kind, dict(total))


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_some_failure_is_repeated_identically_before_a_recovery(episodes, env_id):
    """A retry that repeats the *same* mistake: the same action failing twice in a row."""
    repeated = 0
    for _, steps, _ in episodes[env_id]:
        for (a1, r1), (a2, r2) in zip(steps, steps[1:], strict=False):
            if a1 == a2 and r1[4].get("error") and r2[4].get("error") and r1[4]["error"] == r2[4]["error"]:
                repeated += 1
    assert repeated > 0


def test_some_agent_gives_up_at_the_step_limit(episodes):
    truncated = [s for runs in episodes.values() for s, _, _ in runs if s["truncated"]]
    assert truncated and all(s["steps"] == 30 for s in truncated)


def test_runner_passes_each_note_before_its_step(episodes):
    for runs in episodes.values():
        for summary, steps, notes in runs:
            assert summary["steps"] == len(steps) == len(notes)
            assert all(isinstance(n, dict) and n["thought"] for n in notes)
            assert summary["return"] == sum(r[1] for _, r in steps)


@pytest.mark.parametrize("env_id", ["trajrec/MathCalc-v0", "trajrec/Shell-v0", "trajrec/SupportTicket-v0"])
def test_same_seed_same_episode(env_id):
    env = Capture(gym.make(env_id))
    first = [run_episode(env, make_agent(env_id, seed=s), seed=s) and list(env.steps) for s in (4, 9)]
    again = [run_episode(env, make_agent(env_id, seed=s), seed=s) and list(env.steps) for s in (4, 9)]
    assert first == again


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_full_skill_is_nearly_always_clean(env_id):
    env = Capture(gym.make(env_id, **_kwargs(env_id)))
    results = [
        classify(env.steps)
        for seed in range(6)
        if run_episode(env, make_agent(env_id, seed=seed, skill=1.0), seed=seed)
    ]
    assert sum(c["pass"] for c in results) >= 5
    assert sum(c["failure"] for c in results) <= 2
    env.close()


def test_make_agent_validates():
    with pytest.raises(ValueError, match="no scripted agent for env id 'trajrec/Math-v0'") as exc:
        make_agent("trajrec/Math-v0", seed=0)
    assert "did you mean 'trajrec/MathCalc-v0'" in str(exc.value) and "trajrec/Shell-v0" in str(exc.value)
    with pytest.raises(ValueError, match="skill must be a number in"):
        make_agent("trajrec/Shell-v0", seed=0, skill=1.5)
    assert set(AGENTS) == set(envs.ENV_IDS)
    assert isinstance(make_agent("trajrec/MathCalc-v0", seed=1), ScriptedMathAgent)


def test_agent_reset_needs_the_task_info():
    agent = make_agent("trajrec/MathCalc-v0", seed=0)
    with pytest.raises(ValueError, match=r"expected the reset info of trajrec/MathCalc-v0 with info\['task'\]\['id'\]"):
        agent.reset("obs", {})
