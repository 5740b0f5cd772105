"""An export that writes nothing says so, with the reason and the fix; its counts are of what was written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("unpaired") / "run"  # seeds 0..2: three tasks, one attempt each
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "3", "--out", str(out), "--json"]) == 0
    return out


def test_dpo_with_nothing_to_pair_counts_zero_steps_and_says_why(run: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    out = tmp_path / "dpo.jsonl"
    assert main(["export", str(run), "--format", "dpo", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "exported 0 episodes" in err and "; 0 steps, 0 rows)" in err
    line = next(x for x in err.splitlines() if "nothing written:" in x)
    assert "no attempt at the same task to pair it with" in line and "record several attempts per task" in line
    assert out.read_text() == ""
    assert main(["export", str(run), "--format", "dpo", "--out", str(out), "--json", "--overwrite"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["written"], report["rows"], report["steps"]) == (0, 0, 0)


def test_dpo_steps_count_the_paired_attempts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    for skill in ("1.0", "0.0"):  # one task (seed 0), a passing and a failing attempt
        sub = run / f"skill{skill}"
        assert main(["record", "trajrec/MathCalc-v0", "--episodes", "1", "--skill", skill, "--out", str(sub),
                     "--json"]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--format", "dpo", "--out", str(tmp_path / "d.jsonl"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 1 and report["written"] == 2
    assert main(["ls", str(run), "--json"]) == 0
    steps = sum(json.loads(x)["steps"] for x in capsys.readouterr().out.splitlines())
    assert report["steps"] == steps


def test_kto_without_verdicts_names_the_fix_that_works_and_it_does(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """The hint for episodes with no verdict named `label auto --rules` (which gives such episodes no episode
    label) and a viewer key that does not exist (FINDINGS21 #2): it names `label add --step episode`, which works."""
    run = tmp_path / "run"
    assert main(["record", "CartPole-v1", "--agent", "random", "--episodes", "2", "--out", str(run)]) == 0
    capsys.readouterr()
    out = tmp_path / "kto.jsonl"
    assert main(["export", str(run), "--format", "kto", "--out", str(out)]) == 0
    line = next(x for x in capsys.readouterr().err.splitlines() if "nothing written:" in x)
    assert "no terminal verdict and no episode label" in line and "viewer" not in line
    assert "trajrec label add PATH --episode ID --step episode --value pass" in line
    episode = sorted(run.glob("*.msgpack.zst"))[0].name.removesuffix(".msgpack.zst")
    assert main(["label", "add", str(run), "--episode", episode, "--step", "episode", "--value", "pass"]) == 0
    assert main(["export", str(run), "--format", "kto", "--out", str(out), "--overwrite"]) == 0
    assert len(out.read_text().splitlines()) >= 1
