"""Errors of the Python API name Python's terms (``overwrite=True``, ``label_map=``) and the expected types; the
same checks reached through the ``trajrec`` CLI name its flags."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest

from trajrec import Recorder, TrajrecUsageError, open_episode, open_run
from trajrec.cli import main
from trajrec.replay.exports import ExportOptions, export


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("terms") / "run"
    env = Recorder(gym.make("CartPole-v1"), folder)
    env.reset(seed=0)
    env.step(0)
    env.close()
    return folder


def test_export_existing_out_names_overwrite_keyword(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine.jsonl"
    out.write_text("mine\n")
    with pytest.raises(TrajrecUsageError) as err:
        export([run_dir], "records", out)
    assert "pass overwrite=True to replace it" in str(err.value) and f"out='{out}'" in str(err.value)
    assert "--" not in str(err.value)
    assert out.read_text() == "mine\n"


def test_cli_keeps_its_flags(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine.jsonl"
    out.write_text("mine\n")
    assert main(["export", str(run_dir), "--format", "records", "--out", str(out)]) != 0
    assert f"--out {out} is a file that exists; pass --overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, words", [
    ({"label_map": "nope"}, "label_map=: unknown map 'nope'"),
    ({"unlabeled": "skip"}, "unlabeled=: unknown policy 'skip'"),
    ({"weights": "some"}, "weights='some' is not one of"),
    ({"step_separator": ""}, "step_separator= must be non-empty"),
])
def test_export_options_name_keywords(kwargs: dict, words: str) -> None:
    with pytest.raises(TrajrecUsageError) as err:
        ExportOptions(**kwargs)
    assert words in str(err.value) and "--" not in str(err.value)


def test_run_label_map_names_keyword(run_dir: Path) -> None:
    with pytest.raises(TrajrecUsageError, match="label_map=: unknown map 'nope'"):
        list(open_run(run_dir).steps(label_map="nope"))


def test_wrong_types_name_the_expected_type(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(TrajrecUsageError, match="options must be an ExportOptions, got dict"):
        export([run_dir], "chat", tmp_path / "x.jsonl", options={"system": "hi"})
    assert not (tmp_path / "x.jsonl").exists()
    with pytest.raises(TrajrecUsageError, match=r"open_run takes a run folder .* got int 5"):
        open_run(5)  # type: ignore[arg-type]
    with pytest.raises(TrajrecUsageError, match=r"each path must be a str or pathlib.Path, got int"):
        open_run([run_dir, 5])  # type: ignore[list-item]
    with pytest.raises(TrajrecUsageError, match=r"open_episode takes the path of an episode file .* got int 5"):
        open_episode(5)  # type: ignore[arg-type]


def test_after_end_episode_step_and_check_say_it_was_ended(tmp_path: Path) -> None:
    env = Recorder(gym.make("CartPole-v1"), tmp_path / "r")
    env.reset(seed=0)
    env.step(0)
    env.end_episode()
    for call in (lambda: env.step(0), lambda: env.check(True, judge="j@1", target="episode")):
        with pytest.raises(TrajrecUsageError, match=r"was ended by end_episode\(\); call env.reset\(\) to start"):
            call()
    env.reset(seed=1)
    env.step(0)  # the next episode records as usual
    env.close()
    fresh = Recorder(gym.make("CartPole-v1"), tmp_path / "s")
    with pytest.raises(TrajrecUsageError, match=r"before reset\(\)"):
        fresh.step(0)
    fresh.close()
