"""How fast ``trajrec view`` opens and answers keys, measured headless in one process.

Run:  python bench/tui_open.py [--steps 100000] [--episodes 10000] [--presses 100] [--keep DIR]

Generates into a temp folder (or ``--keep DIR``):
  * a ``--steps``-step episode and a 1,000-step one, recorded with the real Recorder on the synthetic text tool
    env (~9 KB dict state, ~20% failing steps, so diffs, retries and recoveries are all there);
  * a ``--episodes``-episode folder: one 30-step episode copied under different file names into 20 subfolders
    (copying is fast; reading is what is measured). The copies share one ``episode_id``: the library keys
    nothing on it, so this changes no timing.

Then prints the marker scan of the big episode run alone (no app) against decoding its frames alone, and,
each in a fresh app (``App.run_test`` at 140x45, textual already imported):
  * time to first screen: app start until the timeline (episode) / the table (folder) has drawn its lines;
    also from a new process (interpreter start and imports included), as ``trajrec view`` pays it;
  * for the folder: time until every summary is read, cold (no summary cache) and warm (cache written by the
    cold run), and the cost of a filter keystroke and a sort key over all rows;
  * latency per key, from sending it to the first screen update after the work it asked for: ``l`` while the
    marker index is still being built in its worker thread, then ``l`` pressed N times, ``h``, ``n`` (next failure), ``G``, ``g``, a ``:`` jump, stepping with the whole-state pane; for the
    folder a filter keystroke, sort keys, cursor keys;
  * peak traced memory (tracemalloc) of opening and walking the big episode vs the 1,000-step one: it must
    not grow with the episode's length.
Targets (DESIGN.md): first screen < 1 s (big episode), < 2 s (big folder); any key < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_env import SyntheticToolEnv  # noqa: E402

from trajrec.recorder import Recorder  # noqa: E402

SIZE = (140, 45)


# -- data -----------------------------------------------------------------------------------------------------

def record_episode(out: Path, steps: int) -> Path:
    tools = ["cat", "ls", "grep", "mv"]
    env = Recorder(SyntheticToolEnv(), out, agent={"name": "bench-agent", "version": "1"},
                   task={"env_id": "bench/SyntheticTool-v0", "id": f"synthetic-{steps}"})
    env.reset(seed=0)
    for i in range(steps):
        if i % 50 == 0:
            env.note(thought=f"step {i}: keep tidying")
        action = (json.dumps({"tool": tools[i % 4], "args": {"path": f"file{i % 75}.txt"}}) if i % 3
                  else f"cat file{i % 60}.txt")
        env.step(action)
    env.check(True, kind="rule", judge="bench@1", target="episode", rationale="synthetic")
    env.close()
    assert env.episode_path is not None
    return env.episode_path


def make_folder(root: Path, n: int, template: Path) -> None:
    for i in range(n):
        d = root / f"shard{i % 20:02d}"
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, d / f"ep{i:05d}.msgpack.zst")


# -- measuring ------------------------------------------------------------------------------------------------

class FirstPaint:
    """Records when a Line API widget first draws a line with content (wraps its render_line)."""

    def __init__(self, cls: type, has_content: Callable[[Any, int], bool]) -> None:
        self.cls = cls
        self.at: float | None = None
        self._orig = cls.render_line
        probe = self

        def render_line(widget: Any, y: int) -> Any:
            strip = probe._orig(widget, y)
            if probe.at is None and has_content(widget, y):
                probe.at = time.perf_counter()
            return strip

        cls.render_line = render_line

    def restore(self) -> None:
        self.cls.render_line = self._orig


async def until(pilot: Any, cond: Callable[[], bool], timeout: float = 120.0) -> None:
    # A plain sleep, not pilot.pause(): pausing polls the app for idleness, which costs the app CPU.
    end = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > end:
            raise TimeoutError("the app did not get there in time")
        await asyncio.sleep(0.002)


class Displays:
    """Timestamps of the app's screen updates (each ``App._display`` call writes one to the terminal) and of
    the app finishing the work a key asked for: a step change (``EpisodeScreen._show_step``), a new library
    view (``LibraryScreen._update_view``) or a table cursor move (``EpisodeTable._show_cursor``)."""

    WORK = ("_show_step", "_update_view", "_show_cursor")

    def __init__(self, app: Any) -> None:
        self.times: list[float] = []
        self.done = 0.0
        self.first_done = 0.0  # the first work done since the key (a running worker may cause more later)
        orig = app._display

        def display(screen: Any, renderable: Any) -> None:
            orig(screen, renderable)
            if renderable is not None:
                self.times.append(time.perf_counter())

        app._display = display

    def watch(self, node: Any) -> None:
        if getattr(node, "_bench_watched", False):
            return
        node._bench_watched = True
        for name in self.WORK:
            orig = getattr(node, name, None)
            if orig is None:
                continue

            def wrapper(*args: Any, _orig: Any = orig, _node: Any = node, **kw: Any) -> Any:
                shown = getattr(_node, "_shown", None)
                result = _orig(*args, **kw)
                if getattr(_node, "_shown", None) != shown or not hasattr(_node, "_shown"):
                    self.done = time.perf_counter()  # a repeat call that changed nothing is not the work
                    self.first_done = self.first_done or self.done
                return result

            setattr(node, name, wrapper)


async def key_times(pilot: Any, keys: list[str], *, idle: bool = True) -> list[float]:
    """Latency of each key: from sending it to the first screen update after the work it asked for.

    Pilot's own waiting (it polls until the app is idle, ~60-80 ms a key) is not counted, nor are later
    repaints that are not the key's (a blinking cursor, the marker index's percentage). Keys that change
    nothing count until the last update they caused.
    """
    from textual import events

    from trajrec.tui.episode_table import EpisodeTable

    app = pilot.app
    displays = getattr(app, "_bench_displays", None)
    if displays is None:
        displays = app._bench_displays = Displays(app)
    out = []
    for key in keys:
        displays.watch(app.screen)
        for table in app.screen.query(EpisodeTable):
            displays.watch(table)
        t = time.perf_counter()
        displays.times.clear()
        displays.done = displays.first_done = 0.0
        if not idle:
            # As the terminal driver sends it, without Pilot's wait for an idle app (never, while a worker runs).
            event = events.Key(key, key if len(key) == 1 else None)
            event.set_sender(app)
            app._driver.send_message(event)
            # While a worker keeps posting messages the app is never idle, so Pilot's pause would wait for the
            # worker's end: wait for the key's own work and the first repaint after it instead.
            end = time.perf_counter() + 2.0
            while time.perf_counter() < end:
                first = displays.first_done
                after = [d for d in displays.times if first and d >= first]
                if after:
                    out.append(after[0] - t)
                    break
                await asyncio.sleep(0.002)
            else:
                out.append(time.perf_counter() - t)  # no repaint within 2 s: counted as 2 s
            continue
        await pilot.press(key)
        await pilot.pause()
        if displays.done:
            after = [d for d in displays.times if d >= displays.done]
            out.append((after[0] if after else displays.done) - t)
        else:
            out.append((displays.times[-1] if displays.times else t) - t)
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def summary(times: list[float]) -> str:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return f"median {ms(statistics.median(times))}  p95 {ms(p95)}  max {ms(times[-1])}  (n={len(times)})"


async def open_episode_bench(path: Path, presses: int) -> dict[str, Any]:
    from trajrec.tui.app import create_app
    from trajrec.tui.episode_screen import EpisodeScreen
    from trajrec.tui.timeline import StepTimeline

    paint = FirstPaint(StepTimeline, lambda w, y: w.episode is not None and y == 0)
    try:
        t0 = time.perf_counter()
        app = create_app([path])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: paint.at is not None)
            first = paint.at - t0  # type: ignore[operator]
            screen = app.screen
            assert isinstance(screen, EpisodeScreen)
            # Keys while the marker index is still being built in its worker thread (as many as it leaves time
            # for, up to ``presses``): the scan competes with the UI for the GIL.
            during: list[float] = []
            while not screen.markers_ready and len(during) < presses:
                during += await key_times(pilot, ["l"], idle=False)
                await asyncio.sleep(0.05)  # a person pressing keys, not a flood
            await until(pilot, lambda: screen.markers_ready)
            markers = time.perf_counter() - t0
            if during:
                await pilot.press("g")  # back to the start, as the keys below expect
            steps = await key_times(pilot, ["l"] * presses)
            back = await key_times(pilot, ["h"] * min(presses, 20))
            jumps = {}
            for key in ("n", "n", "G", "g"):
                jumps.setdefault(key, []).extend(await key_times(pilot, [key]))
            await pilot.press("colon", *str(len(screen.episode) // 2))
            goto = (await key_times(pilot, ["enter"]))[0]  # enter in the prompt: the jump to the middle
            assert screen.step_index == len(screen.episode) // 2
            await pilot.press("s")  # whole state at a middle step: state_at from the nearest snapshot
            state = await key_times(pilot, ["l"] * 10)
    finally:
        paint.restore()
    return {"first": first, "markers": markers, "during": during, "l": steps, "h": back, "jumps": jumps, "goto": goto, "state": state}


async def open_folder_bench(path: Path, *, use_catalog: bool) -> dict[str, Any]:
    from trajrec.tui.app import create_app
    from trajrec.tui.episode_table import EpisodeTable

    paint = FirstPaint(EpisodeTable, lambda w, y: y == 1 and len(w.rows) > 0)
    try:
        t0 = time.perf_counter()
        app = create_app([path], use_catalog=use_catalog)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: paint.at is not None)
            first = paint.at - t0  # type: ignore[operator]
            await until(pilot, lambda: app.library.scan_done)
            await pilot.pause()
            full = time.perf_counter() - t0
            rows = len(app.screen.query_one(EpisodeTable).rows)
            filter_keys = await key_times(pilot, ["slash", *"ep0001"])
            clear = await key_times(pilot, ["enter", "escape"])
            sort_keys = await key_times(pilot, ["3", "3", "s", "S"])
            moves = await key_times(pilot, ["down"] * 20 + ["end", "home"])
    finally:
        paint.restore()
    return {"first": first, "full": full, "rows": rows, "filter": filter_keys[1:], "clear": clear,
            "sort": sort_keys, "moves": moves}


async def memory_bench(path: Path, presses: int) -> int:
    """Peak traced bytes while opening ``path``, walking ``presses`` steps, jumping to the end and back."""
    from trajrec.tui.app import create_app
    from trajrec.tui.episode_screen import EpisodeScreen

    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    app = create_app([path])
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, EpisodeScreen) and app.screen.markers_ready,
                    timeout=900)  # tracemalloc slows the marker scan of 1,000,000 steps past 2 minutes
        for _ in range(presses):
            await pilot.press("l")
        await pilot.press("G", "s", "h", "g", "n")
        await pilot.pause()
        _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


async def _child_first_screen(path: str, t0: float) -> None:
    """In a fresh process: wall time from the parent's spawn to the first drawn step or row."""
    from trajrec.tui.app import create_app
    from trajrec.tui.episode_table import EpisodeTable
    from trajrec.tui.timeline import StepTimeline

    seen: list[float] = []
    for cls in (StepTimeline, EpisodeTable):
        orig = cls.render_line

        def render_line(widget: Any, y: int, _orig: Any = orig) -> Any:
            if not seen and y == 1:
                seen.append(time.time())
            return _orig(widget, y)

        cls.render_line = render_line
    app = create_app([path])
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(seen))
    print(seen[0] - t0)


