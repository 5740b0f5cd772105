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


# -- where the tracebacks came from (each test fails without its fix) ------------------------------------------------


def _config() -> str:
    import json

    from trajrec.replay.exports import ExportOptions
    from trajrec.replay.exports.parallel import _options_dict

    return json.dumps({"format": "records", "options": _options_dict(ExportOptions()), "where": [],
                       "min_agreement": None})


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a thread is POSIX")
def test_ctrl_c_while_the_pool_starts_still_stops_its_workers() -> None:
    """A Ctrl-C while the exporting thread waits for the pool being started (a small export done by this process
    before its workers were up) interrupts that wait. Python (before 3.13) then marks the starting thread finished
    although it runs on, so the stop found no pool and returned; the thread went on starting workers as the process
    exited, and they printed FileNotFoundError tracebacks (their semaphores were gone). The stop must find the pool
    and leave none of its workers running."""
    import threading

    from trajrec.replay.exports.parallel import _PoolStarter

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # a suite run in the background ignores it
    main_thread = threading.main_thread().ident
    assert main_thread is not None
    try:
        starter = _PoolStarter(2, _config())
        # A real SIGINT to this (the main) thread, as a terminal's Ctrl-C: it interrupts the blocking wait.
        timer = threading.Timer(0.02, signal.pthread_kill, (main_thread, signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                starter.pool()
                time.sleep(5)  # the pool came up before the signal (a fast machine): the signal lands here
        finally:
            timer.cancel()
        starter.stop(failed=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    pool = starter._pool
    assert pool is not None, "the stop returned before the pool it stops existed"
    procs = list(pool._pool)
    assert procs
    deadline = time.monotonic() + 10
    while any(p.exitcode is None for p in procs) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert all(p.exitcode is not None for p in procs), [(p.pid, p.exitcode) for p in procs]


def test_a_stopped_pool_starts_no_worker_in_place_of_a_killed_one() -> None:
    """multiprocessing.Pool replaces a worker that exits within milliseconds: a worker started after the stop's
    kill read its start-up data once this process had removed the pool's semaphores, and printed a traceback.
    Told to stop replacing first, the pool starts none."""
    from trajrec.replay.exports.parallel import _PoolStarter, _stop_replacing

    starter = _PoolStarter(2, _config())
    pool = starter.pool()
    try:
        assert pool.apply_async(os.getpid).get(timeout=60)
        first = {p.pid for p in pool._pool}
        _stop_replacing(pool)
        victim = pool._pool[0]
        victim.kill()
        victim.join(timeout=10)
        time.sleep(0.5)  # a replacement comes within milliseconds of the exit
        assert {p.pid for p in pool._pool} <= first
    finally:
        starter.stop(failed=True)


# -- the loop: Ctrl-C at random moments of real exports ----------------------------------------------------------------


@pytest.fixture(scope="module")
def few_hundred(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("sigint-loop") / "run"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "300", "--out", str(run), "--json"]) == 0
    return run


@pytest.mark.heavy
@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT are POSIX")
@pytest.mark.parametrize("fmt", ["records", "parquet"])
def test_ctrl_c_at_random_moments_never_prints_a_traceback(fmt: str, few_hundred: Path, tmp_path: Path) -> None:
    """40 exports of 300 episodes with `-j 2`, each sent Ctrl-C (to its process group) at a random moment of its
    ~0.5 s, from when its temporary output exists (the command is running; a Ctrl-C while Python itself starts
    up is Python's): no traceback from any process, and an interrupted export exits 130 with the one line and
    leaves nothing. Before the fixes about 3 in 50 printed a worker's traceback (heavy: ~40 s a format)."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    import random

    rng = random.Random(1234)
    interrupted = 0
    for k in range(40):
        out_dir = tmp_path / f"o{k}"
        out_dir.mkdir()
        out = out_dir / ("x/" if fmt == "parquet" else "x.jsonl")
        proc = subprocess.Popen([sys.executable, "-m", "trajrec", "export", str(few_hundred), "--format", fmt, "-j",
                                 "2", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, preexec_fn=_sigint_default)
        deadline = time.monotonic() + 60
        while proc.poll() is None and not any(out_dir.iterdir()):
            assert time.monotonic() < deadline
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.4))
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        _, err = proc.communicate(timeout=120)  # until every process holding stderr (late workers too) is gone
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, (k, err)
        # Exit 130, or killed by SIGINT (-2), which a shell shows as the same 130: about 1 run in 100 ends so after
        # its "interrupted" line (not understood yet; no traceback, nothing left).
        if proc.returncode in (130, -2):
            interrupted += 1
            lines = err.strip().splitlines()
            # Nothing, or (a Ctrl-C once the output was in place under its name) the whole output: never a part.
            left = list(out_dir.iterdir())
            if left:
                assert _whole(out, fmt), (k, left)
                assert lines[-1] == "trajrec export: interrupted", (k, err)  # after the report, if it came first
            else:
                assert lines == ["trajrec export: interrupted"], (k, err)
        else:
            assert proc.returncode == 0, (k, proc.returncode, err)
            assert _whole(out, fmt), k
    assert interrupted >= 20


def _whole(out: Path, fmt: str) -> bool:
    """Whether ``out`` holds the whole export of the 300 episodes (1,373 steps): no temporary name, and for a
    folder its dataset card."""
    if fmt == "records":
        return out.is_file() and len(out.read_text().splitlines()) == 300
    import pyarrow.parquet as pq

    parts = sorted(out.glob("*.parquet"))
    return (out / "README.md").is_file() and bool(parts) and sum(pq.read_metadata(p).num_rows for p in parts) == 1373


def test_an_interrupted_command_leaves_out_the_unclosed_file_warning(capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C as a file is opened (open() returned, its result not yet stored) drops the file unclosed: its
    ResourceWarning printed a second line under "interrupted" (seen in the loop above). Other warnings stay."""
    import warnings

    from trajrec.commands.label import warnings_to_stderr

    with pytest.raises(KeyboardInterrupt), warnings_to_stderr("export"):
        warnings.warn("a torn labels line", UserWarning, stacklevel=1)
        warnings.warn("unclosed file <_io.BufferedReader name='e.msgpack.zst'>", ResourceWarning, stacklevel=1)
        raise KeyboardInterrupt
    assert capsys.readouterr().err == "trajrec export: warning: a torn labels line\n"
