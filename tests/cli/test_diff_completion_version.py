"""`trajrec diff`, `trajrec completion` and `--version` (issue 16)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.recorder import SUFFIX


def _record(out: Path, *argv: str) -> Path:
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "1", "--out", str(out), "--json", *argv]) == 0
    return next(out.glob(f"*{SUFFIX}"))


def test_diff_same_and_different(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = _record(tmp_path / "a")
    again = _record(tmp_path / "b")  # the same seed and skill: the same steps, another file
    other = _record(tmp_path / "c", "--seed", "1")
    capsys.readouterr()
    assert main(["diff", str(a), str(again)]) == 0
    assert capsys.readouterr().out.rstrip().splitlines()[-1].startswith("same: ")
    assert main(["diff", str(a), str(other)]) == 1
    out = capsys.readouterr().out
    assert "task differs (A → B):" in out and "~ seed: 0 → 1" in out
    assert "step 0 differs in " in out
    assert main(["diff", str(a), str(other), "--json"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    summary = lines[-1]
    assert summary["type"] == "summary" and not summary["same"] and summary["first_difference"] == 0
    assert [d["type"] for d in lines[:-1]] == ["step"] * summary["differing_steps"]
    assert all(d["fields"] for d in lines[:-1])


def test_diff_ignore_paths(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = _record(tmp_path / "a")
    b = _record(tmp_path / "b", "--skill", "0.0")
    capsys.readouterr()
    main(["diff", str(a), str(b), "--json"])
    before = json.loads(capsys.readouterr().out.splitlines()[-1])
    if before["same"]:
        pytest.skip("the two skills happened to act alike")
    main(["diff", str(a), str(b), "--json", "--ignore", "state", "--ignore", "info", "--no-state"])
    after = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all("state" not in d.get("fields", []) and "info" not in d.get("fields", []) for d in after[:-1])


def test_completion_scripts_complete_in_a_real_bash(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash on this machine")
    assert main(["completion", "bash"]) == 0
    script = tmp_path / "trajrec.bash"
    script.write_text(capsys.readouterr().out)
    probe = r'''
source "$1"
complete_line() {
  read -ra COMP_WORDS <<< "$1"; [[ "$1" == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMPREPLY=(); _trajrec; echo "${COMPREPLY[*]}"
}
complete_line "trajrec di"
complete_line "trajrec label "
complete_line "trajrec export runs --format "
complete_line "trajrec ls runs --so"
'''
    out = subprocess.run([bash, "-c", probe, "probe", str(script)], capture_output=True, text=True, timeout=60,
                         check=True).stdout.splitlines()
    assert out == ["diff", "add auto edit ls rm", "records trl-stepwise chat parquet dpo kto atif", "--sort"]
    assert main(["completion", "zsh"]) == 0
    zsh = capsys.readouterr().out
    assert "bashcompinit" in zsh and "complete -o filenames -o bashdefault -F _trajrec trajrec" in zsh


def test_version(capsys: pytest.CaptureFixture) -> None:
    import trajrec

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"trajrec {trajrec.__version__}"
    proc = subprocess.run([sys.executable, "-m", "trajrec", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == f"trajrec {trajrec.__version__}"


def test_diff_errors_exit_2_not_1(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # Tester: `diff` used exit 1 for both "differ" and "error"; diff(1) and `trajrec replay` use 2 for errors.
    a = _record(tmp_path / "a")
    capsys.readouterr()
    missing = tmp_path / "nope.msgpack.zst"
    assert main(["diff", str(a), str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("trajrec diff: error: ") and str(missing) in err and err.count("\n") == 1
    junk = tmp_path / "junk.msgpack.zst"
    junk.write_bytes(b"not an episode at all")
    assert main(["diff", str(junk), str(a), "--json"]) == 2
    out, err = capsys.readouterr()
    row = json.loads(out)
    assert row["type"] == "error" and str(junk) in row["error"] and err.startswith("trajrec diff: error: ")
    assert main(["diff", str(a), str(a), "--ignore", "info..x"]) == 2
    assert capsys.readouterr().err.startswith("trajrec diff: error: ")
    proc = subprocess.run([sys.executable, "-m", "trajrec", "diff", str(a), str(missing)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "trajrec diff: error:" in proc.stderr
    with pytest.raises(SystemExit) as done:
        main(["diff", "--help"])
    assert done.value.code == 0
    assert "1 when they differ, 2 on\nan error" in capsys.readouterr().out
