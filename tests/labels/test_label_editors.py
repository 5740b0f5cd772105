"""Who edited a label: an edit by another person is that person's label; ids by any unique prefix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.recorder import TrajrecUsageError
from trajrec.replay.labels import LabelStore


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_edit_by_another_annotator_is_their_own_label(run_dir: Path, ids: dict[int, str],
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Tester: `label edit --id b11e --value good --annotator mallory` said "(+1 by human:ana)" and counted as ana's.
    monkeypatch.delenv("TRAJREC_ANNOTATOR", raising=False)
    eid = ids[1]
    code, out, _ = run(capsys, "label", "add", str(run_dir), "--episode", eid, "--step", "1", "--value", "bad",
                       "--annotator", "ana", "--rationale", "wrong file", "--tag", "loop", "--json")
    ana = json.loads(out)
    code, out, _ = run(capsys, "label", "edit", str(run_dir), "--id", ana["id"][:6], "--value", "good",
                       "--annotator", "mallory")
    assert code == 0
    assert out.startswith(f"label {ana['id'][:6]} is human:ana's, so mallory's edit is mallory's own label ")
    # ... and says what of ana's label it carries (FINDINGS34 B7: it named the value only).
    new_id = out.split("mallory's own label ", 1)[1].split()[0]
    assert (f"+1 by human:mallory, with rationale \"wrong file\" and tags loop taken from human:ana's label "
            f"(`trajrec label edit {run_dir} --id {new_id[:12]} --rationale ... --tag ...` changes them); human:ana's "
            "label stays beside it") in out

    code, out, _ = run(capsys, "label", "ls", str(run_dir), "--episode", eid, "--step", "1", "--json")
    live = {row["judge"]: row for row in map(json.loads, out.splitlines())}
    assert set(live) == {"human:ana", "human:mallory"}
    assert (live["human:ana"]["value"], live["human:ana"]["author"]) == (-1, "ana")
    mal = live["human:mallory"]
    assert (mal["value"], mal["author"], mal["rationale"], mal["tags"], mal["edit_of"], mal["supersedes"]) == (
        1, "mallory", "wrong file", ["loop"], ana["id"], None)

    # Agreement sees two opinions on the step: they disagree.
    code, out, _ = run(capsys, "agreement", str(run_dir), "--json")
    (pair,) = [p for p in json.loads(out)["pairs"] if {p["a"], p["b"]} == {"human:ana", "human:mallory"}]
    assert pair["n"] == 1 and pair["observed"] == 0.0

    # An export preferring people takes the newer person's label: mallory's.
    prm = run_dir.parent / "prm.jsonl"
    code, _, err = run(capsys, "export", str(run_dir), "--format", "trl-stepwise", "--out", str(prm),
                       "--where", f"episode={eid}", "--prefer", "human", "--unlabeled", "neutral")
    assert code == 0, err
    (row,) = map(json.loads, prm.read_text().splitlines())
    assert row["label_judges"][row["steps"].index(1)] == "human:mallory"

    # A second edit by mallory (of either label) is a new version of mallory's label, not a third label.
    code, out, _ = run(capsys, "label", "edit", str(run_dir), "--id", ana["id"], "--value", "0",
                       "--annotator", "mallory")
    assert code == 0 and f"replaced label {mal['id']}" in out
    code, out, _ = run(capsys, "label", "ls", str(run_dir), "--episode", eid, "--step", "1", "--json")
    assert sorted((r["judge"], r["value"]) for r in map(json.loads, out.splitlines())) == [
        ("human:ana", -1), ("human:mallory", 0)]

    # --history has an author column: the header names it and each row shows the version's author.
    code, out, _ = run(capsys, "label", "ls", str(run_dir), "--episode", eid, "--history")
    header, *rows = out.splitlines()
    assert header.split()[:7] == ["episode", "target", "value", "score", "judge", "author", "kind"]
    assert [row.split()[4:6] for row in rows] == [["human:ana", "ana"], ["human:mallory", "mallory"],
                                                  ["human:mallory", "mallory"]]
    assert f"(edit of {ana['id'][:12]})" in rows[1]


def test_edit_by_the_author_or_the_environment_annotator(run_dir: Path, ids: dict[int, str],
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAJREC_ANNOTATOR", raising=False)
    code, out, _ = run(capsys, "label", "add", str(run_dir), "--episode", ids[1], "--step", "0", "--value", "+1",
                       "--annotator", "ana", "--json")
    first = json.loads(out)
    # No editor named: the label's own author edits (a new version of the same label).
    code, out, _ = run(capsys, "label", "edit", str(run_dir), "--id", first["id"], "--value", "0", "--json")
    second = json.loads(out)
    assert (second["judge"], second["author"], second["supersedes"]) == ("human:ana", "ana", first["id"])
    # $TRAJREC_ANNOTATOR names the editor when --annotator is not given.
    monkeypatch.setenv("TRAJREC_ANNOTATOR", "bo")
    code, out, _ = run(capsys, "label", "edit", str(run_dir), "--id", first["id"], "--value", "-1", "--json")
    bo = json.loads(out)
    assert (bo["judge"], bo["author"], bo["supersedes"], bo["edit_of"]) == ("human:bo", "bo", None, second["id"])
    code, out, _ = run(capsys, "label", "edit", str(run_dir), "--id", second["id"], "--rationale", "fine",
                       "--annotator", "ana", "--json")
    third = json.loads(out)
    assert (third["judge"], third["supersedes"], third["rationale"]) == ("human:ana", second["id"], "fine")


def test_edit_of_anothers_label_changes_only_the_given_fields_of_the_editors_own(
        run_dir: Path, ids: dict[int, str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # FINDINGS32 #3: bo (+1 "bo: fine, exploring") tagged ana's -1 label; bo's rating became ana's -1 and bo's
    # rationale ana's, and agreement went from 0 to 1 without a word.
    monkeypatch.delenv("TRAJREC_ANNOTATOR", raising=False)
    eid = ids[1]
    code, out, _ = run(capsys, "label", "add", str(run_dir), "--episode", eid, "--step", "2", "--value", "-1",
                       "--rationale", "ana: useless repeat", "--annotator", "ana", "--json")
    ana = json.loads(out)
    code, out, _ = run(capsys, "label", "add", str(run_dir), "--episode", eid, "--step", "2", "--value", "+1",
                       "--rationale", "bo: fine, exploring", "--score", "0.5", "--annotator", "bo", "--json")
    bo = json.loads(out)
    code, out, err = run(capsys, "label", "edit", str(run_dir), "--id", ana["id"][:8], "--tag", "lucky-guess",
                         "--annotator", "bo")
    assert code == 0, err
    assert (f"label {ana['id'][:8]} is human:ana's, and bo already has a label on step 2 of {eid} "
            f"({bo['id'][:12]}: +1 score 0.5 \"bo: fine, exploring\"): the edit applies to bo's own label only: "
            "tags none → lucky-guess; its value (+1), rationale (\"bo: fine, exploring\") and score (0.5) stay.") in out
    assert f"replaced label {bo['id']}" in out
    code, out, _ = run(capsys, "label", "ls", str(run_dir), "--episode", eid, "--step", "2", "--json")
    live = {row["judge"]: row for row in map(json.loads, out.splitlines())}
    assert (live["human:ana"]["id"], live["human:ana"]["value"], live["human:ana"]["tags"]) == (ana["id"], -1, [])
    mine = live["human:bo"]
    assert (mine["value"], mine["rationale"], mine["score"], mine["tags"], mine["supersedes"], mine["edit_of"]) == (
        1, "bo: fine, exploring", 0.5, ["lucky-guess"], bo["id"], ana["id"])
    code, out, _ = run(capsys, "agreement", str(run_dir), "--json")
    (pair,) = [p for p in json.loads(out)["pairs"] if {p["a"], p["b"]} == {"human:ana", "human:bo"}]
    assert (pair["n"], pair["observed"]) == (1, 0.0)  # still the disagreement it was
    # A value bo gives is applied (to bo's label), and the message says what it was.
    code, out, _ = run(capsys, "label", "edit", str(run_dir), "--id", ana["id"], "--value", "-1", "--annotator", "bo")
    assert "value +1 → -1; its rationale (\"bo: fine, exploring\"), tags (lucky-guess) and score (0.5) stay" in out
    # The store's API does the same.
    store = LabelStore(run_dir)
    new = store.edit_as(ana["id"], "bo", rationale="on second thought")
    assert (new.value, new.rationale, new.tags, new.score, new.extra["edit_of"]) == (
        -1, "on second thought", ("lucky-guess",), 0.5, ana["id"])
    assert [lab.value for lab in store.current(eid, 2, judge="human:ana")] == [-1]


def test_rm_of_another_persons_label_needs_force(run_dir: Path, ids: dict[int, str],
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # FINDINGS32 #3: `label rm --id <ana's> --annotator bo` deleted ana's label without a remark.
    monkeypatch.delenv("TRAJREC_ANNOTATOR", raising=False)
    code, out, _ = run(capsys, "label", "add", str(run_dir), "--episode", ids[1], "--step", "2", "--value", "-1",
                       "--rationale", "useless", "--annotator", "ana", "--json")
    ana = json.loads(out)
    code, out, err = run(capsys, "label", "rm", str(run_dir), "--id", ana["id"][:8], "--annotator", "bo")
    assert code == 1 and out == ""
    assert (f"label {ana['id'][:8]} is human:ana's (-1 \"useless\" on step 2 of {ids[1]}), not bo's: deleting it "
            "takes ana's opinion out of agreement and exports") in err
    assert "pass --force" in err
    monkeypatch.setenv("TRAJREC_ANNOTATOR", "bo")  # the environment's annotator is the deleter too
    code, out, err = run(capsys, "label", "rm", str(run_dir), "--id", ana["id"][:8])
    assert code == 1 and "not bo's" in err
    assert [lab.id for lab in LabelStore(run_dir).current(ids[1], 2)] == [ana["id"]]
    code, out, err = run(capsys, "label", "rm", str(run_dir), "--id", ana["id"][:8], "--force", "--json")
    assert code == 0, err
    tomb = json.loads(out)
    assert (tomb["judge"], tomb["author"], tomb["deleted"]) == ("human:ana", "bo", True)
    # One's own label needs no --force.
    code, out, _ = run(capsys, "label", "add", str(run_dir), "--episode", ids[1], "--step", "3", "--value", "+1",
                       "--json")
    own = json.loads(out)
    code, out, err = run(capsys, "label", "rm", str(run_dir), "--id", own["id"])
    assert code == 0 and out.startswith(f"deleted label {own['id']} (tombstone "), err


def test_store_update_refuses_to_put_an_edit_under_another_persons_name(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    lab = store.add("ep", 2, -1, judge="human:ana")
    with pytest.raises(TrajrecUsageError, match=r"an edit by bo would be counted as ana's; use edit_as"):
        store.update(lab.id, value=1, author="bo")
    assert len(store.history(lab.id)) == 1
    mine = store.edit_as(lab.id, "bo", value=1)
    assert (mine.judge, mine.author, mine.value, mine.extra["edit_of"]) == ("human:bo", "bo", 1, lab.id)
    assert sorted(x.judge for x in store.current("ep")) == ["human:ana", "human:bo"]
    rule = store.add("ep", 3, -1, kind="rule", judge="trajrec-rules@2", author=None)
    forced = store.edit_as(rule.id, "bo", value=0)  # an automatic judge's label: the same label, bo as author
    assert (forced.judge, forced.author, forced.supersedes) == ("trajrec-rules@2", "bo", rule.id)
    # Reading the files again gives the same answer.
    again = LabelStore(tmp_path)
    assert sorted((x.judge, x.value) for x in again.current("ep")) == [
        ("human:ana", -1), ("human:bo", 1), ("trajrec-rules@2", 0)]


def _ids_sharing_a_first_char(store: LabelStore, episode: str) -> tuple[list[str], str]:
    """Add labels until two ids share their first character and one id's first two characters are unique."""
    for step in range(200):
        store.add(episode, step % 4, 1, judge=f"human:p{step}")  # each person once; the episode has 4 steps
        ids = [lab.id for lab in store.current(episode)]
        firsts = [i[0] for i in ids]
        shared = [i for i in ids if firsts.count(i[0]) > 1]
        unique = [i for i in ids if sum(j.startswith(i[:2]) for j in ids) == 1 and firsts.count(i[0]) > 1]
        if shared and unique:
            return shared, unique[0]
    raise AssertionError("no shared first character in 200 ids")


