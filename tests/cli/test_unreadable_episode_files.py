"""Paths whose episode files cannot be read (no episode, damaged): ``label ls`` and ``label add`` name each file
and byte like the other commands and exit 1, and an export that exports nothing because of them writes nothing
(no empty output file, an existing one kept), whatever the format, with or without workers."""

from __future__ import annotations

import io
import json
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from trajrec.cli import main

NOT_AN_EPISODE = "at byte 0: not a trajrec episode"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    folder = tmp_path / "ne"
    folder.mkdir()
    (folder / "notep.msgpack.zst").write_bytes(b"hi\n")
    return folder


def test_label_ls_names_unreadable_files_and_fails(bad: Path, tmp_path: Path) -> None:
    for path in (bad, bad / "notep.msgpack.zst"):
        for extra in ((), ("--json",)):
            code, out, err = cli("label", "ls", str(path), *extra)
            assert code == 1, err
            assert f"trajrec label: skipped {bad / 'notep.msgpack.zst'}: {bad / 'notep.msgpack.zst'} {NOT_AN_EPISODE}" \
                in err, err
    code, _, err = cli("label", "ls", str(bad))
    assert err.splitlines()[-1] == "0 labels on 0 episodes; 1 file unreadable (above; `trajrec fsck PATH` checks them)"


def test_label_add_names_the_file_and_byte(bad: Path, tmp_path: Path) -> None:
    for path in (bad, bad / "notep.msgpack.zst"):
        code, _, err = cli("label", "add", str(path), "--step", "0", "--value", "1")
        assert code == 1 and err.startswith(f"trajrec label: error: {bad / 'notep.msgpack.zst'} {NOT_AN_EPISODE}")
        assert "--episode" not in err
    (bad / "second.msgpack.zst").write_bytes(b"no")
    code, _, err = cli("label", "add", str(bad), "--step", "0", "--value", "1")
    assert code == 1 and f"{bad} holds no readable episode: 2 files cannot be read, e.g. " in err
    assert not (bad / ".trajrec").exists()  # nothing written


@pytest.mark.parametrize(("fmt", "out", "workers"), [("records", "x.jsonl", 1), ("chat", "x.jsonl", 2),
                                                     ("parquet", "x.parquet", 1), ("parquet", "dir/", 1)])
def test_an_export_of_nothing_readable_writes_nothing(bad: Path, tmp_path: Path, fmt: str, out: str,
                                                      workers: int) -> None:
    pytest.importorskip("pyarrow")
    target = tmp_path / out
    code, _, err = cli("export", str(bad), "--format", fmt, "--out", str(target), "--workers", str(workers))
    assert code == 1 and NOT_AN_EPISODE in err
    assert "nothing written to" in err and "no episode exported, and 1 file could not be read" in err
    assert not target.exists() and not [p for p in tmp_path.iterdir() if p.name != "ne"]
    if out.endswith("/"):
        return
    target.write_text("kept\n")
    code, out_text, err = cli("export", str(bad), "--format", fmt, "--out", str(target), "--overwrite", "--json")
    assert code == 1 and target.read_text() == "kept\n"
    assert json.loads(out_text)["files"] == []


def test_a_readable_episode_beside_them_is_still_exported(bad: Path, tmp_path: Path) -> None:
    import gymnasium as gym

    import trajrec.envs  # noqa: F401 - registers the ids
    from trajrec.envs.agents import make_agent
    from trajrec.envs.runner import run_episode
    from trajrec.recorder import Recorder

    env = Recorder(gym.make("trajrec/MathCalc-v0"), bad)
    run_episode(env, make_agent("trajrec/MathCalc-v0", seed=0), seed=0)
    env.close()
    code, _, err = cli("export", str(bad), "--format", "records", "--out", str(tmp_path / "x.jsonl"))
    assert code == 1 and NOT_AN_EPISODE in err
    assert len((tmp_path / "x.jsonl").read_text().splitlines()) == 1
