"""SIGTERM to `trajrec record` (a real subprocess, a real signal to the main process only, as `kill PID` or a job
scheduler sends it): it stops as Ctrl-C does. The episodes being recorded close as `stopped` with their index, the
pool's workers are terminated and joined (none is left orphaned), exit code 143, and the last line says how many
episodes were saved complete and the exact command that records the rest."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trajrec.recorder import SUFFIX, read_index

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM and process groups are POSIX")

ENV = "trajrec/CodeRepair-v0"  # episodes take a while (each check runs tests): there is time to stop one


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by a parent that is gone) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


@pytest.mark.parametrize("workers, group", [("1", False), ("2", False), ("2", True)])
def test_sigterm_closes_the_episodes_and_stops_the_workers(tmp_path, workers, group):
    out = tmp_path / "run"
    argv = ["record", ENV, "--episodes", "200", "--out", str(out), "--workers", workers]
    proc = subprocess.Popen([sys.executable, "-m", "trajrec", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120  # a guard against a hang, not a measurement
        while len(list(out.glob(f"*{SUFFIX}"))) < 3:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no episode was written"
            time.sleep(0.05)
        workers_pids = _children(proc.pid) if workers != "1" else []
        assert len(workers_pids) >= (2 if workers != "1" else 0)
        if group:  # `kill -TERM -PGID`: every process at once, workers included
            os.killpg(proc.pid, signal.SIGTERM)
        else:  # the main process only (`kill PID`, a scheduler): the workers hear nothing from outside
            os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("trajrec record: stopped by SIGTERM; "), err
    gone = time.monotonic() + 10
    while any(_alive(p) for p in workers_pids) and time.monotonic() < gone:
        time.sleep(0.05)
    assert not [p for p in workers_pids if _alive(p)], "a worker outlived the command"

    files = sorted(f for f in out.glob(f"*{SUFFIX}") if f.stat().st_size > 0)
    indexes = [read_index(f) for f in files]  # every file was closed: it has its index
    assert all(i["complete"] for i in indexes)
    outcomes = [i["summary"]["outcome"] for i in indexes]
    # An episode being recorded is closed as stopped; there may be none, every worker between two episodes.
    assert "error" not in outcomes, outcomes
    complete = sum(1 for o in outcomes if o in ("passed", "failed"))
    m = re.search(r"; (\d+) of 200 episodes saved complete in (\S+?)[,;]", last)
    assert m and int(m.group(1)) == complete and m.group(2) == str(out), last
    cmd = last.split("record the rest with: ", 1)[1]
    assert cmd == f"trajrec record {ENV} --episodes 200 --out {out} --workers {workers} --resume"
    assert not (out / ".trajrec-record.lock").exists()
