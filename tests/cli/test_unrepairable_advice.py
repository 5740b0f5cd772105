"""A file cut inside its first frame (the header only) cannot be repaired: `export` and `report` do not send the
user to `fsck --repair` for it, and say what fsck says (record it again)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trajrec.cli import main


def test_a_file_without_its_reset_record_is_not_sent_to_repair(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    assert main(["record", "trajrec/Shell-v0", "--episodes", "2", "--out", str(run), "--json"]) == 0
    first, second = sorted(run.glob("*.msgpack.zst"))
    data = first.read_bytes()
    cut = run / "cut.msgpack.zst"
    cut.write_bytes(data[:len(data) // 2])
    first.unlink()
    capsys.readouterr()
    assert main(["fsck", str(cut)]) == 1
    assert "--repair cannot help" in capsys.readouterr().out
    assert main(["export", str(run), "--format", "records", "--out", str(tmp_path / "x.jsonl")]) == 1
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "skipped" in x and "cut.msgpack.zst" in x)
    assert "cannot help" in line and "record the episode again" in line, line
    assert "keeps the readable steps" not in line, line
    assert (tmp_path / "x.jsonl").read_text().count("\n") == 1  # the good episode is exported
    main(["report", str(run)])
    out = capsys.readouterr().out
    assert "names any that cannot be repaired" in out or "without an index" not in out, out
