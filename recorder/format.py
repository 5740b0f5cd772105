"""The episode file's byte layout. The only module that imports msgpack and zstandard.

Layout (``docs/FORMAT.md`` has the full description)::

    zstd frame 0:  header record, reset record, step records ...      (one flushed zstd block per step)
    zstd frame 1:  step records ...                                   (a new frame every N steps or bytes)
    ...
    skippable frame (magic 0x184D2A5B): msgpack index, u32 index length, b"TRJRIDX1"

Decompressed, the frames are one stream of msgpack maps, each with a type key ``"t"``. Standard zstd
decoders skip the index frame, so ``zstd -dc FILE`` prints exactly the record stream. A file without the
index (the process died) is still read by scanning its frames.
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
import threading
from typing import Any, Iterator

import msgpack
import zstandard

from .codec import EXT_FALLBACK, Unencodable, UnknownExt, make_default, make_ext_hook
from .errors import TrajrecFormatError, TrajrecIOError

MAGIC = "trajrec"
FORMAT_VERSION = 1
SUFFIX = ".msgpack.zst"

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
INDEX_FRAME_MAGIC = 0x184D2A5B
TAIL_MAGIC = b"TRJRIDX1"
_TAIL = struct.Struct("<I8s")
_SKIP_HEADER = struct.Struct("<II")
_TAIL_READ = 64 * 1024


# -- values <-> msgpack ---------------------------------------------------------------------------------------------

def _ext(code: int, data: bytes) -> msgpack.ExtType:
    return msgpack.ExtType(code, data)


def _default_passthrough(obj: Any) -> Any:
    # Values decoded from a file go back out unchanged (fsck --repair re-encodes damaged frames).
    if isinstance(obj, Unencodable):
        return msgpack.ExtType(EXT_FALLBACK, packb([obj.type, obj.repr]))
    if isinstance(obj, UnknownExt):
        return msgpack.ExtType(obj.code, obj.data)
    return _default(obj)


def packb(obj: Any) -> bytes:
    """Encode one value to msgpack bytes with the trajrec extension types."""
    return msgpack.packb(obj, use_bin_type=True, strict_types=True, default=_default_passthrough, datetime=False)


def unpackb(data: bytes) -> Any:
    """Decode one msgpack value. Never executes code: unknown extensions come back as :class:`UnknownExt`."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook, use_list=True)


_default = make_default(packb, _ext)
_ext_hook = make_ext_hook(unpackb)


def new_packer() -> msgpack.Packer:
    """A reusable packer for the hot path (one per writer; not thread-safe)."""
    return msgpack.Packer(use_bin_type=True, strict_types=True, default=_default_passthrough, datetime=False)


