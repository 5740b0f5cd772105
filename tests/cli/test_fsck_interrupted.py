"""Ctrl-C during ``fsck --repair``: the files already repaired (rewritten, originals kept as FILE.orig) are listed
as at the end of a whole run, with a line saying how far it got, and the exit status is 130."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym

from trajrec.recorder import Recorder

FILES = 600


def test_an_interrupted_repair_lists_what_it_rewrote(tmp_path: Path) -> None:
    import trajrec.envs  # noqa: F401 - registers the ids
    from trajrec.envs.agents import make_agent
    from trajrec.envs.runner import run_episode

    env = Recorder(gym.make("trajrec/Shell-v0"), tmp_path / "one")
    run_episode(env, make_agent("trajrec/Shell-v0", seed=0), seed=0)
    env.close()
    (first,) = (tmp_path / "one").glob("*.msgpack.zst")
    rep = tmp_path / "rep"
    rep.mkdir()
    for i in range(FILES):  # closed files with bytes appended after their index: --repair rewrites each
        shutil.copyfile(first, rep / f"g{i:04d}.msgpack.zst")
        with open(rep / f"g{i:04d}.msgpack.zst", "ab") as fh:
            fh.write(b"garbagegarbage")
    # SIGINT at its default in the child: a suite run as a background job (no job control) starts with it ignored,
    # which the child would inherit and rightly keep (as under nohup).
    proc = subprocess.Popen([sys.executable, "-m", "trajrec", "fsck", str(rep), "--repair"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        # Two originals kept: the first file's repair is over (the second may be under way when the signal lands).
        while len(list(rep.glob("*.orig"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    repaired = [line.split()[1] for line in out.splitlines() if line.startswith("REPAIRED ")]
    origs = sorted(rep.glob("*.orig"))
    assert repaired and all(Path(p + ".orig").exists() for p in repaired)
    assert len(repaired) <= len(origs) <= len(repaired) + 1  # at most the file being repaired is not listed
    assert len(repaired) < FILES, "fsck finished before the interrupt: use more files"
    assert out.splitlines()[-1].endswith(f"; interrupted after {len(repaired)} of {FILES} files")
    verb = "was" if len(repaired) == 1 else "were"
    assert f"trajrec fsck: interrupted after {len(repaired)} of {FILES} files; {len(repaired)} of them {verb} " \
           "repaired or removed (listed above, originals kept as FILE.orig)" in err
