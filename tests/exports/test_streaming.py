"""Export and labelers stream episodes: each index read once, the first frame decoded once, labels kept compactly."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec.recorder import Recorder, open_episode, read_index
from trajrec.recorder import reader as reader_mod
from trajrec.replay.exports import export
from trajrec.replay.exports.source import Source
from trajrec.replay.label_model import Label, LabelWarning
from trajrec.replay.labels import LabelStore


def _run(tmp_path: Path, episodes: int = 3, steps: int = 4) -> Path:
    run = tmp_path / "run"
    env = Recorder(gym.make("CartPole-v1"), run)
    for e in range(episodes):
        env.reset(seed=e)
        for _ in range(steps):
            env.step(0)
    env.close()
    return run


def _count(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls = [0]
    real = getattr(reader_mod, name)

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(reader_mod, name, counted)
    return calls


def test_export_reads_each_index_once_and_each_first_frame_once(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run(tmp_path)
    (run / "junk.msgpack.zst").write_bytes(b"not an episode")
    indexes = _count(monkeypatch, "read_tail_index")
    frames = _count(monkeypatch, "decode_frame")
    rep = export([run], "records", tmp_path / "out.jsonl")
    assert rep.written == 3 and rep.steps == 12
    assert indexes[0] == 3  # each episode's index once (the junk file fails at its first bytes)
    assert frames[0] == 3  # one frame per episode holds its reset and its steps: decoded once
    assert [Path(p).name for p, _ in rep.errors] == ["junk.msgpack.zst"]
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [len(r["steps"]) for r in rows] == [4, 4, 4]
    assert all(json.loads(r["reset"]["seed"]) in (0, 1, 2) for r in rows)


def test_source_streams_without_keeping_indexes(tmp_path: Path) -> None:
    run = _run(tmp_path)
    src = Source([run])
    seen = [ref.episode_id for ref in src]
    assert len(seen) == 3 and src._episodes is None  # nothing kept by a stream
    assert src.errors == [] and src.empty == []
    assert len(src) == 3 and src.total_steps == 12  # random access reads and keeps them
    assert src.find(seen[1]).episode_id == seen[1]


def test_open_with_index_reuses_it_only_for_the_same_file(tmp_path: Path) -> None:
    run = _run(tmp_path, episodes=2)
    a, b = sorted(run.glob("*.msgpack.zst"))
    index = read_index(a)
    with open_episode(a, index=index) as ep:
        assert ep.index is index and [s.index for s in ep] == [0, 1, 2, 3]
    b.write_bytes(a.read_bytes() + b"\0")  # another size: its own index is read (and found missing)
    with open_episode(b, index=index) as ep:
        assert ep.index is not index


def test_reset_after_steps_and_steps_after_reset_agree(tmp_path: Path) -> None:
    path = next(_run(tmp_path, episodes=1).glob("*.msgpack.zst"))
    with open_episode(path) as one, open_episode(path) as two:
        first = one.reset.observation.tolist()
        assert [s.action for s in one] == [s.action for s in two]
        assert two.reset.observation.tolist() == first
        assert one.reset.seed == two.reset.seed == 0


def test_labels_are_slotted_and_share_repeated_text(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    for i in range(3):
        store.add("episode-one", i, 1, judge="human:ana", rationale="fine", tags=["typo"])
    store.close()
    again = LabelStore(tmp_path).current("episode-one")
    assert len(again) == 3 and not hasattr(again[0], "__dict__")
    assert again[0].episode_id is again[2].episode_id and again[0].tags is again[1].tags
    assert again[0].extra == {} and dict(again[0].check.extra) == {"episode_id": "episode-one"}
    assert Label.from_record({**again[0].to_record(), "mine": [1]}).extra == {"mine": [1]}


def test_a_big_labels_file_reads_in_pieces_and_names_the_bad_line(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    lab = store.add("ep", 0, 1, judge="human:ana", rationale="x" * 900)
    store.close()
    line = json.dumps(lab.to_record()) + "\n"
    n = (3 << 20) // len(line)
    lines = [line.replace(lab.id, f"{k:032x}") for k in range(n)]
    lines[n - 5] = "{damaged\n"  # in the last of the ~1 MB pieces
    path = next((tmp_path / ".trajrec" / "labels").glob("*.jsonl"))
    path.write_text("".join(lines))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read = LabelStore(tmp_path)
    # Every label read (one annotator's labels on one step: current() gives the newest, shadowed() the rest).
    assert len(read) == n - 1 and len(read.current("ep")) == 1 and len(read.shadowed("ep")) == n - 2
    msgs = [str(w.message) for w in caught if issubclass(w.category, LabelWarning)]
    assert len(msgs) == 1 and f"line {n - 4} " in msgs[0]


def test_episode_label_index_answers_as_the_store_does(tmp_path: Path) -> None:
    from trajrec.replay.label_join import EpisodeLabelIndex

    store = LabelStore(tmp_path)
    a = store.add("ep-a", 0, 1, judge="human:ana", tags=["typo"])
    store.add("ep-a", 1, -1, judge="human:ana", rationale="wrong")
    store.update(a.id, value=0, rationale="on second thought")
    gone = store.add("ep-b", "episode", True, judge="human:bo")
    store.delete(gone.id, author="bo")
    store.add("ep-b", 2, "typo", judge="model:x@1")
    store.close()
    other = LabelStore(tmp_path)  # a second writer's file
    other.add("ep-a", 2, 1, judge="human:cy")
    other.close()
    labels = next((tmp_path / ".trajrec" / "labels").glob("*.jsonl"))
    with open(labels, "ab") as fh:
        fh.write(b"{damaged\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        full = LabelStore(tmp_path)
        index = EpisodeLabelIndex(tmp_path)
    damaged = [str(w.message) for w in caught if issubclass(w.category, LabelWarning)]
    assert len(damaged) == 2 and damaged[0] == damaged[1]  # the same warning from both readers
    for eid in ("ep-a", "ep-b", "ep-none"):
        assert [lab.to_record() for lab in index.current(eid)] == [lab.to_record() for lab in full.current(eid)]
    assert len(index) == 7 and not index._kept  # places of 7 versions kept, no Label objects
    with pytest.raises(Exception, match="read-only"):
        index.add("ep-a", 0, 1)


def test_export_joins_labels_per_episode(tmp_path: Path) -> None:
    from trajrec.replay.label_join import EpisodeLabelIndex

    run = _run(tmp_path, episodes=2)
    ids = sorted(read_index(p)["header"]["episode_id"] for p in run.glob("*.msgpack.zst"))
    store = LabelStore(run)
    for eid in ids:
        for i in range(4):
            store.add(eid, i, 1 if i % 2 else -1, judge="human:ana")
    store.close()
    src = Source([run], join_labels=True)
    rep = export(src, "trl-stepwise", tmp_path / "out.jsonl")
    assert rep.written == 2 and rep.steps == 8
    assert all(isinstance(s, EpisodeLabelIndex) for s in src.stores.values())
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["labels"] for r in rows] == [[False, True, False, True]] * 2


def test_episode_label_index_warns_about_a_bad_label_when_its_episode_is_read(tmp_path: Path) -> None:
    from trajrec.replay.label_join import EpisodeLabelIndex

    store = LabelStore(tmp_path)
    store.add("ep-a", 0, 1, judge="human:ana")
    store.close()
    path = next((tmp_path / ".trajrec" / "labels").glob("*.jsonl"))
    with open(path, "ab") as fh:
        fh.write(json.dumps({"v": 1, "id": "x" * 32, "episode_id": "ep-a", "target": 1, "kind": "nonsense",
                             "judge": "human:ana", "value": 1}).encode() + b"\n")
    index = EpisodeLabelIndex(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert [lab.target for lab in index.current("ep-a")] == [0]
    assert any("kind 'nonsense'" in str(w.message) for w in caught)


def test_labelers_write_one_episode_at_a_time_and_answer_as_the_store(tmp_path: Path) -> None:
    from trajrec.replay.autolabel import label_with_judge
    from trajrec.replay.label_join import EpisodeLabelWriter

    run = _run(tmp_path, episodes=3, steps=5)
    ids = sorted(read_index(p)["header"]["episode_id"] for p in run.glob("*.msgpack.zst"))
    LabelStore(run).add(ids[0], 1, -1, judge="human:ana")  # someone else's label stays as it is
    answers = {"value": 1}

    def judge(ctx):  # type: ignore[no-untyped-def]
        return None if answers["value"] is None and ctx.step.index == 2 else {"value": answers["value"] or 1}
    judge.judge_id = "model:steady@1"  # type: ignore[attr-defined]

    src = Source([run], write_labels=True)
    first = label_with_judge(src, judge)
    assert first.added == 15 and all(isinstance(s, EpisodeLabelWriter) for s in src.stores.values())
    assert all(not s._kept for s in src.stores.values())  # places only, no Label kept beyond one episode
    again = label_with_judge([run], judge, rejudge=True)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 15)
    answers["value"] = -1
    changed = label_with_judge([run], judge, rejudge=True)
    assert changed.updated == 15
    answers["value"] = None  # withdraws step 2's labels, keeps the others (-1 -> 1 again: updates)
    withdrawn = label_with_judge([run], judge, rejudge=True)
    assert withdrawn.deleted == 3 and withdrawn.updated == 12
    full = LabelStore(run)
    for eid in ids:
        live = full.current(eid)
        assert sorted((lab.target, lab.value) for lab in live if lab.judge == "model:steady@1") == [
            (i, 1) for i in range(5) if i != 2]
        assert [lab.to_record() for lab in EpisodeLabelWriter(run).current(eid)] == [lab.to_record() for lab in live]
    assert [(lab.target, lab.value) for lab in full.current(ids[0], judge="human:ana")] == [(1, -1)]