def cold_first_screen(path: Path) -> float:
    """``trajrec view PATH`` from nothing: a new Python process, its imports, the app, the first screen."""
    import subprocess

    t0 = time.time()
    out = subprocess.run([sys.executable, __file__, "--child-first-screen", str(path), repr(t0)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def scan_alone(path: Path) -> tuple[float, float, float, float]:
    """Seconds of the viewer's marker scan run by itself in this thread: until every step's marker is known
    (from the index's step marks when the file has them), until its walk ends (it then only looks for damage),
    the decoding scan of older files (every step decoded), and decoding the same frames alone (the floor:
    decompress and msgpack-decode with the collector off), measured back to back."""
    from trajrec.recorder import open_episode
    from trajrec.recorder.format import decode_frame
    from trajrec.tui.step_scan import scan_markers

    with open_episode(path) as ep:
        frames = ep.index["frames"]
        total = len(ep)
    t = time.perf_counter()
    ready = None
    n = 0
    for start, codes in scan_markers(str(path), cancelled=lambda: False):
        n = max(n, start + len(codes))
        if ready is None and n >= total:
            ready = time.perf_counter() - t
    scan = time.perf_counter() - t
    assert n == total and ready is not None
    t = time.perf_counter()
    assert sum(len(c) for _, c in scan_markers(str(path), cancelled=lambda: False, use_index=False)) == total
    decoding = time.perf_counter() - t
    gc.disable()
    try:
        t = time.perf_counter()
        with open(path, "rb") as fh:
            for offset, _first, _count, stop in (f[:4] for f in frames):
                fh.seek(offset)
                decode_frame(fh.read(stop - offset), path=str(path), offset=offset, checksum=True)
        floor = time.perf_counter() - t
    finally:
        gc.enable()
    return ready, scan, decoding, floor


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--child-first-screen":
        asyncio.run(_child_first_screen(sys.argv[2], float(sys.argv[3])))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--episodes", type=int, default=10_000)
    ap.add_argument("--presses", type=int, default=100)
    ap.add_argument("--keep", metavar="DIR", help="generate into DIR and keep it (reused if already there)")
    args = ap.parse_args()

    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="trajrec-tui-bench-"))
    try:
        t = time.perf_counter()
        big = next(iter(sorted((base / "big").glob("*.msgpack.zst"))), None) if args.keep else None
        if big is None:
            big = record_episode(base / "big", args.steps)
        small = next(iter(sorted((base / "small").glob("*.msgpack.zst"))), None) if args.keep else None
        if small is None:
            small = record_episode(base / "small", 1_000)
        mid = next(iter(sorted((base / "mid").glob("*.msgpack.zst"))), None) if args.keep else None
        if mid is None:
            mid = record_episode(base / "mid", 10_000)
        folder = base / "folder"
        if not folder.exists():
            make_folder(folder, args.episodes, record_episode(base / "template", 30))
        cache = folder / ".trajrec"
        shutil.rmtree(cache, ignore_errors=True)
        print(f"generated in {time.perf_counter() - t:.1f} s under {base}: {args.steps:,}-step episode "
              f"({big.stat().st_size / 1e6:.1f} MB), 10,000- and 1,000-step episodes, {args.episodes:,}-episode folder "
              "(copies of one 30-step episode: same episode_id, different files)")

        ready, scan, decoding, floor = scan_alone(big)
        print(f"marker index alone (no app), {args.steps:,} steps: every marker known after {ready:.3f} s "
              f"(from the index's step marks), the walk for damage done after {scan:.2f} s   "
              f"target 1,000,000 steps < 5 s")
        print(f"  the decoding scan (files without step marks): {decoding:.2f} s, {args.steps / decoding:,.0f} steps/s; "
              f"decoding every frame (collector off): {floor:.2f} s -> ratio {floor / decoding:.2f}")

        t = time.perf_counter()
        import tui.app  # noqa: F401  (textual's import cost, paid once per `trajrec view`)
        print(f"import tui.app (textual): {ms(time.perf_counter() - t)}")

        # A throwaway run warms textual's lazily built parts (CSS parsing caches, first-use imports).
        asyncio.run(open_episode_bench(small, 5))

        cold_big = cold_first_screen(big)
        cold_folder = cold_first_screen(folder)
        shutil.rmtree(cache, ignore_errors=True)  # the timed cold folder run below starts without a cache
        ep = asyncio.run(open_episode_bench(big, args.presses))
        ep_small = asyncio.run(open_episode_bench(small, args.presses))
        print(f"\n{args.steps:,}-step episode ({big.name})")
        print(f"  first screen             {ms(ep['first'])}   (1,000 steps: {ms(ep_small['first'])}; "
              f"ratio {ep['first'] / ep_small['first']:.2f})   target < 1000 ms")
        print(f"  first screen, new process {ms(cold_big)}   (python start, imports, app; what `trajrec view` costs)")
        print(f"  marker index complete    {ms(ep['markers'])}   (background worker; n/N/r wait for it; "
              f"{args.steps / max(ep['markers'], 1e-9):,.0f} steps/s; target 1,000,000 steps < 5 s)")
        if ep["during"]:
            print(f"  key l, marker index running {summary(ep['during'])}   target p95 < 50 ms")
        print(f"  key l (next step)        {summary(ep['l'])}")
        print(f"  key l, 1,000 steps       {summary(ep_small['l'])}")
        print(f"  key h (previous step)    {summary(ep['h'])}")
        for key, times in ep["jumps"].items():
            print(f"  key {key:<21}{summary(times)}")
        print(f"  ':' N enter (middle)     {ms(ep['goto'])}   (from enter in the prompt to the step shown)")
        print(f"  key l, whole-state pane  {summary(ep['state'])}")

        cold = asyncio.run(open_folder_bench(folder, use_catalog=True))
        warm = asyncio.run(open_folder_bench(folder, use_catalog=True))
        print(f"\n{args.episodes:,}-episode folder")
        print(f"  first screen, cold       {ms(cold['first'])}   target < 2000 ms")
        print(f"  first screen, warm cache {ms(warm['first'])}")
        print(f"  first screen, new process {ms(cold_folder)}   (python start, imports, app, no cache)")
        print(f"  all {cold['rows']:,} summaries read  cold {ms(cold['full'])}   warm cache {ms(warm['full'])}")
        print(f"  filter keystroke         {summary(cold['filter'] + warm['filter'])}")
        print(f"  sort key (all rows)      {summary(cold['sort'] + warm['sort'])}")
        print(f"  clear filter, back       {summary(cold['clear'] + warm['clear'])}")
        print(f"  cursor keys              {summary(cold['moves'] + warm['moves'])}")

        peaks = [(n, asyncio.run(memory_bench(p, args.presses))) for n, p in
                 ((1_000, small), (10_000, mid), (args.steps, big))]
        print("\npeak traced memory (open, walk, G, whole state, back to start; marker index built)")
        for n, peak in peaks:
            print(f"  {n:>9,} steps {peak / 1e6:7.1f} MB   ({peak / peaks[0][1]:.2f}x the 1,000-step episode)")
        print("  (the readers keep up to 8 decoded frames of ~1,000 steps each, the UI's and the marker scan's:")
        print("   an episode of one frame cannot fill them; beyond ~8,000 steps memory stays flat)")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
