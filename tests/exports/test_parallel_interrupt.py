"""Ctrl-C during `export --workers 2` (sent to the whole process group, as a terminal does) ends with one line,
`trajrec export: interrupted`: no traceback from the pool's workers or from their server while it imports."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trajrec.cli import main


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 10,000 small episode files (copies of a few recorded ones): an export that takes seconds (2-3 s on
    2 cores), long beside the delays below before the Ctrl-C (1,500 files took 0.4 s: it ended before the signal)."""
    base = tmp_path_factory.mktemp("sigint")
    seed_run = base / "seed"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "5", "--out", str(seed_run), "--json"]) == 0
    run = base / "run"
    run.mkdir()
    files = sorted(seed_run.glob("*.msgpack.zst"))
    for k in range(10_000):
        src = files[k % len(files)]
        shutil.copyfile(src, run / f"{k:05d}-{src.name}")
    return run


def _sigint_default() -> None:
    """In the child: Ctrl-C as a terminal's command gets it. A shell that runs the suite as a background job (`cmd &`
    without job control) starts it with SIGINT ignored, which every child inherits; Python then installs no
    KeyboardInterrupt handler and the export rightly runs on (as under `nohup`)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT are POSIX")
@pytest.mark.parametrize("fmt", ["records", "parquet"])
def test_ctrl_c_stops_workers_without_a_traceback(fmt: str, big_run: Path, tmp_path: Path) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    interrupted = 0
    for k, delay in enumerate((0.0, 0.1, 0.3)):
        out = tmp_path / f"o{k}" / ("x/" if fmt == "parquet" else "x.jsonl")
        proc = subprocess.Popen([sys.executable, "-m", "trajrec", "export", str(big_run), "--format", fmt, "-j", "2",
                                 "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, preexec_fn=_sigint_default)
        # From the moment the export made its temporary output (the command is running, the pool starting):
        # a Ctrl-C while Python itself starts is not the export's to handle.
        deadline = time.monotonic() + 60
        while proc.poll() is None and not (out.parent.is_dir() and any(out.parent.iterdir())):
            assert time.monotonic() < deadline
            time.sleep(0.005)
        time.sleep(delay)
        try:
            os.killpg(proc.pid, signal.SIGINT)  # the whole group, as Ctrl-C in a terminal
        except ProcessLookupError:
            pass  # already done
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, (delay, err)
        if proc.returncode == 130:
            interrupted += 1
            assert err.strip().splitlines()[-1] == "trajrec export: interrupted", err
            assert not out.exists()
    assert interrupted >= 2  # the signal came while it ran (the export takes seconds), not only after
