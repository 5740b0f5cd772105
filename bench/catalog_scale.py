"""How the library catalog scales: listing a run of N episode files, cold and warm.

Prints the time to list every episode (``trajrec.replay.library.scan``, what the viewer's library and
``open_run`` use; ``list_columns``, what a plain ``trajrec ls`` uses) cold (no summary cache: every file's index
is read), warm (the sharded cache is valid and the folders unchanged) and verified (every file's inode, size and
mtime compared: ``ls --rescan``), and ``trajrec ls`` as a whole process, against a baseline in the same run:
``os.scandir`` over the same folders (the floor: listing names without reading anything).

    python bench/catalog_scale.py --out /work/benchdata/catalog                      # 100,000 episodes
    python bench/catalog_scale.py --out /work/benchdata/catalog --episodes 1000000   # about 3 GB, 1M files
    python bench/catalog_scale.py --out /work/benchdata/catalog --generate-only      # write the run, time nothing
    python bench/catalog_scale.py --out /work/benchdata/catalog --episodes 1000000 --skip-cold   # warm figures only

The files are copies of a few real recorded episodes, 10,000 per sub-folder, kept under ``--out`` (default
bench/out/) between runs: generating a million files takes a while, so they are written once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym

from trajrec import Recorder
from trajrec.replay.library import list_columns, scan

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
    ap.add_argument("--skip-cold", action="store_true",
                    help="keep the summary cache (the cold listing of a million files takes minutes)")
    ap.add_argument("--rounds", type=int, default=3)
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

    def listing(use_catalog: bool = True, verify: bool = False) -> int:
        return sum(len(b.entries) for b in scan([root], use_catalog=use_catalog, verify=verify))

    def columns() -> int:
        return len(list_columns([root]))

    def process(*argv: str) -> int:
        proc = subprocess.run([sys.executable, "-m", "trajrec", *argv], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        assert proc.returncode == 0, proc.stderr
        return 0

    if not args.skip_cold:
        shutil.rmtree(root / ".trajrec", ignore_errors=True)
        t_cold, n_cold = timed(listing)
        assert n_cold == args.episodes, n_cold
    time.sleep(2.5)  # folders written within RACY_NS of a listing are not trusted by the next one
    listing()  # records the folders as trusted
    # Interleaved rounds, medians: the machine is shared, so each figure is set against the floor of its round.
    cases = {
        "scandir floor": floor,
        "scan, warm (EpisodeEntry per row)": listing,
        "list_columns, warm (no object per row)": columns,
        "scan, verify (stat every file)": lambda: listing(verify=True),
        "python -m trajrec --version": lambda: process("--version"),
        "trajrec ls, warm, whole process": lambda: process("ls", str(root)),
        "trajrec ls --rescan, whole process": lambda: process("ls", "--rescan", str(root)),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.rounds):
        for k, fn in cases.items():
            t, n = timed(fn)
            assert k.startswith(("python", "trajrec")) or n == args.episodes, (k, n)
            times[k].append(t)
    t_floor = statistics.median(times["scandir floor"])
    print(f"episodes {args.episodes:,}; medians of {args.rounds} interleaved rounds")
    if not args.skip_cold:
        print(f"{'scan, cold (no cache: every index read)':<42} {t_cold:>8.2f} s  {t_cold / t_floor:7.1f}x floor")
    for k, ts in times.items():
        t = statistics.median(ts)
        print(f"{k:<42} {t:>8.2f} s  {t / t_floor:7.1f}x floor")


if __name__ == "__main__":
    main()
