"""``LabelSession`` and ``LabelSource`` without the app: the index stays in step with the store, undo, threads."""

from __future__ import annotations

import doctest
import re
import sys
import threading
from pathlib import Path

import pytest

from trajrec import tui

import trajrec.tui.label_session
from trajrec import tui
import trajrec.tui.label_source
from trajrec.recorder import TrajrecUsageError
from trajrec.replay.labels import LabelStore
from trajrec.tui.label_session import LabelSession, parse_tags, rating_text
from trajrec.tui.label_source import LabelSource


@pytest.mark.parametrize("module", [tui.label_session, tui.label_source])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted and not result.failed


def test_parse_tags_and_rating_text() -> None:
    assert parse_tags("a,b , a,") == ("a", "b")
    with pytest.raises(TrajrecUsageError, match=r"--tags: a tag is one word without spaces, got 'lucky guess' .*"
                                                r"\(e\.g\. 'lucky-guess'\)"):
        parse_tags("lucky guess")
    with pytest.raises(TrajrecUsageError, match=r"^\$TRAJREC_TAGS: no tags in ','"):
        parse_tags(",", source="$TRAJREC_TAGS")
    assert [rating_text(v) for v in (1, 0, -1, True, False, 0.25, "odd")] == ["+1", "0", "-1", "pass", "fail",
                                                                               "0.25", "odd"]


