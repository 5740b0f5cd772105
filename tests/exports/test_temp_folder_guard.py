"""A folder export (atif, parquet) writes into a new temporary folder beside ``--out`` and renames it when done;
something planted at the temporary name (a symbolic link to elsewhere) is refused, and nothing is written through
it."""

from __future__ import annotations

import os

import pytest

from trajrec.cli import main


@pytest.mark.parametrize("fmt", ["atif", "parquet"])
def test_a_link_at_the_temporary_folder_name_is_refused(tmp_path, capsys, fmt: str) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow", reason="the parquet export needs the [parquet] extra (pyarrow)")
    run = tmp_path / "run"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "1", "--out", str(run)]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / f".ds.tmp-{os.getpid()}").symlink_to(elsewhere)
    capsys.readouterr()
    assert main(["export", str(run), "--format", fmt, "--out", f"{tmp_path / 'ds'}/"]) != 0
    err = capsys.readouterr().err
    assert "refusing to write the temporary export folder" in err and "a symbolic link is already there" in err
    assert not any(elsewhere.iterdir()) and not (tmp_path / "ds").exists()
