"""Labels whose episode file left the folder (``import --overwrite`` gives a re-imported source a new id,
``record --resume`` renames a stopped episode ``*.unfinished``) belong to no episode: the commands that did it say
how many and on which episodes, ``label ls`` says they exist and ``label ls --orphans`` lists them; nothing is
deleted (FINDINGS32 #6). Real imports, real recordings (the stopped one in a subprocess that exits mid-episode)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.recorder import SUFFIX, read_index

ATIF = Path(__file__).resolve().parents[1] / "data" / "atif" / "rfc-example.trajectory.json"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def only_episode(folder: Path) -> str:
    (path,) = folder.glob(f"*{SUFFIX}")
    return read_index(path)["header"]["episode_id"]


def test_import_overwrite_says_which_labels_it_orphaned_and_label_ls_lists_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r6"
    assert run(capsys, "import", "atif", str(ATIF), "--out", str(out))[0] == 0
    old = only_episode(out)
    code, _, err = run(capsys, "label", "add", str(out), "--episode", old, "--step", "0", "--value", "-1",
                       "--annotator", "ana", "--rationale", "hand label")
    assert code == 0, err
    code, _, err = run(capsys, "import", "atif", str(ATIF), "--out", str(out), "--overwrite")
    assert code == 0, err
    new = only_episode(out)
    assert new != old  # the same source, a new id: the hand label cannot re-attach
    assert (f"trajrec import: note: 1 label in {out} belongs to no episode file now (on 1 episode no file here "
            f"holds: {old}); it stays in {out / '.trajrec' / 'labels'}") in err
    assert f"`trajrec label ls {out} --orphans` lists them" in err

    code, stdout, err = run(capsys, "label", "ls", str(out), "--history")
    assert code == 0 and len(stdout.splitlines()) == 1  # the header: no episode of the folder has labels
    assert (f"trajrec label: note: 1 label in {out} belongs to no episode file there now (its file deleted, "
            f"replaced or renamed); `trajrec label ls {out} --orphans` lists them") in err
    code, stdout, err = run(capsys, "label", "ls", str(out), "--orphans", "--json")
    (row,) = map(json.loads, stdout.splitlines())
    assert (row["episode_id"], row["value"], row["rationale"]) == (old, -1, "hand label")
    code, stdout, err = run(capsys, "label", "ls", str(out), "--orphans")
    assert "hand label" in stdout and "1 label on 1 episode no episode file holds" in err
    assert run(capsys, "label", "ls", str(out), "--orphans", "--episode", new)[1].count("\n") == 1  # (header only)
    # An import that deletes nothing says nothing about labels.
    code, _, err = run(capsys, "import", "atif", str(ATIF), "--out", str(tmp_path / "other"))
    assert "label" not in err


STOPPED = """
import os, sys
import gymnasium as gym
import trajrec.envs
from trajrec import Recorder
rec = Recorder(gym.make("trajrec/MathCalc-v0"), sys.argv[1])
rec.agent = {"name": "scripted", "seed": 1, "skill": 0.6}  # the setup `trajrec record` gives (--resume checks it)
rec.reset(seed=1)
rec.step("calc 1+1")
print(rec.episode_path, flush=True)
os._exit(0)  # stopped mid-episode: the file is never closed
"""


def test_record_resume_says_which_labels_it_orphaned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rr"
    assert run(capsys, "record", "trajrec/MathCalc-v0", "--episodes", "1", "--out", str(out))[0] == 0
    path = subprocess.run([sys.executable, "-c", STOPPED, str(out)], capture_output=True, text=True, check=True,
                          timeout=120).stdout.strip()
    stopped = read_index(path)["header"]["episode_id"]
    code, _, err = run(capsys, "label", "add", str(out), "--episode", stopped, "--step", "0", "--value", "+1",
                       "--annotator", "ana")
    assert code == 0, err
    code, _, err = run(capsys, "record", "trajrec/MathCalc-v0", "--episodes", "2", "--out", str(out), "--resume")
    assert code == 0, err
    assert list(out.glob("*.unfinished"))
    assert (f"trajrec record: note: 1 label in {out} belongs to no episode file now (on 1 episode no file here "
            f"holds: {stopped})") in err
    code, stdout, _ = run(capsys, "label", "ls", str(out), "--orphans", "--json")
    assert [json.loads(r)["episode_id"] for r in stdout.splitlines()] == [stopped]
