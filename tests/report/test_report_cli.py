"""`trajrec report` from the command line: tables, --json, --html, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
import pytest

from report_fixture_run import call
from trajrec.cli import main
from trajrec.envs.banks import task_bank
from trajrec.replay.report import build_report


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trajrec", "report", *args], capture_output=True, text=True,
                          timeout=120)


def test_tables_show_every_section(quiz):
    run, _paths = quiz
    proc = _cli(str(run))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for title in ("1. Coverage", "2. Difficulty", "3. Failures", "4. Checks and labels", "5. Behaviour",
                  "6. Lineage"):
        assert title in out
    assert "7 episodes, 18 steps" in out
    assert "0.40 (3)" in out  # the kappa matrix cell of human:ana vs model:j@1
    assert "read: no such file <str> (errno <n>)" in out
    assert "trajrec view " in out and "--step 1" in out


def test_pass_at_k_says_over_which_tasks_and_retries_count_chains(quiz, capsys):
    # Tester: "mean over tasks: pass@1 0.742 ... pass@5 1.000" beside never-solved tasks, each mean over a
    # different task set the text did not name; "retries per failure ... max 1", at most 1 by construction.
    run, _paths = quiz
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    at = lines.index("  mean pass@k over the tasks with at least k judged attempts (the set shrinks as k grows):")
    assert lines[at + 1].split() == ["k", "tasks", "unsolved", "mean", "pass@k"]
    rows = [line.split() for line in lines[at + 2: at + 4]]
    assert rows == [["1", "3", "1", "0.556"], ["2", "2", "0", "1.000"]]
    assert lines[at + 4] == "    never-solved tasks left out of pass@2 (fewer than 2 judged attempts): 1 of 1"
    assert ("  retry chains (a failed step that is no retry, with its retries and theirs): 4, 2 retried; retries per "
            "chain: mean 0.75, max 2") in lines
    assert "retries per failure" not in out


def test_json_is_the_same_figures(quiz):
    run, _paths = quiz
    proc = _cli(str(run), "--json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    want = json.loads(json.dumps(build_report([run], task_bank=task_bank)))
    got.pop("seconds"), want.pop("seconds")
    assert got == want


def test_html_is_self_contained_and_escapes_recorded_text(tmp_path):
    from report_fixture_run import _env

    env = _env(tmp_path / "run", {"name": "<b>agent</b>"}, "r<1>")
    evil = "<img src=x onerror=alert(1)>"
    env.reset(seed=0, options={"task": evil, "split": "train"})
    env.step(call("read", path="</script><script>alert(2)</script>"))
    env.step(call("answer", value="42"))
    env.close()
    out = tmp_path / "report.html"
    proc = _cli(str(tmp_path / "run"), "--html", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stderr
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert evil not in page and "alert(2)</script>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # shown, as text
    from plotly.offline import get_plotlyjs

    bundle = get_plotlyjs()
    assert page.count(bundle) == 1  # plotly.js inlined once; its code names URLs (map tiles, a logo link) unused here
    lower = page.replace(bundle, "").lower()
    for ref in ("src=\"http", "src='http", "href=\"http", "href='http", "src=\"//", "src='//"):
        assert ref not in lower, f"the page loads something from the network: {ref}"
    assert lower.count("<script") >= 2 and "plotly" in lower
    assert page.count("class='plot'") >= 6


def test_missing_plotly_is_one_clear_error_before_the_scan(quiz, tmp_path, monkeypatch, capsys):
    run, _paths = quiz
    monkeypatch.setitem(sys.modules, "plotly", None)  # import plotly now raises ImportError
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    out = tmp_path / "r.html"
    assert main(["report", str(run), "--html", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'trajrec[report]'" in err[0] and err[0].startswith("trajrec report: error")
    assert not out.exists()
    # Tables and JSON need no plotting library.
    assert main(["report", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 7


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file or folder" in err
    assert main(["report", str(tmp_path)]) == 1
    assert "no episode files" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--top", "0"]) == 1
    assert "--top and --rows" in capsys.readouterr().err


def test_bad_where_and_unwritable_html_are_one_line_errors(quiz, tmp_path, capsys):
    run, _paths = quiz
    assert main(["report", str(run), "--where", "tsak:t1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'task'" in err
    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert main(["report", str(run), "--html", str(folder), "--json"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("trajrec report: error: cannot write --html") and err.count("\n") == 1
    assert list(tmp_path.glob("*.tmp")) == []


def test_unreadable_file_is_reported_and_exit_is_nonzero(quiz, capsys):
    run, _paths = quiz
    (run / "junk.msgpack.zst").write_bytes(b"junk")
    assert main(["report", str(run)]) == 1
    cap = capsys.readouterr()
    assert "skipped" in cap.err and "junk.msgpack.zst" in cap.err
    assert "7 episodes" in cap.out


def test_help_has_examples():
    proc = subprocess.run([sys.executable, "-m", "trajrec", "report", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "examples:" in proc.stdout and "--html" in proc.stdout
