"""Two processes labeling one run at once lose nothing (DESIGN.md: "never a label lost because two people labeled
at once")."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

from trajrec.replay.labels import LabelStore

N = 500


def _writer(run: str, who: str, start: "multiprocessing.synchronize.Event") -> None:
    start.wait(30)
    store = LabelStore(run)
    for i in range(N):
        store.add(f"ep-{i % 7}", i, (i % 3) - 1, judge=f"human:{who}", rationale=f"{who} #{i}")
    store.close()


def test_two_processes_adding_500_labels_each_end_with_1000(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")  # real, separate interpreters
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), who, start)) for who in ("ana", "bo")]
    for p in procs:
        p.start()
    reader = LabelStore(tmp_path)
    start.set()
    seen = [0]
    deadline = time.monotonic() + 60
    while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
        reader.refresh()  # reading while they write: counts only grow
        assert len(reader) >= seen[-1]
        seen.append(len(reader))
        time.sleep(0.005)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    reader.refresh()
    assert len(reader) == 2 * N
    fresh = LabelStore(tmp_path)
    labels = fresh.current()
    assert len(labels) == 2 * N and len({lab.id for lab in labels}) == 2 * N
    assert sorted(lab.rationale for lab in labels if lab.judge == "human:ana") == sorted(f"ana #{i}" for i in range(N))
    files = sorted(fresh.dir.glob("*.jsonl"))
    assert [f.name.split("-")[0] for f in files] == ["ana", "bo"]  # one file per writer process
    for f in files:
        rows = [json.loads(line) for line in f.read_text().splitlines()]
        assert len(rows) == N
