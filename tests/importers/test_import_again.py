"""Importing into a folder that holds episodes: refused like ``trajrec record`` unless --resume (sources already
imported, by SHA-256, are skipped) or --overwrite (episode files deleted first)."""

from __future__ import annotations

from pathlib import Path

import pytest

from import_helpers import MINI_V1, SWE

from trajrec.cli import main
from trajrec.importers import import_paths
from trajrec.recorder.errors import TrajrecUsageError


def _episodes(out: Path) -> list[Path]:
    return sorted(out.glob("*.msgpack.zst"))


def test_second_import_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "swe"
    assert main(["import", "auto", str(SWE), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["import", "auto", str(SWE), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already holds 1 episode file;" in err
    assert "--resume" in err and "--overwrite" in err
    assert len(_episodes(out)) == 1


def test_resume_skips_sources_already_imported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["import", "auto", str(SWE), "--out", str(out)]) == 0
    first = _episodes(out)
    capsys.readouterr()
    assert main(["import", "auto", str(SWE), str(MINI_V1), "--out", str(out), "--resume"]) == 0
    cap = capsys.readouterr()
    assert f"{SWE}: skipped, already imported (same SHA-256 as {first[0].name})" in cap.out
    assert f"{MINI_V1} (auto: mini-swe-agent" in cap.out
    assert "imported 1 episode (10 steps)" in cap.err and "skipped 1 file already imported" in cap.err
    assert len(_episodes(out)) == 2


def test_resume_matches_content_not_name(tmp_path: Path) -> None:
    out = tmp_path / "run"
    import_paths("swe-agent", [SWE], out)
    copy = tmp_path / "renamed.traj"
    copy.write_bytes(SWE.read_bytes())
    report = import_paths("swe-agent", [copy], out, resume=True)
    assert report.files[0].skipped and report.episodes == 0


def test_same_source_twice_in_one_command_is_imported_once(tmp_path: Path) -> None:
    report = import_paths("swe-agent", [SWE, SWE], tmp_path / "run")
    assert report.episodes == 1 and report.files[1].skipped
    assert len(_episodes(tmp_path / "run")) == 1


def test_overwrite_replaces_the_episodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    import_paths("swe-agent", [SWE], out)
    old = _episodes(out)
    (out / "labels.jsonl").write_text("")  # not an episode file: stays
    assert main(["import", "auto", str(SWE), "--out", str(out), "--overwrite"]) == 0
    assert "--overwrite: deleted 1 episode file" in capsys.readouterr().err
    new = _episodes(out)
    assert len(new) == 1 and new != old and (out / "labels.jsonl").exists()


def test_resume_and_overwrite_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(TrajrecUsageError):
        import_paths("swe-agent", [SWE], tmp_path / "run", resume=True, overwrite=True)
