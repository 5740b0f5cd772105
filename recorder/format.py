"""The episode file's byte layout. The only module that imports msgpack and zstandard.

Layout (``docs/FORMAT.md`` has the full description)::

    zstd frame 0:  header record, reset record, step records ...      (one flushed zstd block per step)
    zstd frame 1:  step records ...                                   (a new frame every N steps or bytes)
    ...
    skippable frame (magic 0x184D2A5B): compact index (zstd, built-in dictionary), u32 its length, u32 its CRC-32,
                                          b"TRJRIDX3"

Decompressed, the frames are one stream of msgpack maps, each with a type key ``"t"``. Standard zstd
decoders skip the index frame, so ``zstd -dc FILE`` prints exactly the record stream. A file without the
index (the process died) is still read by scanning its frames.

Integrity and bounds (format version 2 and later): every frame carries zstd's content checksum (XXH64 of its
decompressed bytes), which the reader checks, and the index carries a CRC-32. Version 3 keeps no copy of the
header in the index: the header record is the first zstd block of frame 0, read from there and checked against
the CRC-32 of its bytes that the index carries; the index itself is delta-encoded and zstd-compressed with a
built-in dictionary (:func:`compact_index`). Every read is bounded whatever
the bytes: a frame may decompress to at most :data:`MAX_FRAME_RAW` bytes, msgpack sizes are bounded by the
decompressed bytes, and extension values may nest at most :data:`MAX_EXT_DEPTH` deep (each level re-enters the C
decoder, so deeper nesting would overflow the C stack). Version-1 files (no checksums, ``TRJRIDX1`` tail) and
version-2 files (a plain msgpack index holding a header copy, ``TRJRIDX2`` tail) still read, with the same bounds.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import re
import struct
import threading
import zlib
from typing import Any, Iterator

import msgpack
import zstandard

from .codec import EXT_FALLBACK, make_default, make_ext_hook
from .errors import TrajrecFormatError, TrajrecIOError
from .validate import compact_problem

MAGIC = "trajrec"
#: 3: a compact index (no header copy, delta-encoded frame rows, zstd with a built-in dictionary; ``TRJRIDX3``).
#: 2: frames carry zstd content checksums and the index a CRC-32 (``TRJRIDX2`` tail). 1: neither.
FORMAT_VERSION = 3
SUFFIX = ".msgpack.zst"

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
INDEX_FRAME_MAGIC = 0x184D2A5B
TAIL_MAGIC = b"TRJRIDX3"
TAIL_MAGIC_V2 = b"TRJRIDX2"
TAIL_MAGIC_V1 = b"TRJRIDX1"
_TAIL = struct.Struct("<I8s")  # version 1: payload length, magic
_TAIL2 = struct.Struct("<II8s")  # versions 2 and 3: payload length, CRC-32 of the payload, magic
_SKIP_HEADER = struct.Struct("<II")
_TAIL_READ = 64 * 1024

#: The largest ``frame_bytes`` a writer accepts: a frame is closed once its uncompressed records reach it.
MAX_FRAME_BYTES_SETTING = 64 << 20
#: The largest packed record a writer stores; bigger values are replaced by marked fallbacks.
MAX_RECORD_BYTES = 128 << 20
#: The most bytes one frame may decompress to: a frame closes at ``frame_bytes`` (at most
#: :data:`MAX_FRAME_BYTES_SETTING`) after the record that reached it, which is at most :data:`MAX_RECORD_BYTES`;
#: checks and the end record are small and close the frame the same way. Anything bigger is not a trajrec frame
#: (a decompression bomb) and is refused before it is decompressed further.
MAX_FRAME_RAW = MAX_FRAME_BYTES_SETTING + 2 * MAX_RECORD_BYTES
#: How deep extension values (tuples, sets, arrays of objects...) may nest inside each other.
MAX_EXT_DEPTH = 32
#: The largest index payload a reader accepts (a million frames' rows and summaries fit many times over).
MAX_INDEX_BYTES = 256 << 20
_ZSTD_BLOCK_MAX = 128 << 10  # zstd's largest block: the most one block can decompress to


# -- values <-> msgpack ---------------------------------------------------------------------------------------------

_ExtType = msgpack.ExtType
_tuple_new = tuple.__new__


def _ext(code: int, data: bytes) -> msgpack.ExtType:
    # ExtType's own __new__ checks its arguments in Python (~0.5 µs, an array observation every step); the codec
    # always passes an int code in 0..127 and bytes, so the tuple is built directly (msgpack reads .code, .data).
    return _tuple_new(_ExtType, (code, data))


def packb(obj: Any) -> bytes:
    """Encode one value to msgpack bytes with the trajrec extension types."""
    return msgpack.packb(obj, use_bin_type=True, strict_types=True, default=_default, datetime=False)


def unpackb(data: bytes) -> Any:
    """Decode one msgpack value. Never executes code: unknown extensions come back as :class:`UnknownExt`.

    Sizes are bounded by ``len(data)`` (msgpack's ``max_buffer_size`` and the ``max_*_len`` it derives) and
    extension values nest at most :data:`MAX_EXT_DEPTH` deep; bad bytes raise ``ValueError`` (or another
    exception msgpack picks), which callers turn into :class:`TrajrecFormatError`.
    """
    # msgpack.unpackb derives its size limits (max_buffer_size and the max_*_len) from len(data) itself.
    return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook, use_list=True)


# Values decoded from a file go back out unchanged (fsck --repair re-encodes damaged frames): an UnknownExt as
# msgpack's own ExtType, which checks the code and bytes it held.
_default = make_default(packb, _ext, msgpack.ExtType)
_codec_ext_hook = make_ext_hook(unpackb)
_ext_depth = threading.local()  # per thread: the TUI decodes in worker threads


def _ext_hook(code: int, data: bytes) -> Any:
    # Each nested extension value re-enters msgpack's C decoder (whose frame holds a ~32 KB stack), so depth is
    # counted here and bounded well below what a thread's C stack holds.
    depth = getattr(_ext_depth, "n", 0)
    if depth >= MAX_EXT_DEPTH:
        raise ValueError(f"extension values nest more than {MAX_EXT_DEPTH} deep")
    _ext_depth.n = depth + 1
    try:
        return _codec_ext_hook(code, data)
    finally:
        _ext_depth.n = depth


def new_packer() -> msgpack.Packer:
    """A reusable packer for the hot path (one per writer; not thread-safe)."""
    return msgpack.Packer(use_bin_type=True, strict_types=True, default=_default, datetime=False)


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
    if level < 3:
        # Levels 1 and 2 ask for speed: zstd's own parameters (the fast and dfast match finders). On the tool
        # env's steps (~825 bytes each, a state diff in each) level 1 cost ~4 µs a step less than level 3 and
        # wrote ~25% more bytes (docs/PERFORMANCE.md, "Recording"). Before, they too took the tuned finder below.
        return zstandard.ZstdCompressionParameters.from_level(level, write_checksum=1, write_content_size=0)
    # Each step is its own tiny flushed block. Level 3 keeps zstd's own finder for it (dfast), with smaller tables,
    # and adds zstd's long-distance matcher (LDM). What dfast misses on a tool env's steps is a state diff's old
    # values: a row's old value is the text the leaf took when it last changed, often tens of KB back, which
    # dfast's one candidate a position rarely finds (178 B a step on bench/record_overhead.py's tool env, over
    # DESIGN's 2x of the plain stream, 173). The LDM finds such repeats of 64 bytes or more at any distance in the
    # window, sampling one position in 64 (ldm_hash_rate_log 6) into a 2^14-entry table: ~167 B a step (1.93x)
    # for ~1.1-1.4 µs a step less than the greedy finder this replaced (8 candidates a position, 165 B), whose
    # row match finder was a third of the step's zstd time. Sweeps: docs/PERFORMANCE.md, "Session 10".
    # dfast's tables (2^16 and 2^14 entries, a half and a quarter of level 3's) stay warmer in the cache between
    # steps, where the recorder's other work evicts them; the window stays level 3's (2 MiB: a frame is <= ~1 MiB).
    # A minimum match of 6 bytes suits msgpack records (short keys and numbers are not worth a match): ~0.2 µs a
    # step less than 5 in place, for no more bytes.
    # Readers need nothing new: the LDM only changes which matches the encoder finds (the frames are RFC 8878's).
    base = zstandard.ZstdCompressionParameters.from_level(level)
    # The content checksum (XXH64, 4 bytes a frame) lets readers tell damaged bytes from data.
    if level == 3:
        return zstandard.ZstdCompressionParameters.from_level(level, hash_log=16, chain_log=14, min_match=6,
                                                              enable_ldm=1, ldm_min_match=64, ldm_hash_rate_log=6,
                                                              ldm_hash_log=14, ldm_bucket_size_log=3,
                                                              write_checksum=1, write_content_size=0)
    strategy = max(base.strategy, zstandard.STRATEGY_LAZY)
    return zstandard.ZstdCompressionParameters.from_level(level, strategy=strategy, min_match=max(base.min_match, 6),
                                                          write_checksum=1, write_content_size=0)


#: A frame whose first write is at least this many packed bytes (an image, a big array) is compressed with zstd's
#: own parameters for the level: on 84x84x3 images the lazy finder cost 80 µs a step against 32 (and gave 4% more
#: bytes); on 20 KB of text it cost 1.8x the time for 6% fewer bytes. Small records keep the tuned parameters.
BIG_RECORD = 16 << 10
#: A frame whose first record is smaller than this (a few numbers: CartPole's steps) uses zstd's own parameters
#: too: on such records the lazy finder gains nothing (CartPole: 1,365 bytes a 20-step frame against 1,358) and
#: costs ~0.7 µs a step. Frame 0 is judged by its reset record, not the header before it.
SMALL_RECORD = 256


class Compressors:
    """The zstd contexts a writer picks from per frame, by the size of the frame's first record (see
    :data:`SMALL_RECORD`, :data:`BIG_RECORD`): the tuned parameters in between, zstd's own for the level
    outside; all write content checksums. Shared across the files one writer makes in turn, with one packer."""

    def __init__(self, level: int = 3) -> None:
        self.small = zstandard.ZstdCompressor(compression_params=_params(level))
        self._level = level
        self._big: Any = None
        self._head: Any = None
        #: The packer the files share too (creating one per file costs a few µs; a writer is single-threaded).
        self.packer = new_packer()

    def compressobj(self, first: int = 0, header: bool = False) -> Any:
        """A compressor for a new frame whose first record packs to ``first`` bytes; ``header``: the frame opens
        with the header record (frame 0)."""
        if header and first < SMALL_RECORD and self._level <= 3:
            # Frame 0 of a file whose records are a few numbers (CartPole): zstd's fast match finder with the
            # literals left as they are (``target_length`` 1 turns their Huffman coding off). Coding the literals
            # of the header's block and the reset's cost ~10 µs a file, more than all the steps of a ~22-step
            # episode together, for ~110 bytes (~5%) of such a file; those steps' own blocks come out the same.
            if self._head is None:
                self._head = zstandard.ZstdCompressor(compression_params=zstandard.ZstdCompressionParameters.from_level(
                    self._level, strategy=zstandard.STRATEGY_FAST, target_length=1, write_checksum=1,
                    write_content_size=0))
            return self._head.compressobj()
        return self._pick(first).compressobj()

    def frame(self, raw: bytes) -> bytes:
        """``raw`` as a closed frame of its own, compressed in one call (as :meth:`compressobj` would pick)."""
        return self._pick(len(raw)).compress(raw)

    def _pick(self, first: int) -> Any:
        if SMALL_RECORD <= first < BIG_RECORD:
            return self.small
        if self._big is None:
            self._big = zstandard.ZstdCompressor(compression_params=zstandard.ZstdCompressionParameters.from_level(
                self._level, write_checksum=1, write_content_size=0))
        return self._big


def new_compressor(level: int = 3) -> Compressors:
    """The zstd contexts with trajrec's parameters, to share across the files one writer makes in turn."""
    return Compressors(level)