def test_one_label_per_step_and_annotator(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    s = LabelSession(store, "ep", 5, "ana")
    assert s.rate(1, 1) is not None and s.rate(1, 1) is None  # the same rating again writes nothing
    assert s.set_rationale(1, "  ") is None  # no rationale to clear
    s.set_rationale(1, "why")
    s.toggle_tag(1, "x")
    s.toggle_tag(1, "y")
    s.toggle_tag(1, "x")
    [lab] = LabelStore(tmp_path).current("ep")
    assert (lab.value, lab.rationale, lab.tags, lab.judge) == (1, "why", ("y",), "human:ana")
    assert s.set_rationale(1, "why") is None
    assert s.set_rationale(3, "") is None  # nothing to clear on an unlabeled step
    change = s.toggle_tag(3, "z")  # a tag on an unlabeled step comes with a neutral label
    assert change.before is None and (change.after.value, change.after.tags) == (0, ("z",))
    assert s.progress() == (2, 2) and s.next_unlabeled(1) == 2 and s.next_unlabeled(4) == 0


def test_a_pass_verdict_is_no_plus_one(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    store.add("ep", 0, True, judge="human:ana")  # e.g. from `trajrec label add --value pass`
    s = LabelSession(store, "ep", 2, "ana")
    assert s.rate(0, 1) is not None and [lab.value for lab in store.current("ep")] == [1]


def test_undo_walks_back_every_action(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    s = LabelSession(store, "ep", 3, "ana")
    s.rate(0, 1)
    s.rate(0, -1)
    s.set_rationale(0, "because")
    s.toggle_tag(0, "t")
    values = []
    while (change := s.undo()) is not None:
        lab = s.mine_at(0)
        values.append(None if lab is None else (lab.value, lab.rationale, lab.tags))
        assert change.step == 0
    assert values == [(-1, "because", ()), (-1, None, ()), (1, None, ()), None]
    assert LabelStore(tmp_path).current("ep") == [] and len(store.history(("ep", 0))) == 8
    assert not s.can_undo and s.progress() == (0, 0)


def test_index_follows_other_writers(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    s = LabelSession(store, "ep", 4, "ana")
    mine = s.rate(2, 1)
    assert mine is not None
    other = LabelStore(tmp_path)  # another process: the same annotator in a second terminal, and bob
    other.update(mine.after.id or "", value=0, rationale="from elsewhere")
    other.add("ep", 2, -1, judge="human:bob")
    other.add("ep", 9, -1, judge="human:bob")  # past the episode's steps: not counted
    assert store.refresh() == 3
    s.reload()
    assert [lab.judge for lab in s.labels_at(2)] == ["human:ana", "human:bob"]
    assert s.mine_at(2).rationale == "from elsewhere" and s.progress() == (1, 1)  # type: ignore[union-attr]
    assert s.has_others(2) and not s.has_others(1)
    # An edit of a version the session had not seen (written after its last reload) makes it read the store.
    head = other.current("ep", target=2, judge="human:ana")[0]
    other.update(head.id or "", value=-1)
    store.refresh()
    change = s.rate(2, 1)
    assert change is not None and [lab.value for lab in s.labels_at(2)] == [1, -1]


def test_label_source_is_safe_across_threads(tmp_path: Path) -> None:
    # Switching threads every microsecond makes "dictionary changed size during iteration" show up at once
    # when the session does not hold the source's lock (checked by hand: it fails with lock=threading.RLock()).
    run = tmp_path / "run"
    run.mkdir()
    episode = run / "ep.msgpack.zst"
    episode.write_bytes(b"")  # for_episode only needs the folder
    source = LabelSource([tmp_path])
    session = LabelSession(source.store_for(episode), "ep", 500, "ana", lock=source.lock)
    errors: list[BaseException] = []
    stop = threading.Event()

    def library_scan() -> None:  # what the library's scan worker does, over and over
        try:
            while not stop.is_set():
                source.labeled_fraction(str(episode), "ep", 500)
                source.refresh()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=library_scan)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    thread.start()
    try:
        for step in range(500):
            session.rate(step, 1)
            session.toggle_tag(step, "t")
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(old)
    assert errors == []
    assert source.labeled_fraction(str(episode), "ep", 500) == 1.0
    assert source.labeled_fraction(str(episode), "other", 5) is None
    assert len(LabelStore(run).current("ep")) == 500


def test_parse_score_and_category() -> None:
    from trajrec.tui.label_session import parse_category, parse_score

    assert [parse_score(t) for t in ("0.75", " -2 ", "1e3", "")] == [0.75, -2.0, 1000.0, None]
    for bad in ("abc", "nan", "inf", "-inf", "1e999", "0,5"):
        with pytest.raises(TrajrecUsageError, match=r"^not a finite number: .*; a score is a number like 0\.75"):
            parse_score(bad)
    assert parse_category(" wrong-tool ") == "wrong-tool"
    with pytest.raises(TrajrecUsageError, match=r"^empty category: type a name"):
        parse_category(" ")
    for text, reads in (("pass", "pass"), ("bad", "-1"), ("0.5", "0.5"), ("1", "+1")):
        with pytest.raises(TrajrecUsageError, match=rf"^'{re.escape(text)}' reads as {re.escape(reads)}, not a category"):
            parse_category(text)
    with pytest.raises(TrajrecUsageError, match="did you mean"):
        parse_category("godo")


def test_episode_label_one_version_per_action_and_undo(tmp_path: Path) -> None:
    from trajrec.tui.label_session import EPISODE

    store = LabelStore(tmp_path)
    session = LabelSession(store, "ep-1", 3, "ana")
    assert session.set_verdict(False).what == "verdict fail"
    assert session.set_verdict(False) is None  # already fail: nothing written
    assert session.set_score(EPISODE, 0.5).what == "score 0.5" and session.set_score(EPISODE, 0.5) is None
    assert session.set_category(EPISODE, "gave-up").what == "category gave-up (was fail)"
    assert session.set_verdict(True).what == "verdict pass (was gave-up)"
    assert session.progress() == (0, 0) and session.next_labeled(0) is None  # the episode is no step
    [lab] = LabelStore(tmp_path).current("ep-1")
    assert (lab.target, lab.value, lab.score, lab.judge, lab.author, lab.kind) == (
        "episode", True, 0.5, "human:ana", "ana", "judge")
    assert [session.undo().what for _ in range(4)] == ["verdict pass (was gave-up)", "category gave-up (was fail)",
                                                       "score 0.5", "verdict fail"]
    assert LabelStore(tmp_path).current("ep-1") == [] and session.episode_labels() == []
    assert session.redo().what == "verdict fail" and session.mine_at(EPISODE).value is False
    # A score on a step not rated yet: a neutral value carries it, as a note does.
    assert session.set_score(1, -2.0).what == "score -2" and session.mine_at(1).value == 0
    # Cleared again, the neutral 0 that carried it is withdrawn (FINDINGS32 #4).
    assert session.set_score(1, None).what.startswith("score cleared") and session.mine_at(1) is None


def test_the_step_pane_writes_a_labels_score_as_the_header_does():
    from trajrec.replay.label_model import Label
    from trajrec.tui.step_detail import label_line

    assert "score 1 " in label_line(Label("ep", 0, "judge", "human:bo", 0, score=1.0), mine=True).plain + " "
    assert "score 0.25" in label_line(Label("ep", 0, "judge", "human:bo", 0, score=0.25), mine=False).plain


def test_a_carrier_emptied_again_is_withdrawn_not_left_as_a_zero_rating(tmp_path):
    # FINDINGS32 #4: a tag toggled on and off, a note or a score cleared on a step nobody rated left a neutral 0
    # "carrier" nobody gave, which then outranked the rules' -1 in every export.
    store = LabelStore(tmp_path)
    rules = store.add("ep-1", 0, -1, kind="rule", judge="trajrec-rules@2")
    session = LabelSession(store, "ep-1", 6, "ana")
    assert session.toggle_tag(0, "lucky-guess").after.extra["carrier"] is True
    off = session.toggle_tag(0, "lucky-guess")
    assert off.after.deleted and off.what == ("tag lucky-guess off (the neutral 0 that carried it is withdrawn: "
                                              "nothing rated here)")
    session.set_rationale(1, "x")
    assert session.set_rationale(1, "").after.deleted
    session.set_score(2, 0.5)
    assert session.set_score(2, None).after.deleted
    assert LabelStore(tmp_path).current("ep-1") == [rules] and session.progress() == (0, 1)
    assert len(LabelStore(tmp_path).history(("ep-1", 2))) == 2  # nothing erased: the tombstone is a version
    # Undo brings the carrier back with what it carried (still a carrier), redo withdraws it again.
    assert session.undo().step == 2
    [back] = LabelStore(tmp_path).current("ep-1", 2)
    assert (back.value, back.score, back.extra.get("carrier")) == (0, 0.5, True) and session.mine_at(2) == back
    session.redo()
    assert LabelStore(tmp_path).current("ep-1", 2) == [] and session.mine_at(2) is None
    # A step the annotator rated keeps the rating, a 0 typed on a carrier included.
    session.toggle_tag(3, "lucky-guess")
    rated = session.rate(3, 0)
    assert rated is not None and "carrier" not in rated.after.extra
    assert not session.toggle_tag(3, "lucky-guess").after.deleted
    session.set_rationale(4, "why")
    session.rate(4, 1)
    session.set_rationale(4, "")
    session.set_category(5, "slow")
    session.toggle_tag(5, "x")
    session.toggle_tag(5, "x")
    assert [(lab.target, lab.value) for lab in LabelStore(tmp_path).current("ep-1", judge="human:ana")] == [
        (3, 0), (4, 1), (5, "slow")]
    # Undoing the rating of a carrier makes it a carrier again: emptied, it is withdrawn.
    assert session.undo().what == "tag x off" and session.undo().what == "tag x on"
    [session.undo() for _ in range(4)]  # step 5: category; step 4: note cleared, rated +1, note
    assert session.undo().what == "tag lucky-guess off" and session.undo().what == "rated 0"
    assert session.mine_at(3).extra.get("carrier") is True
    assert session.toggle_tag(3, "lucky-guess").after.deleted
