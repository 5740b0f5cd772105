"""Hostile labels files (lines other tools write): the exports join every label as LabelStore resolves it.

EXPORT.md promises one code path: the records and parquet exports (which read labels per episode through
:class:`~trajrec.replay.label_join.EpisodeLabelIndex`) give what ``LabelStore.current`` and ``open_run().to_arrow()``
give. Each test writes one kind of hostile line, then compares all four (FINDINGS15).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from trajrec import open_run
from trajrec.recorder import read_index
from trajrec.recorder.errors import TrajrecUsageError
from trajrec.replay.exports import ExportOptions, export
from trajrec.replay.labels import LABELS_DIR, LabelStore, LabelWarning


def _ids(run: Path) -> list[str]:
    return sorted(read_index(p)["header"]["episode_id"] for p in run.glob("*.msgpack.zst"))


def _rec(**kw: Any) -> dict[str, Any]:
    return {"v": 1, "kind": "judge", "judge": "human:cy", "time": 1764550010.0, **kw}


def _write(run: Path, files: dict[str, tuple[list[Any], bool]]) -> None:
    """Labels files ``{name: ([line as dict or text], final newline)}``, dated back (no line is still arriving)."""
    labels = run / LABELS_DIR
    labels.mkdir(parents=True, exist_ok=True)
    for name, (lines, newline) in files.items():
        text = "\n".join(x if isinstance(x, str) else json.dumps(x, separators=(",", ":")) for x in lines)
        (labels / name).write_text(text + ("\n" if newline else ""), encoding="utf-8")
    old = time.time() - 60
    for p in labels.iterdir():
        os.utime(p, (old, old))


def _compare(run: Path, tmp_path: Path) -> dict[str, dict[tuple[str, int], list[tuple[str, Any]]]]:
    """Live labels on each step (id, value) as LabelStore, the records export, the parquet export and to_arrow
    give them (parquet and to_arrow: the chosen label); asserts they agree and returns LabelStore's."""
    pq = pytest.importorskip("pyarrow.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabelWarning)
        store = LabelStore(run)
        by_store = {}
        for eid in _ids(run):
            for lab in store.current(eid):
                if isinstance(lab.target, int):
                    by_store.setdefault((eid, lab.target), []).append((lab.id, lab.value))
        export([run], "records", tmp_path / "r.jsonl", options=ExportOptions())
        export([run], "parquet", tmp_path / "p.parquet", options=ExportOptions())
        arrow = open_run(run).to_arrow().to_pylist()
    by_records: dict[tuple[str, int], list[tuple[str, Any]]] = {}
    for line in (tmp_path / "r.jsonl").read_text().splitlines():
        rec = json.loads(line)
        for c in json.loads(rec["checks"]):
            if c["origin"] == "label" and isinstance(c["target"], int):
                by_records.setdefault((rec["episode_id"], c["target"]), []).append((c["id"], c["value"]))
    key = sorted  # the records export lists a step's labels in its own order
    assert {k: key(v) for k, v in by_records.items()} == {k: key(v) for k, v in by_store.items()}
    cols = ["episode_id", "step", "label_id", "label_value", "n_labels", "label_judges"]
    parquet = pq.read_table(tmp_path / "p.parquet").select(cols).to_pylist()
    assert parquet == [{k: r[k] for k in cols} for r in arrow]
    for r in parquet:  # the chosen label is one of LabelStore's live labels on the step
        live = by_store.get((r["episode_id"], r["step"]), [])
        assert (r["label_id"] is None) == (not live)
        if live:
            assert r["label_id"] in [i for i, _ in live]
    return {"store": by_store}


def test_a_tag_with_a_final_newline_is_not_one_word(run_dir: Path) -> None:
    a = _ids(run_dir)[0]
    store = LabelStore(run_dir)
    for bad in ("bad\n", "b\nad", "two words", "a,b"):
        with pytest.raises(TrajrecUsageError, match="one word"):
            store.add(a, 0, 1, judge="model:t@1", kind="judge", tags=[bad])
    assert store.add(a, 0, 1, judge="model:t@1", kind="judge", tags=["bad"]).tags == ("bad",)


def test_a_read_line_with_a_tag_ending_in_a_newline_is_skipped_with_a_warning(run_dir: Path, tmp_path: Path) -> None:
    a = _ids(run_dir)[0]
    _write(run_dir, {"t.jsonl": ([_rec(id="t-1", episode_id=a, target=0, value=1, tags=["bad\n"]),
                                  _rec(id="t-2", episode_id=a, target=1, value=1, tags=["bad"])], True)})
    with pytest.warns(LabelWarning, match="line 1"):
        got = LabelStore(run_dir).current(a)
    assert [lab.id for lab in got] == ["t-2"]
    _compare(run_dir, tmp_path)


def test_unit_and_float_maps_keep_every_score_unchanged(run_dir: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    a = _ids(run_dir)[0]
    n = read_index(next(p for p in run_dir.glob("*.msgpack.zst")
                        if read_index(p)["header"]["episode_id"] == a))["steps"]
    scores = [-1.0, -0.5, 0.0, 0.25, 1.0][:n]
    store = LabelStore(run_dir)
    for step, s in enumerate(scores):
        store.add(a, step, s, judge="model:t@1", kind="judge")
    store.close()
    for label_map in ("unit", "float"):
        out = tmp_path / f"{label_map}.parquet"
        export([run_dir], "parquet", out, options=ExportOptions(label_map=label_map))
        rows = [r for r in pq.read_table(out).to_pylist() if r["episode_id"] == a]
        assert [r["label"] for r in rows[:len(scores)]] == scores, label_map


def test_add_checks_the_header_of_the_file_named_after_the_episode(run_dir: Path) -> None:
    files = {read_index(p)["header"]["episode_id"]: p for p in run_dir.glob("*.msgpack.zst")}
    (short, p_short), (long_, p_long) = sorted(files.items(), key=lambda kv: read_index(kv[1])["steps"])[:2]
    n_long = read_index(p_long)["steps"]
    # The file named after `short` now holds `long_`; `short` is in no file of the folder.
    p_short.unlink()
    p_long.rename(p_short)
    store = LabelStore(run_dir)
    with pytest.raises(TrajrecUsageError, match=f"no episode '{short}'"):
        store.add(short, 0, 1, judge="model:t@1", kind="judge")
    # `long_` is found through its header, under the other name, with its own steps.
    store.add(long_, n_long - 1, 1, judge="model:t@1", kind="judge")
    with pytest.raises(TrajrecUsageError, match="out of range"):
        store.add(long_, n_long, 1, judge="model:t@1", kind="judge")


def test_two_damaged_lines_are_not_read_as_one_label(run_dir: Path, tmp_path: Path) -> None:
    a = _ids(run_dir)[0]
    # A raw newline inside a rationale (a tool formatting JSON by hand): two lines, neither of them JSON, which
    # joined by a comma would read as one label with the rationale "first line,second line".
    head = json.dumps(_rec(id="nl-1", episode_id=a, target=0, value=-1, rationale="first line\nsecond line"),
                      separators=(",", ":")).replace("\\n", "\n")
    # Two lines that are damaged each, but two values together: they must not count as two labels either.
    one = json.dumps(_rec(id="j-1", episode_id=a, target=2, value=1), separators=(",", ":"))
    two = json.dumps(_rec(id="j-2", episode_id=a, target=3, value=1, rationale="x"), separators=(",", ":"))
    split = two.index('"x"') + 2
    _write(run_dir, {"tool.jsonl": ([head, one + "," + two[:split], two[split:],
                                     _rec(id="ok-1", episode_id=a, target=1, value=1)], True)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = LabelStore(run_dir).current(a)
    assert [lab.id for lab in got] == ["ok-1"]
    lines = sorted(int(str(w.message).split(" line ")[1].split()[0]) for w in caught
                   if issubclass(w.category, LabelWarning) and " line " in str(w.message))
    assert lines == [1, 2, 3, 4]
    _compare(run_dir, tmp_path)


def test_a_line_with_its_episode_id_twice_joins_as_json_reads_it(run_dir: Path, tmp_path: Path) -> None:
    a, b = _ids(run_dir)[:2]
    dup = ('{"v":1,"id":"de-1","episode_id":"%s","target":0,"kind":"judge","judge":"human:gg","value":-1,'
           '"time":1764550070.0,"episode_id":"%s"}' % (a, b))
    # Usual lines around it (the text fast paths take runs of such lines), and the same in a run of b's lines.
    usual = [_rec(id=f"u-{i}", episode_id=a, target=1, value=1, judge=f"human:u{i}") for i in range(3)]
    dup2 = ('{"v":1,"id":"de-2","episode_id":"%s","target":1,"kind":"judge","judge":"human:gg","value":-1,'
            '"time":1764550070.0,"episode_id":"%s"}' % (b, a))
    usual_b = [_rec(id=f"w-{i}", episode_id=b, target=2, value=1, judge=f"human:w{i}") for i in range(3)]
    _write(run_dir, {"gg.jsonl": ([*usual, dup, *usual, *usual_b, dup2, *usual_b], True)})
    got = _compare(run_dir, tmp_path)["store"]
    assert ("de-1", -1) in got[(b, 0)] and (a, 0) not in got
    assert ("de-2", -1) in got[(a, 1)] and ("de-2", -1) not in got.get((b, 1), [])


@pytest.mark.parametrize("second", ['"episode_id":"%s"', '"episode_id" : "%s"', '"episod\\u0065_id":"%s"'])
def test_a_second_episode_id_key_in_any_spelling_is_read_as_json_reads_it(run_dir: Path, tmp_path: Path,
                                                                          second: str) -> None:
    a, b = _ids(run_dir)[:2]
    line = ('{"v":1,"id":"de-1","episode_id":"%s","target":0,"kind":"judge","judge":"human:gg","value":-1,'
            '"time":1764550070.0,' % a) + second % b + "}"
    assert json.loads(line)["episode_id"] == b
    usual = [_rec(id=f"u-{i}", episode_id=a, target=1, value=1, judge=f"human:u{i}") for i in range(3)]
    _write(run_dir, {"gg.jsonl": ([*usual, line, *usual], True)})
    got = _compare(run_dir, tmp_path)["store"]
    assert got[(b, 0)] == [("de-1", -1)] and (a, 0) not in got


def test_a_first_copy_on_a_last_line_without_newline_wins_as_in_the_store(run_dir: Path, tmp_path: Path) -> None:
    a = _ids(run_dir)[0]
    line = {"id": "K", "episode_id": a, "target": 0, "judge": "human:ana"}
    _write(run_dir, {"a.jsonl": ([_rec(**line, value=1, time=100.0)], False),
                     "b.jsonl": ([_rec(**line, value=-1, time=200.0)], True)})
    got = _compare(run_dir, tmp_path)["store"]
    assert got[(a, 0)] == [("K", 1)]


def test_an_edit_or_tombstone_written_with_another_episode_id(run_dir: Path, tmp_path: Path) -> None:
    a, b = _ids(run_dir)[:2]
    _write(run_dir, {"cy.jsonl": ([
        _rec(id="cx-1", episode_id=a, target=0, value=-1),
        _rec(id="cx-2", episode_id=b, target=0, value=1, supersedes="cx-1", time=1764550011.0),
        _rec(id="cd-1", episode_id=a, target=1, value=-1),
        _rec(id="cd-2", episode_id=b, target=1, supersedes="cd-1", deleted=True, time=1764550011.0),
        _rec(id="ok-1", episode_id=a, target=2, value=1),
    ], True)})
    got = _compare(run_dir, tmp_path)["store"]
    assert (a, 0) not in got and (a, 1) not in got and got[(b, 0)] == [("cx-2", 1)]
    assert got[(a, 2)] == [("ok-1", 1)]


def test_one_label_id_in_two_episodes_is_the_first_copy_only(run_dir: Path, tmp_path: Path) -> None:
    a, b = _ids(run_dir)[:2]
    _write(run_dir, {"a.jsonl": ([_rec(id="lab-1", episode_id=a, target=1, value=1)], True),
                     "b.jsonl": ([_rec(id="lab-1", episode_id=b, target=0, value=-1, time=1764550031.0),
                                  _rec(id="lab-2", episode_id=b, target=0, value=1)], True)})
    got = _compare(run_dir, tmp_path)["store"]
    assert got[(a, 1)] == [("lab-1", 1)] and got[(b, 0)] == [("lab-2", 1)]
