"""The thread-side scans: the marker index agrees with ``trajrec.replay.render.step_kind``; search finds and wraps."""

from __future__ import annotations

from pathlib import Path

from tui_helpers import record

from trajrec.recorder import open_episode
from trajrec.replay.render import STEP_KINDS, step_kind
from trajrec.tui.markers import KIND_STYLES, KINDS, KIND_MASK
from trajrec.tui.step_scan import find_text, scan_markers


def test_marker_index_matches_step_kind(main_episode: Path, tmp_path: Path) -> None:
    other = record(tmp_path / "x", ["cat a", "cat a", "write a x", "cat a", "boom", "boom", "submit"],
                   step_checks={1: False, 2: True, 3: False}, verdict=False)
    for path in (main_episode, other):
        batches = list(scan_markers(str(path), cancelled=lambda: False))
        codes = b"".join(c for _, c in batches)
        assert [start for start, _ in batches][0] == 0
        with open_episode(path) as ep:
            assert [KINDS[c & KIND_MASK] for c in codes] == [step_kind(s) for s in ep]


def test_every_kind_has_a_style_and_label() -> None:
    assert set(KIND_STYLES) == set(STEP_KINDS) == set(KINDS)


def test_find_text_forward_backward_and_wrapping(main_episode: Path) -> None:
    p = str(main_episode)
    never = lambda: False  # noqa: E731
    assert find_text(p, "TODO.TXT", 0, cancelled=never) == (3, False)
    assert find_text(p, "todo.txt", 8, cancelled=never) == (3, True)  # wrapped around the end
    assert find_text(p, "todo.txt", 5, direction=-1, cancelled=never) == (4, False)
    assert find_text(p, "notes first", 5, cancelled=never) == (0, True)  # in a note
    assert find_text(p, "nowhere-at-all", 0, cancelled=never) == (None, False)


def test_marker_scan_gives_way_between_frames(tmp_path: Path) -> None:
    """``between_frames`` runs after every frame, before the next is read (the viewer waits there while a key is
    answered); the markers are the same with frames of any size."""
    actions = ["cat a", "cat a", "write a x", "cat a", "boom", "boom", "submit"]
    whole = record(tmp_path / "whole", actions, step_checks={1: False, 2: True})
    small = record(tmp_path / "small", actions, step_checks={1: False, 2: True}, frame_steps=2)
    calls: list[int] = []
    with open_episode(small) as ep:
        frames = ep.frame_count
    codes = b"".join(c for _, c in scan_markers(str(small), cancelled=lambda: False,
                                                between_frames=lambda: calls.append(1)))
    assert len(calls) == frames == 4
    assert codes == b"".join(c for _, c in scan_markers(str(whole), cancelled=lambda: False))
