"""Showing a huge value costs what is shown, not the value's size: ``show``, ``show --step``, ``ls`` and ``view``
on an episode whose step 1 holds a 25 MB observation (15 MB of text, a 10 MB array), against the same episode
with a small observation, in one process.

Run:  python bench/huge_values.py [--repeats 3]

Prints, for both episodes, the best time of each command and the bytes it printed, and the ratio huge/small.
Reading the file still decodes the 25 MB record (a few tens of ms): that part follows the file, the rest
must not. Target (issue 11): the huge episode shows and opens within about a second; ``--full`` prints all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from trajrec.recorder import Recorder  # noqa: E402


class _Env:
    """A three-step env whose step 1 returns ``big``."""

    def __init__(self, big: Any) -> None:
        import gymnasium as gym

        class Env(gym.Env):
            metadata: dict[str, Any] = {"render_modes": []}
            observation_space = gym.spaces.Discrete(2)
            action_space = gym.spaces.Discrete(2)

            def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
                super().reset(seed=seed)
                self.n = 0
                return "start", {}

            def step(self, action: Any):
                self.n += 1
                obs = big if self.n == 2 else f"obs {self.n}"
                return obs, 0.0, self.n >= 3, False, {"n": self.n}

        self.env = Env()


def record(out: Path, big: Any) -> Path:
    rec = Recorder(_Env(big).env, out)
    rec.reset(seed=0)
    for k in range(3):
        rec.step(f"act {k}")
    rec.close()
    assert rec.episode_path is not None
    return rec.episode_path


def cli(args: list[str]) -> tuple[float, int]:
    from trajrec.cli import main

    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        main(args)
    return time.perf_counter() - t0, len(buf.getvalue())


async def view(path: Path) -> float:
    """App start until the episode screen shows step 1 in its detail pane."""
    from trajrec.tui.app import create_app
    from trajrec.tui.episode_screen import EpisodeScreen

    t0 = time.perf_counter()
    app = create_app([path])
    async with app.run_test(size=(140, 45)) as pilot:
        for _ in range(2000):
            if isinstance(app.screen, EpisodeScreen):
                break
            await pilot.pause(0.005)
        await pilot.press("l", "l")  # to step 1, whose detail pane renders the huge observation
        await pilot.pause()
        return time.perf_counter() - t0


def best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    runs = [fn() for _ in range(repeats)]
    times = [r[0] if isinstance(r, tuple) else r for r in runs]
    return min(times), runs[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    huge = {"text": "lorem ipsum dolor\n" * (15_000_000 // 18), "array": np.arange(10_000_000 // 8, dtype=np.float64)}
    small = {"text": "lorem ipsum dolor\n" * 3, "array": np.arange(4, dtype=np.float64)}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"small": record(Path(tmp) / "small", small), "huge": record(Path(tmp) / "huge", huge)}
        import trajrec.tui.app  # noqa: F401  (textual's import cost is not what is measured)

        rows: dict[str, dict[str, tuple[float, int]]] = {}
        for name, path in paths.items():
            p = str(path)
            r = rows[name] = {}
            for label, argv in (("show", ["show", p]), ("show --step 1", ["show", p, "--step", "1"]),
                                ("show --step 1 --full", ["show", p, "--step", "1", "--full"]),
                                ("ls", ["ls", p])):
                t, (_t, printed) = best(lambda argv=argv: cli(argv), args.repeats)
                r[label] = (t, printed)
            t, _ = best(lambda p=path: asyncio.run(view(p)), args.repeats)
            r["view (open, step 1)"] = (t, 0)
        print(f"episode with a 25 MB observation vs a small one ({args.repeats} runs, best):")
        print(f"  {'command':<24} {'small':>10} {'huge':>10} {'ratio':>7}   printed small / huge")
        for label in rows["small"]:
            (ts, bs), (th, bh) = rows["small"][label], rows["huge"][label]
            print(f"  {label:<24} {ts * 1000:>8.1f}ms {th * 1000:>8.1f}ms {th / ts:>6.1f}x   {bs:,} / {bh:,} bytes")
        worst = max(rows["huge"][k][0] for k in rows["huge"] if "--full" not in k)
        print(f"  slowest bounded command on the huge episode: {worst:.2f} s (target: about 1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