def decode_records(raw: bytes | memoryview, *, path: str, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Decode the msgpack records in decompressed bytes.

    Returns the records and how many bytes they used; bytes after the last whole record (a record cut by a
    crash) are left over. Raises :class:`TrajrecFormatError` naming ``path`` and the frame ``offset`` when the
    bytes are not msgpack records.
    """
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, ext_hook=_ext_hook, use_list=True,
                                max_buffer_size=max(len(raw), 1))
    unpacker.feed(raw)
    records: list[dict[str, Any]] = []
    used = 0
    while True:
        try:
            rec = unpacker.unpack()
        except msgpack.OutOfData:
            break
        except Exception as exc:  # msgpack raises several unrelated types for bad bytes
            raise TrajrecFormatError(path, offset, f"bad msgpack data in the zstd frame starting here, after "
                                     f"{len(records)} good records ({type(exc).__name__}: {exc}); "
                                     f"run `trajrec fsck --repair {path}` to keep the readable part") from exc
        if not isinstance(rec, dict) or "t" not in rec:
            raise TrajrecFormatError(path, offset, f"expected a record (a map with key 't') in the frame starting "
                                     f"here, found {type(rec).__name__}; this is not a trajrec episode stream")
        records.append(rec)
        used = unpacker.tell()
    return records, used


def _params(level: int) -> zstandard.ZstdCompressionParameters:
    # Each step is its own tiny flushed block, where the lazy match finder pays: on text tool envs it saves
    # ~12% of the bytes for ~4 µs a step over level 3's default (bench/record_overhead.py).
    # A minimum match of 6 bytes suits msgpack records (short keys and numbers are not worth a match).
    base = zstandard.ZstdCompressionParameters.from_level(level)
    strategy = max(base.strategy, zstandard.STRATEGY_LAZY)
    return zstandard.ZstdCompressionParameters.from_level(level, strategy=strategy, min_match=max(base.min_match, 6),
                                                          write_checksum=0, write_content_size=0)


def new_compressor(level: int = 3) -> Any:
    """A zstd compressor with trajrec's parameters, to share across the files one writer makes in turn."""
    return zstandard.ZstdCompressor(compression_params=_params(level))


# -- writing --------------------------------------------------------------------------------------------------------

# A zstd block header for an empty raw block that is the last of its frame (RFC 8878, 3.1.1.2): appended after
# the last whole block of a frame whose next write failed, it closes the frame with exactly what was written.
_EMPTY_LAST_BLOCK = b"\x01\x00\x00"


def lock_file(fd: int) -> bool:
    """Take the exclusive advisory lock (``flock``) that marks a file as being written; False if another
    open file holds it. Platforms and file systems without ``flock`` count as unlocked."""
    try:
        import fcntl  # noqa: PLC0415  (POSIX only)
    except ImportError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without flock support
        return True
    return True


class FrameWriter:
    """Appends records to a new file as zstd frames: one flushed zstd block per :meth:`write`.

    After ``write`` returns, the bytes are in the operating system's hands, so a killed process loses
    nothing it wrote. One compressor context and one packer are reused for the life of the file. The file
    holds an exclusive ``flock`` while open, so ``fsck --repair`` can tell a live file from a dead one.

    A failed write never leaves a torn block for later writes to follow: the file is cut back to its last
    whole block and the open frame is closed there with an empty last block, so every record written before
    stays readable and writing continues in a new frame. When even that fails, the writer is :attr:`broken`
    and refuses further writes.
    """

    #: ``os.write``; tests swap in a writer that fails on purpose (a full disk, a torn write).
    write_fd: Any = staticmethod(os.write)

    def __init__(self, path: str | os.PathLike[str], *, level: int = 3, fsync: bool = False,
                 compressor: Any = None) -> None:
        self.path = os.fspath(path)
        try:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise TrajrecIOError(f"cannot create episode file {self.path}: {exc.strerror}") from exc
        lock_file(self._fd)  # a brand-new file (O_EXCL): nobody else can hold its lock yet
        # A compressor shared across a Recorder's episodes keeps its context: creating one costs ~40 µs.
        self._cctx = compressor if compressor is not None else new_compressor(level)
        self._co: Any = None
        self._packer = new_packer()
        self._fsync = fsync
        self.offset = 0
        self.frame_offset = 0
        self.frame_raw = 0
        self.broken: str | None = None
        self._cut_pending = False

    @property
    def in_frame(self) -> bool:
        return self._co is not None

    def pack(self, record: dict[str, Any]) -> bytes:
        return self._packer.pack(record)

    def write_raw(self, raw: bytes, *, finish: bool = False) -> None:
        """Compress already packed records into the current frame (opening one if needed) and flush a block;
        with ``finish``, close the frame in the same write."""
        co = self._co
        if co is None:
            self._check_usable()
            co = self._co = self._cctx.compressobj()
            self.frame_offset = self.offset
            self.frame_raw = 0
        self.frame_raw += len(raw)
        if finish:
            data = co.compress(raw) + co.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
            self._write(data, in_frame=True)
            self._co = None
            self._sync()
            return
        self._write(co.compress(raw) + co.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK), in_frame=True)

    def end_frame(self) -> None:
        if self._co is not None:
            self._write(self._co.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH), in_frame=True)
            self._co = None
            self._sync()

    def write_index(self, index: dict[str, Any], pack: Any = None) -> None:
        self.end_frame()
        payload = (pack or packb)(index)
        body = payload + _TAIL.pack(len(payload), TAIL_MAGIC)
        self._write(_SKIP_HEADER.pack(INDEX_FRAME_MAGIC, len(body)) + body)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                if self._fsync and not self.broken:
                    os.fsync(fd)
            finally:
                os.close(fd)

    def _check_usable(self) -> None:
        if self._fd is None:
            raise TrajrecIOError(f"episode file {self.path} is already closed")
        if self.broken:
            raise TrajrecIOError(f"episode file {self.path} is broken since an earlier write failed "
                                 f"({self.broken}); nothing more is written to it. Everything recorded before "
                                 f"that is readable; `trajrec fsck --repair {self.path}` closes it")

    def _sync(self) -> None:
        if self._fsync and self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                # The kernel may have dropped written pages: what is on disk is unknown, so stop here.
                self.broken = f"fsync failed: {exc.strerror}"
                raise TrajrecIOError(f"cannot flush episode file {self.path} to disk: {exc.strerror}") from exc

    @property
    def cut_pending(self) -> bool:
        """A failed write cut the file back inside a frame that could not be closed yet (see
        :meth:`finish_cut_frame`)."""
        return self._cut_pending

    def finish_cut_frame(self) -> None:
        """Close the frame a failed write cut short, with an empty last block, before anything else is written.

        Raises :class:`TrajrecIOError` when that still cannot be written (the file keeps ending at a whole
        block, which reads like a crashed file: nothing is lost)."""
        if not self._cut_pending:
            return
        assert self._fd is not None
        start = self.offset
        try:
            if self.write_fd(self._fd, _EMPTY_LAST_BLOCK) != len(_EMPTY_LAST_BLOCK):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            where = self._cut(start, exc)
            raise TrajrecIOError(f"cannot write to episode file {self.path} at byte {start}: {exc.strerror}. "
                                 f"{where}") from exc
        self.offset = start + len(_EMPTY_LAST_BLOCK)
        self._cut_pending = False

    def _write(self, data: bytes, *, in_frame: bool = False) -> None:
        self._check_usable()
        assert self._fd is not None
        if self._cut_pending:
            self.finish_cut_frame()
        start = self.offset
        view = memoryview(data)
        try:
            while view:
                n = self.write_fd(self._fd, view)
                self.offset += n
                view = view[n:]
        except OSError as exc:
            # The compressor's history holds the lost block, so this frame cannot go on either way.
            self._co = None
            where = self._cut(start, exc)
            if not self.broken and in_frame and start > self.frame_offset:
                self._cut_pending = True
                try:
                    self.finish_cut_frame()
                except TrajrecIOError:
                    where += " Its last frame is closed by the next write."
            raise TrajrecIOError(
                f"cannot write to episode file {self.path} at byte {start}: {exc.strerror}. {where} Free disk "
                "space or fix permissions; the next write tries again") from exc

    def _cut(self, start: int, exc: OSError) -> str:
        """Cut the file back to ``start`` (the end of the last whole block); marks the writer :attr:`broken`
        when it cannot. Returns what was done, for the error message."""
        assert self._fd is not None
        try:
            # Truncating leaves the descriptor's position after the torn bytes: move it back too.
            os.ftruncate(self._fd, start)
            os.lseek(self._fd, start, os.SEEK_SET)
            self.offset = start
        except OSError as again:
            self.broken = f"{exc.strerror}, then the roll-back failed: {again.strerror}"
            return (f"The file could not be rolled back ({again.strerror}), so it takes no more writes; what was "
                    f"recorded before is readable.")
        return f"This record was not written; the file was cut back to byte {start}, its earlier records are intact."


