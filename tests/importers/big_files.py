"""Large source files built by replicating real samples (for the memory tests and bench/import_memory.py).

Each builder writes its file as it goes, so building a 100 MB file does not hold 100 MB either.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
INSPECT_SOURCE = DATA / "inspect" / "log_message_deduplication.eval"
MINI_SOURCE = DATA / "mini-swe-agent" / "astropy__astropy-12907.traj.json.gz"

#: Source of ``peak_kb()`` for the child scripts that measure a fresh process's peak memory, in KiB.
PEAK_KB = """
import resource

def peak_kb():
    # VmHWM is this process image's own peak; ru_maxrss survives exec and so starts at the parent's size.
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""


def _inspect_parts() -> tuple[dict, dict]:
    with zipfile.ZipFile(INSPECT_SOURCE) as z:
        header = json.loads(z.read("header.json"))
        sample = json.loads(z.read(next(n for n in z.namelist() if n.startswith("samples/"))))
    return header, sample


def inspect_json(path: Path, target_bytes: int) -> int:
    """An Inspect .json log of at least ``target_bytes``: the real header, the real sample repeated under new ids.
    Returns the number of samples."""
    header, sample = _inspect_parts()
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        fh.write("{")
        for key in ("version", "status", "eval", "plan", "results", "stats"):
            if key in header:
                fh.write(f"{json.dumps(key)}: {json.dumps(header[key])}, ")
        fh.write('"samples": [')
        while fh.tell() < target_bytes:
            sample["id"] = f"s{n}"
            fh.write(("," if n else "") + json.dumps(sample))
            n += 1
        fh.write("]}")
    return n


def inspect_eval(path: Path, target_bytes: int) -> int:
    """An Inspect .eval archive whose samples add up to at least ``target_bytes`` (uncompressed)."""
    header, sample = _inspect_parts()
    n = total = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("header.json", json.dumps(header))
        while total < target_bytes:
            sample["id"] = f"s{n}"
            data = json.dumps(sample)
            z.writestr(f"samples/s{n}_epoch_1.json", data)
            total += len(data)
            n += 1
    return n


def mini_swe_agent(path: Path, target_bytes: int) -> int:
    """A mini-swe-agent-1.1 file of at least ``target_bytes``: the real 408 KB run with its turns repeated.
    Returns the number of assistant turns."""
    with gzip.open(MINI_SOURCE, "rt", encoding="utf-8") as fh:
        src = json.load(fh)
    msgs = src["messages"]
    head, body, tail = msgs[:2], msgs[2:-1], msgs[-1:]
    turns = 0
    with path.open("w", encoding="utf-8") as fh:
        fh.write('{"info": ' + json.dumps(src["info"]) + ', "messages": [')
        fh.write(",".join(json.dumps(m) for m in head))
        while fh.tell() < target_bytes:
            for m in body:
                fh.write("," + json.dumps(m))
                turns += m["role"] == "assistant"
        fh.write("," + ",".join(json.dumps(m) for m in tail))
        fh.write('], "trajectory_format": "mini-swe-agent-1.1"}')
    return turns
