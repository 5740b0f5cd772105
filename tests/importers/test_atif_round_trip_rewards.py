"""``export --format atif`` then ``import atif`` gives every step its recorded reward back: a zero reward (the
common case of sparse-reward envs, -0.0 included) is written, not left out as "nothing", and an int beyond 64 bits,
which the export writes as its ``{"$int": ...}`` marker, is read back as the int."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from trajrec import Recorder, open_episode


def _cli(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "trajrec", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def _round_trip(run: Path, tmp_path: Path, lines: bool = False) -> tuple[list[Any], list[Any]]:
    """The rewards of ``run``'s episode, and of it exported to ATIF (a folder of documents, or ``lines``: one
    JSONL file) and imported back."""
    atif, back = tmp_path / "atif", tmp_path / "back"
    if lines:
        _cli("export", str(run), "--format", "atif", "--out", str(tmp_path / "atif.jsonl"))
        _cli("import", "atif", str(tmp_path / "atif.jsonl"), "--out", str(back))
    else:
        _cli("export", str(run), "--format", "atif", "--out", f"{atif}/")
        _cli("import", "atif", *map(str, sorted(atif.glob("*.json"))), "--out", str(back))
    (orig,) = run.rglob("*.msgpack.zst")
    (imported,) = back.rglob("*.msgpack.zst")
    return [s.reward for s in open_episode(orig)], [s.reward for s in open_episode(imported)]


def test_frozenlake_zero_rewards_survive_the_atif_round_trip(tmp_path: Path) -> None:
    env = Recorder(gym.make("FrozenLake-v1", is_slippery=False), tmp_path / "run")
    env.reset(seed=0)
    for action in (1, 1, 2, 2, 1, 2):  # down, down, right, right, down, right: the 4x4 map's goal, reward 1 last
        _obs, _r, term, trunc, _info = env.step(action)
        if term or trunc:
            break
    env.close()
    before, after = _round_trip(tmp_path / "run", tmp_path)
    assert before.count(0) >= 4 and before[-1] == 1  # zero rewards recorded, and the goal's 1
    assert after == before
    assert [type(r) for r in after] == [type(r) for r in before]


class _Odd(gym.Env):
    """Rewards an export must carry exactly: -0.0, 0, and ints beyond 64 bits."""

    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)
    REWARDS = [-0.0, 0, 2**70, 2**63, -(2**64), 0.0]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        return 0, {}

    def step(self, action: int) -> tuple[int, Any, bool, bool, dict[str, Any]]:
        r = self.REWARDS[self._t]
        self._t += 1
        return 0, r, self._t == len(self.REWARDS), False, {}


@pytest.mark.parametrize("lines", [False, True], ids=["folder", "jsonl"])
def test_zero_and_big_int_rewards_survive_the_atif_round_trip(tmp_path: Path, lines: bool) -> None:
    env = Recorder(_Odd(), tmp_path / "run")
    env.reset(seed=0)
    for _ in _Odd.REWARDS:
        env.step(0)
    env.close()
    before, after = _round_trip(tmp_path / "run", tmp_path, lines)
    assert before == _Odd.REWARDS
    assert after == before and [type(r) for r in after] == [type(r) for r in before]
    assert math.copysign(1, after[0]) == -1.0  # -0.0 stays negative zero
