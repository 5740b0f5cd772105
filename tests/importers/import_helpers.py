"""Paths of the sample files under tests/data and a helper that imports one into a fresh run folder.
(A module with a unique name, not conftest.py: test folders share one import namespace.)"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from trajrec.importers import ImportReport, import_paths
from trajrec.recorder import Episode, open_episode

DATA = Path(__file__).resolve().parents[1] / "data"
SWE = DATA / "swe-agent" / "6e44b9__sweagenttestrepo-1c2844.traj"
MINI_LIST = DATA / "mini-swe-agent" / "local.traj.json"
MINI_V1 = DATA / "mini-swe-agent" / "test_output.traj.json"
MINI_BIG_GZ = DATA / "mini-swe-agent" / "astropy__astropy-12907.traj.json.gz"
INSPECT_TOOLS_EVAL = DATA / "inspect" / "log_message_deduplication.eval"
INSPECT_EVAL = DATA / "inspect" / "log_read_sample.eval"
INSPECT_JSON = DATA / "inspect" / "log_read_sample.json"
INSPECT_ERRORS = DATA / "inspect" / "log_tool_call_error.json"
ATIF = DATA / "atif" / "rfc-example.trajectory.json"
ATIF_HARBOR_GZ = DATA / "atif" / "astropy__astropy-12907.harbor.trajectory.json.gz"
OH_BASIC = DATA / "openhands" / "basic.json"
OH_CHAT = DATA / "openhands" / "basic_interactions.json"
OH_RENAME = DATA / "openhands" / "wrong_initial_state.json"


def mini_big(tmp: Path) -> Path:
    """The 408 KB mini-swe-agent-1.1 file, unpacked (kept gzipped in the repository)."""
    out = tmp / "astropy__astropy-12907.traj.json"
    if not out.exists():
        with gzip.open(MINI_BIG_GZ, "rb") as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    return out


def atif_harbor(tmp: Path) -> Path:
    """Harbor's ATIF of the same real mini-swe-agent run, unpacked."""
    out = tmp / "trajectory.json"
    tmp.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        with gzip.open(ATIF_HARBOR_GZ, "rb") as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    return out


def import_one(fmt: str, path: Path, out: Path) -> tuple[ImportReport, list[Episode]]:
    report = import_paths(fmt, [path], out)
    eps = [open_episode(out / name) for f in report.files for name in f.episodes]
    return report, eps