# -- writing --------------------------------------------------------------------------------------------------------

# A zstd block header for an empty raw block that is the last of its frame (RFC 8878, 3.1.1.2): appended after
# the last whole block of a frame whose next write failed, it closes the frame with exactly what was written.
_EMPTY_LAST_BLOCK = b"\x01\x00\x00"
_FLUSH_BLOCK = zstandard.COMPRESSOBJ_FLUSH_BLOCK
_FLUSH_FINISH = zstandard.COMPRESSOBJ_FLUSH_FINISH


def content_checksum(raw: bytes) -> bytes:
    """zstd's frame content checksum of ``raw`` (RFC 8878, 3.1.1: the low 4 bytes of XXH64, seed 0, little
    endian), taken from the end of a frame zstd makes of it: python-zstandard does not expose XXH64 itself."""
    return zstandard.ZstdCompressor(level=1, write_checksum=True, write_content_size=False).compress(raw)[-4:]


try:
    import fcntl as _fcntl  # POSIX only; imported once, not per file (a file's fixed cost counts on short episodes)
except ImportError:  # pragma: no cover  (Windows)
    _fcntl = None  # type: ignore[assignment]


def lock_file(fd: int) -> bool:
    """Take the exclusive advisory lock (``flock``) that marks a file as being written; False if another
    open file holds it. Platforms and file systems without ``flock`` count as unlocked."""
    if _fcntl is None:
        return True
    try:
        _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without flock support
        return True
    return True


