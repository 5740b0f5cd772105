"""Damage made on purpose for tests of repair and its consumers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable


def break_frame(path: Path, row: list[int]) -> None:
    """Mark the first block of the frame at index row ``row`` with zstd's reserved block type: zstd rejects the
    frame at once, so nothing of it can be salvaged (RFC 8878, 3.1.1.2)."""
    data = bytearray(path.read_bytes())
    fhd = data[row[0] + 4]
    single, did, fcs = (fhd >> 5) & 1, fhd & 3, fhd >> 6
    data[row[0] + 5 + (0 if single else 1) + (0, 1, 2, 4)[did] + ((1 if single else 0), 2, 4, 8)[fcs]] |= 0b110
    path.write_bytes(bytes(data))


def blocks(data: bytes, start: int = 0) -> list[tuple[int, int]]:
    """``(start, stop)`` of each zstd block of the frame at byte ``start`` of ``data``, its 3-byte block header
    included (RFC 8878, 3.1.1.2). The writer flushes each record as a block of its own: in frame 0, the header
    record's block comes first, then the reset record's."""
    fhd = data[start + 4]
    single, did, fcs = (fhd >> 5) & 1, fhd & 3, fhd >> 6
    p = start + 5 + (0 if single else 1) + (0, 1, 2, 4)[did] + ((1 if single else 0), 2, 4, 8)[fcs]
    out = []
    while True:
        head = data[p] | (data[p + 1] << 8) | (data[p + 2] << 16)
        stop = p + 3 + (1 if (head >> 1) & 3 == 1 else head >> 3)
        out.append((p, stop))
        p = stop
        if head & 1:
            return out


def repair_after_a_flip_that(path: Path, block: int, wanted: Callable[[Path], bool], what: str) -> int:
    """Flip one bit of block ``block``'s bytes of the episode file ``path`` (its zstd blocks: :func:`blocks`; 1 is
    the reset record's), one byte at a time, ``fsck --repair`` it, until ``wanted(path)`` holds: which flip loses a
    record and which leaves one the salvage keeps depends on the compressed bytes. Returns the byte flipped.

    Raises:
        AssertionError: no flip in the block gave ``what``.
    """
    import warnings

    from trajrec.recorder import fsck

    clean = path.read_bytes()
    start, stop = blocks(clean)[block]
    for at in range(start + 3, stop):  # (the first 3 bytes are the block's header)
        data = bytearray(clean)
        data[at] ^= 0x01
        path.write_bytes(bytes(data))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fsck(path, repair=True)
        if wanted(path):
            return at
        for junk in path.parent.glob("*.orig*"):
            junk.unlink()
    raise AssertionError(f"no flip in block {block} of {path.name} {what}")


def record_stub_episode(folder: Path, stub_env: Any) -> Path:
    """A 30-step episode of conftest's ``stub_env`` (its state recorded) in frames of 8 steps: the file the damage
    tests break; its path."""
    from trajrec.recorder import Recorder

    env = Recorder(stub_env(), str(folder), frame_steps=8)
    env.reset(seed=3)
    for k in range(29):
        env.step(f"write f{k} text number {k} " + "x" * (k % 7))
    env.step("write done yes")
    env.close()
    return Path(env.episode_path)
