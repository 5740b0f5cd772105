"""``trajrec replay`` end to end through ``trajrec.cli.main``: output, exit codes (0 no divergence, 1 diverged,
2 could not replay), ``--json``, ``--ignore``, ``--record``, ``--import``, ``--until``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec.recorder import open_episode
from trajrec.cli import main

ACTIONS = ["write a.txt one", "look", "write b.txt two", "look again", "done"]


def test_no_divergence_exit_0(record, capsys: pytest.CaptureFixture[str]) -> None:
    ep_path = record("replaytest/Script-v0", ACTIONS)

    assert main(["replay", str(ep_path)]) == 0

    out, err = capsys.readouterr()
    assert out == "replayed 5 steps, no divergence\n"
    assert err == ""


def test_divergence_exit_1(record, capsys: pytest.CaptureFixture[str]) -> None:
    ep_path = record("replaytest/Noisy-v0", ACTIONS)

    assert main(["replay", str(ep_path)]) == 1

    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "replayed 4 steps, diverged at step 3 in info"
    assert lines[1] == "step 3 differs in info (recorded → replayed):"
    assert lines[2] == "  action: look again"
    assert lines[3].startswith("  ~ info.noise: ")


def test_ignore_exit_0(record, capsys: pytest.CaptureFixture[str]) -> None:
    ep_path = record("replaytest/Noisy-v0", ACTIONS)

    assert main(["replay", str(ep_path), "--ignore", "info.noise", "--ignore", "info.elapsed"]) == 0
    assert capsys.readouterr().out == "replayed 5 steps, no divergence\n"


def test_until_and_all(record, capsys: pytest.CaptureFixture[str]) -> None:
    import gymnasium as gym
    ep_path = record(gym.make("replaytest/Noisy-v0", noise_in="state", at=1), ACTIONS)

    assert main(["replay", str(ep_path), "--until", "0"]) == 0
    assert capsys.readouterr().out == "replayed 1 step, no divergence (stopped after step 0 of 0..4)\n"
    assert main(["replay", str(ep_path), "--all", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [d["step"] for d in report["divergences"]] == [1, 2, 3, 4]


def test_json_report(record, capsys: pytest.CaptureFixture[str]) -> None:
    ep_path = record("replaytest/Noisy-v0", ACTIONS)

    assert main(["replay", str(ep_path), "--json"]) == 1

    report = json.loads(capsys.readouterr().out)
    assert report["diverged"] is True
    assert report["steps_replayed"] == 4 and report["steps_recorded"] == 5
    first = report["first_divergence"]
    assert (first["step"], first["field"], first["action"]) == (3, "info", "look again")
    assert [(r["path"], r["keys"], r["change"]) for r in first["rows"]] == [
        ("info.noise", ["info", "noise"], "values_changed")]
    assert isinstance(first["rows"][0]["recorded"], float)
    assert report["recorded_path"] == str(ep_path)
    assert report["env_id"] == "replaytest/Noisy-v0"
    assert report["new_episode_path"] is None


def test_record_option(record, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ep_path = record("replaytest/Script-v0", ACTIONS)

    assert main(["replay", str(ep_path), "--record", str(tmp_path / "replays"), "--json"]) == 0

    report = json.loads(capsys.readouterr().out)
    new = open_episode(report["new_episode_path"])
    assert new.provenance["lineage"]["replay_of"]["episode_id"] == open_episode(ep_path).episode_id
    assert new.provenance["lineage"]["generator"] == "trajrec replay"


def test_unregistered_id_exit_2_then_import_fixes_it(tmp_path: Path, record, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "rt_cli_envs.py").write_text(
        "import gymnasium as gym\n"
        "gym.register(id='rtcli/Cart-v0', entry_point='gymnasium.envs.classic_control.cartpole:CartPoleEnv')\n")
    monkeypatch.syspath_prepend(str(site))
    import rt_cli_envs  # noqa: F401

    ep_path = record("rtcli/Cart-v0", [0, 1, 0, 1], seed=5)
    del gym.registry["rtcli/Cart-v0"]
    sys.modules.pop("rt_cli_envs")
    try:
        # The header names the env's entry point; replay refuses to import it unless the user allows that string.
        assert main(["replay", str(ep_path)]) == 2
        _, err = capsys.readouterr()
        assert err.startswith("trajrec replay: error: refusing to import env entry point "
                              "'gymnasium.envs.classic_control.cartpole:CartPoleEnv' named in the header of ")
        assert "--allow-entry-point 'gymnasium.envs.classic_control.cartpole:CartPoleEnv'" in err
        assert "--import MODULE" in err
        assert main(["replay", str(ep_path), "--allow-entry-point",
                     "gymnasium.envs.classic_control.cartpole:CartPoleEnv"]) == 0
        assert capsys.readouterr().out == "replayed 4 steps, no divergence\n"
        assert main(["replay", str(ep_path), "--import", "rt_cli_envs"]) == 0
        assert capsys.readouterr().out == "replayed 4 steps, no divergence\n"
    finally:
        gym.registry.pop("rtcli/Cart-v0", None)
        sys.modules.pop("rt_cli_envs", None)


def test_errors_exit_2(record, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ep_path = record("replaytest/Script-v0", ACTIONS)

    assert main(["replay", str(ep_path), "--ignore", "obs"]) == 2
    assert capsys.readouterr().err == (
        "trajrec replay: error: ignore path 'obs' starts with 'obs' (did you mean 'observation'?); paths start with "
        "a compared field: exception, observation, reward, terminated, truncated, info, state\n")

    assert main(["replay", str(tmp_path / "missing.msgpack.zst")]) == 2
    assert capsys.readouterr().err == (
        f"trajrec replay: error: cannot read {tmp_path / 'missing.msgpack.zst'}: No such file or directory\n")

    for command, code in (("replay", 2), ("show", 1)):  # a folder where a file is wanted: the error names the fix
        assert main([command, str(tmp_path)]) == code
        assert capsys.readouterr().err.endswith(
            f"{tmp_path}: it is a folder; give one of its episode files (`trajrec ls {tmp_path}` lists them)\n")

    not_episode = tmp_path / "notes.txt"
    not_episode.write_text("hello")
    assert main(["replay", str(not_episode), "--json"]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["error_type"] == "TrajrecFormatError"
    assert err.startswith(f"trajrec replay: error: {not_episode} at byte 0: not a trajrec episode")

    assert main(["replay", str(ep_path), "--until", "-1"]) == 2
    assert capsys.readouterr().err == "trajrec replay: error: --until must be a step index >= 0, got -1\n"

    assert main(["replay", str(ep_path), "--record", str(not_episode)]) == 2
    assert capsys.readouterr().err.startswith(f"trajrec replay: error: out_dir {not_episode} exists and is not a folder")

    with pytest.raises(SystemExit) as exit_:
        main(["replay"])
    assert exit_.value.code == 2


def test_unseeded_reset_warning_goes_to_stderr(record, capsys: pytest.CaptureFixture[str]) -> None:
    ep_path = record(gym.make("replaytest/Noisy-v0"), ACTIONS, seed=None)

    main(["replay", str(ep_path), "--ignore", "info.noise"])

    err = capsys.readouterr().err
    assert err.startswith("trajrec replay: warning: ")
    assert "was reset with seed=None" in err
    assert err.count("\n") == 1


def test_help_lists_the_command_and_its_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    out = capsys.readouterr().out
    assert "--ignore PATH" in out and "--record DIR" in out and "--import MODULE" in out
    assert "trajrec replay EP --ignore info.elapsed" in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "replay" in capsys.readouterr().out


def test_replay_module_does_not_import_textual() -> None:
    code = "import sys, replay.replayer, trajrec.commands.replay; assert 'textual' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_env_option_replays_a_directly_constructed_env(record, capsys: pytest.CaptureFixture[str]) -> None:
    from replay_envs import ScriptEnv

    ep_path = record(ScriptEnv(), ACTIONS)

    assert main(["replay", str(ep_path)]) == 2
    assert "constructed directly" in capsys.readouterr().err
    assert main(["replay", str(ep_path), "--env", "replaytest/Script-v0"]) == 0
    assert capsys.readouterr().out == "replayed 5 steps, no divergence\n"


def test_the_console_script_imports_a_module_of_the_current_folder(tmp_path: Path) -> None:
    """`trajrec replay EP --import mymod` run from mymod's folder works as `python -m trajrec` does (the console
    script's sys.path does not hold the current folder by itself)."""
    import os
    import shutil
    import subprocess

    script = shutil.which("trajrec", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the trajrec console script is not installed beside this Python (pip install -e .)")
    (tmp_path / "cwd_envs.py").write_text(
        "import gymnasium as gym\n"
        "gym.register(id='cwdenv/Cart-v0', entry_point='gymnasium.envs.classic_control.cartpole:CartPoleEnv')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("import cwd_envs, gymnasium as gym\nfrom trajrec import Recorder\n"
            "rec = Recorder(gym.make('cwdenv/Cart-v0'), out_dir='runs')\nrec.reset(seed=3)\n"
            "for a in (0, 1, 0):\n    rec.step(a)\nrec.close()\n")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, timeout=120)
    episode = next((tmp_path / "runs").glob("*.msgpack.zst"))
    proc = subprocess.run([script, "replay", str(episode), "--import", "cwd_envs"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (0, "replayed 3 steps, no divergence\n"), proc.stderr
    proc = subprocess.run([script, "replay", str(episode), "--import", "no_such_envs"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "add that folder to PYTHONPATH" in proc.stderr, proc.stderr


class _OutOfSpaceEnv(gym.Env):
    """Observations outside the declared space: gymnasium's env checker warns about them (in colour)."""
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 5, {}

    def step(self, action):
        return 5, 0.0, True, False, {}


def test_replay_keeps_disable_env_checker_and_shows_warnings_without_colour_codes(
        record, capsys: pytest.CaptureFixture[str]) -> None:
    # A tester: an env made with disable_env_checker=True was replayed with the checker on, and its colour codes
    # were printed as visible escapes ("\x1b[33mWARN: ...").
    if "replaytest/OutOfSpace-v0" not in gym.registry:
        gym.register(id="replaytest/OutOfSpace-v0", entry_point=_OutOfSpaceEnv)
    quiet = record(gym.make("replaytest/OutOfSpace-v0", disable_env_checker=True), [0])
    assert open_episode(quiet).header["task"]["disable_env_checker"] is True
    capsys.readouterr()
    assert main(["replay", str(quiet)]) == 0
    assert "WARN" not in capsys.readouterr().err
    with pytest.warns(UserWarning):  # recording with the checker on warns here too
        checked = record(gym.make("replaytest/OutOfSpace-v0"), [0])
    assert "disable_env_checker" not in open_episode(checked).header["task"]  # kept only when set
    capsys.readouterr()
    assert main(["replay", str(checked)]) == 0
    err = capsys.readouterr().err
    assert "trajrec replay: warning: WARN: The obs returned by the `reset()` method is not within" in err
    assert "x1b" not in err and "\x1b" not in err
