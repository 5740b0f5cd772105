"""numpy's own warnings, triggered by trajrec showing or reading values, do not reach the user under trajrec's name
(FINDINGS5 #23): a masked array's masked element printed with a format spec (FutureWarning), a matrix rebuilt with
``np.asmatrix`` (PendingDeprecationWarning, which under ``-W error`` made the file read as damaged)."""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from trajrec import Recorder, open_episode
from trajrec.cli import main


class Arrays(gym.Env):
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)  # the env's own matrix, not trajrec's
            m = np.asmatrix([[1, 2], [3, 4]])
        return np.ma.array([1, 2, 3], mask=[0, 1, 0]), 0.0, True, False, {"m": m}


@pytest.fixture()
def episode(tmp_path: Path) -> Path:
    rec = Recorder(Arrays(), tmp_path / "run")
    rec.reset(seed=0)
    rec.step(0)
    rec.close()
    return rec.episode_path


@pytest.mark.parametrize("argv", [["show", "{ep}", "--step", "0"], ["show", "{ep}", "--full"],
                                  ["export", "{run}", "--format", "records", "--out", "{out}"]])
def test_show_and_export_print_no_numpy_warning(episode: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                argv: list[str]) -> None:
    args = [a.format(ep=episode, run=episode.parent, out=tmp_path / "out.jsonl") for a in argv]
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning at all would now be an error
        assert main(args) == 0
    err = capsys.readouterr().err
    assert "warning" not in err.lower(), err


def test_a_matrix_reads_back_as_a_matrix_without_a_warning(episode: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = open_episode(episode)[0].info["m"]
    assert type(m) is np.matrix and m.tolist() == [[1, 2], [3, 4]]
