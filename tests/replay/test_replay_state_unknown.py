"""A step whose recorded state is the marked value of a state not read (``trajrec.StateNotRead``: the state_fn
raised there) is not compared by ``trajrec replay``: the recording has no state to compare, so comparing the marker
with the replayed state reported a divergence that was none (FINDINGS34 B1). ``show`` says the state is unknown."""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest

from trajrec import Recorder, open_episode
from trajrec.cli import main
from trajrec.recorder import state_not_read


class FlakyState(gym.Env):
    """A counter whose ``state_dict`` raises after the first step only (a broken read, not a broken env)."""

    observation_space = gym.spaces.Discrete(100)
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.total = 0, 0
        return 0, {}

    def step(self, action):
        self.t += 1
        self.total += int(action)
        return self.total, 0.0, False, False, {}

    def state_dict(self):
        if self.t == 1:
            raise RuntimeError("state unavailable")
        return {"t": self.t, "total": self.total}


gym.register("trajrec-test/FlakyState-v0", entry_point=FlakyState)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the Recorder's warning about the raising state_fn
def test_replay_skips_the_state_of_a_step_whose_state_fn_raised_and_says_so(tmp_path, capsys):
    env = Recorder(gym.make("trajrec-test/FlakyState-v0"), tmp_path)
    env.reset(seed=0)
    for a in (1, 2, 1):
        env.step(a)
    env.close()
    path = str(env.episode_path)
    ep = open_episode(path)
    assert "state_fn raised after step 0: RuntimeError: state unavailable" in state_not_read(ep.state_at(0))
    assert ep.state_at(1) == {"t": 2, "total": 3}
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["replay", path])
    out, err = capsys.readouterr()
    # Before: "diverged at step 0 in state: ~ state: Unencodable(...) → <state_dict() raised ...>", exit 1.
    assert code == 0, out + err
    assert "replayed 3 steps, no divergence" in out
    assert "state not compared at step 0: the recording marks it unknown" in out
    code = main(["show", path, "--step", "1", "--state"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "~ the state is read again (unknown after the step before):" in out
    code = main(["show", path, "--step", "0", "--state"])
    out, err = capsys.readouterr()
    assert "? the state after this step is unknown: state_fn raised after step 0: RuntimeError" in out
    assert "\n  unknown: state_fn raised after step 0" in out
