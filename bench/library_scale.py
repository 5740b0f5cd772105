"""How the viewer's library opens a big run: the real Textual app, headless, on N episodes with a warm catalog.

    python bench/library_scale.py --out /work/benchdata/catalog --episodes 1000000

Uses the run :mod:`catalog_scale` generates (same ``--out``; it is written if missing, and the summary cache
is warmed by a first listing). Prints, against a baseline measured in the same process (``os.scandir`` over
the same folders: listing names without reading anything):

* first row: app start until the library table draws its first episode row;
* all rows: app start until the scan worker has delivered every episode (the status line says "finished");
* keys once everything is in: ``j``, ``G`` (last row), ``g``, ``pagedown``, ``s`` (sort by the next column:
  every row), a filter keystroke (``/f``, then ``a``: every row), as the median latency from sending the key
  to the table showing the result (a library of more than 50,000 episodes sorts and filters in a worker).

The app runs at 140x45 in ``App.run_test``; textual is imported before the clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from catalog_scale import OUT, make_run  # noqa: E402

from trajrec.replay.library import scan  # noqa: E402

SIZE = (140, 45)


def floor(root: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = 0
    for d in os.scandir(root):
        if d.is_dir() and d.name != ".trajrec":
            n += sum(1 for _ in os.scandir(d.path))
    return time.perf_counter() - t0, n


async def open_library(root: Path) -> dict[str, Any]:
    from trajrec.tui.app import create_app
    from trajrec.tui.episode_table import EpisodeTable
    from trajrec.tui.library_screen import LibraryScreen
    from trajrec.tui.scan_status import ScanStatus

    first: list[float] = []
    orig = EpisodeTable.render_line

    def render_line(widget: Any, y: int) -> Any:
        if not first and y == 1 and widget.rows:
            first.append(time.perf_counter())
        return orig(widget, y)

    EpisodeTable.render_line = render_line  # type: ignore[method-assign]
    t0 = time.perf_counter()
    app = create_app([root])
    out: dict[str, Any] = {}
    try:
        async with app.run_test(size=SIZE) as pilot:
            while not first:
                await asyncio.sleep(0.002)
            out["first row"] = first[0] - t0
            screen = app.screen
            assert isinstance(screen, LibraryScreen)
            status = screen.query_one(ScanStatus)
            while not status.finished:
                await asyncio.sleep(0.005)
            out["all rows"] = time.perf_counter() - t0
            out["rows"] = len(screen.query_one(EpisodeTable).rows)
            await pilot.pause()
            for key in ("j", "G", "g", "pagedown", "s", "filter"):
                times = []
                for k in range(5 if key in ("j", "G", "g", "pagedown") else 2):
                    t = time.perf_counter()
                    if key == "filter":  # one keystroke of a filter over every row ("f", then "fa")
                        await pilot.press(*(["slash", "f"] if k == 0 else ["a"]))
                    else:
                        await pilot.press(key)
                    while not screen.view_ready:  # big libraries filter and sort in a worker
                        await asyncio.sleep(0.002)
                    await pilot.pause()
                    times.append(time.perf_counter() - t)
                out[f"key {key}"] = statistics.median(times)
            out["shown"] = len(screen.query_one(EpisodeTable).rows)
    finally:
        EpisodeTable.render_line = orig  # type: ignore[method-assign]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=OUT, help="where the generated runs live (default: bench/out/)")
    args = ap.parse_args()
    root = make_run(args.episodes, args.out)
    for _ in scan([root]):  # warm the catalog (a no-op when it is)
        pass
    import textual.app  # noqa: F401  (imports are not what is measured)

    t_floor, n = floor(root)
    got = asyncio.run(open_library(root))
    t_floor2, _ = floor(root)
    base = statistics.median([t_floor, t_floor2])
    assert got["rows"] == n == args.episodes, (got["rows"], n)
    print(f"episodes                         {args.episodes:>12,}")
    print(f"scandir floor                    {base:>10.2f} s")
    for k in ("first row", "all rows"):
        print(f"view: {k:<26} {got[k]:>10.2f} s   {got[k] / base:6.1f}x floor")
    for k, v in got.items():
        if k.startswith("key"):
            print(f"view: {k:<26} {v * 1000:>10.1f} ms  {v / base:6.3f}x floor")


if __name__ == "__main__":
    main()
