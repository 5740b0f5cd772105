"""A `--prefer` judge id that matches nothing (a typo: `human:Ana` for `human:ana`) is warned about, once, with
the judges the run does have (FINDINGS32 #5); `label ls --judge` the same (FINDINGS32 #10). Before, the export
wrote every label null with exit status 0 and no word, and trl-stepwise advised `label auto --rules`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec import open_episode
from trajrec.cli import main

pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("prefer") / "run"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "2", "--out", str(out), "--json"]) == 0
    assert main(["label", "auto", str(out), "--rules"]) == 0
    eid = open_episode(sorted(out.glob("*.msgpack.zst"))[0]).episode_id
    assert main(["label", "add", str(out), "--episode", eid, "--step", "0", "--value", "-1", "--annotator", "ana"]) == 0
    return out, eid


def test_a_prefer_typo_warns_once_naming_the_judges_here(master: tuple[Path, str], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    run, _eid = master
    out = tmp_path / "steps.parquet"
    capsys.readouterr()
    assert main(["export", str(run), "--format", "parquet", "--prefer", "human:Ana", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    warning = ("trajrec export: warning: --prefer entry 'human:Ana' matched no label or recorded check (did you mean "
               "'human:ana'? judge ids are case-sensitive); judges here: ")
    assert err.count(warning) == 1
    # the env's recorded check is a judge here too
    assert err.split(warning, 1)[1].startswith("exact-answer@1, human:ana, trajrec-rules@2: the export holds no "
                                               "label from it")
    assert pq.read_table(out).column("label").null_count == pq.read_table(out).num_rows  # as asked, but said
    # The right id, a wildcard that matches and class words: no warning.
    for prefer in ("human:ana", "human:*,rule", "human,judge,rule,environment"):
        assert main(["export", str(run), "--format", "parquet", "--prefer", prefer, "--out", str(out),
                     "--overwrite"]) == 0
        assert "matched no label" not in capsys.readouterr().err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_trl_stepwise_says_the_typo_not_label_auto(master: tuple[Path, str], tmp_path: Path, workers: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run, _eid = master
    capsys.readouterr()
    assert main(["export", str(run), "--format", "trl-stepwise", "--prefer", "human:Ana,trajrec-rules@3",
                 "--out", str(tmp_path / "prm.jsonl"), "-j", workers, "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out.splitlines()[-1])
    assert report["prefer_unmatched"] == ["human:Ana", "trajrec-rules@3"]
    assert {"human:ana", "trajrec-rules@2"} <= set(report["judges"])
    assert captured.err.count("matched no label or recorded check") == 1
    assert "'human:ana' or 'trajrec-rules@2'" in captured.err
    capsys.readouterr()
    assert main(["export", str(run), "--format", "trl-stepwise", "--prefer", "human:Ana",
                 "--out", str(tmp_path / "prm2.jsonl"), "-j", workers]) == 0
    err = capsys.readouterr().err
    nothing = next(line for line in err.splitlines() if "nothing written" in line)
    assert "--prefer human:Ana matched no label" in nothing and "label auto" not in nothing


def test_label_ls_judge_that_matches_nothing_names_the_judges(master: tuple[Path, str],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    run, _eid = master
    capsys.readouterr()
    assert main(["label", "ls", str(run), "--judge", "human:Ana"]) == 0
    err = capsys.readouterr().err
    assert ("trajrec label: warning: --judge 'human:Ana' matched no label (did you mean 'human:ana'? judge ids are "
            "case-sensitive); judges here: human:ana, trajrec-rules@2") in err
    # Wildcards, as --prefer takes them
    assert main(["label", "ls", str(run), "--judge", "human:*", "--json"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["judge"] for r in rows] == ["human:ana"] and "warning" not in captured.err
