from __future__ import annotations

import gc
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest

from trajrec.recorder import (
    FORMAT_VERSION,
    EpisodeClosedError,
    Recorder,
    TrajrecUsageError,
    Unencodable,
    open_episode,
)


def test_records_reset_steps_notes_checks_and_provenance(tmp_path, stub_env):
    env = Recorder(stub_env(), tmp_path / "run", agent={"name": "scripted", "version": "1", "model": "none"},
                   task={"split": "train"}, provenance={"lineage": {"generator": "test"}})
    obs, info = env.reset(seed=7, options={"level": 2})
    env.note(thought="look first", model={"tokens": 12})
    env.step("cat notes.txt")
    env.step("write done yes")
    env.check(True, kind="rule", judge="pytest@8", rationale="unit tests pass", tags=["fast"])
    env.check(-1, kind="judge", judge="human:ana", target=0, rationale="slow start")
    env.close()
    ep = open_episode(env.episode_path)
    assert env.episode_path.parent == tmp_path / "run" and env.episode_path.name.endswith(".msgpack.zst")
    assert ep.reset.seed == 7 and ep.reset.options == {"level": 2} and ep.reset.observation == obs
    assert ep.task["id"] == "stub-1" and ep.task["split"] == "train" and ep.task["verification"] == ["environment"]
    assert ep.task["seed"] == 7
    prov = ep.provenance
    assert prov["agent"]["model"] == "none" and prov["lineage"] == {"generator": "test"}
    assert prov["recorder"]["name"] == "trajrec" and prov["recorder"]["format_version"] == FORMAT_VERSION == 3
    assert prov["packages"]["gymnasium"] == gym.__version__ and prov["host"] and prov["start_time"]
    assert ep[0].note == {"thought": "look first", "model": {"tokens": 12}} and ep[1].note is None
    assert ep[0].observation == "hello" and ep[1].reward == 1.0 and ep[1].terminated
    assert ep[0].duration >= 0 and ep[0].time > 1e9
    by_judge = {c.judge: c for c in ep.checks}
    assert by_judge["stub-goal@1"].target == "episode" and by_judge["stub-goal@1"].passed is True
    assert by_judge["pytest@8"].target == 1 and by_judge["pytest@8"].tags == ("fast",)
    assert by_judge["human:ana"].target == 0
    assert [c.judge for c in ep[1].checks] == ["stub-goal@1", "pytest@8"]
    assert ep.summary["outcome"] == "passed" and ep.summary["checks"]["total"] == 3


def test_each_reset_starts_a_new_file(tmp_path, stub_env):
    env = Recorder(stub_env(), tmp_path)
    env.reset(seed=1)
    first = env.episode_path
    env.step("cat todo.txt")
    env.reset(seed=2)
    assert env.episode_path != first
    env.step("cat notes.txt")
    env.close()
    assert [len(open_episode(p)) for p in env.episode_paths] == [1, 1]
    assert open_episode(first).summary["finished"] is True



def test_step_exception(tmp_path, stub_env):
    env = Recorder(stub_env(), tmp_path)
    env.reset(seed=0)
    env.step("cat notes.txt")
    with pytest.raises(RuntimeError, match="the env exploded") as raised:
        env.step("boom now")
    assert type(raised.value) is RuntimeError
    env.close()
    ep = open_episode(env.episode_path)
    assert len(ep) == 2
    f = ep[1].failure
    assert f.kind == "exception" and f.type == "RuntimeError" and f.message == "the env exploded"
    assert "Traceback" in f.traceback and "the env exploded" in f.traceback
    assert ep.summary["outcome"] == "error"


def test_exception_in_reset_is_recorded_then_reraised(tmp_path, stub_env):
    def bad_reset(env, seed, options):
        raise ValueError("no such task")

    env = Recorder(stub_env(reset_fn=bad_reset), tmp_path)
    with pytest.raises(ValueError, match="no such task"):
        env.reset(seed=3)
    ep = open_episode(env.episode_path)
    assert ep.reset.failure.kind == "exception" and ep.reset.failure.type == "ValueError"
    assert len(ep) == 0 and ep.summary["outcome"] == "error"
    with pytest.raises(TrajrecUsageError, match="before reset"):
        env.step("x")


