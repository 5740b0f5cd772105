"""One rule for empty inputs across ls, report, export and label ls: no episode files under the paths is an error
(exit 1, nothing written); a filter that matches nothing is an empty result with a message (exit 0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.cli import main

COMMANDS = {
    "ls": [],
    "ls --json": ["--json"],
    "report": [],
    "report --json": ["--json"],
    "export records": ["--format", "records", "--out", "{out}/x.jsonl"],
    "export chat": ["--format", "chat", "--out", "{out}/x.jsonl"],
    "export dpo": ["--format", "dpo", "--out", "{out}/x.jsonl"],
    "export parquet": ["--format", "parquet", "--out", "{out}/pq/"],
    "label ls": [],
}


def _argv(name: str, path: Path, out: Path) -> list[str]:
    cmd = name.split()[:2] if name.startswith("label") else name.split()[:1]
    return [*cmd, str(path), *(a.replace("{out}", str(out)) for a in COMMANDS[name])]


@pytest.mark.parametrize("name", list(COMMANDS))
@pytest.mark.parametrize("content", ["empty", "other files"])
def test_no_episode_files_is_an_error_and_writes_nothing(name: str, content: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # Tester: export of an empty folder wrote an empty file (exit 0), ls printed a header (exit 0), report exit 1.
    folder = tmp_path / "emptydir"
    (folder / "sub").mkdir(parents=True)
    if content == "other files":
        (folder / "notes.txt").write_text("not an episode")
    out = tmp_path / "out"
    out.mkdir()
    code = main(_argv(name, folder, out))
    stdout, err = capsys.readouterr()
    assert code == 1 and stdout == ""
    command = name.split()[0]  # label errors say "trajrec label: error:"
    assert err == (f"trajrec {command}: error: no episode files (*.msgpack.zst) found under {folder}; record some "
                   "with `trajrec record` or `trajrec demo`, or import some with `trajrec import`\n")
    assert list(out.iterdir()) == []  # no empty dataset left behind


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("some") / "run"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "2", "--out", str(out), "--json"]) == 0
    return out


def test_a_filter_that_matches_nothing_is_an_empty_result_with_a_message(run: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    where = ["--where", "task=no-such-task"]
    assert main(["ls", str(run), *where]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("episode ") and len(out.splitlines()) == 1
    assert err.strip() == "0 episodes (of 2)"
    assert main(["ls", str(run), *where, "--json"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["report", str(run), *where, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 0
    assert main(["export", str(run), "--format", "records", "--out", str(tmp_path / "x.jsonl"), *where]) == 0
    err = capsys.readouterr().err
    assert "exported 0 episodes" in err and "nothing written: no episode matched --where 'task=no-such-task'" in err
    assert (tmp_path / "x.jsonl").read_text() == ""
