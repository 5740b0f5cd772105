"""The label index places a chunk of usual lines a run of one episode's lines at a time (`_RUN`, one regex match
per run): it must keep exactly the places, line counts and warnings the line-by-line loop keeps, and leave any
chunk with a line it cannot vouch for to that loop."""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path
from typing import Any

import pytest

from trajrec.replay.label_join import EpisodeLabelIndex
from trajrec.replay.labels import LABELS_DIR


def _line(rng: random.Random, eid: str, k: int) -> str:
    rec = {"v": 1, "id": f"{k:032x}", "episode_id": eid, "target": rng.choice([0, 1, 5, "episode"]),
           "kind": "judge", "judge": "human:ana", "value": rng.choice([1, -1, 0]), "time": 1.5 + k}
    if rng.random() < 0.3:
        rec["rationale"] = rng.choice(["plain", 'a "quoted" }\n{"v":1,"id":"x","episode_id":"ep-0"}', "é"])
    return json.dumps(rec, ensure_ascii=rng.random() < 0.5, separators=(",", ":"))


#: Lines that are not in the usual shape, or name an episode in a way the run regex must not read as usual.
_ODD = ["", "   ", "{damaged", "[1, 2]", '{"v":1,"id":"x","episode_id":"ep-1"} ', ' {"v":1,"id":"x","episode_id":"ep-1"}',
        '{"v":1,"id":"x","episode_id":"ep\\u002d1","target":0}', '{"v":1,"id":"x","episode_id":"","target":0}',
        '{"v":1,"id":"x\\"y","episode_id":"ep-1","target":0}', '{"v":1,"id":"x","episode_id":"ep-1","target":0',
        '{"v":2,"id":"x","episode_id":"ep-1","target":0}', '{"episode_id":"ep-2","v":1,"id":"x","target":0}',
        '{"v":1,"id":"x","episode_id":"ep-1\r","target":0}\r']


def _write(rng: random.Random, path: Path, odd: float) -> None:
    eids = ["ep-0", "ep-1", "ep-10", "ep-1x", "épisode", "ep\udcff"]
    lines: list[str] = []
    k = 0
    for _run in range(rng.randint(1, 30)):
        eid = rng.choice(eids)
        for _ in range(rng.randint(1, 40)):
            lines.append(_ODD[rng.randrange(len(_ODD))] if rng.random() < odd else _line(rng, eid, k))
            k += 1
    tail = "\n" if rng.random() < 0.8 else ""
    path.write_bytes(("\n".join(lines) + tail).encode("utf-8", "surrogateescape"))


def _placed(run: Path) -> tuple[Any, ...]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = EpisodeLabelIndex(run)
        places = {eid: list(p) for eid, p in index._places.items()}
        kept = {eid: [lab.to_record() for lab in labs] for eid, labs in index._kept.items()}
        versions = len(index)
        labels = {eid: [lab.to_record() for lab in index.current(eid)] for eid in sorted(index._places)}
        index.close()
    return places, kept, versions, labels, sorted(str(w.message) for w in caught)


@pytest.mark.parametrize("odd", [0.0, 0.002, 0.05])
def test_runs_are_placed_as_the_line_loop_places_their_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             odd: float) -> None:
    rng = random.Random(f"runs-{odd}")
    whole = 0
    for case in range(40):
        run = tmp_path / f"run{case}"
        (run / LABELS_DIR).mkdir(parents=True)
        for f in range(rng.randint(1, 2)):
            _write(rng, run / LABELS_DIR / f"ana-{f}-x.jsonl", odd)
        fast = _placed(run)
        with monkeypatch.context() as m:
            m.setattr(EpisodeLabelIndex, "_ingest_usual_chunk", lambda self, path, start, body: None)
            slow = _placed(run)
        assert fast == slow, case
        whole += not fast[4]
    assert whole or odd  # runs without odd lines were placed without a warning


def test_a_run_of_many_lines_spans_chunks_and_is_placed_whole(tmp_path: Path) -> None:
    # 30,000 lines of one episode (~3 MB: several of the store's 1 MB chunks), then another episode's.
    labels = tmp_path / LABELS_DIR
    labels.mkdir(parents=True)
    rng = random.Random(7)
    lines = [_line(rng, "ep-0", k) for k in range(30_000)] + [_line(rng, "ep-1", k) for k in range(30_000, 30_010)]
    (labels / "ana-1-x.jsonl").write_text("\n".join(lines) + "\n")
    index = EpisodeLabelIndex(tmp_path)
    assert len(index) == 30_010
    assert sum(index._places["ep-0"][3::4]) == 30_000 and list(index._places["ep-1"][3::4]) == [10]
    assert [lab.id for lab in index._versions("ep-1")] == [f"{k:032x}" for k in range(30_000, 30_010)]
