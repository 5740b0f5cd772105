"""Bad `record`/`demo` input gives one `error:` line and leaves nothing behind; re-running the demo summarizes
the demo that is there; `show` quotes the step number given and previews the agent; counts read in English."""

from __future__ import annotations

import json

import pytest

from trajrec.cli import main
from trajrec.recorder import SUFFIX, Recorder, read_index


def _one_error_line(capsys, *words: str) -> str:  # type: ignore[no-untyped-def]
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("kwarg", ["max_steps=abc", "max_steps=0"])
def test_a_kwarg_the_env_refuses_is_one_error_line_and_leaves_no_folder(tmp_path, capsys, kwarg):
    out = tmp_path / "new" / "run"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "1", "--out", str(out), "--kwarg", kwarg]) == 1
    _one_error_line(capsys, "--kwarg", kwarg.split("=")[0])
    assert not (tmp_path / "new").exists()  # the folders the command made, and left empty, are gone


def test_a_bad_env_id_leaves_no_folder_but_an_existing_folder_stays(tmp_path, capsys):
    assert main(["record", "trajrec/Nope-v0", "--out", str(tmp_path / "d")]) == 1
    _one_error_line(capsys, "trajrec/Nope-v0")
    assert not (tmp_path / "d").exists()
    (tmp_path / "mine").mkdir()
    assert main(["record", "trajrec/Nope-v0", "--out", str(tmp_path / "mine")]) == 1
    capsys.readouterr()
    assert (tmp_path / "mine").is_dir()  # not the command's to remove


@pytest.mark.parametrize("argv", [["record", "trajrec/MathCalc-v0", "--seed", "-5"], ["demo", "--seed", "-1",
                                                                                      "--no-view"]])
def test_a_negative_seed_is_refused_before_anything_is_written(tmp_path, capsys, argv):
    out = tmp_path / "out"
    argv = [*argv, "--out", str(out)] if argv[0] == "record" else [argv[0], str(out), *argv[1:]]
    assert main(argv) == 1
    _one_error_line(capsys, "--seed", "0 or more")
    assert not out.exists()


def test_rerunning_the_demo_summarizes_the_demo_that_is_there(tmp_path, capsys):
    demo = tmp_path / "demo"
    assert main(["demo", str(demo), "--episodes", "1", "--no-view"]) == 0
    first = capsys.readouterr().out
    assert "recorded 4 episodes" in first
    assert main(["demo", str(demo), "--episodes", "1", "--no-view"]) == 0
    again = capsys.readouterr().out
    files = list(demo.rglob(f"*{SUFFIX}"))
    steps = sum(read_index(f)["summary"]["steps"] for f in files)
    assert f"nothing new to record: the demo in {demo} already holds 4 episodes ({steps} steps)" in again
    outcomes = sorted(read_index(f)["summary"]["outcome"] for f in files)
    line = next(l for l in again.splitlines() if l.strip().startswith("outcomes"))
    assert sum(int(part.split(": ")[1]) for part in line.split("outcomes", 1)[1].split(", ")) == len(outcomes)
    assert "recorded 0 episodes" not in again
    # The summary after a fresh run and the one read back from the indexes agree, line for line.
    assert first.splitlines()[1:4] == again.splitlines()[1:4]


@pytest.fixture()
def three_steps(tmp_path):  # type: ignore[no-untyped-def]
    import gymnasium as gym

    import trajrec.envs  # noqa: F401

    rec = Recorder(gym.make("trajrec/Shell-v0"), tmp_path)
    rec.agent = {"name": "big", "system_prompt": "be careful. " * 1000}  # ~12 KB, like an LLM agent's config
    rec.reset(seed=0)
    for _ in range(3):
        rec.step("pwd")
    rec.close()
    return next(tmp_path.glob(f"*{SUFFIX}"))


@pytest.mark.parametrize("step", ["-4", "-100", "3"])
def test_show_quotes_the_step_number_given(three_steps, capsys, step):
    assert main(["show", str(three_steps), "--step", step]) == 1
    line = _one_error_line(capsys, f"--step {step} is out of range", "3 steps")
    assert "step -1 " not in line and "step -97" not in line


def test_show_previews_the_agent_unless_full(three_steps, capsys):
    assert main(["show", str(three_steps)]) == 0
    agent = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("agent"))
    assert len(agent) < 400 and "--full" in agent
    assert main(["show", str(three_steps), "--full"]) == 0
    agent = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("agent"))
    assert agent.count("be careful.") == 1000


def test_counts_of_one_are_singular(three_steps, capsys):
    from trajrec.commands._common import plural

    assert [plural(1, w) for w in ("episode", "failure", "recovery", "check")] == \
        ["1 episode", "1 failure", "1 recovery", "1 check"]
    assert [plural(n, "recovery") for n in (0, 2)] == ["0 recoveries", "2 recoveries"]
    assert main(["show", str(three_steps)]) == 0
    summary = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("summary"))
    assert "3 steps" in summary and "0 retries" in summary and "1 recoveries" not in summary
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "1", "--out", str(three_steps.parent / "one")]) == 0
    assert "recorded 1 episode (" in capsys.readouterr().out
