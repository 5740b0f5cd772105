"""What the reading commands load: ``export``, ``ls``, ``show`` and ``--help`` run in a fresh interpreter without
gymnasium, textual, deepdiff, pandas or OpenSSL's hashes (memory and start-up time every export pays: gymnasium
alone was ~11 MB of the parquet export's peak), and without numpy when the episodes hold no arrays (~60 ms of a
command's start), while the public names still import."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Never needed to read, list, show or export episodes.
UNUSED = ("gymnasium", "textual", "rich", "deepdiff", "pandas")


def _loaded_after(argv: list[str], cwd: Path) -> dict:
    code = (
        "import sys, json\n"
        "import trajrec.cli\n"
        f"try:\n    rc = trajrec.cli.main({argv!r})\nexcept SystemExit as exc:\n    rc = exc.code\n"
        "tops = sorted({m.split('.')[0] for m in sys.modules})\n"
        "sys.__stdout__.write('\\n' + json.dumps({'rc': rc, 'tops': tops}) + '\\n')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def run(tmp_path: Path) -> Path:
    dst = tmp_path / "runs"
    shutil.copytree(ROOT / "sample_runs", dst)
    return dst


@pytest.mark.parametrize("fmt", ["records", "chat", "trl-stepwise", "parquet"])
def test_export_loads_no_env_tui_or_diff_library(run: Path, tmp_path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / ("out.parquet" if fmt == "parquet" else "out.jsonl")
    got = _loaded_after(["export", str(run), "--format", fmt, "--out", str(out), "--unlabeled", "false"], tmp_path)
    assert got["rc"] == 0 and out.stat().st_size > 0
    assert [m for m in UNUSED if m in got["tops"]] == []
    if fmt != "parquet":  # the sample runs hold text: nothing to decode with numpy
        assert "_hashlib" not in got["tops"] and "numpy" not in got["tops"]


def test_export_of_arrays_loads_numpy_and_writes_them(tmp_path: Path) -> None:
    """The codec imports numpy when the first array comes: an export of array observations still writes them."""
    import gymnasium as gym

    from trajrec import Recorder, open_episode

    run = tmp_path / "arrays"
    env = Recorder(gym.make("CartPole-v1"), run)
    env.reset(seed=1)
    env.step(0)
    env.close()
    out = tmp_path / "out.jsonl"
    got = _loaded_after(["export", str(run), "--format", "records", "--out", str(out), "--unlabeled", "false"],
                        tmp_path)
    assert got["rc"] == 0 and "numpy" in got["tops"]
    step = json.loads(out.read_text().splitlines()[0])["steps"][0]
    with open_episode(next(run.glob("*.msgpack.zst"))) as ep:
        want = ep.record(0)["observation"]
    assert type(want).__name__ == "ndarray" and json.loads(step["observation"]) == want.tolist(), (step, want)


def test_ls_show_and_help_load_no_env_tui_or_diff_library(run: Path, tmp_path: Path) -> None:
    episode = sorted(run.rglob("*.msgpack.zst"))[0]
    for argv in (["ls", str(run)], ["show", str(episode), "--step", "1"], ["export", "--help"], ["--version"]):
        got = _loaded_after(argv, tmp_path)
        assert got["rc"] == 0, argv
        assert [m for m in (*UNUSED, "_hashlib", "pyarrow", "numpy") if m in got["tops"]] == [], argv


def test_public_names_still_import_lazily() -> None:
    code = ("import sys\n"
            "from trajrec import Recorder, open_episode, open_run, TrajrecError\n"
            "from trajrec.recorder import fsck, VectorRecorder, as_gym_env\n"
            "import trajrec.recorder.fsck\n"
            "from trajrec.recorder import fsck as again\n"
            "import gymnasium\n"
            "assert callable(fsck) and again is fsck and issubclass(Recorder, gymnasium.Wrapper), (fsck, again)\n"
            "assert Recorder.__module__ == 'trajrec.recorder.wrapper'\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_export_starts_one_blas_thread_unless_the_user_chose(run: Path, tmp_path: Path) -> None:
    """`trajrec export` has numpy's OpenBLAS start one thread (it does no linear algebra); a number the user set
    stays; the library's ``export()`` leaves the environment alone."""
    import os

    out = tmp_path / "out.jsonl"
    code = ("import os, sys\n"
            "import trajrec.cli\n"
            "from trajrec.replay.exports import export\n"
            f"export([{str(run)!r}], 'records', {str(tmp_path / 'lib.jsonl')!r}, overwrite=True)\n"
            "lib = os.environ.get('OPENBLAS_NUM_THREADS')\n"
            f"rc = trajrec.cli.main(['export', {str(run)!r}, '--format', 'records', '--out', {str(out)!r}, '--overwrite'])\n"
            "sys.__stdout__.write(f'\\n{rc} {lib} {os.environ.get(\"OPENBLAS_NUM_THREADS\")}\\n')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                            "GOTO_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "0 None 1"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**env, "OPENBLAS_NUM_THREADS": "3"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "0 3 3"