def write_index_to(path: str, index: dict[str, Any], fd: int, pack: Any = None) -> None:
    """Append an index frame through an open descriptor (used by ``fsck --repair``)."""
    payload = (pack or packb)(index)
    body = payload + _TAIL.pack(len(payload), TAIL_MAGIC)
    os.write(fd, _SKIP_HEADER.pack(INDEX_FRAME_MAGIC, len(body)) + body)


def compress_frame(raws: list[bytes], level: int = 3) -> bytes:
    """One complete zstd frame holding the given packed records, one block each."""
    co = zstandard.ZstdCompressor(compression_params=_params(level)).compressobj()
    parts = []
    for raw in raws:
        parts.append(co.compress(raw))
        parts.append(co.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))
    parts.append(co.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))
    return b"".join(parts)


# -- reading --------------------------------------------------------------------------------------------------------

def read_tail_index(fh: Any, size: int, path: str) -> tuple[dict[str, Any] | None, int]:
    """Find the index frame at the end of the file.

    Returns ``(index, index_offset)``; ``(None, size)`` when the file has no index (its writer died).
    """
    if size < _TAIL.size + _SKIP_HEADER.size:
        return None, size
    n = min(size, _TAIL_READ)
    fh.seek(size - n)
    tail = fh.read(n)
    length, magic = _TAIL.unpack(tail[-_TAIL.size:])
    if magic != TAIL_MAGIC:
        return None, size
    start = size - _TAIL.size - length - _SKIP_HEADER.size
    if start < 0:
        raise TrajrecFormatError(path, size - _TAIL.size, f"index length {length} is larger than the file; "
                                 f"run `trajrec fsck --repair {path}`")
    if size - start > n:
        fh.seek(start)
        tail = fh.read(size - start)
        head = 0
    else:
        head = n - (size - start)
    frame_magic, body_len = _SKIP_HEADER.unpack(tail[head:head + _SKIP_HEADER.size])
    if frame_magic != INDEX_FRAME_MAGIC or body_len != length + _TAIL.size:
        raise TrajrecFormatError(path, start, "the index frame header does not match its tail; "
                                 f"run `trajrec fsck --repair {path}` to rebuild it")
    payload = tail[head + _SKIP_HEADER.size: head + _SKIP_HEADER.size + length]
    try:
        index = unpackb(payload)
    except Exception as exc:  # msgpack raises several unrelated types for bad bytes
        raise TrajrecFormatError(path, start, f"the index frame is damaged ({exc}); "
                                 f"run `trajrec fsck --repair {path}` to rebuild it") from exc
    if not isinstance(index, dict) or not isinstance(index.get("frames"), list):
        raise TrajrecFormatError(path, start, "the index frame holds no frame table; "
                                 f"run `trajrec fsck --repair {path}` to rebuild it")
    return index, start


