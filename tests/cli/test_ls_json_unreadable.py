"""`trajrec ls --json` lists every file: an unreadable one is a row with `outcome: unreadable` and its `error`
(also named on stderr, exit 1); rows carry the query fields' names (`episode`, `env`, `task`) beside the older
`episode_id`, `env_id`, `task_id`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.recorder import open_episode


def test_ls_json_lists_an_unreadable_file_with_its_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "run"
    assert main(["record", "trajrec/Shell-v0", "--episodes", "3", "--out", str(folder), "--json"]) == 0
    capsys.readouterr()
    files = sorted(folder.glob("*.msgpack.zst"))
    bad = files[1]
    data = bytearray(bad.read_bytes())
    # Not an episode any more: neither its first bytes nor its index's tail say so. (With the tail sound, the file
    # would read as an episode whose header record was lost to damage: tests/recorder/test_lost_header.py.)
    data[:8] = data[-8:] = b"garbage!"
    bad.write_bytes(bytes(data))

    assert main(["ls", str(folder), "--json"]) == 1
    captured = capsys.readouterr()
    rows = [json.loads(x) for x in captured.out.splitlines()]
    assert sorted(r["path"] for r in rows) == sorted(map(str, files))
    broken = [r for r in rows if r.get("error")]
    assert [r["path"] for r in broken] == [str(bad)] and broken[0]["outcome"] == "unreadable"
    assert str(bad) in captured.err
    good = [r for r in rows if not r.get("error")]
    ep = open_episode(files[0])
    first = next(r for r in good if r["path"] == str(files[0]))
    assert first["episode"] == first["episode_id"] == ep.episode_id
    assert first["env"] == first["env_id"] == "trajrec/Shell-v0" and first["task"] == first["task_id"]
