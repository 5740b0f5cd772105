"""``--where -TERM`` (a query starting with ``-``, which negates the term) is taken as the option's value by every
command with ``--where``, as ``--where=-TERM`` is; argparse alone refuses it ("expected one argument")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.cli import glue_option_values, main


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("where") / "run"
    assert main(["record", "trajrec/Shell-v0", "--episodes", "4", "--out", str(folder), "--json"]) == 0
    return folder


def _ls(run: Path, capsys: pytest.CaptureFixture, *where: str) -> list[str]:
    capsys.readouterr()
    assert main(["ls", str(run), "--json", *where]) == 0
    return sorted(json.loads(x)["episode_id"] for x in capsys.readouterr().out.splitlines())


def test_ls_where_negated_term_as_separate_value(run: Path, capsys: pytest.CaptureFixture) -> None:
    every = _ls(run, capsys)
    passed = _ls(run, capsys, "--where", "passed")
    negated = _ls(run, capsys, "--where", "-passed")
    assert negated == _ls(run, capsys, "--where=-passed")
    assert sorted(passed + negated) == every and not set(passed) & set(negated)


def test_export_and_report_take_a_negated_where(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    negated = _ls(run, capsys, "--where", "-passed")
    out = tmp_path / "ev.jsonl"
    assert main(["export", str(run), "--format", "records", "--out", str(out), "--where", "-passed"]) == 0
    assert sorted(json.loads(x)["episode_id"] for x in out.read_text().splitlines()) == negated
    capsys.readouterr()
    assert main(["report", str(run), "--where", "-passed"]) == 0
    assert f"{len(negated)} episodes" in capsys.readouterr().out


def test_glue_leaves_other_arguments_alone() -> None:
    assert glue_option_values(["ls", "r", "--where", "-x", "--where", "--json"]) == \
        ["ls", "r", "--where=-x", "--where", "--json"]
    assert glue_option_values(["export", "--", "--where", "-x"]) == ["export", "--", "--where", "-x"]


def test_where_takes_and_refuses_or(run: Path, capsys: pytest.CaptureFixture) -> None:
    # A tester's `--where 'steps>5 OR passed'` gave 0 episodes: OR was searched as a word.
    assert _ls(run, capsys, "--where", "steps>0 AND passed") == _ls(run, capsys, "--where", "steps>0 passed")
    assert _ls(run, capsys, "--where", '"OR"') == _ls(run, capsys, "--where", "or")  # quoted: the word
    for query in ("steps>5 OR passed", "passed || failed"):
        capsys.readouterr()
        assert main(["ls", str(run), "--where", query]) == 1  # as every bad query
        err = capsys.readouterr().err
        assert "there is no OR, every term must hold" in err and "env:shell env:math" in err
        assert len(err.strip().splitlines()) == 1
