"""`export --workers N` starts no more processes than there are batches of files: `-j 64` on 3 episode files
starts at most 3 workers, and writes what one process writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trajrec.cli import main
from trajrec.replay.exports import export, parallel


def test_workers_are_capped_by_the_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "3", "--out", str(run), "--json"]) == 0
    started: list[int] = []
    real = parallel._PoolStarter.__init__

    def spy(self: Any, workers: int, config: str) -> None:  # the real pool, its size noted
        started.append(workers)
        real(self, workers, config)

    monkeypatch.setattr(parallel._PoolStarter, "__init__", spy)
    export([run], "records", tmp_path / "one.jsonl")
    export([run], "records", tmp_path / "many.jsonl", workers=64)
    assert started and started[0] <= 3
    assert (tmp_path / "many.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
