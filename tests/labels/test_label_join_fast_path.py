"""An export joins usual label lines without building a `Label` per line (`usual_rows`, `EpisodeLabels`): the
fast path must give what the general path gives (the same labels, the same export bytes, the same warnings) and
fall back on anything unusual, never accept a line the general checks refuse."""

from __future__ import annotations

import json
import os
import random
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from trajrec.recorder import read_index
from trajrec.replay import label_join
from trajrec.replay.autolabel import label_with_rules
from trajrec.replay.exports import ExportOptions, export
from trajrec.replay.label_join import EpisodeLabelIndex, decode_lines
from trajrec.replay.label_model import Label, LabelRow, usual_rows
from trajrec.replay.label_store import _order
from trajrec.replay.labels import LABELS_DIR, LabelStore, LabelWarning


def _ids(run: Path) -> list[str]:
    return sorted(read_index(p)["header"]["episode_id"] for p in run.glob("*.msgpack.zst"))


def _line(eid: str, **kw: Any) -> str:
    rec = {"v": 1, "id": os.urandom(16).hex(), "episode_id": eid, "target": 1, "kind": "judge",
           "judge": "human:eve", "value": -1, "time": 2.0}
    rec.update(kw)
    return json.dumps(rec, separators=(",", ":"))


def _hostile(run: Path) -> None:
    """Rules' labels on every step, then edits, deletions, several judges, hand-written lines in other shapes,
    bad lines, two lines that are JSON only when joined, a whole last line without its newline, a torn one."""
    label_with_rules([run])
    a, b, c = _ids(run)
    store = LabelStore(run)
    store.add(a, 1, -1, judge="human:ana", rationale="wrong tool", tags=["wrong-tool"])  # a stays usual
    first = store.add(b, 1, -1, judge="human:ana", rationale="wrong tool", tags=["wrong-tool"])
    store.update(first.id, value=1, rationale="on second thought")
    gone = store.add(b, 2, 0.25, judge="model:rubric@2", score=0.25)
    store.delete(gone.id, author="bo")
    store.add(b, "episode", True, judge="human:ana")
    store.add(b, 1, -0.5, judge="model:rubric@2", score=-0.5)
    store.add(b, 1, 1, judge="human:cy", tags=["typo", "wrong-tool"], author="cy")
    store.add(c, 2, 0, kind="environment", judge="fs-goal@1", meta={"x": [1, 2]})
    store.close()
    labels = run / LABELS_DIR
    own = sorted(labels.glob("*.jsonl"))[0]
    with open(own, "a", encoding="utf-8", errors="surrogatepass") as fh:
        fh.write("\n".join([
            "{damaged", "[1, 2]", "", _line(b, kind="vibes"), _line(b, value=7), _line(b, rationale="\ud800"),
            _line(b, tags=[{"t": 1}]), "  " + _line(b, target=3, value=1) + "  ", "\ufeff" + _line(b, target=4),
            _line(b, id="dup" * 8, target=5, time=5.0), _line(b, id="dup" * 8, target=6, value=1, time=6.0),
            _line(c, target=3, value=float("nan")), _line(c, target=4, score=2**70),
            _line(c, target=5, extra_field={"a": 1}),
            # Two damaged lines that read as two valid labels only when joined into one array.
            _line(c, id="aa", target=1)[:-1] + "}," + _line(c, id="ab", target=2)[:-1] + ',"x":[{"k":1}',
            _line(c, id="ac", target=3) + "]}",
        ]) + "\n")
    # Usual lines in other shapes (key order, no time, an episode target, floats, empty tags): the fast path.
    hand = [json.dumps({"episode_id": a, "v": 1, "id": "h1", "target": 0, "judge": "human:ana", "value": 0}),
            json.dumps({"v": 1, "id": "h2", "episode_id": a, "target": "episode", "judge": "human:ana",
                        "value": -1.0, "time": 1}),
            json.dumps({"v": 1, "id": "h3", "episode_id": a, "target": 4, "judge": "model:rubric@2", "value": 0.0,
                        "time": 0, "score": 0, "tags": [], "deleted": False}),
            # Equal as dict keys, not as JSON: 0.0 and -0.0, 1 and 1.0 and true.
            _line(a, target=0, value=-0.0, judge="model:rubric@2", score=-0.0, time=3.0),
            _line(a, target=1, value=0.0, judge="model:rubric@2", score=0.0, time=3.0),
            _line(a, target=2, value=1.0, judge="model:rubric@2", time=3.0)]
    (labels / "hand-1-x.jsonl").write_text("\n".join(hand) + "\n" + _line(b, target=6, value=1))  # no newline
    torn = labels / "torn-1-y.jsonl"
    torn.write_text(_line(c, target=7, value=1) + "\n" + '{"v":1,"id":"torn","episode_id":"' + c[:4])
    old = time.time() - 3600
    os.utime(torn, (old, old))


