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


def test_markers_from_the_index_equal_the_decoding_scan(main_episode: Path, tmp_path: Path) -> None:
    """Files written now carry each step's marks in the index: the marker index is whole at once and equals
    what decoding every step gives (every kind, retries drawn as failures or recoveries, checks on marked steps),
    on the project's sample runs too."""
    from trajrec.tui.step_scan import index_markers

    actions = ["cat a", "cat a", "write a x", "cat a", "boom", "boom", "cat a", "submit"]
    paths = [main_episode,
             record(tmp_path / "x", actions, step_checks={1: False, 2: True, 4: False, 6: True}, verdict=False),
             record(tmp_path / "y", actions, frame_steps=3)]
    paths += sorted(Path(__file__).resolve().parents[2].joinpath("sample_runs").rglob("*.msgpack.zst"))[:40]
    with_marks = 0
    for path in paths:
        decoded = b"".join(c for _, c in scan_markers(str(path), cancelled=lambda: False, use_index=False))
        batches = list(scan_markers(str(path), cancelled=lambda: False))
        with open_episode(path) as ep:
            fast = index_markers(ep)
        if fast is not None:
            with_marks += 1
            assert fast == decoded, path
            assert batches[0] == (0, decoded) and len(batches) == 1  # every step in the first batch
        else:  # older files: the decoding scan, as before
            assert b"".join(c for _, c in batches) == decoded
    assert with_marks >= 3


def test_damage_is_still_found_when_the_markers_come_from_the_index(tmp_path: Path) -> None:
    from trajrec.tui.step_scan import UNREADABLE, index_markers

    path = record(tmp_path / "d", ["cat a"] * 40, frame_steps=10)
    with open_episode(path) as ep:
        assert index_markers(ep) is not None
        offset, first, n, stop = ep.index["frames"][2][:4]
    data = bytearray(path.read_bytes())
    data[(offset + stop) // 2] ^= 0xFF  # a flipped byte in the third frame
    path.write_bytes(bytes(data))
    damaged: list[tuple[int, int]] = []
    markers = bytearray(40)
    for start, codes in scan_markers(str(path), cancelled=lambda: False,
                                     on_damage=lambda a, b, _e: damaged.append((a, b))):
        markers[start:start + len(codes)] = codes
    assert n == 10 and damaged == [(first, first + 9)]
    assert markers[first:first + 10] == bytes((UNREADABLE,)) * 10
    assert UNREADABLE not in markers[:first] + markers[first + 10:]
