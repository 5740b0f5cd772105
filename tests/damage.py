"""Damage made on purpose for tests of repair and its consumers."""

from __future__ import annotations

from pathlib import Path


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
