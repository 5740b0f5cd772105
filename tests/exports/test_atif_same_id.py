"""``export --format atif --out DIR/`` writes one document per episode file: two files holding one episode id (a
copy of a run, an import done twice) get two documents, ``<id>.trajectory.json`` and ``<id>-2.trajectory.json`` in
the export's order, and the warning about the shared id says where each went (docs/EXPORT.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec import Recorder
from trajrec.recorder import wrapper


def _record(folder: Path, steps: int) -> Path:
    env = Recorder(gym.make("CartPole-v1"), folder)
    env.reset(seed=0)
    for _ in range(steps):
        env.step(1)
    env.close()
    (path,) = folder.glob("*.msgpack.zst")
    return path


def test_two_files_with_one_episode_id_get_two_documents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One episode id in two different recordings: the id's random part and its time stamp held fixed.
    monkeypatch.setattr(wrapper.secrets, "token_hex", lambda n=4: "deadbeef")
    monkeypatch.setattr(wrapper.time, "strftime", lambda fmt, *a: "20260101T000000")
    a = _record(tmp_path / "a", 3)
    b = _record(tmp_path / "b", 7)
    c = tmp_path / "c" / a.name  # and a plain copy of the first
    c.parent.mkdir()
    c.write_bytes(a.read_bytes())
    monkeypatch.undo()
    eid = "CartPole-v1-20260101T000000-deadbeef"
    assert a.name.startswith(eid) and b.name == a.name

    out = tmp_path / "atif"
    proc = subprocess.run([sys.executable, "-m", "trajrec", "export", str(tmp_path / "a"), str(tmp_path / "b"),
                           str(tmp_path / "c"), "--format", "atif", "--out", f"{out}/"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    docs = {p.name: json.loads(p.read_text()) for p in out.iterdir()}
    want = [f"{eid}.trajectory.json", f"{eid}-2.trajectory.json", f"{eid}-3.trajectory.json"]
    assert sorted(docs) == sorted(want)
    agent_steps = [sum(s["source"] == "agent" for s in docs[n]["steps"]) for n in want]
    assert agent_steps == [3, 7, 3]  # in the order given: a, b, c; none written over another
    assert "exported 3 episodes" in proc.stderr
    warn = [line for line in proc.stderr.splitlines() if "warning: episode" in line]
    assert len(warn) == 2, proc.stderr
    assert f"{a} (to {out / want[0]})" in warn[0] and f"{b} (to {out / want[1]})" in warn[0]
    assert f"{c} (to {out / want[2]})" in warn[1]
