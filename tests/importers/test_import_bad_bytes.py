"""Non-UTF-8, random and gzip input: every importer reads gzip files as they are and says in one line what a file
that is not text should have been; --keep-going leaves a bad file out and reports it after the others; an import
that stops says which files were imported before the bad one (they stay) and keeps nothing of the bad one."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

from import_helpers import ATIF, INSPECT_JSON, MINI_BIG_GZ, MINI_LIST, MINI_V1, OH_BASIC, SWE

from trajrec.cli import main
from trajrec.importers import ImportFormatError, detect, import_paths
from trajrec.recorder import open_episode

FORMATS = ["swe-agent", "mini-swe-agent", "inspect", "atif", "openhands"]


@pytest.fixture
def rnd(tmp_path: Path) -> Path:
    path = tmp_path / "rnd.bin"
    # Bytes that are no UTF-8 from the first one on (0xff never occurs in UTF-8), then random bytes.
    path.write_bytes(b"\xff\xfe" + os.urandom(3000))
    return path


@pytest.mark.parametrize("fmt", FORMATS)
def test_non_utf8_is_a_one_line_error(fmt: str, rnd: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", fmt, str(rnd), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith(f"trajrec import: error: {rnd}: not UTF-8 text") and "expected " in err
    assert "Traceback" not in err and "no file was imported" in err
    assert not list((tmp_path / "run").glob("*")) if (tmp_path / "run").exists() else True


@pytest.mark.parametrize("fmt", FORMATS)
def test_non_utf8_with_keep_going_is_reported_at_the_end(fmt: str, rnd: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    good = {"swe-agent": SWE, "mini-swe-agent": MINI_V1, "inspect": INSPECT_JSON, "atif": ATIF,
            "openhands": OH_BASIC}[fmt]
    assert main(["import", fmt, str(rnd), str(good), "--out", str(tmp_path / "run"), "--keep-going"]) == 1
    cap = capsys.readouterr()
    assert f"{good}:" in cap.out  # the good file after the bad one was imported
    lines = cap.err.strip().splitlines()
    assert lines[-2].startswith(f"trajrec import: error: skipped {rnd}: not UTF-8 text")
    assert lines[-1].startswith("imported ") and "1 bad file left out" in lines[-1]


def test_gzip_files_are_read_as_they_are(tmp_path: Path) -> None:
    plain = import_paths("mini-swe-agent", [MINI_LIST], tmp_path / "a")
    packed = tmp_path / "local.traj.json.gz"
    with MINI_LIST.open("rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert detect(packed)[0] == "mini-swe-agent" and "gzip" in detect(packed)[1]
    gz = import_paths("auto", [packed], tmp_path / "b")
    a = open_episode(tmp_path / "a" / plain.files[0].episodes[0])
    b = open_episode(tmp_path / "b" / gz.files[0].episodes[0])
    assert [s.action for s in b] == [s.action for s in a] and len(a) == 2
    assert a.task["id"] == b.task["id"] == "local"  # the name without .gz


def test_shipped_mini_swe_agent_gzip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "mini-swe-agent", str(MINI_BIG_GZ), "--out", str(tmp_path / "run")]) == 0
    assert "1 episode, 64 steps" in capsys.readouterr().out


def test_broken_gzip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cut.traj.json.gz"
    path.write_bytes(gzip.compress(MINI_V1.read_bytes())[:200])
    assert main(["import", "mini-swe-agent", str(path), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"trajrec import: error: {path}: ")
    assert "gzip" in err and "expected mini-swe-agent" in err


def test_stop_names_the_files_imported_before(rnd: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(ImportFormatError) as err:
        import_paths("mini-swe-agent", [MINI_LIST, rnd, MINI_V1], out)
    msg = str(err.value)
    assert msg.startswith(f"{rnd}: not UTF-8 text") and "import stopped at this file" in msg
    assert "1 file (1 episode): local.traj.json" in msg and "--resume" in msg
    assert len(list(out.glob("*.msgpack.zst"))) == 1
    # Leaving the bad file out, --resume imports only the rest.
    again = import_paths("mini-swe-agent", [MINI_LIST, MINI_V1], out, resume=True)
    assert [bool(f.skipped) for f in again.files] == [True, False] and again.episodes == 1


def test_bad_file_keeps_none_of_its_episodes(tmp_path: Path) -> None:
    # An ATIF lines file whose second line is cut: the first line's episode is removed too (all or nothing).
    line = ATIF.read_text().replace("\n", " ")
    path = tmp_path / "two.jsonl"
    path.write_text(line + "\n" + line[: len(line) // 2] + "\n")
    with pytest.raises(ImportFormatError) as err:
        import_paths("atif", [path], tmp_path / "run")
    assert "line 2" in str(err.value)
    assert not (tmp_path / "run").exists()  # nothing kept, and the folder the import made is gone too


def test_a_bare_message_list_that_ends_by_submitting_is_terminated_not_stopped(tmp_path: Path) -> None:
    """mini-swe-agent's own local.traj.json (a bare message list, no exit message) ends with the agent's submit
    line: the run finished, so its last step is terminated and the outcome is not ``stopped`` (a cut recording)."""
    from trajrec.recorder import open_episode

    import_paths("mini-swe-agent", [MINI_LIST], tmp_path / "run")
    [path] = (tmp_path / "run").glob("*.msgpack.zst")
    with open_episode(path) as ep:
        assert ep.summary["outcome"] != "stopped", ep.summary
        assert ep[len(ep) - 1].terminated and "SUBMIT" in str(ep[len(ep) - 1].action)
        assert not any(ep[i].terminated for i in range(len(ep) - 1))
    # The same list cut before its submit line stays as it was: not terminated.
    import json

    messages = json.loads(MINI_LIST.read_text())
    cut = tmp_path / "cut.traj.json"
    cut.write_text(json.dumps(messages[:-2]))
    import_paths("mini-swe-agent", [cut], tmp_path / "cut")
    [path] = (tmp_path / "cut").glob("*.msgpack.zst")
    with open_episode(path) as ep:
        assert not ep[len(ep) - 1].terminated
