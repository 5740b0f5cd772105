"""Label files merged from two copies of a run can hold two live labels of one annotator on one step (each copy's
``label add`` was a first label there). Every reader takes the newest (``label ls``, ``agreement``, exports, the
store), ``label ls`` says which it left out, and the next ``label add`` replaces both (FINDINGS32 #9)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.replay.label_join import EpisodeLabelIndex
from trajrec.replay.labels import LabelStore


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def merged(run_dir: Path, ids: dict[int, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """ana labels step 0 of one episode -1 in the run and +1 (later) in a copy; the copy's labels files are then
    copied into the run (merging two annotators' copies, as a lead does)."""
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    eid = ids[1]
    code, out, _ = run(capsys, "label", "add", str(run_dir), "--episode", eid, "--step", "0", "--value", "-1",
                       "--annotator", "ana", "--rationale", "first copy", "--json")
    old = json.loads(out)["id"]
    code, out, _ = run(capsys, "label", "add", str(copy), "--episode", eid, "--step", "0", "--value", "+1",
                       "--annotator", "ana", "--json")
    new = json.loads(out)["id"]
    code, out, _ = run(capsys, "label", "add", str(copy), "--episode", eid, "--step", "0", "--value", "-1",
                       "--annotator", "bo", "--json")
    for f in (copy / ".trajrec" / "labels").glob("*.jsonl"):
        shutil.copy(f, run_dir / ".trajrec" / "labels" / f.name)
    return {"episode": eid, "old": old, "new": new}


def test_readers_take_the_newest_of_one_annotators_two_labels(run_dir: Path, merged: dict[str, str],
                                                              capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    eid = merged["episode"]
    store = LabelStore(run_dir)
    assert [(lab.judge, lab.value) for lab in store.current(eid, 0)] == [("human:ana", 1), ("human:bo", -1)]
    assert [lab.id for lab in store.shadowed(eid)] == [merged["old"]]
    assert [lab.id for lab in EpisodeLabelIndex(run_dir).episode_labels(eid).labels() if lab.target == 0] == [
        merged["new"], store.current(eid, 0, judge="human:bo")[0].id]

    code, out, err = run(capsys, "label", "ls", str(run_dir), "--episode", eid, "--json")
    assert [(r["judge"], r["value"]) for r in map(json.loads, out.splitlines())] == [("human:ana", 1),
                                                                                     ("human:bo", -1)]
    assert (f"note: human:ana has two live labels on step 0 of {eid} (label files merged from copies of the "
            f"run?): the newer counts everywhere (ls, agreement, exports, the viewer); the older, "
            f"{merged['old'][:12]} (-1 \"first copy\"), does not count and is not listed (--history lists it)") in err

    # agreement: one label of ana's (the +1), which disagrees with bo's -1
    code, out, _ = run(capsys, "agreement", str(run_dir), "--json")
    report = json.loads(out)
    (ana,) = [j for j in report["judges"] if j["judge"] == "human:ana"]
    assert ana["steps"] == 1 and ana["distribution"] == {"+1": 1}
    (pair,) = report["pairs"]
    assert (pair["n"], pair["observed"]) == (1, 0.0)

    # exports: the records format lists ana's newest label only (the lines are read as text there)
    out_file = tmp_path / "records.jsonl"
    code, _, err = run(capsys, "export", str(run_dir), "--format", "records", "--where", f"episode={eid}",
                       "--out", str(out_file))
    assert code == 0, err
    (row,) = map(json.loads, out_file.read_text().splitlines())
    checks = json.loads(row["checks"]) if isinstance(row["checks"], str) else row["checks"]
    assert sorted((c["judge"], c["value"]) for c in checks if c.get("origin") == "label" and c["target"] == 0) == [
        ("human:ana", 1), ("human:bo", -1)]


def test_label_add_replaces_both(run_dir: Path, merged: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    eid = merged["episode"]
    code, out, err = run(capsys, "label", "add", str(run_dir), "--episode", eid, "--step", "0", "--value", "0",
                         "--annotator", "ana")
    assert code == 0, err
    assert f"replaced label {merged['new']}" in out
    assert (f"also replaced 1 older label of human:ana on that step ({merged['old'][:12]}: two live labels of one "
            "annotator, from merged label files") in out
    store = LabelStore(run_dir)
    assert [(lab.judge, lab.value) for lab in store.current(eid, 0)] == [("human:bo", -1), ("human:ana", 0)]
    assert store.shadowed(eid) == [] and store.live(merged["old"]) is None
    code, out, err = run(capsys, "label", "ls", str(run_dir), "--episode", eid)
    assert "note:" not in err


def test_edit_of_the_older_label_that_does_not_count_is_refused(run_dir: Path, merged: dict[str, str],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The older id is the one `label ls`'s note names: editing it (a tag) made it the newest and silently turned
    ana's live +1 into her old -1 (FINDINGS34 B3). Refused, naming the label that counts; --force edits it and
    says what it now overrides."""
    eid, old, new = merged["episode"], merged["old"], merged["new"]
    for who in (["--annotator", "ana"], []):
        code, out, err = run(capsys, "label", "edit", str(run_dir), "--id", old[:10], "--tag", "x", *who)
        assert code != 0 and out == ""
        assert (f"label {old[:10]} is human:ana's older label on step 0 of {eid} (-1 \"first copy\"), which does not "
                f"count: human:ana's newer label {new[:12]} (+1) on that step does (two live labels of one "
                "annotator, from merged label files). An edit would make the older one the newer, and it would "
                f"override +1 everywhere (ls, agreement, exports). Edit the one that counts (trajrec label edit "
                f"{run_dir} --id {new[:12]} ...)") in err
    # Another person's edit would copy the label that does not count into theirs: refused the same way.
    code, _, err = run(capsys, "label", "edit", str(run_dir), "--id", old, "--value", "0", "--annotator", "cy")
    assert code != 0 and f"Edit the one that counts (trajrec label edit {run_dir} --id {new[:12]} --annotator cy" in err
    store = LabelStore(run_dir)
    assert [(lab.judge, lab.value) for lab in store.current(eid, 0)] == [("human:ana", 1), ("human:bo", -1)]
    assert len(store.history(old)) == 1  # nothing written

    code, out, err = run(capsys, "label", "edit", str(run_dir), "--id", old, "--tag", "x", "--annotator", "ana",
                         "--force")
    assert code == 0, err
    assert f"it now counts over human:ana's label {new[:12]} (+1), which was the newer and counts no more" in out
    store = LabelStore(run_dir)
    assert sorted((lab.judge, lab.value, lab.tags) for lab in store.current(eid, 0)) == [
        ("human:ana", -1, ("x",)), ("human:bo", -1, ())]
