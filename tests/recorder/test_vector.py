"""VectorRecorder: one file per sub-env episode, equal step for step to a single-env recording of the same seeds,
under each autoreset mode, with SyncVectorEnv and AsyncVectorEnv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import trajrec.envs  # noqa: F401  (registers trajrec/*)
from trajrec import Recorder, VectorRecorder, open_episode
from trajrec.recorder import TrajrecUsageError
from trajrec.recorder.vector import unbatch_info

SEED = 11
N = 3


def cartpole_action(j: int, k: int, i: int) -> int:
    """Sub-env j's action at step i of its k-th episode: fixed, so a single env can be driven the same way."""
    return int((i * 7 + j * 3 + k) % 5 < 2)


def math_action(j: int, k: int, i: int) -> str:
    # A calc, a malformed call, more calcs, then a submit after a few steps that differ per sub-env and episode.
    if i >= 1 + (j + k) % 3:
        return json.dumps({"tool": "submit", "args": {"answer": str(i)}})
    if i == 1:
        return '{"tool": "calc", "args": '  # malformed: a failed step in the env
    return json.dumps({"tool": "calc", "args": {"expr": f"{i}+{j}"}})


ACTIONS = {"CartPole-v1": cartpole_action, "trajrec/MathCalc-v0": math_action}


def record_vector(tmp_path: Path, env_id: str, mode: AutoresetMode, vectorization: str, steps: int):
    kwargs: dict = {"autoreset_mode": mode}
    if vectorization == "async" and env_id.startswith("trajrec/"):
        # Shared memory keeps Text observations as indices into the space's charset, which the built-in envs'
        # prompts overflow (newlines, punctuation): pipes carry the strings as they are.
        kwargs["shared_memory"] = False
    vec = gym.make_vec(env_id, num_envs=N, vectorization_mode=vectorization, vector_kwargs=kwargs)
    envs = VectorRecorder(vec, tmp_path / "vec", agent="fixed")
    act = ACTIONS[env_id]
    episode = [0] * N
    step = [0] * N
    pending_reset = np.zeros(N, dtype=bool)  # NEXT_STEP: this sub-env resets during the next step
    envs.reset(seed=SEED)
    for _ in range(steps):
        actions = [act(j, episode[j], step[j]) for j in range(N)]
        batch = tuple(actions) if env_id.startswith("trajrec/") else np.array(actions)
        _, _, terminated, truncated, _ = envs.step(batch)
        done = np.logical_or(terminated, truncated)
        for j in range(N):
            if pending_reset[j]:
                pending_reset[j] = False
                continue  # the action was ignored; the step was the reset
            step[j] += 1
            if done[j]:
                episode[j] += 1
                step[j] = 0
                if mode == AutoresetMode.NEXT_STEP:
                    pending_reset[j] = True
        if mode == AutoresetMode.DISABLED and done.any():
            envs.reset(options={"reset_mask": done})
    envs.close()
    return envs


def record_single(tmp_path: Path, env_id: str, j: int, lengths: list[int], finished: list[bool]) -> list[Path]:
    env = Recorder(gym.make(env_id), tmp_path / f"single{j}", agent="fixed")
    act = ACTIONS[env_id]
    for k, (length, ended) in enumerate(zip(lengths, finished)):
        env.reset(seed=SEED + j if k == 0 else None)
        for i in range(length):
            _, _, terminated, truncated, _ = env.step(act(j, k, i))
        assert bool(terminated or truncated) == ended or length == 0
    env.close()
    return env.episode_paths


def same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


@pytest.mark.parametrize("vectorization", ["sync", "async"])
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED],
                         ids=lambda m: m.value)
