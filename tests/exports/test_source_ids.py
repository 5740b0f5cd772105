"""``Source.note_id`` keeps a listed file as its place in the listing (not a copy of its path): the same files told
apart, in any order, listed or not."""

from __future__ import annotations

from pathlib import Path

import pytest

from trajrec.replay.exports import source
from trajrec.replay.exports.source import Source


def test_same_id_in_two_files_is_told_with_both_paths(builtin_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "_LOOK_AHEAD", 8)
    src = Source([builtin_run])
    files = [f for f, _ in src.listed]
    assert len(files) > 20
    src.note_id("a", files[0])
    src.note_id("a", files[0])  # the same file again: nothing to tell
    src.note_id("b", files[1])
    src.note_id("c", files[20])  # far past the place it looks first: kept as its path
    src.note_id("a", files[2])
    src.note_id("c", str(files[20]))
    src.note_id("b", files[19])
    src.note_id("d", "/elsewhere/x.msgpack.zst")  # not listed at all
    src.note_id("d", "/elsewhere/y.msgpack.zst")
    src.note_id("b", files[1])
    assert src.same_ids == [("a", str(files[0]), str(files[2])), ("b", str(files[1]), str(files[19])),
                            ("d", "/elsewhere/x.msgpack.zst", "/elsewhere/y.msgpack.zst")]
    assert sum(isinstance(v, int) for v in src._ids.values()) == 2  # a and b by place; c and d by path
