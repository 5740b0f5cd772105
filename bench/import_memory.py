"""Peak memory of `trajrec import` against the size of the source file: flat means it does not grow with it.

Run:  python bench/import_memory.py [--mb 100] [--dir DIR]

Builds, from real samples (tests/data), an Inspect .json log, an Inspect .eval archive and a mini-swe-agent
file of ~1/10 and of the full ``--mb`` size, imports each in a fresh subprocess and prints the subprocess's peak
RSS (``VmHWM``) and the import time. It also prints the peak of a subprocess that only loads the big file with
``json.load`` (what a non-streaming importer would need at least), as the reference.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "importers"))

import big_files  # noqa: E402

IMPORT = big_files.PEAK_KB + """
import sys, time
from trajrec.importers import import_paths

t = time.perf_counter()
r = import_paths(sys.argv[1], [sys.argv[2]], sys.argv[3])
print(peak_kb(), r.episodes, r.steps, time.perf_counter() - t)
"""
LOAD = big_files.PEAK_KB + """
import json, sys

json.load(open(sys.argv[1], encoding="utf-8"))
print(peak_kb())
"""


def peak_import(fmt: str, path: Path, out: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", IMPORT, fmt, str(path), str(out)], capture_output=True, text=True,
                          check=True)
    rss, episodes, steps, seconds = done.stdout.split()
    return {"peak_rss_mb": int(rss) / 1024, "episodes": int(episodes), "steps": int(steps), "seconds": float(seconds)}


def peak_load(path: Path) -> float:
    done = subprocess.run([sys.executable, "-c", LOAD, str(path)], capture_output=True, text=True, check=True)
    return int(done.stdout) / 1024


def measure(kind: str, mb: float, tmp: Path) -> list[dict]:
    rows = []
    for size in (mb / 10, mb):
        path = tmp / f"{kind}-{size:g}MB" / {"inspect-json": "log.json", "inspect-eval": "log.eval",
                                             "mini-swe-agent": "run.traj.json"}[kind]
        path.parent.mkdir(parents=True, exist_ok=True)
        build = {"inspect-json": big_files.inspect_json, "inspect-eval": big_files.inspect_eval,
                 "mini-swe-agent": big_files.mini_swe_agent}[kind]
        build(path, int(size * 1e6))
        fmt = "mini-swe-agent" if kind == "mini-swe-agent" else "inspect"
        row = {"kind": kind, "file_mb": round(path.stat().st_size / 1e6, 1), **peak_import(fmt, path, path.parent / "run")}
        if kind != "inspect-eval":
            row["json_load_peak_rss_mb"] = peak_load(path)
        rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=float, default=100.0)
    p.add_argument("--dir")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        rows = []
        for kind in ("inspect-json", "inspect-eval", "mini-swe-agent"):
            rows.extend(measure(kind, args.mb if kind != "mini-swe-agent" else args.mb / 2.5, Path(d)))
    for r in rows:
        print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()}))
    for small, big in zip(rows[::2], rows[1::2]):
        print(f"{big['kind']}: file x{big['file_mb'] / max(small['file_mb'], 1e-9):.1f} -> peak RSS "
              f"{small['peak_rss_mb']:.0f} -> {big['peak_rss_mb']:.0f} MB "
              f"(x{big['peak_rss_mb'] / small['peak_rss_mb']:.2f})")


if __name__ == "__main__":
    main()
