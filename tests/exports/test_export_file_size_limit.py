"""An export that cannot write its output (a full disk, a file-size limit: EFBIG) ends with one error line naming
the file, leaves no temporary file or folder behind and keeps the output already there (FINDINGS18 #3: a traceback,
as the abort's close flushed the buffer again and raised, leaving the temporary file; parquet's pyarrow OSError
came out raw). A real process under a real ``RLIMIT_FSIZE`` (Python ignores SIGXFSZ, so writes fail with EFBIG)."""

from __future__ import annotations

import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from trajrec.cli import main

LIMIT = 64 * 1024  # bytes: well under the run's export in every format


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("efbig") / "run"
    # ~2-3 MB of records or chat rows: past the writer's 1 MB buffer, so writes fail mid-export, not only at close.
    assert main(["record", "CartPole-v1", "--agent", "random", "--episodes", "300", "--out", str(out)]) == 0
    return out


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


@pytest.mark.parametrize("fmt,out_name", [("records", "rows.jsonl"), ("chat", "chat/"), ("parquet", "steps.parquet"),
                                          ("parquet", "shards/")])
def test_an_export_past_a_file_size_limit_fails_cleanly(run: Path, tmp_path: Path, fmt: str, out_name: str) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / out_name
    args = [sys.executable, "-m", "trajrec", "export", str(run), "--format", fmt, "--out", str(out)]
    if not out_name.endswith("/"):
        out.write_text("the previous export\n")
        args.append("--overwrite")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, preexec_fn=_limited)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(r"trajrec export: error: cannot (write|finish) .*File too large", lines[0])
    left = sorted(p.name for p in outdir.iterdir())
    if out_name.endswith("/"):
        assert left == []  # the temporary folder is gone, and no output folder was made
    else:
        assert left == [out.name] and out.read_text() == "the previous export\n"