def test_any_data_sparse_info_unicode_numpy_bigint_unencodable(tmp_path, stub_env):
    class Opaque:
        def __repr__(self):
            return "<Opaque thing>"

    outputs = [
        ("日本語 ☃ \U0001F600", {"a": 1}),
        (np.arange(6, dtype=np.int16).reshape(2, 3), {"b": np.float32(2.5), "nested": {"t": (1, 2)}}),
        (b"\x00bytes", {}),
        ({"text": "x", "n": [1, None, float("nan")]}, {"a": 2**90, "inf": math.inf}),
        (None, {"obj": Opaque()}),
    ]

    def step_fn(env, action):
        obs, info = outputs[env.t]
        env.t += 1
        return obs, np.float64(0.5), False, False, info

    def reset_fn(env, seed, options):
        env.t = 0
        return "start", {}

    env = Recorder(stub_env(step_fn=step_fn, reset_fn=reset_fn), tmp_path)
    env.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(len(outputs)):
            env.step(f"act {i}")
    env.close()
    ep = open_episode(env.episode_path)
    assert ep[0].observation == "日本語 ☃ \U0001F600" and ep[0].info == {"a": 1}
    assert np.array_equal(ep[1].observation, outputs[1][0]) and ep[1].observation.dtype == np.int16
    assert ep[1].info["b"] == np.float32(2.5) and ep[1].info["nested"]["t"] == (1, 2)
    assert ep[2].observation == b"\x00bytes" and ep[2].info == {}
    assert ep[3].info["a"] == 2**90 and math.isnan(ep[3].observation["n"][2])
    assert isinstance(ep[4].info["obj"], Unencodable) and ep[4].info["obj"].repr == "<Opaque thing>"
    assert isinstance(ep[0].reward, np.float64)
    assert ep.summary["return"] == pytest.approx(2.5)


def test_self_referencing_value_does_not_take_the_agent_down(tmp_path, stub_env):
    loop: list = []
    loop.append(loop)

    def step_fn(env, action):
        return "ok", 0.0, False, False, {"loop": loop}

    env = Recorder(stub_env(step_fn=step_fn), tmp_path)
    env.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env.step("x")
    env.close()
    info = open_episode(env.episode_path)[0].info
    # Only the self-reference is marked: the list holding it and the info around it are kept.
    assert isinstance(info["loop"], list) and len(info["loop"]) == 1
    assert info["loop"][0] == Unencodable("builtins.list", "<a value that contains itself>")


def test_state_diffs_and_state_at_match_the_live_state(tmp_path, stub_env):
    env = Recorder(stub_env(), tmp_path, frame_steps=3)
    env.reset(seed=0)
    inner = env.unwrapped
    seen = [repr(inner.state)]
    for i in range(10):
        env.step(f"write f{i % 4}.txt v{i}" if i % 3 else "cat nope")
        seen.append(repr(inner.state))  # the live object is mutated in place by the env
    env.close()
    ep = open_episode(env.episode_path)
    assert len(ep._frames) >= 4  # several frames, so snapshots are used
    assert repr(ep.state_at(-1)) == seen[0]
    for i in range(10):
        assert repr(ep.state_at(i)) == seen[i + 1]
    d = ep[1].diff
    assert any(row.path == ["files", "f1.txt"] and row.action == "dictionary_item_added" for row in d)
    assert any(row.path[0] == "log" for row in d)


def test_state_fn_is_used_and_a_broken_one_warns_once(tmp_path, stub_env):
    calls = []

    def state_fn(env):
        calls.append(1)
        if len(calls) > 2:
            raise KeyError("gone")
        return {"n": len(calls)}

    env = Recorder(stub_env(), tmp_path, state_fn=state_fn)
    env.reset(seed=0)
    env.step("cat notes.txt")
    with pytest.warns(RuntimeWarning, match="state_fn raised"):
        env.step("cat notes.txt")
    env.step("cat notes.txt")
    env.close()
    ep = open_episode(env.episode_path)
    assert ep.reset.state == {"n": 1} and ep.state_at(0) == {"n": 2} and len(ep) == 3