def remove_new(path: str, fd: int | None) -> None:
    """Close ``fd`` and remove ``path``, a file this process just created (``O_EXCL``) and wrote nothing to, when
    making its writer stopped half way; errors are ignored (the stop or error that got here goes on)."""
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
    with contextlib.suppress(OSError):
        if os.path.getsize(path) == 0:  # never anything of someone else's
            os.unlink(path)


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

    # The fields the usual step's C write (recorder/_cdiff.c: usual_write) reads and stores in place, as slots at
    # offsets it takes once; the rest, and whatever tests set (write_fd), live in the instance's dict.
    __slots__ = ("_fd", "_co", "_fsync", "offset", "frame_raw", "broken", "_cut_pending", "_frame_chunks",
                 "_deferred", "__dict__", "__weakref__")

    #: ``os.write``; tests swap in a writer that fails on purpose (a full disk, a torn write).
    write_fd: Any = staticmethod(os.write)

    def __init__(self, path: str | os.PathLike[str], *, level: int = 3, fsync: bool = False,
                 compressor: Any = None) -> None:
        self.path = os.fspath(path)
        try:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise TrajrecIOError(f"cannot create episode file {self.path}: {exc.strerror}") from exc
        try:
            lock_file(self._fd)  # a brand-new file (O_EXCL): nobody else can hold its lock yet
            # A compressor shared across a Recorder's episodes keeps its context: creating one costs ~40 µs.
            self._cctx = compressor if compressor is not None else new_compressor(level)
            self._co: Any = None
            self._packer = getattr(self._cctx, "packer", None) or new_packer()
        except BaseException:
            # Nothing will ever close this writer (a Ctrl-C, a failing compressor): the new, empty file goes,
            # not left as an empty episode for every reader to skip.
            remove_new(self.path, self._fd)
            self._fd = None
            raise
        self._fsync = fsync
        self.offset = 0
        self.frame_offset = 0
        self.frame_raw = 0
        self.broken: str | None = None
        self._cut_pending = False
        # The records written whole into the open frame: a frame cut by a failed write is closed with its
        # content checksum, computed from them (format version 2 checks every frame's checksum).
        self._frame_chunks: list[bytes] = []
        #: A closed frame counted in :attr:`offset` but not written yet (``write_raw(defer=True)``).
        self._deferred = b""

    @property
    def in_frame(self) -> bool:
        return self._co is not None

    def pack(self, record: dict[str, Any]) -> bytes:
        return self._packer.pack(record)

    @property
    def pack_function(self) -> Any:
        """The packer's bound ``pack`` (what :meth:`pack` calls, one call less on the hot path)."""
        return self._packer.pack

    def write_raw(self, raw: bytes, *, finish: bool = False, head: bytes | None = None, defer: bool = False) -> None:
        """Compress already packed records into the current frame (opening one if needed) and flush a block;
        with ``finish``, close the frame in the same write. ``head``: packed records flushed as a block of
        their own before ``raw``, in the same write (the header record: readers decompress only that block).
        ``defer`` (with ``finish``): keep the bytes for the next write, which then writes both with one system
        call (the end record goes out with the index)."""
        co = self._co
        first = len(raw) + (len(head) if head is not None else 0)
        if co is None:
            self._check_usable()
            co = self._co = self._cctx.compressobj(len(raw), head is not None)  # by the record, not the header
            self.frame_offset = self.offset
            self.frame_raw = 0
            self._frame_chunks = []
        self.frame_raw += first
        lead = b""
        if head is not None:
            lead = co.compress(head) + co.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        if finish:
            data = lead + co.compress(raw) + co.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
            if defer:
                self._deferred = data
                self.offset += len(data)
                self._co = None
                self._frame_chunks = []
                return
            self._write(data, in_frame=True)
            self._co = None
            self._frame_chunks = []
            self._sync()
            return
        self._write(lead + co.compress(raw) + co.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK), in_frame=True)
        if head is not None:
            self._frame_chunks.append(head)
        self._frame_chunks.append(raw)

    def append(self, raw: bytes, finish: bool = False) -> None:
        """``write_raw(raw, finish=finish)`` for a record going into the open frame: the per-step hot path, without
        the header and deferred-write cases (~0.3 µs a step); anything else takes :meth:`write_raw`."""
        co = self._co
        if co is None:
            self.write_raw(raw, finish=finish)
            return
        self.frame_raw += len(raw)
        if finish:
            self._write(co.compress(raw) + co.flush(_FLUSH_FINISH), in_frame=True)
            self._co = None
            self._frame_chunks = []
            if self._fsync:
                self._sync()
            return
        data = co.compress(raw) + co.flush(_FLUSH_BLOCK)
        fd = self._fd
        if fd is None or self.broken or self._cut_pending or self._deferred:
            self._write(data, in_frame=True)
        else:  # _write's usual case, without its call
            start = self.offset
            try:
                n = self.write_fd(fd, data)
                self.offset = start + n
                if n < len(data):
                    self._write_rest(fd, data, n)
            except OSError as exc:
                self._write_error(start, exc, True)
        self._frame_chunks.append(raw)

    def defer_frame(self, raw: bytes) -> None:
        """``write_raw(raw, finish=True, defer=True)`` when no frame is open: ``raw`` becomes a closed frame of its
        own, compressed in one call (the end record: a file's fixed cost counts on short episodes)."""
        if self._co is not None or self._cut_pending or self._deferred:
            self.write_raw(raw, finish=True, defer=True)
            return
        self._check_usable()
        frame = getattr(self._cctx, "frame", None)
        if frame is not None:
            data = frame(raw)
        else:
            co = self._cctx.compressobj(len(raw))
            data = co.compress(raw) + co.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
        self.frame_offset = self.offset
        self.frame_raw = len(raw)
        self._deferred = data
        self.offset += len(data)

    def end_frame(self) -> None:
        if self._co is not None:
            self._write(self._co.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH), in_frame=True)
            self._co = None
            self._frame_chunks = []
            self._sync()

    def write_index(self, index: dict[str, Any], pack: Any = None, head: bytes | None = None) -> None:
        """Close the open frame and append the index frame (compact, version 3, when ``head``, the header
        record's packed bytes, is given; else the version-2 layout)."""
        self.write_index_frame(index_frame(index, pack, head))

    def write_index_frame(self, frame: bytes) -> None:
        """Close the open frame and append ``frame``, an index frame already made (:func:`compact_index_frame`)."""
        self.end_frame()
        self._write(frame)

    def take_deferred(self) -> bytes:
        """The closed frame kept for the next write (``write_raw(defer=True)``, :meth:`defer_frame`), handed to the
        caller, who writes it with what follows through :meth:`write_tail` (at :attr:`offset`, which no longer
        counts it)."""
        data, self._deferred = self._deferred, b""
        self.offset -= len(data)
        return data

    def write_tail(self, data: bytes) -> None:
        """Append ``data`` (a close's end frame and index) in one write. A failed write cuts the file back to
        :attr:`offset` and raises :class:`TrajrecIOError` (:attr:`broken` when even the cut fails)."""
        self._write(data)

    def write_tail_again(self, data: bytes) -> None:
        """After :meth:`close`: append ``data`` at :attr:`offset`, where a failed :meth:`write_tail` cut the file
        back to, reopening the file (the retry of a close that failed for a full disk or a file-size limit).

        Raises:
            TrajrecIOError: the file changed since (``fsck --repair`` closed it, another process holds it) and is
                left as it is; or the write failed again, and the file is cut back to :attr:`offset` once more.
        """
        try:
            fd = os.open(self.path, os.O_WRONLY)
        except OSError as exc:
            raise TrajrecIOError(f"cannot open episode file {self.path} again: {exc.strerror}") from exc
        try:
            if not lock_file(fd) or os.fstat(fd).st_size != self.offset:
                raise TrajrecIOError(f"episode file {self.path} changed since its close failed (another process "
                                     f"holds it, or `trajrec fsck --repair` closed it): nothing written to it")
            os.lseek(fd, self.offset, os.SEEK_SET)
            view = memoryview(data)
            try:
                while view:
                    n = self.write_fd(fd, view)
                    if n <= 0:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    view = view[n:]
                if self._fsync:
                    os.fsync(fd)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, self.offset)  # as it was: the next retry writes the same bytes there
                raise TrajrecIOError(f"cannot write to episode file {self.path} at byte {self.offset}: "
                                     f"{exc.strerror}. This record was not written; the file was cut back to byte "
                                     f"{self.offset}, its earlier records are intact.") from exc
            self.offset += len(data)
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._fd is not None and self._deferred and not self.broken:
            self._write(b"")  # a deferred frame whose index never came: it goes out alone
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
        # The empty last block, then the frame's content checksum (its header declares one): the low 4 bytes of
        # XXH64 of what the frame holds, which a throwaway zstd frame of the same content ends with.
        tail = _EMPTY_LAST_BLOCK + content_checksum(b"".join(self._frame_chunks))
        try:
            n = self.write_fd(self._fd, tail)
            self.offset = start + n
            if n < len(tail):  # the rest, to learn why it stopped (a file-size limit is not a full disk)
                self._write_rest(self._fd, tail, n)
        except OSError as exc:
            where = self._cut(start, exc)
            raise TrajrecIOError(f"cannot write to episode file {self.path} at byte {start}: {exc.strerror}. "
                                 f"{where}") from exc
        self.offset = start + len(tail)
        self._cut_pending = False
        self._frame_chunks = []

    def _write(self, data: bytes, *, in_frame: bool = False) -> None:
        fd = self._fd
        if fd is None or self.broken:
            self._check_usable()
        assert fd is not None
        if self._cut_pending:
            self.finish_cut_frame()
        start = self.offset
        if self._deferred:
            data = self._deferred + data
            start -= len(self._deferred)
            self.offset = start
            self._deferred = b""
        try:
            n = self.write_fd(fd, data)
            self.offset += n
            if n < len(data):
                self._write_rest(fd, data, n)
        except OSError as exc:
            self._write_error(start, exc, in_frame)

    def _write_rest(self, fd: int, data: bytes, n: int) -> None:
        """After a short write (a signal, a full pipe...) of ``n`` bytes: write the rest (OSError goes up; a write
        that takes nothing is a full disk)."""
        view = memoryview(data)[n:]
        while view:
            n = self.write_fd(fd, view)
            if n <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.offset += n
            view = view[n:]

    def _write_error(self, start: int, exc: OSError, in_frame: bool) -> None:
        """A write from byte ``start`` failed: cut the file back and raise :class:`TrajrecIOError`."""
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


