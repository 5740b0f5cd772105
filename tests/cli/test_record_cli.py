"""`trajrec record`, `trajrec demo`, `trajrec envs` end to end, and the committed sample runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from trajrec.recorder import SUFFIX, open_episode, read_index
from trajrec.cli import main

SAMPLE_RUNS = Path(__file__).resolve().parents[2] / "sample_runs"


def test_record_single_and_parallel_workers(tmp_path, capsys):
    out = tmp_path / "shell"
    assert main(["record", "trajrec/Shell-v0", "--episodes", "6", "--seed", "3", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    files = sorted(out.glob(f"*{SUFFIX}"))
    assert summary["episodes"] == 6 == len(files)
    seeds = sorted(open_episode(f).task["seed"] for f in files)
    assert seeds == [3, 4, 5, 6, 7, 8]
    assert summary["steps"] == sum(len(open_episode(f)) for f in files)

    par = tmp_path / "math"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "8", "--workers", "2", "--out", str(par), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    files = sorted(par.glob(f"*{SUFFIX}"))
    assert len(files) == 8 and summary["episodes"] == 8
    pids = {open_episode(f).provenance["pid"] for f in files}
    # Recorded in worker processes, at most two of them (under load one worker may take every episode before the
    # other has started: the pool hands episodes out as workers ask, and no share is promised).
    assert os.getpid() not in pids and 1 <= len(pids) <= 2, pids
    assert all(read_index(f)["complete"] for f in files)
    assert {open_episode(f).provenance["agent"]["name"] for f in files} == {"scripted"}


def test_record_errors_name_the_fix(tmp_path, capsys):
    assert main(["record", "trajrec/Shel-v0", "--out", str(tmp_path)]) == 1
    assert "trajrec/Shell-v0" in capsys.readouterr().err
    assert main(["record", "CartPole-v1", "--out", str(tmp_path)]) == 1
    assert "--agent random" in capsys.readouterr().err
    assert main(["record", "trajrec/Shell-v0", "--episodes", "0", "--out", str(tmp_path)]) == 1
    assert main(["record", "trajrec/Shell-v0", "--kwarg", "nonsense", "--out", str(tmp_path)]) == 1
    assert "KEY=VALUE" in capsys.readouterr().err


def test_random_agent_on_a_gymnasium_env(tmp_path):
    assert main(["record", "CartPole-v1", "--agent", "random", "--episodes", "2", "--out", str(tmp_path)]) == 0
    files = sorted(tmp_path.glob(f"*{SUFFIX}"))
    assert len(files) == 2 and all(len(open_episode(f)) > 0 for f in files)


def test_demo_without_a_terminal_records_all_four_envs_and_says_how_to_browse(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "demo"), "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "recorded 8 episodes" in out and "checks by judge" in out and "trajrec view" in out
    envs = {read_index(f)["header"]["task"]["env_id"] for f in (tmp_path / "demo").rglob(f"*{SUFFIX}")}
    assert envs == {"trajrec/MathCalc-v0", "trajrec/CodeRepair-v0", "trajrec/Shell-v0", "trajrec/SupportTicket-v0"}


def test_envs_lists_check_kinds_and_task_counts(capsys):
    assert main(["envs", "--json"]) == 0
    rows = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["trajrec/Shell-v0"]["checks"] == ["environment"]
    assert rows["trajrec/SupportTicket-v0"]["checks"] == ["judge"]
    assert all(r["tasks"] >= 20 for r in rows.values())


def _sample_files() -> list[Path]:
    return sorted(SAMPLE_RUNS.rglob(f"*{SUFFIX}"))


def test_sample_runs_are_small_and_cover_the_four_envs():
    files = _sample_files()
    assert files, "sample_runs/ is empty: make it with `trajrec demo sample_runs --episodes 3 --no-view`"
    assert sum(f.stat().st_size for f in SAMPLE_RUNS.rglob("*") if f.is_file()) < 2 * 1024 * 1024
    kinds = set()
    for f in files:
        kinds.update(read_index(f)["header"]["task"].get("verification") or [])
    assert kinds == {"rule", "environment", "judge"}


@pytest.mark.parametrize("path", _sample_files(), ids=lambda p: p.name)
def test_every_sample_run_file_still_reads(path):
    ep = open_episode(path)
    assert ep.complete and not ep.damage
    steps = list(ep)
    assert len(steps) == ep.summary["steps"] == len(ep)
    assert ep.reset.observation and ep.task["env_id"].startswith("trajrec/")
    if ep.has_state:
        ep.state_at(len(ep) - 1)
