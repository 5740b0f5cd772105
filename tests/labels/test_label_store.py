"""The label store: append-only versions, merge on read, torn lines, validation with clear messages."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import socket
import time
import warnings
from pathlib import Path

import pytest

from trajrec.recorder import Check, TrajrecUsageError
from trajrec.replay.labels import LABELS_DIR, Label, LabelStore, LabelWarning, parse_value, rating


def lines(store: LabelStore) -> list[dict]:
    out = []
    for f in sorted(store.dir.glob("*.jsonl")):
        out.extend(json.loads(ln) for ln in f.read_text().splitlines() if ln.strip())
    return out


def test_add_update_delete_keep_history(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    a = store.add("ep", 3, -1, judge="human:ana", rationale="wrong file", tags=["wrong-file"])
    assert (a.episode_id, a.target, a.kind, a.judge, a.author, a.value) == ("ep", 3, "judge", "human:ana", "ana", -1)
    assert re.fullmatch(r"[0-9a-f]{32}", a.id)
    assert isinstance(a.check, Check) and a.check.passed is False and a.check.extra["episode_id"] == "ep"
    b = store.update(a.id, value=0, rationale="ok after all")
    assert b.supersedes == a.id and b.id != a.id and b.time > a.time
    assert [(lab.id, lab.value) for lab in store.current("ep")] == [(b.id, 0)]
    c = store.update(a.id, value=1)  # any version's id names the label
    assert c.supersedes == b.id
    tomb = store.delete(c.id, author="bo")
    assert tomb.deleted and tomb.supersedes == c.id and tomb.author == "bo"
    assert store.current("ep") == [] and store.labeled_steps("ep") == set()
    assert [v.id for v in store.history(a.id)] == [a.id, b.id, c.id, tomb.id]
    assert [v.id for v in store.history(("ep", 3))] == [a.id, b.id, c.id, tomb.id]
    # Appending only: one line per version, nothing rewritten.
    assert [r["id"] for r in lines(store)] == [a.id, b.id, c.id, tomb.id]


def test_labels_persist_in_the_run_folder_and_travel_with_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    store = LabelStore(run)
    lab = store.add("ep", "episode", True, judge="model:rubric@2", kind="judge", score=0.0, extra_field="x")
    store.close()
    files = list((run / LABELS_DIR).glob("*.jsonl"))
    assert len(files) == 1
    host = re.sub(r"[^A-Za-z0-9_.]+", "_", socket.gethostname())[:40]
    assert re.fullmatch(rf"model_rubric_2-{re.escape(host)}-{os.getpid()}-[0-9a-f]{{8}}\.jsonl", files[0].name)
    shutil.copytree(run, tmp_path / "moved")
    again = LabelStore(tmp_path / "moved").current()
    assert again == [lab]
    assert again[0].score == 0.0 and again[0].extra == {"extra_field": "x"}


def test_for_path_accepts_a_file_or_a_folder(tmp_path: Path) -> None:
    f = tmp_path / "x.msgpack.zst"
    f.write_bytes(b"")
    assert LabelStore.for_path(f).run_dir == tmp_path
    assert LabelStore.for_path(tmp_path).run_dir == tmp_path
    with pytest.raises(TrajrecUsageError, match="no such file or folder"):
        LabelStore.for_path(tmp_path / "nope")
    with pytest.raises(TrajrecUsageError, match="is a file"):
        LabelStore(f)


def test_refresh_picks_up_other_writers_incrementally(tmp_path: Path) -> None:
    a, b = LabelStore(tmp_path), LabelStore(tmp_path)
    a.add("ep", 0, 1, judge="human:ana")
    b.add("ep", 1, -1, judge="human:bo")
    assert len(a) == 1 and len(b) == 1  # separate files, not yet merged
    assert a.refresh() == 1 and a.refresh() == 0
    assert {lab.judge for lab in a.current("ep")} == {"human:ana", "human:bo"}
    b.add("ep", 2, 0, judge="human:bo")
    assert a.refresh() == 1
    assert a.labeled_steps("ep") == {0, 1, 2}
    assert a.labeled_fraction("ep", 4) == 0.75 and a.labeled_fraction("ep", 0) == 0.0
    assert LabelStore(tmp_path).labeled_steps("ep") == {0, 1, 2}


def test_a_torn_last_line_is_skipped_with_a_warning_then_read_when_completed(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    good = store.add("ep", 0, 1, judge="human:ana")
    store.close()
    line = json.dumps(Label("ep", 1, "judge", "human:ana", -1, id="f" * 32, time=1.0).to_record()) + "\n"
    path = next(store.dir.glob("*.jsonl"))
    with open(path, "ab") as fh:
        fh.write(line.encode()[:25])  # the writer died mid-line
    os.utime(path, (1, 1))  # ... long ago
    with pytest.warns(LabelWarning, match=r"skipped an incomplete last line \(25 bytes at byte \d+\); its writer "
                                          r"stopped mid-label\. Every label before it is intact\."):
        reader = LabelStore(tmp_path)
    assert reader.current() == [good]
    with open(path, "ab") as fh:  # it was only slow: the rest arrives
        fh.write(line.encode()[25:])
    assert reader.refresh() == 1
    assert [lab.value for lab in reader.current("ep")] == [1, -1]


def test_a_recent_incomplete_line_is_awaited_silently(tmp_path: Path) -> None:
    d = tmp_path / LABELS_DIR
    d.mkdir(parents=True)
    (d / "x.jsonl").write_bytes(b'{"v":1,"id":"ab')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(LabelStore(tmp_path)) == 0


def test_a_damaged_line_is_skipped_and_the_rest_read(tmp_path: Path) -> None:
    d = tmp_path / LABELS_DIR
    d.mkdir(parents=True)
    recs = [Label("ep", i, "judge", "human:ana", 1, id=f"{i:032x}", time=float(i)).to_record() for i in range(3)]
    text = json.dumps(recs[0]) + "\n" + "{not json\n" + json.dumps(recs[1]) + "\n\n" + json.dumps(recs[2]) + "\n"
    (d / "x.jsonl").write_text(text)
    with pytest.warns(LabelWarning, match=r"x.jsonl: skipped line 2 \(byte \d+\): Expecting property name"):
        store = LabelStore(tmp_path)
    assert store.labeled_steps("ep") == {0, 1, 2}


def test_concurrent_edits_of_one_version_keep_both_and_the_newest_wins(tmp_path: Path) -> None:
    a = LabelStore(tmp_path)
    first = a.add("ep", 0, 1, judge="human:ana")
    b = LabelStore(tmp_path)
    from_a = a.update(first.id, value=0)
    time.sleep(0.01)  # distinct clock readings, so "newest" is unambiguous
    from_b = b.update(first.id, value=-1)  # b had not seen a's edit
    merged = LabelStore(tmp_path)
    assert [lab.id for lab in merged.current()] == [from_b.id]  # the newer one
    assert {v.id for v in merged.history(first.id)} == {first.id, from_a.id, from_b.id}


def test_versions_read_before_what_they_supersede_are_linked(tmp_path: Path) -> None:
    d = tmp_path / LABELS_DIR
    d.mkdir(parents=True)
    v1 = Label("ep", 0, "judge", "human:ana", 1, id="1" * 32, time=1.0)
    v2 = Label("ep", 0, "judge", "human:ana", 0, id="2" * 32, time=2.0, supersedes=v1.id)
    v3 = Label("ep", 0, "judge", "human:ana", -1, id="3" * 32, time=3.0, supersedes=v2.id)
    # Files are read in name order: the newest versions come first.
    (d / "a.jsonl").write_text(json.dumps(v3.to_record()) + "\n")
    (d / "b.jsonl").write_text(json.dumps(v2.to_record()) + "\n")
    (d / "c.jsonl").write_text(json.dumps(v1.to_record()) + "\n")
    store = LabelStore(tmp_path)
    assert store.current() == [v3]
    assert [v.id for v in store.history(v1.id)] == [v1.id, v2.id, v3.id]
    assert len(store.versions("ep")) == 3


def _add_in_child(store: LabelStore, q: "multiprocessing.Queue[str]") -> None:
    q.put(store.add("ep", 5, 1, judge="human:child").id)


def test_a_forked_child_writes_its_own_file(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    store.add("ep", 0, 1, judge="human:parent")
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_add_in_child, args=(store, q))
    p.start()
    p.join(30)
    assert p.exitcode == 0
    assert len(list(store.dir.glob("*.jsonl"))) == 2
    assert store.refresh() == 1 and len(store) == 2


@pytest.mark.parametrize(("call", "message"), [
    (lambda s: s.add("ep", 0, 1, kind="jugde"),
     "unknown label kind 'jugde' (did you mean 'judge'?); kinds are rule, environment, judge (people label with "
     "kind='judge', judge='human:<name>')"),
    (lambda s: s.add("ep", 0, 5, judge="human:a"),
     "a rating is -1, 0 or +1, got 5; a score goes in as a float (value=5.0) or as score=5"),
    (lambda s: s.add("ep", 0, None, judge="human:a"),
     "a label needs a value: a rating -1/0/+1, a score (float), pass/fail (True/False) or a category (text)"),
    (lambda s: s.add("ep", 0, "godo", judge="human:a"),
     "value 'godo' looks like a misspelling of 'good'; did you mean 'good'? (a category name must not be this "
     "close to a rating or verdict word)"),
    (lambda s: s.add("ep", 0, "Good", judge="human:a"),
     "value 'Good' is text that reads as a rating; pass the number itself (e.g. 1), or parse typed text with "
     "parse_value('Good')"),
    (lambda s: s.add("ep", 0, "+1", judge="human:a"),
     "value '+1' is text that reads as a number; pass the number itself (e.g. 1), or parse typed text with "
     "parse_value('+1')"),
    (lambda s: s.add("ep", 0, float("nan"), judge="human:a"), "a score must be a finite number, got nan"),
    (lambda s: s.add("ep", -1, 1, judge="human:a"), "a label target is 'episode' or a step index >= 0, got -1"),
    (lambda s: s.add("ep", "step", 1, judge="human:a"),
     "a label target is 'episode' or a step index >= 0, got 'step'"),
    (lambda s: s.add("ep", 0, 1, judge="human:a", tags=["two words"]),
     "a tag is one word without spaces or commas (e.g. 'wrong-tool'), got 'two words'"),
    (lambda s: s.add("ep", 0, 1, judge="human:a", kind="rule"),
     "a human label has kind 'judge', got kind='rule' for judge 'human:a'"),
    (lambda s: s.add("ep", 0, 1, judge="my judge"),
     "judge must name who labeled, without spaces: 'human:<name>', '<rules>@<version>' or 'model:<name>', "
     "got 'my judge'"),
    (lambda s: s.add("", 0, 1, judge="human:a"), "episode_id must be a non-empty str, got ''"),
    (lambda s: s.add("ep", 0, [1], judge="human:a"),
     "a label value must be a rating -1/0/+1 (int), a score (float), pass/fail (bool) or a category (str), got "
     "list"),
])
def test_validation_errors_say_what_is_allowed(tmp_path: Path, call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TrajrecUsageError) as err:
        call(LabelStore(tmp_path))
    assert str(err.value) == message


def test_update_and_delete_errors(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    lab = store.add("ep", 0, 1, judge="human:a")
    with pytest.raises(TrajrecUsageError, match=r"cannot update target \(the target and episode of a label are "
                                                r"fixed: delete it and add a new one\)"):
        store.update(lab.id, target=3)
    store.delete(lab.id)
    with pytest.raises(TrajrecUsageError, match=r"cannot update label .*: it was deleted \(tombstone"):
        store.update(lab.id, value=0)
    with pytest.raises(TrajrecUsageError, match="cannot delete label"):
        store.delete(lab.id)
    with pytest.raises(TrajrecUsageError, match=r"no label with id 'zzzz' in .*; `trajrec label ls .*` lists the ids"):
        store.update("zzzz", value=0)


def test_ids_resolve_by_unique_prefix(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    lab = store.add("ep", 0, 1, judge="human:a")
    assert store.get(lab.id[:8]) == lab
    assert store.update(lab.id[:8], value=0).supersedes == lab.id


def test_near_miss_tags_warn(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    with pytest.warns(LabelWarning, match="new tag 'usefull-recovery' is close to the existing tag 'useful-recovery'"):
        store.add("ep", 0, 1, judge="human:a", tags=["usefull-recovery"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.add("ep", 1, 1, judge="human:a", tags=["brand-new"])
    assert "brand-new" in store.tags()


def test_default_judge_is_the_annotator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAJREC_ANNOTATOR", "zoe")
    lab = LabelStore(tmp_path).add("ep", 0, "typo")
    assert (lab.judge, lab.author, lab.kind) == ("human:zoe", "zoe", "judge")


def test_values() -> None:
    assert [parse_value(t) for t in ("+1", "-1", "0", "good", "bad", "neutral", "pass", "fail", "0.25", "typo")] == [
        1, -1, 0, 1, -1, 0, True, False, 0.25, "typo"]
    assert [rating(v) for v in (True, False, 1, 0, -1, 0.3, "fail", "typo")] == [1, -1, 1, 0, -1, 1, -1, None]
    # A whole number beyond the ratings, typed: the message says what to type (FINDINGS32 #10), not Python.
    with pytest.raises(TrajrecUsageError, match=r"^a rating is -1, 0 or \+1, got 2; type a score with a decimal "
                       r"point \(2\.0\), or keep it as the label's score \(--score 2\)$"):
        parse_value("2")


def test_label_stores_find_episodes_in_any_run_folder(tmp_path: Path) -> None:
    from trajrec.replay.labels import LabelStores

    LabelStore(tmp_path / "shell").add("ep-s", 0, 1, judge="human:ana")
    LabelStore(tmp_path / "deep" / "math").add("ep-m", 1, -1, judge="human:ana")
    stores = LabelStores([tmp_path])
    assert sorted(str(s.run_dir.relative_to(tmp_path)) for s in stores) == ["deep/math", "shell"]
    math = tmp_path / "deep" / "math" / "ep-m.msgpack.zst"
    assert stores.labeled_fraction(math, "ep-m", 2) == 0.5 and stores.labeled_fraction(math, "nope", 2) == 0.0
    # A label added through one of them is seen at once; one added by another process after a refresh.
    stores.for_episode(tmp_path / "shell" / "ep-new.msgpack.zst").add("ep-new", 0, 1, judge="human:bo")
    assert [lab.judge for lab in stores.current("ep-new")] == ["human:bo"]
    LabelStore(tmp_path / "deep" / "math").add("ep-m", 0, 1, judge="human:cy")
    assert stores.labeled_fraction(math, "ep-m", 2) == 0.5
    assert stores.refresh() == 1 and stores.labeled_fraction(math, "ep-m", 2) == 1.0


def test_one_live_label_per_target_and_person(tmp_path: Path) -> None:
    """A person's second label on a target supersedes their first (from this store or from another process);
    other judges, other targets and explicit ``supersedes`` keep their own labels."""
    store = LabelStore(tmp_path)
    first = store.add("ep", 0, 1, judge="human:ana", rationale="good read", tags=["x"])
    second = store.add("ep", 0, -1, author="ana")  # the same judge, human:ana
    assert second.supersedes == first.id and second.time > first.time
    other = LabelStore(tmp_path)  # another writer that reads ana's label from the files
    third = other.add("ep", 0, 0, judge="human:ana")
    assert third.supersedes == second.id
    store.add("ep", 0, 1, judge="human:bo")
    store.add("ep", 1, 1, judge="human:ana")
    store.add("ep", 0, 1, kind="rule", judge="rules@1")
    store.add("ep", 0, -1, kind="rule", judge="rules@1")  # automatic judges keep their own bookkeeping
    for s in (store, other, LabelStore(tmp_path)):
        s.refresh()
        live = s.current("ep")
        people = [(lab.judge, lab.target) for lab in live if lab.judge.startswith("human:")]
        assert len(people) == len(set(people)) == 3  # the invariant: one per (judge, target)
        assert [lab.value for lab in s.current("ep", 0, judge="human:ana")] == [0]
        assert [lab.value for lab in s.history(first.id)] == [1, -1, 0]


@pytest.mark.parametrize("author", ["", "  "])
def test_an_empty_author_is_refused(tmp_path: Path, author: str) -> None:
    store = LabelStore(tmp_path)
    with pytest.raises(TrajrecUsageError, match="the annotator \\(author\\) is empty"):
        store.add("ep", 0, 1, author=author)
    assert store.current() == [] and not (tmp_path / ".trajrec").exists()