def index_frame(index: dict[str, Any], pack: Any = None, head: bytes | None = None) -> bytes:
    """The skippable frame holding ``index`` (as :func:`read_tail_index` returns it: header, frames, summary...).

    With ``head`` (the header record's packed bytes, the first record of frame 0): the version-3 layout, the
    :func:`compact_index` compressed with the built-in dictionary, u32 length, u32 CRC-32, ``TRJRIDX3``.
    Without: the version-2 layout, the whole index as msgpack, u32 length, u32 CRC-32, ``TRJRIDX2``.
    """
    if head is None:
        payload = (pack or packb)(index)
        body = payload + _TAIL2.pack(len(payload), zlib.crc32(payload), TAIL_MAGIC_V2)
        return _SKIP_HEADER.pack(INDEX_FRAME_MAGIC, len(body)) + body
    return compact_index_frame(compact_index(index, head), pack)


def compact_index_frame(compact: dict[str, Any], pack: Any = None) -> bytes:
    """The version-3 skippable index frame of a :func:`compact_index` (the writer builds that dict itself)."""
    payload = _index_compressor().compress((pack or packb)(compact))
    body = payload + _TAIL2.pack(len(payload), zlib.crc32(payload), TAIL_MAGIC)
    return _SKIP_HEADER.pack(INDEX_FRAME_MAGIC, len(body)) + body


def write_index_to(path: str, index: dict[str, Any], fd: int, pack: Any = None, head: bytes | None = None) -> None:
    """Append an index frame through an open descriptor (used by ``fsck --repair``; ``head`` as for
    :func:`index_frame`)."""
    view = memoryview(index_frame(index, pack, head))
    while view:
        view = view[os.write(fd, view):]


# -- the version-3 compact index ------------------------------------------------------------------------------------

#: The fields of a version-2 index that the compact index stores under short keys (the rest go under ``"x"``).
_COMPACT_KEYS = {"summary": "s", "checks": "c", "step_checks": "sc", "repaired": "r", "step_marks": "m"}
_EXPANDED = ("version", "steps", "frames", "header", "summary", "checks", "step_checks", "step_marks")

#: The zstd dictionary (raw content) version-3 index payloads are compressed with: a typical compact index, so the
#: summary's field names cost a few bytes (a 20-step episode's index: 243 bytes of msgpack, 211 compressed alone,
#: 67 with it). Part of the format: a different dictionary needs a new format version (a test pins its CRC-32).
INDEX_DICTIONARY = msgpack.packb({
    "v": 3, "f": [0, 0, 0], "hc": 0, "hl": 0,
    "s": {"steps": 0, "return": 0.0, "outcome": "terminated", "terminated": False, "truncated": False, "error": None,
          "failures": 0, "retries": 0, "recoveries": 0,
          "checks": {"total": 0, "passed": 0, "failed": 0, "by_kind": {}, "by_judge": {}, "terminal_judge": None},
          "start_time": 0.0, "end_time": 0.0, "finished": True,
          "model": {"calls": 0, "failed_attempts": 0, "failed_calls": 0, "prompt_tokens": 0, "completion_tokens": 0,
                    "total_tokens": 0, "latency": 0.0, "cost": 0.0, "models": {}}},
    "c": [{"target": "episode", "kind": "rule", "judge": "", "value": True, "score": None, "rationale": None,
           "tags": [], "author": None, "time": 0.0, "supersedes": None, "id": "c1"}],
    "outcome": "passed", "failed": "truncated", "incomplete": "stopped", "error": "environment", "judge": "step",
}, use_bin_type=True)
_index_ctx = threading.local()


