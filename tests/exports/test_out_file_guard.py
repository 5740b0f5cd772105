"""An output FILE never replaces recorded data or a file already there (`export --out`, `report --html`), and a
device or named pipe is written in place, never renamed over."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.replay.exports import export
from trajrec.recorder.errors import TrajrecUsageError

JSONL = ["records", "chat", "trl-stepwise", "dpo", "kto", "atif"]
FORMATS = [*JSONL, "parquet"]


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("guard") / "run"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "3", "--out", str(out), "--json"]) == 0
    return out


@pytest.fixture
def run(master: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(master, dst)
    return dst


def _episodes(run: Path) -> list[Path]:
    return sorted(run.glob("*.msgpack.zst"))


def _one_line_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_input_episode_as_out_is_refused_and_kept(fmt: str, run: Path, capsys: pytest.CaptureFixture) -> None:
    # The tester's `export --format records --out runs/victim/*.msgpack.zst`: the shell made the first episode --out.
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    first, *others = _episodes(run)
    before = first.read_bytes()
    capsys.readouterr()
    for argv in (["export", str(run), "--format", fmt, "--out", str(first)],
                 ["export", "--format", fmt, "--out", str(first), *map(str, others)],
                 ["export", str(run), "--format", fmt, "--out", str(first), "--overwrite"]):
        assert main(argv) != 0
        err = _one_line_error(capsys)
        assert str(first) in err
        assert first.read_bytes() == before
    assert main(["fsck", str(run)]) == 0


@pytest.mark.parametrize("fmt", JSONL)
def test_an_input_under_another_name_is_refused_even_with_overwrite(fmt: str, run: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    first = _episodes(run)[0]
    link = tmp_path / "alias.jsonl"
    os.link(first, link)  # the same file under a name an export could use
    before = first.read_bytes()
    capsys.readouterr()
    assert main(["export", str(run), "--format", fmt, "--out", str(link), "--overwrite"]) != 0
    assert "is one of the episode files this command reads" in _one_line_error(capsys)
    assert first.read_bytes() == before


def test_an_episode_copy_under_another_name_is_refused_even_with_overwrite(run: Path, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    copy = tmp_path / "backup.jsonl"
    shutil.copyfile(_episodes(run)[0], copy)
    before = copy.read_bytes()
    capsys.readouterr()
    assert main(["export", str(run), "--format", "records", "--out", str(copy), "--overwrite"]) != 0
    assert "holds zstd-compressed data" in _one_line_error(capsys)
    assert copy.read_bytes() == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_existing_file_needs_overwrite(fmt: str, run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    mine = tmp_path / ("mine.parquet" if fmt == "parquet" else "mine.jsonl")
    mine.write_text("precious\n")
    capsys.readouterr()
    assert main(["export", str(run), "--format", fmt, "--out", str(mine)]) != 0
    err = _one_line_error(capsys)
    assert f"--out {mine} is a file that exists; pass --overwrite to replace it" in err
    assert mine.read_text() == "precious\n"
    assert main(["export", str(run), "--format", fmt, "--out", str(mine), "--overwrite"]) == 0
    assert mine.read_bytes() != b"precious\n"
    assert not list(tmp_path.glob(".mine.*"))  # no temporary file left


def test_library_export_refuses_an_existing_file_unless_overwrite(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    out.write_text("x\n")
    with pytest.raises(TrajrecUsageError, match="is a file that exists"):
        export([run], "records", out)
    assert out.read_text() == "x\n"
    report = export([run], "records", out, overwrite=True)
    assert report.written == 3 and len(out.read_text().splitlines()) == 3


def test_a_labels_file_is_refused_and_the_suggested_file_is_not(run: Path, capsys: pytest.CaptureFixture) -> None:
    target = run / ".trajrec" / "labels" / "mine.jsonl"
    assert main(["export", str(run), "--format", "records", "--out", str(target), "--overwrite"]) != 0
    error = _one_line_error(capsys)
    assert "is inside a .trajrec/ folder" in error
    assert not target.exists()
    # the fix the message names is taken (FINDINGS12 #1: it named another file in .trajrec/, refused again)
    suggested = error.rsplit("such as ", 1)[1].strip()
    assert Path(suggested) == run / "export.jsonl"
    assert main(["export", str(run), "--format", "records", "--out", suggested]) == 0
    assert Path(suggested).stat().st_size > 0


@pytest.mark.parametrize("name", ["x.msgpack.zst", "sub/.trajrec/x.jsonl"])
def test_the_fix_named_for_a_refused_out_is_never_refused(run: Path, tmp_path: Path, name: str,
                                                          capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "out" / name
    target.parent.mkdir(parents=True)
    assert main(["export", str(run), "--format", "chat", "--out", str(target)]) != 0
    suggested = _one_line_error(capsys).rsplit("such as ", 1)[1].strip()
    assert ".trajrec" not in Path(suggested).parts and not suggested.endswith(".msgpack.zst")
    assert main(["export", str(run), "--format", "chat", "--out", suggested]) == 0


def _fifo_export(pipe: Path, argv: list[str], code: int = 0) -> bytes:
    """Run ``argv`` (whose output is the named pipe ``pipe``) with ``cat`` reading it; the bytes ``cat`` got."""
    os.mkfifo(pipe)
    received = pipe.with_name("received")
    with open(received, "wb") as sink:  # a file, not a pipe: cat never waits for this test to read
        reader = subprocess.Popen(["cat", str(pipe)], stdout=sink)
    try:
        assert (main(argv) == 0) == (code == 0)
        reader.wait(timeout=60)
    finally:
        if reader.poll() is None:  # the pipe was replaced: the reader never got a writer
            reader.kill()
            reader.wait()
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode), "the named pipe was replaced by a regular file"
    return received.read_bytes()


def test_a_named_pipe_is_written_in_place(run: Path, tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.jsonl"
    got = _fifo_export(pipe, ["export", str(run), "--format", "records", "--out", str(pipe)])
    assert [json.loads(line)["episode_id"] for line in got.decode().splitlines()] == [
        json.loads(line)["episode_id"] for line in _records(run, tmp_path)]


def test_parquet_to_a_named_pipe_fails_and_keeps_the_pipe(run: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    # Parquet's writer seeks (a pipe cannot): one line of error, and the pipe is still a pipe.
    pytest.importorskip("pyarrow")
    pipe = tmp_path / "pipe.parquet"
    capsys.readouterr()
    _fifo_export(pipe, ["export", str(run), "--format", "parquet", "--out", str(pipe)], code=1)
    assert f"cannot write {pipe}" in _one_line_error(capsys)


def _records(run: Path, tmp_path: Path) -> list[str]:
    out = tmp_path / "plain.jsonl"
    assert main(["export", str(run), "--format", "records", "--out", str(out)]) == 0
    return out.read_text().splitlines()


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_a_device_is_written_in_place_and_kept(run: Path, tmp_path: Path) -> None:
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a private /dev/null
    assert main(["export", str(run), "--format", "records", "--out", str(null)]) == 0
    assert stat.S_ISCHR(os.lstat(null).st_mode)
    assert main(["export", str(run), "--format", "chat", "--out", str(null), "--workers", "2"]) == 0
    assert stat.S_ISCHR(os.lstat(null).st_mode)
    if importlib.util.find_spec("pyarrow") is not None:
        null_pq = tmp_path / "null.parquet"
        os.mknod(null_pq, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        assert main(["export", str(run), "--format", "parquet", "--out", str(null_pq)]) == 0
        assert stat.S_ISCHR(os.lstat(null_pq).st_mode)
    assert not list(tmp_path.glob(".null.tmp-*"))


def test_report_html_refuses_an_episode_and_an_existing_file(run: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("plotly")
    first = _episodes(run)[0]
    before = first.read_bytes()
    capsys.readouterr()
    assert main(["report", str(run), "--html", str(first), "--overwrite"]) != 0
    assert f"--html {first}" in _one_line_error(capsys)
    assert first.read_bytes() == before
    page = tmp_path / "report.html"
    page.write_text("mine\n")
    assert main(["report", str(run), "--html", str(page)]) != 0
    assert "pass --overwrite to replace it" in _one_line_error(capsys)
    assert page.read_text() == "mine\n"
    assert main(["report", str(run), "--html", str(page), "--overwrite"]) == 0
    assert page.read_text().lstrip().lower().startswith("<!doctype html")


def test_report_html_to_a_named_pipe_is_written_in_place(run: Path, tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    pipe = tmp_path / "pipe.html"
    got = _fifo_export(pipe, ["report", str(run), "--html", str(pipe)])
    assert got.lstrip().lower().startswith(b"<!doctype html")
