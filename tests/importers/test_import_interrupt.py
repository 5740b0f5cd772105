"""Ctrl-C during `trajrec import`: a real subprocess gets SIGINT; the last line says how many episodes were
imported and the exact command that imports the rest (`--resume`), and that command completes the import."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trajrec.recorder import SUFFIX

DATA = Path(__file__).resolve().parents[1] / "data" / "mini-swe-agent" / "test_output.traj.json"


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a suite run as a background job starts with SIGINT ignored


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT are POSIX")
def test_ctrl_c_says_what_was_imported_and_resume_imports_the_rest(tmp_path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    doc = json.loads(DATA.read_text())
    n = 400
    for k in range(n):  # distinct files (--resume tells them apart by their SHA-256)
        doc.setdefault("info", {})["copy"] = k
        (src / f"{k:04d}.traj.json").write_text(json.dumps(doc))
    out = tmp_path / "out"
    files = [str(p) for p in sorted(src.iterdir())]
    cmd = [sys.executable, "-m", "trajrec", "import", "mini-swe-agent", *files, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_sigint_default)
    deadline = time.monotonic() + 120  # a guard against a hang, not a measurement
    while not (out.is_dir() and len(list(out.glob(f"*{SUFFIX}"))) >= 3):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the import finished before the interrupt arrived")
    assert proc.returncode == 130 and "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    kept = len(list(out.glob(f"*{SUFFIX}")))
    assert line.startswith(f"trajrec import: interrupted; {kept} episode"), (kept, sorted(p.name for p in out.iterdir()), line[:120])
    rest = line.split("import the rest with: ", 1)[1]
    assert shlex.split(rest) == ["trajrec", "import", "mini-swe-agent", *files, "--out", str(out), "--resume"]
    done = subprocess.run([sys.executable, "-m", "trajrec", *shlex.split(rest)[1:]], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(list(out.glob(f"*{SUFFIX}"))) == n


def test_ctrl_c_just_after_an_episode_is_renamed_leaves_no_part_of_its_source(tmp_path, monkeypatch) -> None:
    # Ctrl-C landing between the rename of a finished episode file and the import's bookkeeping: the file was
    # left in the folder, uncounted, and --resume (which skips a source any episode records) then skipped the
    # rest of that source's episodes. Now the source's files all go, and the count is what the folder holds.
    import copy

    from trajrec.replay.importers import base, import_paths

    inspect_log = Path(__file__).resolve().parents[1] / "data" / "inspect" / "log_read_sample.json"
    doc = json.loads(inspect_log.read_text())
    sample = doc["samples"][0]
    doc["samples"] = [dict(copy.deepcopy(sample), id=k) for k in (1, 2, 3)]  # one source, three episodes
    single, multi = tmp_path / "single.json", tmp_path / "multi.json"
    single.write_text(inspect_log.read_text())
    multi.write_text(json.dumps(doc))
    out = tmp_path / "out"
    real, renames = os.replace, []

    def replace_then_interrupt(src: object, dst: object) -> None:
        real(src, dst)
        renames.append(dst)
        if len(renames) == 3:  # the single source's episode, then the multi source's first two
            raise KeyboardInterrupt

    monkeypatch.setattr(base.os, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt) as caught:
        import_paths("inspect", [single, multi], out)
    kept = sorted(out.glob(f"*{SUFFIX}"))
    assert len(renames) == 3 and len(kept) == 1 and caught.value.imported == 1  # type: ignore[attr-defined]
    monkeypatch.setattr(base.os, "replace", real)
    report = import_paths("inspect", [single, multi], out, resume=True)
    assert report.episodes == 3 and len(list(out.glob(f"*{SUFFIX}"))) == 4


def test_ctrl_c_as_an_episode_file_is_created_leaves_no_temporary_file(tmp_path, monkeypatch) -> None:
    from trajrec.replay.importers import base, import_paths

    real = base.EpisodeWriter

    def created_then_interrupted(*args: object, **kwargs: object) -> object:
        real(*args, **kwargs)  # the temporary file exists now
        raise KeyboardInterrupt

    monkeypatch.setattr(base, "EpisodeWriter", created_then_interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        import_paths("mini-swe-agent", [DATA], out)
    assert not out.exists() or sorted(p.name for p in out.iterdir()) == []  # (hidden .importing files too)
