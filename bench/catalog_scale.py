"""How the library catalog scales: listing a run of N episode files, cold and warm.

Prints the time to list every episode (``trajrec.replay.library.scan``, what ``trajrec ls`` and the viewer's
library use) cold (no summary cache: every file's index is read) and warm (the sharded cache is valid), and the
warm ``trajrec ls`` as a whole process, against a baseline in the same run: ``os.scandir`` over the same folders
(the floor: listing names without reading anything).

    python bench/catalog_scale.py --out /work/benchdata/catalog                      # 100,000 episodes
    python bench/catalog_scale.py --out /work/benchdata/catalog --episodes 1000000   # about 3 GB, 1M files
    python bench/catalog_scale.py --out /work/benchdata/catalog --generate-only      # write the run, time nothing

The files are copies of a few real recorded episodes, 10,000 per sub-folder, kept under ``--out`` (default
bench/out/) between runs: generating a million files takes a while, so they are written once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym

from trajrec import Recorder
from trajrec.replay.library import scan

OUT = Path(__file__).resolve().parent / "out"


def make_run(n: int, out: Path = OUT) -> Path:
    root = out / f"catalog-{n}"
    marker = root / ".complete"
    if marker.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    templates = root / "templates"
    env = Recorder(gym.make("CartPole-v1"), templates)
    for seed in range(8):
        env.reset(seed=seed)
        done = False
        while not done:
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            done = term or trunc
    env.close()
    srcs = [p.read_bytes() for p in sorted(templates.glob("*.msgpack.zst"))]
    shutil.rmtree(templates)
    t0 = time.perf_counter()
    for i in range(n):
        d = root / f"part-{i // 10_000:04d}"
        if i % 10_000 == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"ep-{i:07d}.msgpack.zst").write_bytes(srcs[i % len(srcs)])
    marker.touch()
    print(f"wrote {n:,} files in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return root


def timed(fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=OUT, help="where the generated runs live (default: bench/out/)")
    ap.add_argument("--generate-only", action="store_true", help="write the run if missing, then stop")
    args = ap.parse_args()
    root = make_run(args.episodes, args.out)
    if args.generate_only:
        return

    def floor() -> int:
        n = 0
        for d in os.scandir(root):
            if d.is_dir() and d.name != ".trajrec":
                n += sum(1 for _ in os.scandir(d.path))
        return n

    def listing(use_catalog: bool = True) -> int:
        return sum(len(b.entries) for b in scan([root], use_catalog=use_catalog))

    t_floor, n = timed(floor)
    shutil.rmtree(root / ".trajrec", ignore_errors=True)
    t_cold, n_cold = timed(listing)
    t_warm, n_warm = timed(listing)
    t_warm2, _ = timed(listing)
    t_ls, proc = timed(lambda: subprocess.run([sys.executable, "-m", "trajrec", "ls", str(root)],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    assert n_cold == n_warm == args.episodes, (n_cold, n_warm)
    print(f"episodes                         {args.episodes:>12,}")
    print(f"scandir floor                    {t_floor:>10.2f} s")
    print(f"scan, cold (no cache)            {t_cold:>10.2f} s   {t_cold / t_floor:6.1f}x floor")
    print(f"scan, warm                       {min(t_warm, t_warm2):>10.2f} s   {min(t_warm, t_warm2) / t_floor:6.1f}x floor")
    print(f"trajrec ls, warm, whole process  {t_ls:>10.2f} s   (exit {proc.returncode})")


if __name__ == "__main__":
    main()