def is_skippable(buf: bytes | memoryview, pos: int) -> bool:
    if len(buf) - pos < 8:
        return False
    magic = int.from_bytes(buf[pos:pos + 4], "little")
    return 0x184D2A50 <= magic <= 0x184D2A5F


def skippable_end(buf: bytes | memoryview, pos: int) -> int:
    _magic, size = _SKIP_HEADER.unpack(bytes(buf[pos:pos + 8]))
    return pos + 8 + size


def frame_extent(buf: bytes | memoryview, pos: int, end: int) -> tuple[int, bool]:
    """Walk a zstd frame's block headers from ``pos`` without decompressing.

    Returns ``(stop, complete)``: the end of the frame when it is complete, else the end of its last whole
    block (a crash or a truncated copy cut the frame).
    """
    if buf[pos:pos + 4] != ZSTD_MAGIC:
        raise ValueError("no zstd frame here")
    p = pos + 4
    if p >= end:
        return pos, False
    fhd = buf[p]
    fcs_flag = fhd >> 6
    single = (fhd >> 5) & 1
    checksum = (fhd >> 2) & 1
    did_flag = fhd & 3
    p += 1 + (0 if single else 1) + (0, 1, 2, 4)[did_flag] + ((1 if single else 0), 2, 4, 8)[fcs_flag]
    last_whole = pos
    while p + 3 <= end:
        bh = buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16)
        last = bh & 1
        btype = (bh >> 1) & 3
        bsize = bh >> 3
        if btype == 3:
            raise ValueError("reserved zstd block type")
        body = 1 if btype == 1 else bsize
        if p + 3 + body > end:
            break
        p += 3 + body
        last_whole = p
        if last:
            if checksum:
                if p + 4 > end:
                    return last_whole, False
                p += 4
            return p, True
    return last_whole, False


_LOCAL = threading.local()


def decompress(data: bytes | memoryview) -> bytes:
    """Decompress one (possibly incomplete) zstd frame; an incomplete frame gives what its whole blocks hold."""
    # One decompression context per thread: making one costs ~9 µs, a scan of 40,000 small files pays it per frame.
    dctx = getattr(_LOCAL, "dctx", None)
    if dctx is None:
        dctx = _LOCAL.dctx = zstandard.ZstdDecompressor()
    return dctx.decompressobj().decompress(data)


def read_span(fh: Any, start: int, stop: int) -> bytes:
    fh.seek(start)
    return fh.read(stop - start)


def map_file(fh: Any) -> mmap.mmap | bytes:
    try:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (ValueError, OSError):  # empty file, or a file system without mmap
        fh.seek(0)
        return fh.read()


def iter_frames(buf: bytes | memoryview | mmap.mmap, path: str, start: int = 0, end: int | None = None
                ) -> Iterator[tuple[int, int, bool, list[dict[str, Any]], int]]:
    """Scan frames in ``buf[start:end]``.

    Yields ``(offset, stop, complete, records, leftover)`` per zstd frame; ``leftover`` counts decompressed
    bytes after the last whole record. Skippable frames are passed over. Stops with
    :class:`TrajrecFormatError` at bytes that are no frame at all.
    """
    end = len(buf) if end is None else end
    view = memoryview(buf)
    pos = start
    while pos < end:
        if is_skippable(view, pos):
            pos = skippable_end(view, pos)
            continue
        try:
            stop, complete = frame_extent(view, pos, end)
        except (ValueError, IndexError) as exc:
            raise TrajrecFormatError(path, pos, f"expected a zstd frame (bytes 28 b5 2f fd), found "
                                     f"{bytes(view[pos:pos + 4]).hex(' ')} ({exc})") from exc
        try:
            raw = decompress(view[pos:stop])
        except zstandard.ZstdError as exc:
            raise TrajrecFormatError(path, pos, f"zstd frame cannot be decompressed: {exc}") from exc
        records, used = decode_records(raw, path=path, offset=pos)
        yield pos, stop, complete, records, len(raw) - used
        if not complete:
            return
        pos = stop


def _ext_fallback(payload: list[str]) -> msgpack.ExtType:
    return msgpack.ExtType(EXT_FALLBACK, packb(payload))
