"""A folder exported again loads the new rows with `datasets.load_dataset(folder)`: the card carries a fingerprint of
the data files, which `datasets` keys its cache on (it does not look at the data files when a card names them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from trajrec.cli import main


@pytest.mark.parametrize("fmt", ["chat", "parquet"])
def test_a_re_exported_folder_loads_its_new_rows(fmt: str, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    small, big = tmp_path / "small", tmp_path / "big"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "2", "--out", str(small), "--json"]) == 0
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "5", "--out", str(big), "--json"]) == 0
    out, cache = tmp_path / "out", str(tmp_path / "hf")
    counts = []
    for run in (small, big, small):
        shutil.rmtree(out, ignore_errors=True)  # the usual loop: remove the folder, export again, load
        assert main(["export", str(run), "--format", fmt, "--out", f"{out}/"]) == 0
        counts.append(datasets.load_dataset(str(out), split="train", cache_dir=cache).num_rows)
    if fmt == "chat":
        assert counts == [2, 5, 2]
    else:
        assert counts[0] == counts[2] < counts[1]
    assert "data fingerprint " in (out / "README.md").read_text()
