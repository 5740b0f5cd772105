"""An export to a folder never replaces what is already there: every format refuses a non-empty folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from trajrec.cli import main

FORMATS = ["records", "chat", "trl-stepwise", "dpo", "kto", "atif", "parquet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("folders") / "run"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "2", "--out", str(out), "--json"]) == 0
    # A failing attempt at the first task, so dpo has a pair to write (a folder of no rows is not made).
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "1", "--skill", "0.0", "--out", str(out / "weak"),
                 "--json"]) == 0
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_non_empty_folder_is_refused_and_kept(fmt: str, run: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "README.md").write_text("# precious\n")
    (proj / "notes.txt").write_text("mine\n")
    capsys.readouterr()
    assert main(["export", str(run), "--format", fmt, "--out", f"{proj}/"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"--out {proj} is a folder that is not empty" in err and "name a new or empty folder" in err
    assert (proj / "README.md").read_text() == "# precious\n"
    assert sorted(p.name for p in proj.iterdir()) == ["README.md", "notes.txt"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_over_an_earlier_export_is_refused(fmt: str, run: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    first = tmp_path / "first"
    assert main(["export", str(run), "--format", "records", "--out", f"{first}/"]) == 0
    card = (first / "README.md").read_text()
    assert main(["export", str(run), "--format", fmt, "--out", f"{first}/"]) != 0
    assert (first / "README.md").read_text() == card


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_or_new_folder_is_written(fmt: str, run: Path, tmp_path: Path) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    empty = tmp_path / "empty"
    empty.mkdir()
    extra = ["--unlabeled", "neutral"] if fmt == "trl-stepwise" else []  # rows to write, so a folder is written
    assert main(["export", str(run), "--format", fmt, "--out", f"{empty}/", *extra]) == 0
    assert any(empty.iterdir())
    assert main(["export", str(run), "--format", fmt, "--out", f"{tmp_path / 'new'}/", *extra]) == 0
    assert any((tmp_path / "new").iterdir())
