"""``trajrec replay --env ID``: when the id cannot be used, the message says it came from ``--env``, not that it
was recorded in the file (FINDINGS28 #4); an id the file records is still said to be recorded there."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest

from trajrec.cli import main

ACTIONS = ["write a.txt one", "look", "done"]


def test_unknown_env_flag_is_said_to_come_from_the_flag(record, capsys: pytest.CaptureFixture[str]) -> None:
    ep_path: Path = record("replaytest/Script-v0", ACTIONS)
    assert main(["replay", str(ep_path), "--env", "nope/X-v0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "env id 'nope/X-v0' given with --env (env_id= in Python) is not registered with gymnasium" in err
    assert "recorded in" not in err


def test_env_flag_naming_a_module_is_said_to_come_from_the_flag(record, capsys: pytest.CaptureFixture[str]) -> None:
    ep_path: Path = record("replaytest/Script-v0", ACTIONS)
    assert main(["replay", str(ep_path), "--env", "rt_nomod_x:Thing-v0"]) == 2
    err = capsys.readouterr().err
    assert "refusing to rebuild env id 'rt_nomod_x:Thing-v0' given with --env" in err
    assert "recorded in" not in err and "--import rt_nomod_x" in err


def test_an_unknown_recorded_id_is_still_said_to_be_recorded(record, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    ep_path: Path = record("replaytest/Script-v0", ACTIONS)
    monkeypatch.delitem(gym.registry, "replaytest/Script-v0")  # restored after the test
    assert main(["replay", str(ep_path)]) == 2
    err = capsys.readouterr().err
    assert f"env id 'replaytest/Script-v0' recorded in {ep_path} is not registered" in err