def _index_dict() -> Any:
    d = getattr(_index_ctx, "dict", None)
    if d is None:
        d = _index_ctx.dict = zstandard.ZstdCompressionDict(INDEX_DICTIONARY, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return d


def _index_compressor() -> Any:
    # Per thread (a context is not thread-safe); creating one with the dictionary costs ~8 µs, so it is reused.
    # zstd's fast match finder with its literals left as they are (``target_length`` 1 turns their Huffman
    # coding off): an index is a few hundred bytes whose repeats the dictionary supplies, so coding the rest
    # gained 1 byte a file for ~2.5 µs a file (~1.2 µs against ~3.8 at level 3: a file's fixed cost counts on
    # short episodes). Any zstd decoder reads either.
    c = getattr(_index_ctx, "c", None)
    if c is None:
        params = zstandard.ZstdCompressionParameters.from_level(
            3, strategy=zstandard.STRATEGY_FAST, target_length=1, write_checksum=0, write_content_size=1,
            write_dict_id=0)
        c = _index_ctx.c = zstandard.ZstdCompressor(dict_data=_index_dict(), compression_params=params)
    return c


def _index_decompressor() -> Any:
    d = getattr(_index_ctx, "d", None)
    if d is None:
        d = _index_ctx.d = zstandard.ZstdDecompressor(dict_data=_index_dict())
    return d


def compact_index(index: dict[str, Any], head: bytes) -> dict[str, Any]:
    """The version-3 form of an index (the dict :func:`read_tail_index` returns): no header copy, but the
    CRC-32 (``hc``) and length (``hl``) of the header record's packed bytes ``head``, which open frame 0; frame
    rows as ``f`` = ``[gap, n_steps, length]`` per frame, flat (``gap``: bytes since the previous frame's end;
    first steps and the step count follow from the ``n_steps``); empty check lists left out; fields of other
    names kept under ``x``."""
    flat: list[int] = []
    end = 0
    for row in index["frames"]:
        offset, _first, n, stop = row[:4]
        flat += (offset - end, n, stop - offset)
        end = stop
    out: dict[str, Any] = {"v": index.get("version", FORMAT_VERSION), "f": flat, "hc": zlib.crc32(head),
                           "hl": len(head)}
    extra = {}
    for key, value in index.items():
        short = _COMPACT_KEYS.get(key)
        if short is not None:
            if value or key in ("summary", "step_marks"):  # no marks and unknown marks differ
                out[short] = value
        elif key not in _EXPANDED:
            extra[key] = value
    if extra:
        out["x"] = extra
    return out


def expand_index(c: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
    """The index as every reader uses it (the version-2 shape) from a checked compact index and the header
    record read from frame 0 (without its ``t``)."""
    f = c["f"]
    frames = []
    end = first = 0
    for k in range(0, len(f), 3):
        offset = end + f[k]
        end = offset + f[k + 2]
        frames.append([offset, first, f[k + 1], end])
        first += f[k + 1]
    index: dict[str, Any] = {"version": c["v"], "steps": first, "frames": frames, "header": header,
                             "summary": c.get("s", {}), "checks": c.get("c", []), "step_checks": c.get("sc", [])}
    if "r" in c:
        index["repaired"] = c["r"]
    if "m" in c:
        index["step_marks"] = c["m"]
    for key, value in (c.get("x") or {}).items():
        index.setdefault(key, value)
    return index


def first_record_bytes(raw: bytes | memoryview) -> bytes:
    """The packed bytes of the first msgpack record in decompressed frame bytes (the header, in frame 0).

    Raises ``ValueError`` (or another exception msgpack picks) when there is no whole record."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, ext_hook=_ext_hook, use_list=True,
                                max_buffer_size=max(len(raw), 1))
    unpacker.feed(raw)
    unpacker.unpack()
    return bytes(raw[:unpacker.tell()])


def read_head_record(fh: Any, size: int, path: str, length: int, crc: int, buf: bytes | None = None
                     ) -> dict[str, Any]:
    """The header record of a version-3 file: the first ``length`` decompressed bytes of frame 0, which must have
    CRC-32 ``crc`` (from the index) and decode to one header record. Decompresses only the blocks it needs
    (the writer flushes the header as a block of its own) and never more than ``length`` plus one block.

    ``buf``: the file's bytes from offset 0 when the caller already holds them (a small file's tail read).

    Raises:
        TrajrecFormatError: frame 0 does not start with a header of that length and CRC-32.
    """
    fix = f"run `trajrec fsck --repair {path}` to rebuild the index"
    have = bytearray()

    def span(a: int, b: int) -> bytes:
        # The file's bytes a..b (fewer at its end): from ``buf``, else read in 64 KiB steps beyond what is in hand.
        if buf is not None:
            return buf[a:b]
        if len(have) < b and len(have) < size:
            fh.seek(len(have))
            have.extend(fh.read(min(size, max(b, len(have) + (64 << 10))) - len(have)))
        return bytes(have[a:b])

    # Whole zstd blocks are fed one at a time (their headers say where they end): a block decompresses to at most
    # 128 KiB, so no more than the header plus one block is produced, and a header of one block is one call.
    dobj = _decompressor().decompressobj()
    parts: list[bytes] = []
    total = 0
    try:
        head = span(0, 18)  # the longest frame header: magic, descriptor, window, dictionary id, content size
        if len(head) < 6 or head[:4] != ZSTD_MAGIC:
            raise zstandard.ZstdError("no zstd frame at byte 0")
        fhd = head[4]
        single, did_flag, fcs_flag = (fhd >> 5) & 1, fhd & 3, fhd >> 6
        p = 5 + (0 if single else 1) + (0, 1, 2, 4)[did_flag] + ((1 if single else 0), 2, 4, 8)[fcs_flag]
        piece = dobj.decompress(head[:p])
        while total < length and not dobj.eof:
            bh = span(p, p + 3)
            if len(bh) < 3:
                break
            block = bh[0] | (bh[1] << 8) | (bh[2] << 16)
            btype, bsize = (block >> 1) & 3, block >> 3
            if btype == 3 or bsize > _ZSTD_BLOCK_MAX:
                raise zstandard.ZstdError("not a zstd block")
            stop = p + 3 + (1 if btype == 1 else bsize)
            data = span(p, stop)
            if len(data) < stop - p:
                break  # the file ends inside the block
            piece = dobj.decompress(data)
            if piece:
                parts.append(piece)
                total += len(piece)
            p = stop
            if block & 1:  # the frame's last block: what it holds is all there is
                break
    except zstandard.ZstdError as exc:
        raise TrajrecFormatError(path, 0, f"the first zstd frame cannot be decompressed ({exc}); {fix}") from exc
    raw = b"".join(parts)
    if len(raw) < length:
        raise TrajrecFormatError(path, 0, f"the index is inconsistent with the file: the first zstd frame holds "
                                 f"{len(raw)} bytes, less than the {length}-byte header record it names; {fix}")
    head = raw[:length]
    if zlib.crc32(head) != crc:
        raise TrajrecFormatError(path, 0, f"the index is inconsistent with the file: the header record does not match "
                                 f"the index's CRC-32 of it; {fix}")
    try:
        rec = unpackb(head)
    except Exception as exc:  # msgpack raises several unrelated types for bad bytes
        raise TrajrecFormatError(path, 0, f"the index is inconsistent with the file: the header record it names cannot "
                                 f"be decoded ({type(exc).__name__}: {exc}); {fix}") from exc
    if not isinstance(rec, dict) or rec.get("t") != "header":
        raise TrajrecFormatError(path, 0, f"the index is inconsistent with the file: the first record is not a header; "
                                 f"{fix}")
    return {k: v for k, v in rec.items() if k != "t"}


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
    """Find the index frame at the end of the file and check it (CRC-32 from version 2, bounds for all).

    A version-3 index is decompressed, checked (``validate.compact_problem``) and expanded with the header record read
    from the start of frame 0 (:func:`read_head_record`, checked against the index's CRC-32 of it), so every
    version gives the same shape: ``version``, ``steps``, ``frames`` (``[offset, first_step, n_steps,
    end_offset]`` rows), ``header``, ``summary``, ``checks``, ``step_checks`` (and ``repaired``).

    Returns ``(index, index_offset)``; ``(None, size)`` when the file has no index (its writer died).
    Raises :class:`TrajrecFormatError` when an index is there but damaged (callers then scan the frames).
    """
    if size < _TAIL.size + _SKIP_HEADER.size:
        return None, size
    n = min(size, _TAIL_READ)
    fh.seek(size - n)
    tail = fh.read(n)
    magic = tail[-8:]
    if (magic == TAIL_MAGIC or magic == TAIL_MAGIC_V2) and len(tail) >= _TAIL2.size:
        length, crc, _ = _TAIL2.unpack(tail[-_TAIL2.size:])
        tail_size: int = _TAIL2.size
    elif magic == TAIL_MAGIC_V1:
        length, _ = _TAIL.unpack(tail[-_TAIL.size:])
        crc, tail_size = None, _TAIL.size
    else:
        return None, size
    fix = f"run `trajrec fsck --repair {path}` to rebuild it"
    start = size - tail_size - length - _SKIP_HEADER.size
    if start < 0 or length > MAX_INDEX_BYTES:
        raise TrajrecFormatError(path, size - tail_size, f"index length {length} is larger than the file (or "
                                 f"than {MAX_INDEX_BYTES} bytes); {fix}")
    whole = tail if n == size else None  # a small file read whole: frame 0's start is in hand too
    if size - start > n:
        fh.seek(start)
        tail = fh.read(size - start)
        head = 0
    else:
        head = n - (size - start)
    frame_magic, body_len = _SKIP_HEADER.unpack(tail[head:head + _SKIP_HEADER.size])
    if frame_magic != INDEX_FRAME_MAGIC or body_len != length + tail_size:
        raise TrajrecFormatError(path, start, f"the index frame header does not match its tail; {fix}")
    payload = tail[head + _SKIP_HEADER.size: head + _SKIP_HEADER.size + length]
    if crc is not None and zlib.crc32(payload) != crc:
        raise TrajrecFormatError(path, start, f"the index frame is damaged (its CRC-32 does not match); {fix}")
    try:
        if magic == TAIL_MAGIC:
            # A few bytes must not claim hundreds of MiB: an honest index compresses far less than 1024:1.
            limit = min(MAX_INDEX_BYTES, (1 << 20) + 1024 * len(payload))
            payload, done = decompress_bounded(payload, limit, _index_decompressor())
            if not done:
                raise ValueError("the compressed index ends before its zstd frame does")
        index = unpackb(payload)
    except FrameTooLarge as exc:
        raise TrajrecFormatError(path, start, f"the index frame is damaged ({exc}); {fix}") from exc
    except Exception as exc:  # zstd and msgpack raise several unrelated types for bad bytes
        raise TrajrecFormatError(path, start, f"the index frame is damaged ({type(exc).__name__}: {exc}); "
                                 f"{fix}") from exc
    if magic == TAIL_MAGIC:
        problem = compact_problem(index, MAX_RECORD_BYTES)
        if problem:
            raise TrajrecFormatError(path, start, f"the index is inconsistent: {problem}; {fix}")
        try:
            header = read_head_record(fh, size, path, index["hl"], index["hc"], whole)
            head_damaged = False
        except TrajrecFormatError as exc:
            # The index is sound (its CRC-32 matched): if frame 0 is damaged, the header record in it is what was
            # lost, not the index; the steps stay readable and fsck --repair keeps them (lost_header).
            header = _damaged_head(fh, size, path, index, exc, whole)
            head_damaged = True
        index = expand_index(index, header)
        if head_damaged:
            index["head_damaged"] = True  # frame 0 itself is damaged now (a repaired file's header is sound)
    if not isinstance(index, dict) or not isinstance(index.get("frames"), list):
        raise TrajrecFormatError(path, start, f"the index frame holds no frame table; {fix}")
    return index, start


#: The file names a Recorder gives: ``<env>-<UTC time>-<8 hex digits>``, the episode id, then :data:`SUFFIX`.
_RECORDER_NAME = re.compile(r".+-\d{8}T\d{6}-[0-9a-f]{8}")


def lost_header(path: str, version: Any, why: str, span: tuple[int, int | None] | None, crc: int, length: int
                ) -> dict[str, Any]:
    """The header a reader uses, and ``fsck --repair`` writes at the start of frame 0, for a version-3 file whose
    header record was lost to damaged bytes (the index keeps no copy, only its CRC-32 and length).

    Nothing is invented: the task and the provenance, which only the header held, are absent. It carries the
    magic and the format ``version`` (from the sound index that found the damage), the episode id when the file
    still has the name a Recorder gives (the id is that name), and ``lost``: ``why``, the damaged bytes
    (``offset``, ``end``: frame 0's first block; ``end`` null when its block header is the damaged part, and
    ``offset`` 0 when the frame header is), the lost
    record's ``crc32`` and ``length`` as the index held them, and ``from``: where each field kept came from.
    """
    lost: dict[str, Any] = {"why": why, "offset": span[0] if span else 0, "end": span[1] if span else None,
                            "crc32": crc, "length": length,
                            "from": {"magic": "the index (its TRJRIDX3 tail)", "version": "the index"}}
    header: dict[str, Any] = {"magic": MAGIC, "version": version, "lost": lost}
    name = os.path.basename(path)
    if name.endswith(SUFFIX) and _RECORDER_NAME.fullmatch(name[:-len(SUFFIX)]):
        header["episode_id"] = name[:-len(SUFFIX)]
        lost["from"]["episode_id"] = "the file name (a Recorder names each file after its episode id)"
    return header


def _damaged_head(fh: Any, size: int, path: str, c: dict[str, Any], exc: TrajrecFormatError,
                  buf: bytes | None) -> dict[str, Any]:
    """:func:`lost_header` when frame 0 (its extent from the checked compact index ``c``) fails its own checks;
    else ``exc`` (the header read from a sound frame 0 does not match the index: the index is the inconsistent
    one, and the reader scans the frames instead)."""
    stop = c["f"][0] + c["f"][2]
    if buf is not None:
        data = buf[:stop]
    else:
        fh.seek(0)
        data = fh.read(stop)
    try:
        decode_frame(data, path=path, offset=0, checksum=True, complete=True)
    except TrajrecFormatError:
        pass
    else:
        raise exc
    span: tuple[int, int | None] | None = head_block_span(data)
    claimed = ""
    if span is not None and span[1] is not None and not _blocks_reach_end(data, span[1]):
        # The size the block header gives does not end where a block starts (the blocks after it do not walk to the
        # frame's end): the damaged byte is in the block header itself, and that size is not the block's extent.
        true = _true_head_span(data, span[0], c["hl"], c["hc"])
        claimed = f" (its block header is damaged: it gives {span[1] - span[0] - 3} bytes, which do not end where " \
                  f"the next block starts)"
        span = true if true is not None else (span[0], None)
    if span is None and bytes(data[:4]) == ZSTD_MAGIC and len(data) > 5 and not data[4] & 8:
        # The frame header reads: the first block's own header is damaged (a reserved type, a size past zstd's).
        p = _frame_header_size(data)
        span = _true_head_span(data, p, c["hl"], c["hc"]) or (p, None)
        if span[1] is not None:
            claimed = " (its block header is damaged: zstd refuses it)"
    reason = str(exc).removeprefix(f"{path} at byte 0: ").split("; run `trajrec fsck", 1)[0]
    reason = reason.removeprefix("the index is inconsistent with the file: ")  # frame 0 is what is damaged
    if "CRC-32" in reason:
        reason = "what it decompresses to does not match the CRC-32 the index holds for it"
    where = (f"frame 0's first zstd block, bytes {span[0]}..{span[1] - 1}{claimed}, which held it alone,"
             if span and span[1]
             else f"the header of frame 0's first zstd block (the header record's), at byte {span[0]}," if span
             else "the zstd frame header of frame 0, from byte 0,")
    why = (f"{where} is damaged: {reason}; the index keeps no copy of it, so the task and the provenance it held "
           f"are unknown")
    return lost_header(path, c["v"], why, span, c["hc"], c["hl"])


def is_skippable(buf: bytes | memoryview, pos: int) -> bool:
    if len(buf) - pos < 8:
        return False
    magic = int.from_bytes(buf[pos:pos + 4], "little")
    return 0x184D2A50 <= magic <= 0x184D2A5F


def skippable_end(buf: bytes | memoryview, pos: int) -> int:
    _magic, size = _SKIP_HEADER.unpack(bytes(buf[pos:pos + 8]))
    return pos + 8 + size


def frame_has_checksum(buf: bytes | memoryview, pos: int) -> bool:
    """True when the zstd frame at ``pos`` declares a content checksum (frame header descriptor bit 2)."""
    return len(buf) > pos + 4 and bool(buf[pos + 4] & 4)


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
    if fhd & 8:
        raise ValueError("reserved bit set in the zstd frame header")
    p += 1 + (0 if single else 1) + (0, 1, 2, 4)[did_flag] + ((1 if single else 0), 2, 4, 8)[fcs_flag]
    last_whole = pos
    while p + 3 <= end:
        bh = buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16)
        last = bh & 1
        btype = (bh >> 1) & 3
        bsize = bh >> 3
        if btype == 3:
            raise ValueError("reserved zstd block type")
        if bsize > _ZSTD_BLOCK_MAX:
            raise ValueError(f"zstd block of {bsize} bytes (at most {_ZSTD_BLOCK_MAX})")
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


class FrameTooLarge(ValueError):
    """Raised inside this module when a frame would decompress to more than :data:`MAX_FRAME_RAW` bytes."""


_dctx = threading.local()


def _decompressor() -> Any:
    # One decompression context per thread (creating one costs microseconds; sharing one across threads is unsafe).
    d = getattr(_dctx, "d", None)
    if d is None:
        d = _dctx.d = zstandard.ZstdDecompressor()
    return d


def decompress_bounded(data: bytes | memoryview, limit: int = MAX_FRAME_RAW, dctx: Any = None
                       ) -> tuple[bytes, bool]:
    """Decompress one zstd frame, possibly incomplete, into at most ``limit`` bytes.

    Returns ``(raw, complete)``; ``complete`` is False when the input ends before the frame does (an incomplete
    frame gives what its whole blocks hold). A frame with a content checksum is verified when complete.

    Raises:
        FrameTooLarge: the frame holds more than ``limit`` bytes (checked before they are produced).
        zstandard.ZstdError: the bytes are not a valid frame, or the checksum does not match.
    """
    # Input is fed in pieces small enough that even the worst case (every 4 input bytes a block of 128 KiB of
    # output, zstd's largest) cannot go past ``limit``: a decompression bomb stops at the limit, not in swap.
    dobj = (dctx or _decompressor()).decompressobj()
    view = memoryview(data)
    parts: list[bytes] = []
    total = 0
    pos = 0
    n = len(view)
    while pos < n:
        blocks = (limit - total) // _ZSTD_BLOCK_MAX - 1
        if blocks < 1:
            raise FrameTooLarge(f"the frame decompresses to more than {limit} bytes, the most a trajrec frame holds")
        piece = dobj.decompress(view[pos:pos + 4 * blocks])
        pos += 4 * blocks
        if piece:
            parts.append(piece)
            total += len(piece)
        if dobj.eof:
            break
    if dobj.eof and dobj.unused_data:
        raise zstandard.ZstdError(f"{len(dobj.unused_data)} bytes after the end of the frame")
    raw = parts[0] if len(parts) == 1 else b"".join(parts)
    return raw, bool(dobj.eof)


def decompress(data: bytes | memoryview) -> bytes:
    """Decompress one (possibly incomplete) zstd frame; an incomplete frame gives what its whole blocks hold.
    Bounded by :data:`MAX_FRAME_RAW` like every read."""
    return decompress_bounded(data)[0]


def decode_frame(data: bytes | memoryview, *, path: str, offset: int, checksum: bool, complete: bool = True
                 ) -> tuple[list[dict[str, Any]], int, bool]:
    """Decompress and decode one frame read from ``path`` at ``offset``, bounded and verified.

    Args:
        data: the frame's bytes.
        checksum: the frame must carry a content checksum (format version 2 and later).
        complete: the frame must be complete (it is listed in an index); else a frame cut by a crash gives the
            records of its whole blocks.

    Returns:
        ``(records, leftover, complete)``: the records, the decompressed bytes after the last whole record, and
        whether the frame was complete.

    Raises:
        TrajrecFormatError: naming ``path`` and ``offset``, for any damage: no checksum where one is required, a
            checksum mismatch, a frame larger than :data:`MAX_FRAME_RAW`, bad zstd or msgpack bytes, a frame
            cut short where a whole one was expected.
    """
    fix = f"run `trajrec fsck {path}` to list the damaged steps"
    if bytes(data[:4]) != ZSTD_MAGIC:
        raise TrajrecFormatError(path, offset, f"expected a zstd frame (bytes 28 b5 2f fd), found "
                                 f"{bytes(data[:4]).hex(' ')}; {fix}")
    if checksum and not frame_has_checksum(data, 0):
        raise TrajrecFormatError(path, offset, f"the zstd frame here carries no checksum, which this file's format "
                                 f"version requires (damaged frame header); {fix}")
    try:
        raw, done = decompress_bounded(data)
    except FrameTooLarge as exc:
        raise TrajrecFormatError(path, offset, f"{exc} ({MAX_FRAME_RAW >> 20} MiB); {fix}") from exc
    except zstandard.ZstdError as exc:
        raise TrajrecFormatError(path, offset, f"zstd frame cannot be decompressed ({exc}); {fix}") from exc
    except MemoryError as exc:
        raise TrajrecFormatError(path, offset, f"zstd frame needs more memory than is available; {fix}") from exc
    if complete and not done:
        raise TrajrecFormatError(path, offset, f"the zstd frame here is cut short (its last block is missing); "
                                 f"{fix}")
    records, used = decode_records(raw, path=path, offset=offset)
    if complete and used != len(raw):
        raise TrajrecFormatError(path, offset, f"{len(raw) - used} bytes after the last whole record of the frame "
                                 f"here; {fix}")
    return records, len(raw) - used, done


def _frame_header_size(buf: bytes | memoryview, pos: int = 0) -> int:
    """The size of the zstd frame header at ``pos`` (magic, descriptor, window, dictionary id, content size), from
    its descriptor byte (RFC 8878, 3.1.1.1); the frame's first block header follows it."""
    fhd = buf[pos + 4]
    single, did_flag, fcs_flag = (fhd >> 5) & 1, fhd & 3, fhd >> 6
    return 5 + (0 if single else 1) + (0, 1, 2, 4)[did_flag] + ((1 if single else 0), 2, 4, 8)[fcs_flag]


def _blocks_reach_end(data: bytes | memoryview, p: int) -> bool:
    """True when the zstd block headers from byte ``p`` of frame ``data`` (one whole frame, nothing after it) walk
    to its end: its last block, then its checksum when it declares one. A block extent that ends elsewhere came
    from a damaged size field."""
    end = len(data)
    try:
        while p + 3 <= end:
            bh = data[p] | (data[p + 1] << 8) | (data[p + 2] << 16)
            btype, bsize = (bh >> 1) & 3, bh >> 3
            if btype == 3 or bsize > _ZSTD_BLOCK_MAX:
                return False
            p += 3 + (1 if btype == 1 else bsize)
            if bh & 1:
                return p + (4 if frame_has_checksum(data, 0) else 0) == end
    except IndexError:
        return False
    return False


def _true_head_span(data: bytes | memoryview, p: int, length: int, crc: int) -> tuple[int, int] | None:
    """``(p, stop)``: the true extent of frame 0's first block, whose header at ``p`` is damaged, found by what the
    block must decompress to (the header record: ``length`` bytes of CRC-32 ``crc``, as the index holds them): each
    end a compressed block of that record could have (no longer than the record: zstd stores a block that does not
    shrink raw), with a mended block header, is decompressed until one gives that record. None when none does (the
    damage is not in the block header alone), or the record is too long to try every end in time."""
    if length <= 0 or length > 16 << 10:
        return None
    head = bytes(data[:p])
    for stop in range(p + 4, min(len(data), p + 3 + length) + 1):
        body = bytes(data[p + 3:stop])
        for btype in (2, 0) if len(body) == length else (2,):
            mended = ((len(body) << 3) | (btype << 1)).to_bytes(3, "little")
            try:
                out = zstandard.ZstdDecompressor().decompressobj().decompress(head + mended + body)
            except zstandard.ZstdError:
                continue
            if len(out) == length and zlib.crc32(out) == crc:
                return p, stop
    return None


def head_block_span(buf: bytes | memoryview) -> tuple[int, int] | None:
    """``(start, stop)``: the bytes of frame 0's first zstd block (its 3-byte block header included), which holds
    the header record alone (the writer flushes it as a block of its own); None when the frame header or the block
    header is itself unreadable (then the damage is there, in the first bytes of the file)."""
    try:
        if bytes(buf[:4]) != ZSTD_MAGIC or buf[4] & 8:
            return None
        p = _frame_header_size(buf)
        if p + 3 > len(buf):
            return None
        block = buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16)
        btype, bsize = (block >> 1) & 3, block >> 3
        if btype == 3 or bsize > _ZSTD_BLOCK_MAX:
            return None
        stop = p + 3 + (1 if btype == 1 else bsize)
        return (p, stop) if stop <= len(buf) else None
    except IndexError:
        return None


def salvage_records(data: bytes | memoryview, limit: int = MAX_FRAME_RAW, *, skip_first_block: bool = False
                    ) -> tuple[list[dict[str, Any]], str]:
    """The whole records a damaged zstd frame yields before its damage, for ``fsck --repair``.

    The frame's blocks are fed to a streaming decompressor one at a time (their headers say where they end), so
    the blocks before the one zstd rejects still come out. The writer flushes every record (every write) as a
    block of its own, so a record starts and ends where a block's output does: a record that ends inside a
    block's output is not what was written (a damaged byte changed a length or a map's count, and the record
    swallowed the bytes after it or lost its tail), and the salvage ends before it. Nothing here is verified:
    the frame's content checksum covers the whole frame and only checks at its end, and a damaged byte in a
    literal run decompresses without error to a wrong byte. Callers check each record and must mark what they
    keep as unverified.

    ``skip_first_block``: decode records from the second block's output on (frame 0 whose first block, the
    header record, is the damaged one: the reset record starts where that block's output ends).

    Returns:
        ``(records, why)``: the records, in order, and what stopped the salvage.
    """
    dobj = zstandard.ZstdDecompressor().decompressobj()
    view = memoryview(data)
    n = len(view)
    parts: list[bytes] = []
    ends: list[int] = []  # the decompressed offset where each block's output ends
    total = 0
    why = "the frame ended"
    try:
        if n < 6 or bytes(view[:4]) != ZSTD_MAGIC:
            raise ValueError("no zstd frame header")
        p = _frame_header_size(view)
        dobj.decompress(view[:p])
        while True:
            if p + 3 > n:
                why = f"the frame is cut at byte {p}"
                break
            block = view[p] | (view[p + 1] << 8) | (view[p + 2] << 16)
            btype, bsize = (block >> 1) & 3, block >> 3
            if btype == 3 or bsize > _ZSTD_BLOCK_MAX:
                why = f"a damaged zstd block header at byte {p} of the frame"
                break
            stop = p + 3 + (1 if btype == 1 else bsize)
            if stop > n:
                why = f"the frame is cut at byte {p}"
                break
            try:
                piece = dobj.decompress(view[p:stop])
            except zstandard.ZstdError as exc:
                why = f"zstd stopped at byte {p} of the frame ({exc})"
                break
            total += len(piece)
            if total > limit:
                why = f"the frame decompresses to more than {limit} bytes"
                break
            parts.append(piece)
            ends.append(total)
            p = stop
            if block & 1:
                if frame_has_checksum(view, 0):  # fed apart: a mismatch must not take the last block's output
                    try:
                        dobj.decompress(view[p:p + 4])
                    except zstandard.ZstdError as exc:
                        why = f"the frame's content checksum does not match ({exc})"
                break
    except (ValueError, IndexError, zstandard.ZstdError) as exc:  # zstd refuses the frame header itself
        why = f"the frame header is damaged ({exc})"
    raw = b"".join(parts)
    begin = ends[0] if skip_first_block and ends else 0
    if skip_first_block and not ends:
        return [], why
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, ext_hook=_ext_hook, use_list=True,
                                max_buffer_size=max(len(raw), 1))
    unpacker.feed(raw[begin:])
    records: list[dict[str, Any]] = []
    j = 1 if skip_first_block else 0  # the block whose output the next record must end with (or run on past)
    while True:
        try:
            rec = unpacker.unpack()
        except msgpack.OutOfData:
            break
        except Exception as exc:  # msgpack raises several unrelated types for bad bytes
            why = f"bad msgpack data after {len(records)} records ({type(exc).__name__})"
            break
        if not isinstance(rec, dict) or "t" not in rec:
            why = f"a value that is not a record after {len(records)} records"
            break
        # A record runs on into the next block only out of a full one (zstd cuts a write into blocks of 128 KiB
        # of input): one that ends inside a block, or swallows a smaller block's record after it (a damaged
        # count of items), is not what was written.
        end = begin + unpacker.tell()
        while j < len(ends) and ends[j] < end and ends[j] - (ends[j - 1] if j else 0) in (0, _ZSTD_BLOCK_MAX):
            j += 1
        if j >= len(ends) or ends[j] != end:
            why = (f"record {len(records)} does not end where its zstd block does (a damaged byte changed its "
                   f"length or a count of items in it)")
            break
        j += 1
        records.append(rec)
    return records, why


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
    :class:`TrajrecFormatError` at bytes that are no frame at all, or at a damaged frame.

    Checksums: when the first frame carries one, every frame must (a version-2 file); callers also check the
    header's version against it.
    """
    end = len(buf) if end is None else end
    view = memoryview(buf)
    pos = start
    need_checksum = False
    first = True
    while pos < end:
        if is_skippable(view, pos):
            pos = skippable_end(view, pos)
            continue
        try:
            stop, complete = frame_extent(view, pos, end)
        except (ValueError, IndexError) as exc:
            found = bytes(view[pos:pos + 4])
            what = (f"a damaged zstd frame ({exc})" if found == ZSTD_MAGIC else  # its header or a block header
                    f"expected a zstd frame (bytes 28 b5 2f fd), found {found.hex(' ')} ({exc})")
            raise TrajrecFormatError(path, pos, what) from exc
        if stop == pos:  # cut inside the frame header or the first block: nothing to decode
            yield pos, stop, False, [], 0
            return
        if first:
            need_checksum = frame_has_checksum(view, pos)
            first = False
        records, leftover, done = decode_frame(view[pos:stop], path=path, offset=pos, checksum=need_checksum,
                                               complete=False)
        if complete and not done:
            raise TrajrecFormatError(path, pos, "the zstd frame here ends before its last block")
        yield pos, stop, complete, records, leftover
        if not complete:
            return
        pos = stop


def _ext_fallback(payload: list[str]) -> msgpack.ExtType:
    return msgpack.ExtType(EXT_FALLBACK, packb(payload))
