"""Streaming: import memory stays flat in the source's size (heavy: builds a 100 MB Inspect log).

Run:  python -m pytest -m heavy tests/importers/test_import_memory.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import big_files

PEAK = big_files.PEAK_KB + """
import sys
from trajrec.importers import import_paths

r = import_paths(sys.argv[1], [sys.argv[2]], sys.argv[3])
print(peak_kb() // 1024, r.episodes, r.steps)
"""


def peak_mb(fmt: str, path: Path) -> tuple[int, int, int]:
    done = subprocess.run([sys.executable, "-c", PEAK, fmt, str(path), str(path.parent / "run")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    rss, episodes, steps = map(int, done.stdout.split())
    return rss, episodes, steps


@pytest.mark.heavy
@pytest.mark.parametrize("kind, fmt, small_mb, big_mb", [
    ("inspect_json", "inspect", 10, 100),
    ("inspect_eval", "inspect", 10, 100),
    ("mini_swe_agent", "mini-swe-agent", 4, 40),
])
def test_peak_memory_is_flat_in_file_size(tmp_path: Path, kind: str, fmt: str, small_mb: int, big_mb: int) -> None:
    build = getattr(big_files, kind)
    rss = {}
    for mb in (small_mb, big_mb):
        path = tmp_path / f"{mb}" / ("log.eval" if kind == "inspect_eval" else "src.json")
        path.parent.mkdir()
        units = build(path, mb * 1_000_000)
        peak, episodes, steps = peak_mb(fmt, path)
        assert episodes == (units if kind != "mini_swe_agent" else 1)
        if kind == "mini_swe_agent":
            assert steps == units
        rss[mb] = peak
    # Ten times the data, (almost) the same peak: what grows is the per-file report, not the trajectories.
    assert rss[big_mb] < rss[small_mb] + 25, rss
    assert rss[big_mb] < big_mb * 0.8 + 40, rss  # json.load alone of the 100 MB log peaks near 300 MB
