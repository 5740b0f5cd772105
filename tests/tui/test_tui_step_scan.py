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


def test_marker_scan_in_processes_matches_the_thread_scan(tmp_path: Path) -> None:
    """Big episodes are scanned by worker processes: the same codes, in order, and the same damage reports (a
    damaged frame is reported and marked, the others scanned)."""
    from trajrec.tui.step_scan import UNREADABLE, scan_markers_in_processes

    actions = ["cat a", "cat a", "write a x", "cat a", "boom", "boom", "submit"] * 3
    path = record(tmp_path / "p", actions, step_checks={1: False, 2: True}, frame_steps=2)
    never = lambda: False  # noqa: E731
    expected = b"".join(c for _, c in scan_markers(str(path), cancelled=never))
    batches = list(scan_markers_in_processes(str(path), cancelled=never, workers=2, pieces_per_worker=3))
    assert b"".join(c for _, c in batches) == expected
    assert [start for start, _ in batches] == sorted(start for start, _ in batches)

    with open_episode(path) as ep:
        offset, first, count, stop = ep.index["frames"][3][:4]
    data = bytearray(path.read_bytes())
    data[(offset + stop) // 2] ^= 0xFF  # a flipped byte inside the fourth frame: its checksum fails
    path.write_bytes(bytes(data))
    damage: list[tuple[int, int]] = []
    codes = b"".join(c for _, c in scan_markers_in_processes(
        str(path), cancelled=never, on_damage=lambda a, b, e: damage.append((a, b))))
    assert damage == [(first, first + count - 1)]
    assert codes[first:first + count] == bytes((UNREADABLE,)) * count
    assert codes[:first] == expected[:first] and codes[first + count:] == expected[first + count:]
