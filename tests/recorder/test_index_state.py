"""A file whose index frame is there but damaged is not described as one whose writer did not close it: the
reader, ``show``, ``fsck`` and the viewer's header say which of the two it is."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.recorder import open_episode
from trajrec.recorder.format import read_tail_index


def _record(out: Path) -> Path:
    assert main(["record", "trajrec/Shell-v0", "--episodes", "1", "--out", str(out), "--json"]) == 0
    return next(out.glob("*.msgpack.zst"))


def test_damaged_index_and_missing_index_are_told_apart(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = _record(tmp_path / "run")
    data = bytearray(good.read_bytes())
    with open(good, "rb") as fh:
        _, index_at = read_tail_index(fh, len(data), str(good))
    damaged = tmp_path / "damaged.msgpack.zst"
    data[-30] ^= 0x55  # inside the index payload: its CRC-32 no longer matches
    damaged.write_bytes(bytes(data))
    unclosed = tmp_path / "unclosed.msgpack.zst"
    unclosed.write_bytes(good.read_bytes()[:index_at])  # every frame, no index: a writer killed before close
    capsys.readouterr()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open_episode(damaged) as ep:
            assert (ep.complete, ep.index_state) == (False, "damaged")
            assert not any("did not close" in d for d in ep.damage), ep.damage
            assert "index damaged" in ep.incomplete_text()
            n_damaged = len(ep)
        with open_episode(unclosed) as ep:
            assert (ep.complete, ep.index_state) == (False, "missing")
            assert "did not close" in ep.damage[0] and "did not close" in ep.incomplete_text()
            assert len(ep) == n_damaged
        with open_episode(good) as ep:
            assert (ep.index_state, ep.incomplete_text()) == ("ok", "")

    main(["show", str(damaged)])
    out = capsys.readouterr().out
    assert "index damaged" in out and "did not close" not in out
    main(["fsck", str(damaged)])
    out = capsys.readouterr().out
    assert "CRC-32" in out and "did not close" not in out
    main(["show", str(unclosed)])
    assert "writer did not close" in capsys.readouterr().out
    assert os.path.getsize(damaged) == len(data)  # reading never rewrote it
