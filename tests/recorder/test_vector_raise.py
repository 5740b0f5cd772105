"""A vector step in which one sub-env raises (FINDINGS33 #4): the sub-env that raised records the exception, the
others a failure of their own (``not_run``: never reached; ``vector_error``: stepped, result dropped) naming it,
each sub-env's state is read after that step, and replay takes each episode as it happened. Where the state after
the step cannot be read (an AsyncVectorEnv that raised; a SAME_STEP sub-env that reset within the step), it is
marked unknown, and ``state_at``, ``show`` and ``replay`` say so (FINDINGS34 B1)."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest

from trajrec import VectorRecorder, open_episode
from trajrec.cli import main
from trajrec.recorder import state_not_read
from trajrec.replay.replayer import replay_episode


class KV(gym.Env):
    """A key-value tool env with a state: ``put`` stores, ``divide`` raises on a zero divisor."""

    observation_space = gym.spaces.Text(200)
    action_space = gym.spaces.Text(200)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.store, self.ops = {"seeded": seed}, 0
        return f"task {seed}", {}

    def step(self, action):
        call = json.loads(action)
        self.ops += 1
        if call["name"] == "divide":
            return str(call["x"] / call["y"]), 0.0, False, False, {}
        self.store[call["key"]] = call["value"]
        return "ok", 0.0, False, False, {}

    def state_dict(self):
        return {"store": dict(self.store), "ops": self.ops}


def put(key, value):
    return json.dumps({"name": "put", "key": key, "value": value})


DIVIDE_BY_ZERO = json.dumps({"name": "divide", "x": 1, "y": 0})


def _record(vec, out):
    with VectorRecorder(vec, out) as envs:
        envs.reset(seed=0)
        envs.step(np.array([put("a", 1)] * 3, dtype=object))
        with pytest.raises(ZeroDivisionError):
            envs.step(np.array([put("x", 0), DIVIDE_BY_ZERO, put("y", 2)], dtype=object))
        truth = None
        if isinstance(vec, gym.vector.SyncVectorEnv):
            truth = [e.unwrapped.state_dict() for e in vec.envs]
            envs.step(np.array([put("z", 3)] * 3, dtype=object))  # a SyncVectorEnv goes on after the exception
    return [open_episode(paths[0]) for paths in envs.episode_paths], truth


def test_sync_sub_envs_that_did_not_raise_are_not_given_the_exception_and_their_state_is_read(tmp_path):
    (ep0, ep1, ep2), truth = _record(gym.vector.SyncVectorEnv([KV] * 3), tmp_path)
    # Sub-env 1 raised: its own step records the exception, and its episode is the one that ended in error.
    assert ep1[1].failure.kind == "exception" and ep1[1].failure.type == "ZeroDivisionError"
    assert ep1.summary["outcome"] == "error"
    # Sub-env 0 took its put before sub-env 1 raised; the vector env dropped its result.
    f0 = ep0[1].failure
    assert f0.kind == "vector_error" and "sub-env 1 raised ZeroDivisionError" in f0.message
    assert ep0.record(1)["failure"]["raised_by"] == 1
    # Sub-env 2 was never reached (SyncVectorEnv stops at the exception): not stepped, not an exception of its own.
    f2 = ep2[1].failure
    assert f2.kind == "not_run" and "never took its action" in f2.message and f2.type is None
    assert ep0.summary["outcome"] == ep2.summary["outcome"] == "stopped"
    # The state after the raising step is each sub-env's real state: sub-env 0's put shows on step 1, not step 2.
    assert [ep.state_at(1) for ep in (ep0, ep1, ep2)] == truth
    assert ep0.state_at(1)["store"]["x"] == 0 and ep0.state_at(1)["ops"] == 2
    assert ep2.state_at(1)["ops"] == 1  # sub-env 2 did not step
    assert [row.path for row in ep0[2].diff] == [["store", "z"], ["ops"]]


def test_replay_of_the_sub_env_episodes_does_not_claim_they_raised(tmp_path):
    episodes, _ = _record(gym.vector.SyncVectorEnv([KV] * 3), tmp_path)
    for ep in episodes:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (the env checker's notes on a test env)
            report = replay_episode(ep.path, env=KV())
        assert report.divergences == [] and report.steps_replayed == 3, report
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        repeated = [replay_episode(ep.path, env=KV()).exceptions_repeated for ep in episodes]
    assert repeated == [[], [1], []]  # only sub-env 1 raised, and its replay raises again


@pytest.mark.filterwarnings("ignore::UserWarning")  # Gymnasium logs the worker's error as warnings
def test_async_sub_envs_that_did_not_raise_took_their_action_but_were_not_given_the_exception(tmp_path):
    vec = gym.vector.AsyncVectorEnv([KV] * 3, shared_memory=False)
    (ep0, ep1, ep2), _ = _record(vec, tmp_path)
    assert ep1[1].failure.kind == "exception" and "division by zero" in ep1[1].failure.message
    # Each worker steps its own sub-env: the others ran, and the vector env dropped their results.
    for ep in (ep0, ep2):
        assert ep[1].failure.kind == "vector_error" and "sub-env 1 raised ZeroDivisionError" in ep[1].failure.message
        assert ep.summary["outcome"] == "stopped"


# Registered so `trajrec replay` rebuilds it by id (the AsyncVectorEnv's workers are forked: they know it too).
KV_ID = "trajrec-test/KVRaise-v0"
gym.register(KV_ID, entry_point=KV)
gym.register("trajrec-test/KVRaise2-v0", entry_point=KV, max_episode_steps=2)


def _cli(capsys, *argv):
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the env checker's notes on a test env)
        code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.filterwarnings("ignore::UserWarning")  # Gymnasium logs the worker's error as warnings
def test_async_raising_step_marks_each_sub_envs_state_unknown_and_replay_does_not_compare_it(tmp_path, capsys):
    # FINDINGS34 B1: the AsyncVectorEnv cannot be asked after it raised. The step's state was left as the state
    # from before the step (sub-env 0's put missing), so `trajrec replay` reported a divergence in state.
    vec = gym.vector.AsyncVectorEnv([lambda: gym.make(KV_ID)] * 3, shared_memory=False)
    episodes, _ = _record(vec, tmp_path)
    for ep in episodes:
        assert ep.state_at(0) == {"store": {"seeded": ep.reset.seed, "a": 1}, "ops": 1}  # read: not marked
        why = state_not_read(ep.state_at(1))
        assert why is not None and "AsyncVectorEnv raised ZeroDivisionError" in why, ep.state_at(1)
        assert not ep[1].recorder_errors  # nothing went wrong in the recorder: the state is just not there
    for j, ep in enumerate(episodes):
        code, out, err = _cli(capsys, "replay", str(ep.path))
        assert code == 0 and "no divergence" in out, out + err
        if j == 1:  # the sub-env that raised: its state is not compared on a step that raised anyway
            assert "the recorded exception repeated at step 1" in out
        else:
            assert "state not compared at step 1: the recording marks it unknown" in out
    code, out, err = _cli(capsys, "show", str(episodes[0].path), "--step", "1", "--state")
    assert code == 0, err
    assert "? the state after this step is unknown: state not read after step 1: the AsyncVectorEnv raised" in out
    assert "state after this step\n  unknown: state not read after step 1" in out
    report = replay_episode(episodes[0].path)
    assert report.states_unknown == [1] and report.to_dict()["states_unknown"] == [1]


@pytest.mark.filterwarnings("ignore::UserWarning")  # (the env checker's notes on a test env)
def test_same_step_last_step_state_is_marked_unknown_not_left_as_the_state_before_it(tmp_path, capsys):
    # Under SAME_STEP the sub-env has reset by the time the vector step returns: the state after its last step
    # was never seen. It was left as the state before that step, and replay found a divergence there.
    from gymnasium.vector import AutoresetMode

    vec = gym.vector.SyncVectorEnv([lambda: gym.make("trajrec-test/KVRaise2-v0")] * 2,
                                   autoreset_mode=AutoresetMode.SAME_STEP)
    with VectorRecorder(vec, tmp_path) as envs:
        envs.reset(seed=0)
        for k in range(2):
            envs.step(np.array([put(f"k{k}", k)] * 2, dtype=object))
    ep = open_episode(envs.episode_paths[0][0])
    assert len(ep) == 2 and ep[1].truncated
    assert ep.state_at(0) == {"store": {"seeded": 0, "k0": 0}, "ops": 1}
    why = state_not_read(ep.state_at(1))
    assert why is not None and "reset within the same vector step (autoreset mode SAME_STEP)" in why
    # The next episode starts from its own reset state, read as usual.
    assert open_episode(envs.episode_paths[0][1]).reset.state == {"store": {"seeded": None}, "ops": 0}
    code, out, err = _cli(capsys, "replay", str(ep.path))
    assert code == 0 and "no divergence" in out and "state not compared at step 1" in out, out + err
