"""Labels read through the usual-line fast path are the labels the general checks give, and odd lines still get
the general checks (their errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.replay import label_model
from trajrec.replay.label_model import Label
from trajrec.replay.labels import LabelStore


def _general(rec: dict) -> Label:
    saved = label_model._usual
    label_model._usual = lambda cls, rec: None  # type: ignore[assignment]
    try:
        return Label.from_record(rec)
    finally:
        label_model._usual = saved


def _lines(tmp_path: Path) -> list[dict]:
    store = LabelStore(tmp_path)
    a = store.add("ep-1", 0, 1, judge="human:ana", rationale="fine", tags=["typo", "wrong-tool"])
    store.update(a.id, value=-1, rationale="on second thought", score=-0.5)
    b = store.add("ep-1", "episode", True, kind="environment", judge="fs-goal@1")
    store.delete(b.id, author="bo")
    store.add("ep-2", 3, 0.25, judge="model:rubric@2", rationale="ünïcode rationale", tags=[])
    store.add("ep-2", 4, "typo", judge="model:rubric@2")  # a category: the general checks
    store.add("ep-3", 1, 0, kind="rule", judge="trajrec-rules@2", tags=["in-failed-episode"], meta={"x": 1})
    store.close()
    text = b"".join(p.read_bytes() for p in (tmp_path / ".trajrec" / "labels").glob("*.jsonl"))
    return [json.loads(line) for line in text.splitlines()]


def test_fast_path_gives_the_general_label(tmp_path: Path) -> None:
    recs = _lines(tmp_path)
    for _ in range(2):  # the second pass: judges and tag lists already checked, so the fast path applies
        for rec in recs:
            fast, general = Label.from_record(dict(rec)), _general(dict(rec))
            assert fast == general and fast.extra == general.extra and type(fast.extra) is type(general.extra)
    used = [rec for rec in recs if label_model._usual(Label, rec) is not None]
    assert 3 <= len(used) < len(recs)  # the usual lines took it; the category, the extra field, ü did not


@pytest.mark.parametrize("odd", [{"tags": None}, {"deleted": None}, {"kind": None}, {"target": -1},
                                 {"value": 2}, {"value": float("inf")}, {"score": True}, {"time": "now"},
                                 {"tags": ["two words"]}, {"id": ""}, {"value": None}])
def test_odd_lines_get_the_general_errors(tmp_path: Path, odd: dict) -> None:
    rec = {k: v for k, v in _lines(tmp_path)[0].items()}
    Label.from_record(dict(rec))  # its judge and tags are checked now
    rec.update(odd)
    with pytest.raises(ValueError) as fast:
        Label.from_record(rec)
    with pytest.raises(ValueError) as general:
        _general(rec)
    assert str(fast.value) == str(general.value)
