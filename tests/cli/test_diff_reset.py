"""`trajrec diff` compares the reset as `trajrec replay` does (FINDINGS33 #2): two episodes whose first observation
(an LLM agent's prompt), reset info or starting state differ are not the same, exit 1, with a `reset differs`
block; `--ignore reset.observation` (or `reset`) leaves it out deliberately. Real files from a real Recorder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from trajrec import Recorder
from trajrec.cli import main
from trajrec.recorder import open_episode
from trajrec.replay.episode_diff import diff_episodes


class _Prompted(gym.Env):
    """Reset answers ``prompt`` with ``{"difficulty": prompt}`` and leaves ``{"disk": start}`` as its state; every
    step answers ``"ok"`` and formats the disk, so the steps (state after each included) are the same whatever the
    prompt and start."""

    observation_space = gym.spaces.Text(100)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, prompt: str, start: str = "clean") -> None:
        self.prompt, self.start = prompt, start
        self.disk = start
        self.n = 0

    def state_dict(self) -> dict[str, Any]:
        return {"disk": self.disk}

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        super().reset(seed=seed)
        self.n, self.disk = 0, self.start
        return self.prompt, {"difficulty": self.prompt}

    def step(self, action):  # type: ignore[no-untyped-def]
        self.n += 1
        self.disk = "formatted"
        return "ok", 1.0, self.n >= 2, False, {}


def _record(folder: Path, prompt: str, start: str = "clean") -> str:
    with Recorder(_Prompted(prompt, start), folder) as env:
        env.reset(seed=0)
        env.step(0)
        env.step(1)
        return str(env.episode_path)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("diff_reset")
    return {"add": _record(tmp / "add", "Add 2 and 2"), "add2": _record(tmp / "add2", "Add 2 and 2"),
            "drop": _record(tmp / "drop", "Delete the production database"),
            "data": _record(tmp / "data", "Add 2 and 2", start="has-user-data")}


def test_a_different_prompt_is_a_reset_difference_exit_1(files: dict[str, str],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", files["add"], files["drop"]]) == 1
    out = capsys.readouterr().out
    assert "reset differs in observation, info (A → B):" in out
    assert "~ observation: Add 2 and 2 → Delete the production database" in out
    assert "~ info.difficulty: Add 2 and 2 → Delete the production database" in out
    assert out.rstrip().splitlines()[-1] == "the resets differ (observation, info)"


def test_the_same_reset_is_same(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", files["add"], files["add2"]]) == 0
    out = capsys.readouterr().out
    assert "reset differs" not in out and out.rstrip().splitlines()[-1].startswith("same: 2 steps")


def test_a_different_starting_state_is_a_reset_difference(files: dict[str, str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Every step's state is the same (the step formats the disk): only the reset's state tells them apart."""
    assert main(["diff", files["add"], files["data"]]) == 1
    out = capsys.readouterr().out
    assert "reset differs in state (A → B):" in out and "~ state.disk: clean → has-user-data" in out
    assert "step " not in out  # no step differs
    assert main(["diff", files["add"], files["data"], "--no-state"]) == 0  # --no-state: the reset's state too
    assert main(["diff", files["add"], files["data"], "--ignore", "reset.state.disk"]) == 0
    assert main(["diff", files["add"], files["data"], "--ignore", "state.disk"]) == 0  # a step path: reset too


def test_diff_json_holds_the_reset_rows(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["diff", files["add"], files["drop"], "--json"]) == 1
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [d["type"] for d in lines] == ["summary"]  # no step differs
    summary = lines[0]
    assert summary["same"] is False and summary["reset_fields"] == ["observation", "info"]
    assert {(r["path"], r["a"], r["b"]) for r in summary["reset"]} == {
        ("observation", "Add 2 and 2", "Delete the production database"),
        ("info.difficulty", "Add 2 and 2", "Delete the production database")}


@pytest.mark.parametrize("ignore", [["reset"], ["reset.*"], ["reset.observation", "reset.*.difficulty"],
                                    ["reset.observation", "reset.info"],
                                    ["reset.observation", "reset.info.difficulty"],
                                    ["observation", "info.difficulty"]])
def test_ignore_leaves_the_reset_out(ignore: list[str], files: dict[str, str]) -> None:
    argv = [x for path in ignore for x in ("--ignore", path)]
    assert main(["diff", files["add"], files["drop"], *argv]) == 0


def test_ignoring_only_the_observation_still_finds_the_info(files: dict[str, str]) -> None:
    with open_episode(files["add"]) as a, open_episode(files["drop"]) as b:
        result = diff_episodes(a, b, ignore=["reset.observation"])
        assert not result.same and result.reset_fields == ("info",) and not result.steps
        assert "the resets differ (info)" in result.summary()


def test_reset_ignore_paths_apply_at_the_reset_only(tmp_path: Path) -> None:
    """``reset.observation`` leaves the steps' observations compared."""
    class _Differs(_Prompted):
        def step(self, action):  # type: ignore[no-untyped-def]
            obs, *rest = super().step(action)
            return self.prompt, *rest

    paths = []
    for prompt in ("x", "y"):
        with Recorder(_Differs(prompt), tmp_path / prompt) as env:
            env.reset(seed=0)
            env.step(0)
            paths.append(env.episode_path)
    with open_episode(paths[0]) as a, open_episode(paths[1]) as b:
        result = diff_episodes(a, b, ignore=["reset.observation", "reset.info"])
        assert not result.reset and [d.fields for d in result.steps] == [("observation",)]


def test_a_bad_reset_path_is_a_usage_error_naming_the_fields(files: dict[str, str],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", files["add"], files["drop"], "--ignore", "reset.obs"]) == 2
    err = capsys.readouterr().err
    assert "'reset.obs'" in err and "did you mean 'reset.observation'?" in err
    assert all(f in err for f in ("failure", "observation", "info", "state"))
    assert "or * for all of them" in err  # reset.* is accepted (FINDINGS34 B9): the error says so


def test_diff_help_names_the_reset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["diff", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "reset.observation" in out and "reset (first observation, info, state)" in out


def test_a_reset_lost_to_damage_is_not_compared(reset_lost_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A repaired file whose reset was lost with step 0: `diff --no-state` compares what it still holds, the loss
    named (reading the reset must not turn that into an error)."""
    path = str(next(reset_lost_run.glob("*.msgpack.zst")))
    assert main(["diff", path, path, "--no-state"]) == 0
    out = capsys.readouterr().out
    assert "A: steps 0..0 lost" in out and "reset differs" not in out