@pytest.mark.parametrize("env_id", ["CartPole-v1", "trajrec/MathCalc-v0"])
def test_vector_episodes_match_single_env_recordings(tmp_path, env_id, mode, vectorization):
    steps = 40 if env_id == "CartPole-v1" else 12
    envs = record_vector(tmp_path, env_id, mode, vectorization, steps)
    compared_steps = 0
    for j, paths in enumerate(envs.episode_paths):
        vector_eps = [open_episode(p) for p in paths]
        assert len(vector_eps) >= 2, "each sub-env should finish at least one episode and start another"
        lengths = [len(ep) for ep in vector_eps]
        finished = [bool(ep.summary["terminated"] or ep.summary["truncated"]) for ep in vector_eps]
        assert all(finished[:-1])
        single_eps = [open_episode(p) for p in record_single(tmp_path, env_id, j, lengths, finished)]
        for k, (v, s) in enumerate(zip(vector_eps, single_eps)):
            assert v.complete and s.complete
            assert v.reset.seed == (SEED + j if k == 0 else None) == s.reset.seed
            assert same(v.reset.observation, s.reset.observation)
            assert v.reset.info == s.reset.info
            assert v.reset.state == s.reset.state
            assert v.task == s.task
            assert v.provenance["vector"] == {"index": j, "num_envs": N, "class": type(envs.env).__name__,
                                              "autoreset_mode": mode.value}
            assert v.provenance["env_package"]["class"] == s.provenance["env_package"]["class"]
            assert v.provenance["run_id"] == envs.run_id
            assert len(v) == len(s)
            for vs, ss in zip(v, s):
                assert same(vs.action, ss.action), (j, k, vs.index)
                assert same(vs.observation, ss.observation), (j, k, vs.index)
                assert vs.reward == ss.reward and type(vs.reward) is type(ss.reward)
                assert (vs.terminated, vs.truncated) == (ss.terminated, ss.truncated)
                assert vs.info == ss.info
                assert vs.failure == ss.failure and vs.retry_of == ss.retry_of and vs.recovers == ss.recovers
                last_same_step = mode == AutoresetMode.SAME_STEP and (vs.terminated or vs.truncated)
                if not last_same_step:  # under SAME_STEP the state after a last step is gone (documented)
                    assert vs.diff == ss.diff
                assert vs.duration > 0
                compared_steps += 1
            summary_keys = ("steps", "return", "outcome", "failures", "retries", "recoveries", "checks")
            assert {k_: v.summary[k_] for k_ in summary_keys} == {k_: s.summary[k_] for k_ in summary_keys}
    assert compared_steps >= steps


def test_math_vector_recording_has_state_diffs_and_failures(tmp_path):
    envs = record_vector(tmp_path, "trajrec/MathCalc-v0", AutoresetMode.NEXT_STEP, "sync", 10)
    eps = [open_episode(p) for paths in envs.episode_paths for p in paths]
    assert any(st.diff for ep in eps for st in ep)
    assert any(st.failure is not None for ep in eps for st in ep)
    assert all(ep.reset.state is not None for ep in eps)


def test_notes_and_checks_go_to_the_sub_env(tmp_path):
    envs = VectorRecorder(gym.make_vec("CartPole-v1", num_envs=2), tmp_path)
    envs.reset(seed=0)
    envs.note(1, thought="push right")
    envs.step(np.array([0, 1]))
    envs.check(0, True, judge="pytest@8", target="episode")
    with pytest.raises(TrajrecUsageError, match="sub-env index must be an int from 0 to 1, got 2"):
        envs.note(2, thought="x")
    envs.close()
    first, second = (open_episode(paths[0]) for paths in envs.episode_paths)
    assert first[0].note is None and second[0].note == {"thought": "push right"}
    assert [c.judge for c in first.checks] == ["pytest@8"] and not second.checks


def test_exception_is_recorded_in_the_sub_env_that_raised_and_fails_the_others_then_raised(tmp_path):
    class Boom(gym.Env):
        observation_space = gym.spaces.Discrete(3)
        action_space = gym.spaces.Discrete(3)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return 0, {}

        def step(self, action):
            if action == 2:
                raise RuntimeError("boom")
            return 1, 0.0, False, False, {}

    envs = VectorRecorder(gym.vector.SyncVectorEnv([Boom, Boom]), tmp_path)
    envs.reset(seed=0)
    envs.step(np.array([0, 0]))
    with pytest.raises(RuntimeError, match="boom"):
        envs.step(np.array([0, 2]))
    envs.close()
    ep0, ep1 = (open_episode(paths[0]) for paths in envs.episode_paths)
    assert len(ep1) == 2 and ep1[1].failure.kind == "exception" and "boom" in ep1[1].failure.message
    # Sub-env 0 stepped before sub-env 1 raised: a failed step naming sub-env 1, not an exception of its own
    # (tests/recorder/test_vector_raise.py).
    assert len(ep0) == 2 and ep0[1].failure.kind == "vector_error" and "sub-env 1 raised RuntimeError: boom" in \
        ep0[1].failure.message


def test_reset_mask_is_not_taken_from_the_callers_options(tmp_path):
    vec = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync",
                       vector_kwargs={"autoreset_mode": AutoresetMode.DISABLED})
    envs = VectorRecorder(vec, tmp_path)
    envs.reset(seed=0)
    options = {"reset_mask": np.array([False, True])}
    envs.reset(options=options)
    assert "reset_mask" in options
    envs.close()
    assert [len(p) for p in envs.episode_paths] == [1, 2]
    assert open_episode(envs.episode_paths[1][1]).reset.options is None