def _export_all(run: Path, out: Path) -> dict[str, Any]:
    out.mkdir()
    got: dict[str, Any] = {}
    for fmt, opts in [("records", {}), ("chat", {}), ("chat", {"prefer": "model:*,rule"}),
                      ("trl-stepwise", {"unlabeled": "false"}),
                      ("trl-stepwise", {"unlabeled": "drop-step", "label_map": "lenient", "prefer": "model:*,rule"}),
                      ("kto", {}), ("atif", {}), ("parquet", {})]:
        name = f"{fmt}-{len(got)}" + (".parquet" if fmt == "parquet" else ".jsonl")
        if fmt == "parquet":
            pytest.importorskip("pyarrow")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rep = export([run], fmt, out / name, options=ExportOptions(**opts))
        got[name] = ((out / name).read_bytes(), rep.steps, rep.written, dict(rep.skipped),
                     sorted(str(w.message) for w in caught if issubclass(w.category, LabelWarning)))
    return got


def test_exports_are_the_same_on_the_fast_and_the_general_path(run_dir: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _hostile(run_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        LabelStore(run_dir).current()  # judges and tag lists checked once, as a first episode would
    calls: list[bool] = []
    real = EpisodeLabelIndex.episode_labels

    def counted(self: EpisodeLabelIndex, eid: str) -> Any:
        got = real(self, eid)
        calls.append(got.usual)
        return got

    monkeypatch.setattr(EpisodeLabelIndex, "episode_labels", counted)
    fast = _export_all(run_dir, tmp_path / "fast")
    assert any(calls) and not all(calls)  # some episodes took the fast path, the hostile ones did not
    monkeypatch.setattr(label_join, "usual_rows", lambda recs, eid: None)
    # (Lines read as text: fast too.)
    monkeypatch.setattr(label_join, "read_lines", lambda blocks, eid, lines=None, **kw: None)
    general = _export_all(run_dir, tmp_path / "general")
    assert fast.keys() == general.keys()
    for name in fast:
        assert fast[name] == general[name], name
    # Values equal as dict keys but not as JSON stay apart (rows share the text of repeated label fields).
    a = _ids(run_dir)[0]
    rows = [json.loads(line) for line in fast["chat-2.jsonl"][0].decode().splitlines()]
    steps = next(r["trajrec"]["steps"] for r in rows if r["trajrec"]["episode_id"] == a)
    assert [s["value"] for s in steps[:3]] == ["-0.0", "0.0", "1.0"]
    record = next(json.loads(line) for line in fast["records-0.jsonl"][0].decode().splitlines()
                  if json.loads(line)["episode_id"] == a)
    scores = {c["target"]: repr(c["score"]) for c in json.loads(record["checks"]) if c["judge"] == "model:rubric@2"}
    assert scores[0] == "-0.0" and scores[1] == "0.0"


def test_the_label_join_answers_as_the_store_does_and_warns_about_both_joined_lines(run_dir: Path) -> None:
    _hostile(run_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = LabelStore(run_dir)
        index = EpisodeLabelIndex(run_dir)
        joined = {eid: index.episode_labels(eid) for eid in _ids(run_dir)}
    for eid, got in joined.items():
        assert [lab.to_record() for lab in got.labels()] == [lab.to_record() for lab in store.current(eid)]
        assert [lab.to_record() for lab in index.current(eid)] == [lab.to_record() for lab in store.current(eid)]
    assert any(j.usual for j in joined.values())
    ids = {lab.id for labs in joined.values() for lab in labs.labels()}
    assert not ids & {"aa", "ab", "ac"}  # each of the two lines is damaged on its own: neither is a label
    joined_bad = [str(w.message) for w in caught if "Extra data" in str(w.message)]
    # Each damaged line named by the store and by the join (the join names its line as the store does when it
    # finds it bad while placing lines: a line giving "episode_id" twice is decoded then, not read as text).
    named = sorted(m.split("(byte ")[1].split(")")[0] if "(byte " in m else m.split("line at byte ")[1].split(":")[0]
                   for m in joined_bad)
    assert len(set(named)) == 2 and named == sorted(2 * list(set(named)))


def test_decode_lines_needs_each_value_to_end_with_its_line() -> None:
    good = [b'{"a":1}', b'{"b":[2]}\n{"c":"\xc3\xbc"}']
    assert decode_lines(good) == [{"a": 1}, {"b": [2]}, {"c": "ü"}]
    assert decode_lines([]) == []
    for bad in ([b'{"a":1},{"b":[{"k":1}', b'{"c":1}]}'], [b' {"a":1}'], [b'{"a":1} '], [b'{"a":1}\n'],
                [b'{"a":'], [b'\xff'], [b'{"a":1}\r'], [b'[' * 100_000]):
        assert decode_lines(bad) is None, bad


_FIELDS = ["id", "episode_id", "target", "kind", "judge", "value", "score", "rationale", "tags", "author", "time",
           "supersedes", "deleted", "v", "extra"]
_ODD = [None, True, False, 0, 1, -1, 2, -2, 0.5, -0.0, float("nan"), float("inf"), 2**70, "", "x", "episode",
        "judge", "rule", "human:ana", "human: ana", "ünï", "\ud800", [], ["typo"], ["two words"], [1], {}, {"a": 1}]


def _general(recs: list[Any], eid: str) -> list[Label] | None:
    """What the general path keeps of these lines when all are labels with no edits, else None."""
    try:
        labels = [Label.from_record(r) for r in recs]
    except (ValueError, AttributeError, TypeError):
        return None
    if len({lab.id for lab in labels}) != len(labels) or any(lab.supersedes or lab.deleted for lab in labels):
        return None
    if any(lab.episode_id != eid or lab.extra for lab in labels):
        return None
    return sorted(labels, key=_order)


def test_usual_rows_accept_only_what_the_general_checks_accept_and_give_the_same_labels() -> None:
    rng = random.Random(15)
    Label.from_record({"id": "w", "episode_id": "ep", "target": 0, "judge": "human:ana", "value": 1,
                       "tags": ["typo"], "kind": "judge"})
    Label.from_record({"id": "w", "episode_id": "ep", "target": 0, "judge": "rules@1", "value": 1, "tags": [],
                       "kind": "rule"})
    accepted = 0
    for case in range(3000):
        recs: list[Any] = []
        for k in range(rng.randint(1, 5)):
            rec: dict[str, Any] = {"v": 1, "id": f"l{case}-{k}", "episode_id": "ep", "target": rng.randint(0, 9),
                                   "kind": rng.choice(["judge", "rule"]), "value": rng.choice([1, 0, -1, True, 0.5]),
                                   "time": rng.choice([1.0, 2.0, 1, None])}
            rec["judge"] = "human:ana" if rec["kind"] == "judge" else "rules@1"
            if rng.random() < 0.3:
                rec["tags"] = rng.choice([["typo"], []])
            if rng.random() < 0.4:  # one field odd, missing or extra
                name = rng.choice(_FIELDS)
                if rng.random() < 0.2:
                    rec.pop(name, None)
                else:
                    rec[name] = rng.choice(_ODD)
            recs.append(rec if rng.random() > 0.01 else [rec])
        rows = usual_rows(recs, "ep")
        general = _general(recs, "ep")
        if rows is None:
            continue
        accepted += 1
        assert general is not None, recs  # never accepts what the general checks refuse
        assert all(type(r) is LabelRow for r in rows)
        assert [r.label() for r in rows] == general, recs
        assert [r.label().to_record() for r in rows] == [lab.to_record() for lab in general]
    assert accepted > 300  # the usual cases took the fast path


def test_usual_rows_check_mixed_targets_and_tag_lists_as_the_general_checks_do() -> None:
    """Steps and the episode as targets of one episode's lines, lines with and without tags: checked with C loops
    over the columns; the same verdicts and order as the general path."""
    Label.from_record({"id": "w", "episode_id": "ep", "target": 0, "judge": "human:ana", "value": 1,
                       "tags": ["typo"], "kind": "judge"})
    cases = [[3, "episode", 0], ["episode", "episode"], [2, -1, "episode"], [1, "judge", "episode"], [0, "x"],
             ["episode", 1, 1], [5, 2**70, "episode"], [1, True, "episode"], [2, 1.0, "episode"]]
    for targets in cases:
        for tags in ([None] * len(targets), [["typo"]] + [None] * (len(targets) - 1),
                     [["typo"], ["nope"]] + [None] * (len(targets) - 2), [[["x"]]] + [None] * (len(targets) - 1)):
            for times in ([3.0, 1.0, 2.0, 0.5][:len(targets)], [None, 0, -0.0, 0.0][:len(targets)]):
                recs = []
                for k, (t, tg, tm) in enumerate(zip(targets, tags, times)):
                    rec = {"v": 1, "id": f"l{k}", "episode_id": "ep", "target": t, "kind": "judge",
                           "judge": "human:ana", "value": 1, "time": tm}
                    if tg is not None:
                        rec["tags"] = tg
                    recs.append(rec)
                rows, general = usual_rows(recs, "ep"), _general(recs, "ep")
                if rows is None:
                    continue
                assert general is not None, recs
                assert [r.label().to_record() for r in rows] == [lab.to_record() for lab in general], recs
    assert usual_rows([{"v": 1, "id": "a", "episode_id": "ep", "target": "episode", "judge": "human:ana",
                        "value": 1, "time": 1.0},
                       {"v": 1, "id": "b", "episode_id": "ep", "target": 2, "judge": "human:ana", "value": 1,
                        "time": 0.5}], "ep") is not None  # the usual mix takes the fast path
