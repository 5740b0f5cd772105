"""Task banks, task selection by seed and by task id, and the reset contract shared by all envs."""

from __future__ import annotations

import gymnasium as gym
import pytest
from trajrec import envs

ENV_IDS = envs.ENV_IDS
VERIFICATION = {
    "trajrec/MathCalc-v0": "rule",
    "trajrec/CodeRepair-v0": "rule",
    "trajrec/Shell-v0": "environment",
    "trajrec/SupportTicket-v0": "judge",
}


@pytest.fixture(params=ENV_IDS)
def env(request):
    env = gym.make(request.param)
    yield env
    env.close()


def test_bank_has_at_least_20_unique_tasks_with_both_splits(env):
    ids = env.unwrapped.task_ids()
    assert len(ids) >= 20
    assert len(set(ids)) == len(ids)
    splits = set()
    for seed in range(len(ids)):
        _, info = env.reset(seed=seed)
        splits.add(info["task"]["split"])
    assert splits == {"train", "test"}


def test_seed_picks_task_modulo_bank_size(env):
    ids = env.unwrapped.task_ids()
    for seed in (0, 1, 7, len(ids), len(ids) + 3, 10_000):
        _, info = env.reset(seed=seed)
        assert info["task"]["id"] == ids[seed % len(ids)]


def test_unseeded_reset_is_reproducible_after_a_seeded_one(env):
    env.reset(seed=5)
    first = [env.reset()[1]["task"]["id"] for _ in range(5)]
    env.reset(seed=5)
    again = [env.reset()[1]["task"]["id"] for _ in range(5)]
    assert first == again


def test_task_id_option_wins_over_seed(env):
    ids = env.unwrapped.task_ids()
    _, info = env.reset(seed=0, options={"task_id": ids[-1]})
    assert info["task"]["id"] == ids[-1]


def test_unknown_task_id_names_nearest_ids(env):
    ids = env.unwrapped.task_ids()
    near = ids[3][:2] + ids[3][3:]  # one letter dropped
    with pytest.raises(ValueError, match="unknown task id") as exc:
        env.reset(options={"task_id": near})
    assert ids[3] in str(exc.value)
    assert "task_ids()" in str(exc.value)


def test_unknown_reset_option_is_refused(env):
    with pytest.raises(ValueError, match="the only supported option is 'task_id'"):
        env.reset(options={"task": "x"})


def test_reset_info_contract(env):
    obs, info = env.reset(seed=2)
    task = info["task"]
    assert set(task) == {"id", "text", "split", "verification"}
    assert task["split"] in ("train", "test")
    assert task["verification"] == [VERIFICATION[env.spec.id]]
    assert task["text"] in obs
    names = []
    for tool in info["tools"]:
        assert tool["type"] == "function"
        fn = tool["function"]
        assert set(fn) == {"name", "description", "parameters"}
        assert fn["parameters"]["type"] == "object"
        assert set(fn["parameters"]["required"]) <= set(fn["parameters"]["properties"])
        names.append(fn["name"])
        assert fn["name"] in obs  # the reset observation lists the tools
    assert len(names) == len(set(names))


def test_state_dict_has_common_keys(env):
    assert env.unwrapped.state_dict()["status"] == "ready"
    env.reset(seed=1)
    state = env.unwrapped.state_dict()
    assert state["task_id"] == env.unwrapped.task_ids()[1]
    assert state["step"] == 0 and state["status"] == "running"