def test_refuses_a_single_env_with_the_fix(tmp_path):
    with pytest.raises(TrajrecUsageError, match=r"expects a gymnasium.vector.VectorEnv, got TimeLimit; "
                                                 r"for a single env use trajrec.Recorder\(env, out_dir\)"):
        VectorRecorder(gym.make("CartPole-v1"), tmp_path)
    with pytest.raises(TrajrecUsageError, match="it is a vector env .* record it with trajrec.VectorRecorder"):
        Recorder(gym.make_vec("CartPole-v1", num_envs=2), tmp_path)


def test_unbatch_info_nested_and_masked():
    vec = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2)
    infos: dict = {}
    infos = vec._add_info(infos, {"a": 1, "f": np.float32(0.5), "nested": {"x": "s"}, "arr": np.zeros(2)}, 0)
    infos = vec._add_info(infos, {"a": 2, "other": True}, 1)
    zero, one = unbatch_info(infos, 0), unbatch_info(infos, 1)
    assert zero.keys() == {"a", "f", "nested", "arr"} and one == {"a": 2, "other": True}
    assert type(zero["a"]) is int and type(zero["f"]) is np.float32 and zero["nested"] == {"x": "s"}
    assert type(one["other"]) is bool and np.array_equal(zero["arr"], np.zeros(2))


KILL_SCRIPT = textwrap.dedent("""
    import os, sys, gymnasium as gym, numpy as np
    from trajrec import VectorRecorder
    envs = VectorRecorder(gym.make_vec("CartPole-v1", num_envs=2), sys.argv[1])
    envs.reset(seed=0)
    for t in range(int(sys.argv[2])):
        envs.step(np.array([t % 2, (t // 2) % 2]))
    print("stepped", flush=True)
    os._exit(0)  # no close, no index: as if killed here
""")


def test_every_returned_step_is_on_disk_without_close(tmp_path):
    out = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(tmp_path), "9"], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "stepped", out.stderr
    files = sorted(tmp_path.glob("*.msgpack.zst"))
    eps = [open_episode(f) for f in files]
    assert sum(len(ep) for ep in eps) == 18 and not any(ep.complete for ep in eps)
    assert os.path.getsize(files[0]) > 0


def test_a_sub_env_first_episode_replays_in_a_single_env(tmp_path, capsys):
    from trajrec.cli import main

    envs = record_vector(tmp_path, "trajrec/MathCalc-v0", AutoresetMode.NEXT_STEP, "sync", 6)
    for paths in envs.episode_paths:
        assert main(["replay", str(paths[0])]) == 0
        assert "no divergence" in capsys.readouterr().out


def test_a_failing_reset_is_recorded_for_each_sub_env_then_raised(tmp_path):
    class BadReset(gym.Env):
        observation_space = gym.spaces.Discrete(2)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            raise ValueError("no tasks left")

    envs = VectorRecorder(gym.vector.SyncVectorEnv([BadReset, BadReset]), tmp_path)
    with pytest.raises(ValueError, match="no tasks left"):
        envs.reset(seed=4)
    envs.close()
    eps = [open_episode(paths[0]) for paths in envs.episode_paths]
    assert [ep.reset.seed for ep in eps] == [4, 5]
    assert all(ep.reset.failure.kind == "exception" and ep.summary["outcome"] == "error" for ep in eps)


def test_next_step_check_after_the_last_step_reaches_the_ended_episode(tmp_path):
    vec = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync")
    envs = VectorRecorder(vec, tmp_path)
    envs.reset(seed=0)
    terminated = np.zeros(2, dtype=bool)
    while not terminated[0]:
        _, _, terminated, _, _ = envs.step(np.array([1, 0]))
    envs.check(0, False, judge="fell@1", target="episode")
    envs.step(np.array([1, 0]))  # resets sub-env 0
    envs.close()
    first, second = (open_episode(p) for p in envs.episode_paths[0][:2])
    assert [c.judge for c in first.checks] == ["fell@1"] and first.summary["outcome"] == "failed"
    assert not second.checks and len(second) == 0


def test_infos_of_vector_wrappers_without_masks_are_split(tmp_path):
    vec = gym.wrappers.vector.RecordEpisodeStatistics(gym.make_vec("CartPole-v1", 2, vectorization_mode="sync"))
    envs = VectorRecorder(vec, tmp_path)
    envs.reset(seed=0)
    for _ in range(40):
        envs.step(np.array([1, 0]))
    envs.close()
    for paths in envs.episode_paths:
        ep = open_episode(paths[0])
        stats = ep[-1].info["episode"]
        assert stats["l"] == len(ep) and stats["r"] == ep.summary["return"] and stats["t"] >= 0
        assert all("episode" not in st.info for st in list(ep)[:-1])


