"""Any string is a legal action in every env, and the same seed and actions give the same episode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trajrec import envs

ENV_IDS = envs.ENV_IDS
NASTY = [
    "",
    " ",
    "\x00",
    "\ud800",
    "caf\u00e9 \u2603 \U0001f600",
    "x" * 100_000,
    "[" * 16_000,
    "{" * 16_000,
    '{"tool": ' * 2000,
    '{"tool": "x", "args": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"tool": 1e999}',
    '{"tool": "' + "9" * 5000 + '"}',
    '{"args": {}}',
    '{"name": "x", "arguments": "{not json"}',
    "rm -rf /",
    "echo $(whoami) > /etc/passwd",
    "'" * 101,
    "\n\n\n",
    "\r\n\t",
]


def _make(env_id):
    return gym.make(env_id, **({"timeout": 2.0} if "CodeRepair" in env_id else {})).unwrapped


def _check_step(env, action):
    obs, reward, terminated, truncated, info = env.step(action)
    assert obs in env.observation_space
    assert isinstance(reward, float) and isinstance(terminated, bool) and isinstance(truncated, bool)
    assert "tool" in info
    if "error" in info:
        assert isinstance(info["error"], str) and info["error"]
    json.dumps(env.state_dict())  # plain JSON-like data
    return terminated or truncated


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_nasty_actions_are_error_observations(env_id):
    env = _make(env_id)
    env.reset(seed=0)
    for action in [*NASTY, None, 42, b"bytes", {"tool": "x"}]:
        if _check_step(env, action):
            env.reset(seed=0)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_samples_from_the_action_space_never_raise(env_id):
    env = _make(env_id)
    env.action_space.seed(0)
    env.reset(seed=0)
    for _ in range(30):
        if _check_step(env, env.action_space.sample()):
            env.reset(seed=0)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_hypothesis_text_never_raises(env_id, text):
    env = _make(env_id)
    env.reset(seed=1)
    _check_step(env, text)
    env.close()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@pytest.mark.parametrize("env_id", ENV_IDS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_hypothesis_tool_calls_never_raise(env_id, data):
    env = _make(env_id)
    env.reset(seed=2)
    names = [spec.name for spec in env.tool_specs if spec.name not in ("run_tests", "submit")]
    tool = data.draw(st.sampled_from([*names, "nope"]))
    spec = next((s for s in env.tool_specs if s.name == tool), None)
    keys = list(spec.properties) if spec else ["x"]
    args = data.draw(st.dictionaries(st.sampled_from([*keys, "extra"]), _JSON, max_size=4))
    _check_step(env, json.dumps({"tool": tool, "args": args}))
    env.close()


SCRIPTS = {
    "trajrec/MathCalc-v0": [
        '{"tool": "calc", "args": {"expr": "2*3"}}',
        "junk",
        '{"tool": "calc", "args": {"expr": "1/0"}}',
        '{"tool": "submit", "args": {"answer": 8}}',
    ],
    "trajrec/CodeRepair-v0": [
        '{"tool": "list_files", "args": {}}',
        '{"tool": "run_tests", "args": {}}',
        '{"tool": "edit", "args": {"path": "stats.py", "start": 8, "end": 8, "text": "    return sum(values) / len(values)"}}',
        "oops",
        '{"tool": "run_tests", "args": {}}',
        '{"tool": "submit", "args": {}}',
    ],
    "trajrec/Shell-v0": [
        "ls",
        "mkdir ~/Pictures",
        "mv ~/Downloads/*.jpg ~/Pictures/",
        "rm /nope",
        '{"tool": "ls", "args": {"path": "~/Pictures"}}',
        "done",
    ],
    "trajrec/SupportTicket-v0": [
        '{"tool": "search", "args": {"query": "refund"}}',
        '{"tool": "read", "args": {"doc_id": "KB-104"}}',
        "x",
        '{"tool": "answer", "args": {"text": "Within 30 days (KB-104)."}}',
    ],
}


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_and_actions_give_identical_episodes(env_id):
    def play():
        env = _make(env_id)
        obs, info = env.reset(seed=0)
        record = [(obs, info, env.state_dict())]
        for action in SCRIPTS[env_id]:
            obs, reward, terminated, truncated, info = env.step(action)
            record.append((obs, reward, terminated, truncated, info, env.state_dict()))
        env.close()
        return json.dumps(record, sort_keys=True)

    first, second = play(), play()
    assert first == second
    assert '"checks"' in first


def test_code_repair_timeouts_are_deterministic_too():
    def play():
        env = gym.make("trajrec/CodeRepair-v0", timeout=1.0).unwrapped
        env.reset(options={"task_id": "code-search-1"})
        step = env.step('{"tool": "run_tests", "args": {}}')
        state = env.state_dict()
        env.close()
        return json.dumps([step, state], sort_keys=True)

    assert play() == play()


_EPISODES = """
import json, gymnasium as gym, envs
from trajrec.envs.agents import make_agent
out = []
for env_id in envs.ENV_IDS:
    env = gym.make(env_id, **({"timeout": 1.0} if "CodeRepair" in env_id else {})).unwrapped
    for seed in range(6):
        obs, info = env.reset(seed=seed)
        agent = make_agent(env_id, seed=seed)
        agent.reset(obs, info)
        steps = [[obs, info]]
        done = False
        while not done:
            action, note = agent.act(obs, info)
            obs, reward, terminated, truncated, info = env.step(action)
            steps.append([action, note, obs, reward, terminated, truncated, info, env.state_dict()])
            done = terminated or truncated
        out.append(steps)
    env.close()
print(json.dumps(out, sort_keys=True))
"""


def test_episodes_do_not_depend_on_the_hash_seed():
    """Replays run in another process: nothing may depend on PYTHONHASHSEED (set order, str hashes)."""
    root = Path(__file__).resolve().parents[2]
    # Both children at once: the machine's second core takes one (the suite itself runs in one process).
    children = [subprocess.Popen([sys.executable, "-c", _EPISODES], cwd=root,
                                 env={**os.environ, "PYTHONHASHSEED": hash_seed}, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for hash_seed in ("1", "2")]
    outputs = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        outputs.append(out)
    assert outputs[0] and outputs[0] == outputs[1]
