"""Peak memory of the parquet export on wide rows: 84x84x3 image observations (issue 15, "export peak memory flat").

Run:  python bench/export_images.py [--episodes 30] [--steps 100] [--run DIR] [--repeat 1]

Records ``--episodes`` x ``--steps`` steps of a gymnasium env whose observations are noisy 84x84x3 uint8 images
(each parquet row: ~90 KB of JSON text in ``observation`` and 21,168 numbers in ``observation_values``), then
exports them in fresh processes, interleaved: ``records`` (JSON lines, one episode at a time: the reference),
``parquet`` in one process and with ``--workers 2``. Each child prints its peak resident memory (``VmHWM``) and
the parquet file's row groups (how many, and the most rows in one). Rows per row group are bounded by bytes as
well as by rows (``replay/exports/parquet.py``: ``_GROUP_BYTES``), so the parquet peak stays a few hundred MB
instead of growing with the rows of an 8,192-row group (1.45 GB for these 3,000 steps before); the two parquet
files must be the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from export_speed import peak_rss_mb  # noqa: E402  (this folder is sys.path[0]; an export imports what it does)


def image_env(steps: int) -> Any:
    """A gymnasium env returning a new noisy 84x84x3 uint8 image at every step, truncated after ``steps``."""
    import gymnasium as gym
    import numpy as np

    class ImageEnv(gym.Env):
        metadata: dict[str, Any] = {"render_modes": []}

        def __init__(self) -> None:
            self.observation_space = gym.spaces.Box(0, 255, (84, 84, 3), dtype=np.uint8)
            self.action_space = gym.spaces.Discrete(4)
            self.rng = np.random.default_rng(0)

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            super().reset(seed=seed)
            self.t = 0
            return self._frame(), {}

        def _frame(self) -> Any:
            return self.rng.integers(0, 256, (84, 84, 3), dtype=np.uint8)

        def step(self, action: int):
            self.t += 1
            return self._frame(), float(action == 1), False, self.t >= steps, {}

    return ImageEnv()


def build(run: Path, episodes: int, steps: int) -> None:
    from trajrec.recorder import Recorder

    env = Recorder(image_env(steps), run, agent="bench")
    for e in range(episodes):
        env.reset(seed=e)
        for i in range(steps):
            env.step(i % 4)
    env.close()


def child(what: str, run: Path, out: Path) -> None:
    """One export in this fresh process; prints ``{"steps", "seconds", "rss_mb", "groups", "most_rows", "sha"}``."""
    from trajrec.replay.exports import ExportOptions, export

    fmt, _, workers = what.partition("@")
    t0 = time.perf_counter()
    rep = export([run], fmt, out, options=ExportOptions(unlabeled="false"), workers=int(workers or 1))
    res: dict[str, Any] = {"steps": rep.steps, "seconds": time.perf_counter() - t0, "rss_mb": peak_rss_mb()}
    if fmt == "parquet":
        from trajrec.replay.exports.parquet import pyarrow_modules

        _, pq = pyarrow_modules()
        meta = pq.ParquetFile(out).metadata
        res["groups"] = meta.num_row_groups
        res["most_rows"] = max(meta.row_group(g).num_rows for g in range(meta.num_row_groups))
        res["sha"] = hashlib.sha256(out.read_bytes()).hexdigest()[:16]
    print(json.dumps(res))


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--run", type=Path, help="reuse or create the run in this folder (default: a temp folder)")
    ap.add_argument("--repeat", type=int, default=1, help="rounds (medians)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="trajrec-export-images-"))
    run = args.run or tmp / "run"
    if not run.exists() or not any(run.glob("*.msgpack.zst")):
        t = time.perf_counter()
        build(run, args.episodes, args.steps)
        print(f"recorded {args.episodes} x {args.steps} image steps in {time.perf_counter() - t:.1f} s",
              file=sys.stderr)
    whats = ["records", "parquet", "parquet@2"]
    got: dict[str, list[dict[str, Any]]] = {w: [] for w in whats}
    for _ in range(args.repeat):
        for what in whats:
            out = tmp / ("out.parquet" if what.startswith("parquet") else "out.jsonl")
            proc = subprocess.run([sys.executable, __file__, "--child", what, str(run), str(out)],
                                  capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"measuring {what} failed:\n{proc.stderr}")
            got[what].append(json.loads(proc.stdout.splitlines()[-1]))
            os.unlink(out)
    med = statistics.median
    print(f"\nwhole processes, medians of {args.repeat} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
          "cores)")
    print(f"{'what':<10} {'steps':>7} {'seconds':>8} {'peak RSS MB':>12} {'row groups':>11} {'most rows':>10}  file")
    for what in whats:
        r = got[what]
        secs, mb = med(x["seconds"] for x in r), med(x["rss_mb"] for x in r)
        print(f"{what:<10} {r[0]['steps']:>7,} {secs:>8.2f} {mb:>12.1f} "
              f"{r[0].get('groups', '-'):>11} {r[0].get('most_rows', '-'):>10}  {r[0].get('sha', '-')}")
    same = len({x["sha"] for w in ("parquet", "parquet@2") for x in got[w]}) == 1
    print(f"parquet with --workers 2 the same bytes as one process: {'yes' if same else 'NO'}")
    import shutil

    shutil.rmtree(tmp)  # outputs (and the run, unless --run) lived there
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