def test_dropped_unclosed_wrapper_leaves_a_readable_file(tmp_path, stub_env):
    env = Recorder(stub_env(), tmp_path)
    env.reset(seed=0)
    env.step("cat notes.txt")
    path = env.episode_path
    with pytest.warns(ResourceWarning, match="without close"):
        del env
        gc.collect()
    ep = open_episode(path)
    assert len(ep) == 1 and ep.complete


def test_validation_messages_name_the_fix(tmp_path, stub_env):
    with pytest.raises(TrajrecUsageError, match="gymnasium.Env"):
        Recorder(object(), tmp_path)  # type: ignore[arg-type]
    with pytest.raises(TrajrecUsageError, match="state_fn must be callable"):
        Recorder(stub_env(), tmp_path, state_fn=3)  # type: ignore[arg-type]
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrajrecUsageError, match="not a folder"):
        Recorder(stub_env(), tmp_path / "file")
    env = Recorder(stub_env(), tmp_path / "ok")
    with pytest.raises(TrajrecUsageError, match="before reset"):
        env.step("x")
    env.reset(seed=0)
    with pytest.raises(TrajrecUsageError, match="needs a step first"):
        env.check(True, judge="x@1")
    with pytest.raises(TrajrecUsageError, match="kind must be one of"):
        env.check(True, judge="x@1", kind="vibes", target="episode")
    # A tester: a judge with a space was recorded although labels refuse it and --prefer cannot name it.
    for judge in ("j 1", " ", "", "x@1\n"):
        with pytest.raises(TrajrecUsageError, match="without spaces"):
            env.check(True, judge=judge, target="episode")
    with pytest.raises(TrajrecUsageError, match=r"\(no step is recorded yet\), got 5"):
        env.check(True, judge="x@1", target=5)  # was "a recorded step index 0..-1"
    env.step("x")
    with pytest.raises(TrajrecUsageError, match=r"step index 0\.\.0, got 5"):
        env.check(True, judge="x@1", target=5)
    env.close()
    with pytest.raises(EpisodeClosedError):
        env.reset()
    # A note after close() reached no step and was dropped without a word, while step and check raise.
    with pytest.raises(EpisodeClosedError, match="cannot note"):
        env.note(thought="too late")
    with pytest.raises(EpisodeClosedError):
        env.check(True, judge="x@1", target="episode")


def test_is_a_good_gymnasium_wrapper(tmp_path):
    base = gym.make("CartPole-v1")
    env = Recorder(base, tmp_path, agent="random")
    assert isinstance(env, gym.Wrapper) and env.spec is not None
    assert env.spec.additional_wrappers[-1].name == "Recorder"
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    out = env.step(env.action_space.sample())
    assert len(out) == 5
    env.close()
    ep = open_episode(env.episode_path)
    assert ep.task["env_id"] == "CartPole-v1" and ep.provenance["agent"] == {"name": "random"}
    assert np.array_equal(ep[0].observation, out[0])


def test_a_zero_step_episode_says_it_has_no_steps(tmp_path, stub_env):
    # Messages said "steps 0..-1" for an episode of no step.
    from trajrec.recorder import StepIndexError, open_episode

    env = Recorder(stub_env(), tmp_path)
    env.reset(seed=0)
    env.close()
    with open_episode(env.episode_path) as ep:
        assert len(ep) == 0
        with pytest.raises(StepIndexError, match="has no steps$") as err:
            ep[0]
        assert "0..-1" not in str(err.value)
        with pytest.raises(StepIndexError, match="no steps: only -1, the reset state"):
            ep.state_at(0)
        assert ep.state_at(-1) == env.unwrapped.state_dict()