def test_label_id_by_any_unique_prefix_and_ambiguous_lists_candidates(run_dir: Path, ids: dict[int, str],
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # Tester: `label edit --id 37a` said "no label with id '37a'" though the 3-character prefix was unique.
    store = LabelStore(run_dir)
    shared, unique = _ids_sharing_a_first_char(store, ids[1])
    store.close()
    code, out, err = run(capsys, "label", "edit", str(run_dir), "--id", unique[:2], "--value", "0", "--json")
    assert code == 0, err
    assert json.loads(out)["supersedes"] == unique
    prefix = shared[0][0]
    code, out, err = run(capsys, "label", "rm", str(run_dir), "--id", prefix)
    assert code == 1 and out == ""
    n = len(LabelStore(run_dir).matching_ids(prefix))
    assert err.startswith(f"trajrec label: error: label id prefix {prefix!r} matches {n} label versions: ")
    listed = err.split(": ", 3)[3]
    assert f"({ids[1][-8:]} " in listed and "human:p" in listed and "give more characters" in listed
    store = LabelStore(run_dir)
    matches = store.matching_ids(prefix)
    live = {lab.id for lab in store.current()}
    for i in sorted(matches, key=lambda i: (i not in live, i))[:6]:  # live labels are listed first
        assert i in listed


def test_ambiguous_id_lists_live_labels_before_old_versions_and_tombstones(run_dir: Path, ids: dict[int, str]) -> None:
    # CI found this: with tombstones sharing a prefix, the one live label fell past the listed three.
    store = LabelStore(run_dir)
    gone = [store.add(ids[1], 1, 1, judge=f"human:p{t}") for t in range(4)]
    tombs = [store.delete(lab.id) for lab in gone]
    old = store.add(ids[1], 0, 0, judge="human:ana")
    new = store.update(old.id, value=1)
    keep = store.add(ids[1], 1, 1, judge="human:ana")
    everything = [lab.id for lab in gone + tombs] + [old.id, new.id, keep.id]
    text = store.describe_ids(everything, limit=2)
    assert text.startswith(f"{min(new.id, keep.id)} (") and f"{max(new.id, keep.id)} (" in text
    assert text.endswith(f", and {len(everything) - 2} more") and "deleted" not in text and "old version" not in text
    text = store.describe_ids(everything, limit=len(everything))
    assert text.count(", old version)") == 5 and text.count(", deleted)") == 4
    assert text.rindex("old version") < text.index("deleted") and f"{old.id} ({ids[1][-8:]} 0 human:ana, old" in text


def test_label_id_prefix_ambiguous_across_runs(tmp_path: Path, run_dir: Path, ids: dict[int, str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    parent = tmp_path / "runs"
    parent.mkdir()
    shutil.move(str(run_dir), parent / "a")
    shutil.copytree(parent / "a", parent / "b")
    store_a, store_b = LabelStore(parent / "a"), LabelStore(parent / "b")
    a = store_a.add(ids[1], 0, 1, judge="human:ana")
    while True:  # a label in run b whose id shares a's first character
        b = store_b.add(ids[1], 1, 1, judge="human:ana")
        if b.id[0] == a.id[0]:
            break
        store_b.delete(b.id)
    code, out, err = run(capsys, "label", "rm", str(parent), "--id", a.id[0])
    assert code == 1
    assert f"label id {a.id[0]!r} matches labels in 2 runs under {parent}: " in err
    assert f"{parent / 'a'}: {a.id} ({ids[1][-8:]} 0 human:ana)" in err
    assert f"{parent / 'b'}: " in err and f"{b.id} ({ids[1][-8:]} 1 human:ana)" in err
    code, out, err = run(capsys, "label", "rm", str(parent), "--id", a.id[:12])
    assert code == 0 and out.startswith(f"deleted label {a.id[:12]}")


def test_label_edit_that_empties_a_carrier_withdraws_it(run_dir: Path, ids: dict[int, str],
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # FINDINGS32 #4: the neutral 0 the viewer gives a note on an unrated step stayed as a rating nobody gave when
    # the note was cleared; `label edit --rationale ""` clears it from a terminal, and withdraws it too.
    from trajrec.tui.label_session import LabelSession

    monkeypatch.delenv("TRAJREC_ANNOTATOR", raising=False)
    eid = ids[1]
    carrier = LabelSession(LabelStore(run_dir), eid, 3, "ana").set_rationale(1, "look again").after
    assert (carrier.value, carrier.extra["carrier"]) == (0, True)
    code, out, err = run(capsys, "label", "edit", str(run_dir), "--id", carrier.id[:8], "--rationale", "")
    assert code == 0, err
    assert out.startswith(f"withdrew label {carrier.id[:8]}: its 0 was no rating, only the carrier of what the "
                          "edit took off")
    assert LabelStore(run_dir).current(eid, 1) == []
    # A value given makes it a rating: emptied afterwards, the rating stays.
    rated = LabelSession(LabelStore(run_dir), eid, 3, "ana").set_rationale(1, "look again").after
    code, out, _ = run(capsys, "label", "edit", str(run_dir), "--id", rated.id, "--value", "0", "--json")
    assert "carrier" not in json.loads(out)
    code, out, _ = run(capsys, "label", "edit", str(run_dir), "--id", rated.id, "--rationale", "", "--json")
    assert json.loads(out)["value"] == 0
    assert [(lab.value, lab.rationale) for lab in LabelStore(run_dir).current(eid, 1)] == [(0, "")]


def test_edit_by_another_annotator_names_each_field_taken_from_the_other_label(
        run_dir: Path, ids: dict[int, str], capsys: pytest.CaptureFixture[str]) -> None:
    """bo edits only the rationale of ana's label: bo's new label takes ana's value, tags and score, and the message
    names them (FINDINGS34 B7); a field the edit names is not said to be taken."""
    eid = ids[1]
    code, out, _ = run(capsys, "label", "add", str(run_dir), "--episode", eid, "--step", "2", "--value", "-1",
                       "--annotator", "ana", "--rationale", "ana r", "--tag", "t1", "--score", "0.5", "--json")
    ana = json.loads(out)["id"]
    code, out, err = run(capsys, "label", "edit", str(run_dir), "--id", ana, "--rationale", "bo r", "--annotator", "bo")
    assert code == 0, err
    bo = LabelStore(run_dir).current(eid, 2, judge="human:bo")[0]
    assert (bo.value, bo.rationale, bo.tags, bo.score) == (-1, "bo r", ("t1",), 0.5)
    assert (f"-1 by human:bo, with value -1, tags t1 and score 0.5 taken from human:ana's label (`trajrec label edit "
            f"{run_dir} --id {str(bo.id)[:12]} --value ... --tag ... --score ...` changes them); human:ana's label "
            "stays beside it") in out
    assert "ana r" not in out
    # A label with nothing but a value to take: said the same way, one field.
    code, out, _ = run(capsys, "label", "add", str(run_dir), "--episode", eid, "--step", "3", "--value", "+1",
                       "--annotator", "ana", "--json")
    code, out, err = run(capsys, "label", "edit", str(run_dir), "--id", json.loads(out)["id"], "--tag", "x",
                         "--annotator", "bo")
    assert code == 0, err
    assert "+1 by human:bo, with value +1 taken from human:ana's label (" in out and "--value ...` changes it)" in out
