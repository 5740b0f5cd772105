"""An export to a folder that is interrupted (Ctrl-C) leaves nothing under the requested name: no half set of
ATIF documents that reads as a whole dataset, no empty folder; a finished one is complete under that name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.replay.exports import export


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("interrupt") / "run"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "4", "--out", str(out), "--json"]) == 0
    return out


class StopAfter:
    """A progress bar that raises KeyboardInterrupt (as Ctrl-C does) once ``n`` episodes were exported."""

    total = None

    def __init__(self, n: int) -> None:
        self.left = n

    def advance(self, n: int = 1) -> None:
        self.left -= 1
        if self.left <= 0:
            raise KeyboardInterrupt


@pytest.mark.parametrize("fmt", ["atif", "chat", "records", "parquet"])
@pytest.mark.parametrize("existing", [False, True])
def test_an_interrupted_folder_export_leaves_nothing(fmt: str, existing: bool, run: Path, tmp_path: Path) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / "o" / "d"
    if existing:
        out.mkdir(parents=True)  # an empty folder the user made: it stays, empty
    with pytest.raises(KeyboardInterrupt):
        export([run], fmt, f"{out}/", progress=StopAfter(2))
    if existing:
        assert out.is_dir() and list(out.iterdir()) == []
    else:
        assert not out.exists()
    assert [p.name for p in (tmp_path / "o").iterdir()] == (["d"] if existing else [])  # no temporary folder


def test_a_finished_atif_folder_export_is_under_the_name_given(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "atif"
    report = export([run], "atif", f"{out}/")
    docs = sorted(out.glob("*.trajectory.json"))
    assert len(docs) == report.written == 4
    assert sorted(report.placed.values()) == sorted(str(d) for d in docs)
    assert all(json.loads(d.read_text())["schema_version"].startswith("ATIF") for d in docs)
    assert [p.name for p in tmp_path.iterdir()] == ["atif"]
