"""An export to a folder that has no row to write (a filter that matched nothing, every episode left out, only
zero-step episodes) makes no folder: `datasets.load_dataset(folder)` cannot load a dataset of no rows (it failed
deep inside with StopIteration or ArrowInvalid on the folder trajrec wrote), so the folder is not there to load,
and the command says so. ``--out FILE`` keeps writing its (empty) file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from trajrec import Recorder
from trajrec.cli import main


class _Env:
    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[str, dict[str, Any]]:
        return "fix the bug", {}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        return "ok", 1.0, True, False, {"checks": [{"target": "episode", "judge": "tests@1", "value": True}]}


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    """``zero``: one episode of 0 steps (reset, then closed); ``one``: one judged episode of one step."""
    env = Recorder(_Env(), tmp_path / "zero")
    env.reset(seed=0)
    env.close()
    env = Recorder(_Env(), tmp_path / "one")
    env.reset(seed=0)
    env.step("submit")
    env.close()
    return {"zero": tmp_path / "zero", "one": tmp_path / "one"}


CASES = [
    ("zero", "kto", []), ("zero", "chat", []), ("zero", "trl-stepwise", ["--unlabeled", "neutral"]),
    ("zero", "dpo", []), ("zero", "parquet", []), ("zero", "parquet", ["--partition-by", "env"]),
    ("one", "chat", ["--where", "failed"]), ("one", "records", ["--where", "steps>5"]),
    ("one", "parquet", ["--where", "failed"]),
]


@pytest.mark.parametrize(("run", "fmt", "extra"), CASES, ids=[f"{r}-{f}{'-' + e[0] if e else ''}" for r, f, e in CASES])
def test_a_folder_export_of_no_rows_makes_no_folder(runs: dict[str, Path], tmp_path: Path, run: str, fmt: str,
                                                    extra: list[str], capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out" / "ds"
    assert main(["export", str(runs[run]), "--format", fmt, "--out", f"{out}/", *extra]) == 0
    err = capsys.readouterr().err
    assert not out.exists()
    assert f"no dataset folder written at {out}/" in err and "load_dataset" in err
    assert "nothing written" in err or "no row written" in err
    assert main(["export", str(runs[run]), "--format", fmt, "--out", f"{out}/", *extra, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 0 and report["files"] == []


def test_an_empty_folder_given_is_left_as_it_was(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    assert main(["export", str(runs["zero"]), "--format", "chat", "--out", str(out)]) == 0
    assert out.is_dir() and list(out.iterdir()) == []


@pytest.mark.parametrize("fmt", ["chat", "parquet"])
def test_a_folder_export_with_rows_is_written_and_loads(runs: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "ds"
    assert main(["export", str(runs["one"]), "--format", fmt, "--out", f"{out}/"]) == 0
    assert (out / "README.md").exists()
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))
    assert loaded["train"].num_rows == 1


@pytest.mark.parametrize(("fmt", "name"), [("chat", "x.jsonl"), ("parquet", "x.parquet")])
def test_a_file_export_of_no_rows_still_writes_the_file(runs: dict[str, Path], tmp_path: Path, fmt: str,
                                                        name: str) -> None:
    out = tmp_path / name
    assert main(["export", str(runs["zero"]), "--format", fmt, "--out", str(out)]) == 0
    assert out.is_file()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        assert pq.read_table(out).num_rows == 0 and "check_passed" in pq.read_table(out).column_names
    else:
        assert out.read_text() == ""
