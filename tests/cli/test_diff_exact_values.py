"""`trajrec diff` tells apart what the recording keeps apart (FINDINGS5 #22): -0.0 and 0.0, ``{1: v}`` and
``{1.0: v}``, and shows the dtypes of arrays that print alike (int32 against int64)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from trajrec import Recorder
from trajrec.cli import main


class Obs(gym.Env):
    """Hands out the given observations, one per step."""

    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, observations: list[Any]) -> None:
        self.observations = observations

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return 0, {}

    def step(self, action):
        obs = self.observations[self.t]
        self.t += 1
        return obs, 0.0, self.t == len(self.observations), False, {}


def _record(out: Path, observations: list[Any]) -> Path:
    rec = Recorder(Obs(observations), out)
    rec.reset(seed=0)
    done = False
    while not done:
        done = rec.step(0)[2]
    rec.close()
    return rec.episode_path


@pytest.mark.parametrize("a,b", [
    (0.0, -0.0),
    ({1: "v"}, {1.0: "v"}),
    ({0.0: "v"}, {-0.0: "v"}),
    (np.array([0.0, 1.0]), np.array([-0.0, 1.0])),
    (np.float64(0.0), np.float64(-0.0)),
])
def test_values_stored_apart_are_reported_apart(tmp_path: Path, capsys: pytest.CaptureFixture, a, b) -> None:
    pa, pb = _record(tmp_path / "a", [a]), _record(tmp_path / "b", [b])
    capsys.readouterr()
    assert main(["diff", str(pa), str(pb), "--json"]) == 1
    steps = [d for d in map(json.loads, capsys.readouterr().out.splitlines()) if d["type"] == "step"]
    assert [d["step"] for d in steps] == [0] and steps[0]["fields"] == ["observation"]
    # and an episode against itself is still the same
    assert main(["diff", str(pa), str(pa)]) == 0


def test_arrays_that_print_alike_show_their_dtypes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pa = _record(tmp_path / "a", [np.array([1, 2], dtype=np.int32)])
    pb = _record(tmp_path / "b", [np.array([1, 2], dtype=np.int64)])
    capsys.readouterr()
    assert main(["diff", str(pa), str(pb)]) == 1
    out = capsys.readouterr().out
    assert "numpy.ndarray of int32" in out and "numpy.ndarray of int64" in out, out


class _Stateful(Obs):
    """Its state after each step is the step's observation (under "c")."""

    def state_dict(self):
        return {"c": self.observations[self.t - 1] if self.t else None}


@pytest.mark.parametrize("a,b", [
    (0.0, -0.0),
    (np.float32(1.5), np.float64(1.5)),
    (True, 1),
    ((1, 2), [1, 2]),
])
def test_states_stored_apart_are_reported_apart(tmp_path: Path, capsys: pytest.CaptureFixture, a, b) -> None:
    # A tester: `trajrec diff` said "same" for states differing in a zero's sign or a float dtype (it compared
    # state as replay does, loosely), while True against 1 differed.
    paths = []
    for name, value in (("a", a), ("b", b)):
        rec = Recorder(_Stateful([value]), tmp_path / name)
        rec.reset(seed=0)
        rec.step(0)
        rec.close()
        paths.append(rec.episode_path)
    capsys.readouterr()
    assert main(["diff", *map(str, paths), "--json", "--ignore", "observation"]) == 1
    steps = [d for d in map(json.loads, capsys.readouterr().out.splitlines()) if d["type"] == "step"]
    assert [d["step"] for d in steps] == [0] and steps[0]["fields"] == ["state"]


def test_type_only_state_changes_show_their_types() -> None:
    # A tester: `show` and the viewer printed `~ c: 1.5 → 1.5` for a float32 that became a float64.
    from trajrec.replay.render import diff_lines

    rows = [[["c"], "type_changes", np.float64(1.5), np.float32(1.5)],
            [["t"], "type_changes", [1, 2], (1, 2)],
            [["arr"], "type_changes", np.array([1], dtype=np.int32), np.array([1], dtype=np.int16)],
            [["n"], "values_changed", 2, 1]]
    text = [line for _kind, line in diff_lines(rows)]
    assert text == ["~ c: 1.5 (numpy.float32) → 1.5 (numpy.float64)", "~ t: ( 1, 2 ) → [ 1, 2 ]",  # a tuple reads as one
                    "~ arr: [1] (numpy.ndarray of int16) → [1] (numpy.ndarray of int32)", "~ n: 1 → 2"]


@pytest.mark.parametrize("a,b,row", [
    ({"prompt": "Long text " * 20, "t": 0.0}, {"prompt": "Long text " * 20, "t": -0.0}, "~ observation.t: 0.0 → -0.0"),
    ({"z": [1, 2]}, {"z": [1, 2.0]}, "~ observation.z[1]: 2 (int) → 2.0 (float)"),
    ({"k": "same", "z": [(0.0, "x")]}, {"k": "other", "z": [(-0.0, "x")]}, "~ observation.z[0][0]: 0.0 → -0.0"),
])
def test_a_difference_deepdiff_misses_is_shown_at_its_leaf(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                           a, b, row) -> None:
    """FINDINGS34 B5: a zero's sign or an int against a float inside a container (DeepDiff takes them for equal)
    was reported at the whole field, as two texts that print alike; the row now names the leaf."""
    pa, pb = _record(tmp_path / "a", [a]), _record(tmp_path / "b", [b])
    capsys.readouterr()
    assert main(["diff", str(pa), str(pb)]) == 1
    out = capsys.readouterr().out
    assert "  " + row in out.splitlines(), out
    assert "~ observation: " not in out  # no whole-field row beside it
    assert main(["diff", str(pa), str(pb), "--json"]) == 1
    step = [d for d in map(json.loads, capsys.readouterr().out.splitlines()) if d["type"] == "step"][0]
    assert row.split(":")[0].removeprefix("~ ") in [r["path"] for r in step["rows"]]
