"""A `--prefer` none of whose entries matched any label, class words included (`--prefer judge` on a run labeled by
people and rules), is warned about, naming the sources there are and a --prefer that falls back on them
(FINDINGS34 B2). Before, only judge ids were checked: the export wrote every label null with exit status 0 and no
word, and trl-stepwise advised `label auto --rules` for steps the rules had labeled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec import open_episode
from trajrec.cli import main

pq = pytest.importorskip("pyarrow.parquet")

WARNING = ("trajrec export: warning: --prefer entry 'judge' matched no label or recorded check; judges here: "
           "exact-answer@1, human:ana, trajrec-rules@2 (sources: human, rule): the export holds no label at all, as "
           "--prefer uses only the sources it lists; to fall back on theirs: --prefer judge,human,rule")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prefer-class") / "run"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "2", "--out", str(out), "--json"]) == 0
    assert main(["label", "auto", str(out), "--rules"]) == 0
    eid = open_episode(sorted(out.glob("*.msgpack.zst"))[0]).episode_id
    assert main(["label", "add", str(out), "--episode", eid, "--step", "0", "--value", "-1", "--annotator", "ana"]) == 0
    return out


def test_a_class_word_that_matched_nothing_warns_with_the_sources_here(run: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "steps.parquet"
    capsys.readouterr()
    assert main(["export", str(run), "--format", "parquet", "--prefer", "judge", "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count(WARNING) == 1
    report = json.loads(captured.out.splitlines()[-1])
    assert report["prefer_unmatched"] == ["judge"]
    assert report["judges"] == ["exact-answer@1", "human:ana", "trajrec-rules@2"]
    table = pq.read_table(out)
    assert table.column("label").null_count == table.num_rows  # as asked, but said
    # The fallback the warning names labels the steps.
    assert main(["export", str(run), "--format", "parquet", "--prefer", "judge,human,rule", "--out", str(out),
                 "--overwrite"]) == 0
    assert "matched no label" not in capsys.readouterr().err
    assert pq.read_table(out).column("label").null_count == 0


@pytest.mark.parametrize("prefer", ["human,judge,rule", "judge,rule", "human", "environment,human:ana"])
def test_no_warning_when_some_entry_matched(run: Path, tmp_path: Path, prefer: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    # `judge` or `rule` beside an entry that matched: no mistake (the default on a run nobody labeled by hand).
    capsys.readouterr()
    assert main(["export", str(run), "--format", "parquet", "--prefer", prefer, "--out",
                 str(tmp_path / "x.parquet"), "--json"]) == 0
    captured = capsys.readouterr()
    assert "matched no label" not in captured.err
    report = json.loads(captured.out.splitlines()[-1])
    assert report["prefer_unmatched"] == []
    # judges are listed only when a warning needs them (judge ids named), never a part of them
    assert report["judges"] == ([] if ":" not in prefer else ["exact-answer@1", "human:ana", "trajrec-rules@2"])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_trl_stepwise_says_to_list_the_sources_not_label_auto(run: Path, tmp_path: Path, workers: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["export", str(run), "--format", "trl-stepwise", "--prefer", "judge", "--out",
                 str(tmp_path / "prm.jsonl"), "-j", workers]) == 0
    err = capsys.readouterr().err
    assert err.count(WARNING) == 1
    nothing = next(line for line in err.splitlines() if "nothing written" in line)
    assert nothing.endswith("--prefer judge matched no label (the warning below names the judges here): list the "
                            "sources that labeled them in --prefer")
    assert "label auto" not in nothing


def test_steps_labeled_by_sources_prefer_leaves_out_are_told_apart_from_unlabeled(
        run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--prefer judge,human` matches ana's one label (no warning), and the rules labeled every other step: the
    episodes left out were not for want of labels, and `label auto --rules` (which they had) would not change it."""
    capsys.readouterr()
    assert main(["export", str(run), "--format", "trl-stepwise", "--prefer", "judge,human", "--out",
                 str(tmp_path / "prm.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "matched no label" not in err and "label auto" not in err
    reason = "a step labeled only by sources --prefer does not list (--unlabeled skip-episode)"
    assert f"nothing written: every matching episode was left out; most for: {reason}; add the judges that labeled " \
           "them (the example names them) or their class (human, judge, rule, environment) to --prefer" in err
    lines = err.splitlines()
    example = lines[next(i for i, line in enumerate(lines) if line.endswith(f"): {reason}")) + 1]
    assert example.startswith("      e.g. episode ") and "labeled by " in example and "trajrec-rules@2" in example


def test_label_auto_is_not_advised_under_a_prefer_that_leaves_the_rules_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--prefer human` on passed episodes ana labeled in part: `label auto --rules` would label the rest, but
    --prefer human leaves the rules' labels out, so it is not advised as if it would help."""
    out = tmp_path / "run"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "2", "--out", str(out), "--json"]) == 0
    eid = open_episode(sorted(out.glob("*.msgpack.zst"))[0]).episode_id
    assert main(["label", "add", str(out), "--episode", eid, "--step", "0", "--value", "+1", "--annotator", "ana"]) == 0
    capsys.readouterr()
    assert main(["export", str(out), "--format", "trl-stepwise", "--prefer", "human", "--out",
                 str(tmp_path / "prm.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "matched no label" not in err
    assert ("most for: an unlabeled step (--unlabeled skip-episode); label the steps with a source --prefer lists "
            "(`trajrec label add`, the viewer), add rule to --prefer after `trajrec label auto PATH --rules`, or pass "
            "--unlabeled truncate, drop-step, false or neutral") in err
    assert "labels every step of the" not in err  # the hint that label auto --rules would let them in
    # The default --prefer takes the rules' labels: there both are advised, as before.
    assert main(["export", str(out), "--format", "trl-stepwise", "--out", str(tmp_path / "prm2.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "label the steps (`trajrec label auto PATH --rules`)" in err and "labels every step of the" in err
