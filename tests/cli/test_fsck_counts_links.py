"""`trajrec fsck` counts each file once; skipped symbolic links are noted by fsck, ls and open_run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.recorder import SUFFIX
from trajrec.replay.run import open_run


def _record(out: Path) -> Path:
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "1", "--out", str(out), "--json"]) == 0
    return next(out.glob(f"*{SUFFIX}"))


def test_repair_counts_each_file_in_one_bucket(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "h"
    _record(folder)
    (folder / f"empty{SUFFIX}").write_bytes(b"")
    for name in ("junk1", "junk2"):
        (folder / f"{name}{SUFFIX}").write_bytes(b"garbage, not an episode" * 5)
    capsys.readouterr()
    assert main(["fsck", str(folder), "--repair"]) == 1  # the garbage stays a problem
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "4 files, 1 ok, 2 with problems, 1 empty removed"
    assert not (folder / f"empty{SUFFIX}").exists()
    assert main(["fsck", str(folder)]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "3 files, 1 ok, 2 with problems"


def test_skipped_symbolic_links_are_noted(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    _record(run)
    other = tmp_path / "other"
    _record(other)
    os.symlink(other, run / "linked")
    os.symlink(tmp_path / f"gone{SUFFIX}", run / f"dangling{SUFFIX}")
    capsys.readouterr()
    assert main(["fsck", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"SKIPPED  {run / 'linked'}: a symbolic link to the folder" in out
    assert f"SKIPPED  {run / f'dangling{SUFFIX}'}: a symbolic link to " in out and "does not exist" in out
    assert out.splitlines()[-1] == "1 file, 1 ok, 0 with problems; 2 symbolic links skipped (above)"

    for rescan in (False, True):  # the catalog walk and the plain one both say so
        r = open_run(run)
        if rescan:
            from trajrec.replay.library import scan
            problems = [p for b in scan([run], use_catalog=False) for p in b.problems]
        else:
            assert len(r) == 1
            problems = r.problems
        assert any(f"{run / 'linked'}: a symbolic link to the folder" in p for p in problems), problems
        assert any(f"dangling{SUFFIX}" in p and "does not exist" in p for p in problems), problems
    assert main(["ls", str(run)]) == 0
    err = capsys.readouterr().err
    assert f"trajrec ls: skipped {run / 'linked'}" in err and f"trajrec ls: skipped {run / f'dangling{SUFFIX}'}" in err