def test_info_keys_that_are_not_text_are_unbatched_with_their_masks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Gymnasium names the mask of info key 7 "_7": a sub-env that never returned the key does not get it (with
    a fill value), and no "_7" mask is recorded as data."""
    import gymnasium as gym

    from trajrec import VectorRecorder, open_episode

    class _E(gym.Env):
        observation_space = gym.spaces.Box(-10, 10, (2,))
        action_space = gym.spaces.Discrete(2)

        def __init__(self, i: int) -> None:
            self.i = i

        def reset(self, seed=None, options=None):  # type: ignore[no-untyped-def]
            return np.zeros(2, np.float32), {}

        def step(self, a):  # type: ignore[no-untyped-def]
            info = {"name": f"env{self.i}"}
            if self.i == 1:
                info[7] = 3.5
                info["d"] = {0: "zero"}
            return np.zeros(2, np.float32), 0.0, True, False, info

    rec = VectorRecorder(gym.vector.SyncVectorEnv([lambda: _E(0), lambda: _E(1)]), tmp_path)
    rec.reset(seed=[0, 1])
    rec.step(np.array([0, 0]))
    rec.close()
    infos = sorted((open_episode(p)[0].info for p in tmp_path.rglob("*.msgpack.zst")
                    if len(open_episode(p))), key=lambda i: i["name"])
    assert infos == [{"name": "env0"}, {"name": "env1", 7: 3.5, "d": {0: "zero"}}]


@pytest.mark.parametrize("vector_class", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
def test_sub_envs_made_by_gym_make_give_each_episode_its_env_id(tmp_path, capsys, vector_class):
    # A SyncVectorEnv/AsyncVectorEnv of gym.make envs has no spec of its own: the task comes from the sub-envs'.
    from trajrec.cli import main

    makers = [lambda: gym.make("CartPole-v1", sutton_barto_reward=True)] * 2
    env = VectorRecorder(vector_class(makers), tmp_path / "run")
    env.reset(seed=[1, 2])
    for _ in range(3):
        env.step(np.array([0, 1]))
    env.close()
    for paths in env.episode_paths:
        with open_episode(paths[0]) as ep:
            task = ep.header["task"]
            assert task["env_id"] == "CartPole-v1"
            assert task["entry_point"] == "gymnasium.envs.classic_control.cartpole:CartPoleEnv"
            assert task["env_kwargs"] == {"sutton_barto_reward": True}
            assert ep.episode_id.startswith("CartPole-v1-")
        capsys.readouterr()
        assert main(["replay", str(paths[0])]) == 0, capsys.readouterr().err
        assert "no divergence" in capsys.readouterr().out


class _PlainVector(gym.vector.VectorEnv):
    """A vector env of its own (no spec, no sub-envs of gym.make): episodes cannot name an env id."""

    def __init__(self) -> None:
        self.num_envs = 2
        self.single_observation_space = gym.spaces.Discrete(3)
        self.single_action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, 2)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, 2)
        self.metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        return np.zeros(2, dtype=np.int64), {}

    def step(self, actions):  # type: ignore[no-untyped-def]
        return np.zeros(2, dtype=np.int64), np.zeros(2), np.ones(2, dtype=bool), np.zeros(2, dtype=bool), {}


def test_replay_of_a_sub_env_without_a_spec_says_it_was_a_vector_sub_env(tmp_path, capsys):
    from trajrec.cli import main

    env = VectorRecorder(_PlainVector(), tmp_path / "run")
    env.reset(seed=0)
    env.step(np.array([0, 1]))
    env.close()
    capsys.readouterr()
    assert main(["replay", str(env.episode_paths[0][0])]) != 0
    err = capsys.readouterr().err
    assert "recorded as a sub-env of a _PlainVector whose sub-envs carry no gymnasium spec" in err
    assert "constructed directly" not in err


def test_sub_envs_constructed_directly_name_episodes_after_their_class(tmp_path, stub_env):
    # A tester: episodes of SyncVectorEnv([lambda: MyEnv(), ...]) were named "_SubEnv-...", the stand-in's class.
    env = VectorRecorder(gym.vector.SyncVectorEnv([stub_env, stub_env]), tmp_path / "run")
    env.reset(seed=0)
    env.step(np.array(["a", "b"], dtype=object))
    env.close()
    names = sorted(p.name for p in (tmp_path / "run").glob("*.msgpack.zst"))
    assert len(names) == 2 and all(n.startswith("StubToolEnv-") for n in names), names
    assert all(open_episode(p).episode_id.startswith("StubToolEnv-") for p in (tmp_path / "run").glob("*.zst"))
