"""A failed `trajrec import` leaves no empty --out folder behind (nor the parents it created); a folder that
existed before, or holds anything, stays."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from trajrec.cli import main


def test_a_malformed_file_leaves_no_folder(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.traj"
    bad.write_text("{ not json")
    out = tmp_path / "new" / "run"
    assert main(["import", "swe-agent", str(bad), "--out", str(out)]) == 1
    assert "bad.traj" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    # --keep-going with nothing imported: the same.
    assert main(["import", "swe-agent", str(bad), "--out", str(out), "--keep-going"]) == 1
    assert not (tmp_path / "new").exists()


def test_a_folder_that_existed_stays(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.traj"
    bad.write_text("{ not json")
    out = tmp_path / "run"
    out.mkdir()
    assert main(["import", "swe-agent", str(bad), "--out", str(out)]) == 1
    assert out.is_dir()


def test_a_missing_extra_leaves_no_folder(tmp_path: Path) -> None:
    out = tmp_path / "door"
    code = ("import sys; sys.modules['minari'] = None  # as if not installed\n"
            "from trajrec.cli import main\n"
            f"sys.exit(main(['import', 'minari', 'D4RL/door/human-v2', '--out', {str(out)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "pip install" in proc.stderr.strip().splitlines()[-1]
    assert not out.exists()
