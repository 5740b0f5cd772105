"""Turning Python values into msgpack-native values and back.

msgpack covers ``None``, bools, ints up to 64 bits, floats (NaN and inf included), str, bytes, lists and maps.
Everything else goes through an extension type with a fixed code (documented in ``docs/FORMAT.md``):

===  ==================  ==========================================================
code type                payload (itself msgpack unless noted)
===  ==================  ==========================================================
1    numpy.ndarray       ``[dtype.str, shape, raw bytes (C order)]``
2    numpy scalar        ``[dtype.str, raw bytes]``
3    int beyond 64 bits  decimal ASCII digits (not msgpack)
4    tuple               the items as a msgpack array
5    set / frozenset     ``["set" | "frozenset", items]``
6    fallback            ``[qualified type name, repr]``: a value nothing could encode
7    object ndarray      ``[shape, items flattened]``
8    numpy, rich         ``["struct", dtype spec, shape, raw bytes]``, ``["void", dtype spec, raw bytes]``,
                         ``["masked", data, mask or False, fill value]``, ``["matrix", data]``, ``["recarray", data]``,
                         ``["subclass", qualified type name, data]`` (read back as a plain ndarray)
9    text w/ surrogates  the string's UTF-8 bytes with lone surrogates kept (``surrogatepass``; not msgpack)
10   huge int            signed little-endian bytes (ints too long for decimal text; not msgpack)
11   complex             ``[real, imag]``, two floats
===  ==================  ==========================================================

A structured dtype spec is ``{"fields": [[name, spec, offset], ...], "itemsize": n}``, a sub-array field is
``{"sub": spec, "shape": [...]}``, anything else is ``dtype.str``. Object dtypes are never read from raw bytes.

Subclasses of dict/list/str/int/float/complex (OrderedDict, IntEnum, ...) are stored as their plain base value, and
bytearray/memoryview as bytes. Tuple subclasses (NamedTuples) are stored as plain tuples, with one warning per type:
their field names are not kept.
The codec never executes code while decoding: a fallback comes back as :class:`Unencodable`, an unknown
extension code as :class:`UnknownExt`.

This module knows values, not bytes: :mod:`trajrec.recorder.format` owns msgpack and hands the codec its
``packb``/``unpackb`` for nested payloads.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import types
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import numpy as np

EXT_NDARRAY = 1
EXT_NPSCALAR = 2
EXT_BIGINT = 3
EXT_TUPLE = 4
EXT_SET = 5
EXT_FALLBACK = 6
EXT_OBJARRAY = 7
EXT_NDRICH = 8
EXT_SURROGATES = 9
EXT_HUGEINT = 10
EXT_COMPLEX = 11

# How long and how much of an unknown object's ``__repr__`` the recorder waits for and keeps. A repr written in
# Python runs in a helper thread, so a slow or hanging one costs the agent at most this long, once per type.
REPR_TIMEOUT = 0.5
REPR_MAX_CHARS = 10_000
# Values nested deeper than this are stored as a marked fallback (msgpack itself stops at 511 levels).
MAX_DEPTH = 256
# Ints with more bits are stored as bytes: Python refuses decimal text beyond 4300 digits by default.
_DECIMAL_BITS = 4096


class CodecWarning(UserWarning):
    """Warned once per type when a value cannot be encoded and is stored as a marked fallback."""


@dataclass(frozen=True)
class Unencodable:
    """A value the recorder could not encode, as stored: its type name and its ``repr``.

    >>> Unencodable("socket.socket", "<socket>")
    Unencodable(type='socket.socket', repr='<socket>')
    """

    type: str
    repr: str


#: The ``type`` of the marked value the recorder stores as a state it could not read (``state_fn`` raised; a
#: ``VectorRecorder`` sub-env whose vector env raised, or that reset within the step): ``Episode.state_at`` gives
#: that ``Unencodable`` back, never a state the env did not have, and replay does not compare the state there.
STATE_NOT_READ = "trajrec.StateNotRead"


def state_not_read(value: Any) -> str | None:
    """Why the state is unknown when ``value`` (a state from ``Episode.state_at``, a reset's ``state``) is the
    marked value the recorder stores for a state it could not read, else None.

    >>> state_not_read(Unencodable(STATE_NOT_READ, "<state_fn raised after step 3: KeyError: 'x'>"))
    "state_fn raised after step 3: KeyError: 'x'"
    >>> state_not_read({"files": {}}) is None
    True
    """
    if type(value) is not Unencodable or value.type != STATE_NOT_READ:
        return None
    text = value.repr
    return text[1:-1] if text.startswith("<") and text.endswith(">") else text


@dataclass(frozen=True)
class UnknownExt:
    """An extension value written by a newer trajrec, kept as raw bytes."""

    code: int
    data: bytes


_warned_types: set[str] = set()

_np: Any = None


def numpy() -> Any:
    """The numpy module, imported on first use: reading, exporting and listing episodes without arrays never
    import it (~60 ms and ~15 MB of a command line's start)."""
    global _np
    if _np is None:
        import numpy as module

        _np = module
    return _np


class _NumpyStub:
    """Stands for numpy in type tests made before numpy is imported (:func:`numpy_or_stub`): no value is an
    instance of these classes, as no value can be a numpy object before numpy is imported."""

    class ndarray:  # noqa: N801  (numpy's names)
        pass

    class generic:  # noqa: N801
        pass


def numpy_or_stub() -> Any:
    """numpy if this process imported it, else a stand-in whose ``ndarray`` and ``generic`` no value is an instance
    of: ``isinstance(value, np.ndarray)`` with ``np = numpy_or_stub()`` never imports numpy for the test."""
    np = numpy_if_loaded()
    return np if np is not None else _NumpyStub


def numpy_if_loaded() -> Any:
    """The numpy module if this process imported it, else None: then no value can be a numpy object, so a type
    test against numpy's classes can be skipped without importing it.

    Thread-safe: while another thread is importing numpy, ``sys.modules`` already holds the module half
    initialized (no ``numpy.generic`` yet); the ``import`` statement in :func:`numpy` waits for that import to
    end instead of handing out the half-made module."""
    if _np is not None:
        return _np
    return numpy() if "numpy" in sys.modules else None


def _qualname(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def _internal_dirs() -> tuple[str, ...]:
    # Located, not imported: the recorder knows nothing of replay or envs (find_spec only reads the path).
    dirs = []
    for name in ("trajrec", "trajrec.recorder", "trajrec.replay", "trajrec.envs", "gymnasium"):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for folder in (spec.submodule_search_locations or []) if spec is not None else []:
            dirs.append(os.path.abspath(folder) + os.sep)
    return tuple(dirs)


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised in the function calling this one point at the user's line
    (the ``env.step``, ``reset`` or ``note`` call), past trajrec's and gymnasium's frames (a gymnasium wrapper
    around the Recorder). Only on a warning's path: it walks the stack."""
    dirs = _internal_dirs()
    level, frame = 2, sys._getframe(2)  # 2: the caller of fallback_payload
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(dirs):
        level += 1
        frame = frame.f_back  # type: ignore[assignment]
    return level


_slow_repr_types: set[str] = set()


def _call_repr(obj: Any) -> str:
    text = repr(obj)
    if not isinstance(text, str):
        raise TypeError(f"__repr__ returned {type(text).__name__}, not str")
    return str.__str__(text[:REPR_MAX_CHARS + 1])


def int_text(value: int) -> str:
    """The decimal text of any int, also one longer than Python's int-to-text limit
    (``sys.get_int_max_str_digits()``, 4,300 digits by default), where ``str()`` raises ``ValueError``.

    The limit guards parsing untrusted text; the recorder stores such ints exactly, so showing and exporting them
    converts them 1,000 digits at a time (each piece under the limit).

    >>> int_text(-(10**5000)) == "-1" + "0" * 5000
    True
    """
    try:
        return str(value)
    except ValueError:
        pass
    sign, rest = ("-", -value) if value < 0 else ("", value)
    pieces: list[int] = []
    while rest:
        rest, piece = divmod(rest, _PIECE)
        pieces.append(piece)
    return sign + str(pieces[-1]) + "".join(f"{p:0{_PIECE_DIGITS}d}" for p in reversed(pieces[:-1]))


_PIECE_DIGITS = 1000
_PIECE = 10**_PIECE_DIGITS
#: Ints of at most this many bits are under Python's default int-to-text limit (4,300 digits: 14,284 bits), with
#: room: ``str()`` and ``json.dumps`` take them; longer ones need :func:`int_text`.
INT_TEXT_BITS = 14_000


def bounded_repr(obj: Any) -> str:
    """``repr(obj)``, bounded: at most :data:`REPR_MAX_CHARS` characters and :data:`REPR_TIMEOUT` seconds.

    A ``__repr__`` written in Python runs in a daemon thread that is abandoned when it overruns (Python cannot
    interrupt it); a type that overran once is not asked again. One that raises gives a description of the
    error. The result is always encodable text (lone surrogates are escaped).
    """
    name = _qualname(obj)
    if name in _slow_repr_types:
        return f"<{name}: repr not taken, it ran longer than {REPR_TIMEOUT} s before>"
    try:
        if isinstance(getattr(type(obj), "__repr__", None), types.FunctionType):
            box: list[Any] = []

            def run() -> None:
                try:
                    box.append(_call_repr(obj))
                except BaseException as exc:  # noqa: BLE001  (reported in the text; the thread must end)
                    box.append(exc)

            worker = threading.Thread(target=run, name="trajrec-repr", daemon=True)
            worker.start()
            worker.join(REPR_TIMEOUT)
            if not box:
                _slow_repr_types.add(name)
                return f"<{name}: repr ran longer than {REPR_TIMEOUT} s and was abandoned>"
            if isinstance(box[0], BaseException):
                raise box[0]
            text = box[0]
        else:
            text = _call_repr(obj)
    except Exception as exc:  # noqa: BLE001  (a broken __repr__ must not take the agent down)
        text = f"<unrepresentable {name}: {type(exc).__name__}: {_safe_str(exc)}>"
    if len(text) > REPR_MAX_CHARS:
        text = text[:REPR_MAX_CHARS] + "...<truncated>"
    return encodable_text(text)


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)[:500]
    except Exception:  # noqa: BLE001  (an exception whose __str__ raises)
        return "?"


def encodable_text(text: str) -> str:
    """``text`` as UTF-8 can hold it: lone surrogates (text decoded with surrogateescape) become ``\\udcXX``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def warn_once(key: str, message: str) -> None:
    """Warn :class:`CodecWarning` ``message`` the first time ``key`` is seen in this process."""
    if key not in _warned_types:
        _warned_types.add(key)
        warnings.warn(message, CodecWarning, stacklevel=user_stacklevel())


def fallback_payload(obj: Any, reason: str | None = None) -> list[str]:
    """The ``[type, repr]`` pair stored for an unencodable value; warns once per type (and reason)."""
    name = _qualname(obj)
    text = bounded_repr(obj) if reason is None else f"<{reason}>"
    warn_once(name if reason is None else f"{name}:{reason}",
              f"trajrec cannot encode {'values of type ' + name if reason is None else reason + ' (' + name + ')'}; "
              "storing a marked fallback with its repr instead (convert them to plain data in the env or in "
              "state_fn to keep them exactly)")
    return [name, text]


def warn_tuple_subclass(obj: tuple[Any, ...]) -> None:
    """Warn once per type that a tuple subclass (a NamedTuple such as gymnasium's ``GraphInstance``) is stored as
    a plain tuple: its values are kept in order, its field names and type are not (reading never imports a
    class a file names)."""
    name = _qualname(obj)
    if name.startswith("trajrec."):
        return  # trajrec's own rows (DiffRow, Failure): the format stores them by position on purpose
    warn_once(f"{name}:tuple", f"trajrec stores {name} values (a tuple subclass) as plain tuples: the values are "
                               "kept in order, the field names and the type are not; read them by position, or "
                               "convert them (e.g. obj._asdict()) in the env or in state_fn to keep the names")


class SurrogateText(str):
    """A string holding lone surrogates (text decoded with ``surrogateescape``), tagged for the codec."""

    __slots__ = ()


def sanitize(obj: Any) -> Any:
    """A copy of ``obj`` that always encodes: only the parts that cannot be encoded are replaced.

    The slow path, taken when packing a record failed: strings with lone surrogates are tagged to be stored
    losslessly, self-references and over-deep nesting become marked fallbacks (:class:`Unencodable`), and so
    does any object whose conversion raises. Everything else is kept exactly.
    """
    return _sanitize(obj, 0, set())


def _fallback(obj: Any, reason: str | None = None) -> Unencodable:
    return Unencodable(*fallback_payload(obj, reason))


def _sanitize(obj: Any, depth: int, active: set[int]) -> Any:
    t = type(obj)
    if t is str:
        try:
            obj.encode("utf-8")
            return obj
        except UnicodeEncodeError:
            return SurrogateText(obj)
    if t in (int, float, bool, bytes, type(None), Unencodable, UnknownExt, SurrogateText):
        return obj
    if depth > MAX_DEPTH:
        return _fallback(obj, f"a value nested deeper than {MAX_DEPTH} levels")
    np = numpy_if_loaded()
    is_container = isinstance(obj, (dict, list, tuple, set, frozenset)) or (
        np is not None and isinstance(obj, np.ndarray) and obj.dtype.hasobject)
    if is_container:
        if id(obj) in active:
            return _fallback(obj, "a value that contains itself")
        active.add(id(obj))
        try:
            return _sanitize_container(obj, depth, active)
        except Exception:  # noqa: BLE001  (a container subclass whose items()/iteration raises)
            return _fallback(obj)
        finally:
            active.discard(id(obj))
    if isinstance(obj, str):
        return _sanitize(str.__str__(obj), depth, active)
    try:
        _packb_probe(obj)
        return obj
    except Exception:  # noqa: BLE001  (whatever the default hook met inside this value)
        return _fallback(obj)


def _sanitize_container(obj: Any, depth: int, active: set[int]) -> Any:
    d = depth + 1
    if isinstance(obj, dict):
        return {_sanitize(k, d, active): _sanitize(v, d, active) for k, v in list(obj.items())}
    if isinstance(obj, list):
        return [_sanitize(v, d, active) for v in list(obj)]
    if isinstance(obj, tuple):
        return tuple([_sanitize(v, d, active) for v in list(obj)])
    if isinstance(obj, frozenset):
        return frozenset([_sanitize(v, d, active) for v in list(obj)])
    if isinstance(obj, set):
        return {_sanitize(v, d, active) for v in list(obj)}
    # an object ndarray
    np = numpy()
    if type(obj) is not np.ndarray or obj.dtype.names is not None:
        return _fallback(obj)
    out = np.empty(obj.size, dtype=object)
    for k, v in enumerate(obj.ravel().tolist()):
        out[k] = _sanitize(v, d, active)
    return out.reshape(obj.shape)


_packb_probe: Callable[[Any], bytes] = lambda obj: b""  # noqa: E731  (set by make_default)


def _dtype_spec(dt: np.dtype) -> Any:
    """A msgpack-native description of ``dt`` (see the module docstring); raises ValueError for object fields."""
    if dt.names is not None:
        fields = []
        for name in dt.names:
            info = dt.fields[name]
            if len(info) > 2:
                raise ValueError("field titles are not stored")
            fields.append([name, _dtype_spec(info[0]), info[1]])
        return {"fields": fields, "itemsize": dt.itemsize}
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        return {"sub": _dtype_spec(base), "shape": list(shape)}
    if dt.hasobject:
        raise ValueError("object fields cannot be stored as raw bytes")
    return dt.str


def _dtype_from_spec(spec: Any, depth: int = 0) -> np.dtype:
    if depth > 32:
        raise ValueError("dtype spec nested too deep")
    np = numpy()
    if isinstance(spec, str):
        return _plain_dtype(spec)
    if isinstance(spec, dict) and "fields" in spec:
        names, formats, offsets = [], [], []
        for name, sub, offset in spec["fields"]:
            names.append(str(name))
            formats.append(_dtype_from_spec(sub, depth + 1))
            offsets.append(int(offset))
        return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": int(spec["itemsize"])})
    if isinstance(spec, dict) and "sub" in spec:
        return np.dtype((_dtype_from_spec(spec["sub"], depth + 1), tuple(int(n) for n in spec["shape"])))
    raise ValueError(f"not a dtype spec: {spec!r:.80}")


def _x87_padding(dtype: Any) -> slice | None:
    """The padding bytes of each value of an x87 extended-precision ``dtype`` (``np.longdouble`` and
    ``np.clongdouble`` on x86: 10 bytes of number in 12 or 16), or None for every other dtype.

    The padding is whatever the memory held (it differs between processes), so it is stored as zeros: the same
    numbers then give the same bytes, and decode to the same numbers (NumPy never reads the padding).
    """
    if dtype.char not in "gG" or dtype.names is not None:
        return None
    np = numpy()
    half = dtype.itemsize // (2 if dtype.kind == "c" else 1)
    if np.finfo(dtype).nmant != 63 or half not in (12, 16):  # IEEE quad or double-double: every byte counts
        return None
    big = dtype.byteorder == ">" or (dtype.byteorder in "=|" and sys.byteorder == "big")
    return slice(0, half - 10) if big else slice(10, half)


def _zero_padding(obj: Any, pad: slice) -> bytes:
    """``obj.tobytes()`` with the padding bytes ``pad`` of each value (:func:`_x87_padding`) set to zero."""
    np = numpy()
    half = obj.dtype.itemsize // (2 if obj.dtype.kind == "c" else 1)
    raw = np.frombuffer(np.ascontiguousarray(obj).tobytes(), dtype=np.uint8).reshape(-1, half).copy()
    raw[:, pad] = 0
    return raw.tobytes()


def array_bytes(obj: Any) -> bytes:
    """The raw bytes the codec stores for a plain (non-object) numpy array or scalar: ``tobytes()``, with the
    padding of x87 extended-precision values zeroed (:func:`_x87_padding`), so equal values give equal bytes."""
    pad = _x87_padding(obj.dtype)
    return obj.tobytes() if pad is None else _zero_padding(obj, pad)


def make_default(packb: Callable[[Any], bytes], ext: Callable[[int, bytes], Any],
                 checked_ext: Callable[[int, bytes], Any] | None = None) -> Callable[[Any], Any]:
    """Build msgpack's ``default`` hook.

    Args:
        packb: packs a nested payload with this same hook.
        ext: builds an extension value from ``(code, bytes)`` (trusted arguments: the codec's own codes).
        checked_ext: builds the extension value of an :class:`UnknownExt` (a code and bytes a file held), checking
            them; default: ``ext``.
    """
    global _packb_probe
    _packb_probe = packb
    checked_ext = checked_ext or ext
    # numpy's ndarray once this process has imported numpy (until then no value can be an array, and the hook does
    # not import it: reading and exporting text episodes never load numpy); a class no value has meanwhile.
    ndarray: Any = _NoArray

    # The payload of a plain array (no fields, no objects) up to its raw bytes (dtype, shape and the bin header,
    # whose length the dtype and shape fix), by (dtype, shape): keyed by the dtype object, whose lookup costs a
    # fraction of building ``dtype.str`` (~0.4 µs) or asking ``names`` and ``hasobject``.
    heads: dict[tuple[Any, tuple[int, ...]], bytes] = {}

    def plain_array(obj: np.ndarray) -> Any:
        # Hot path (an array observation every step): the payload is a cached head and the raw bytes, instead of
        # a packed fresh list, which costs a Packer per call.
        if len(heads) > 256:
            heads.clear()
        n = obj.nbytes
        if n < 256:
            size = b"\xc4" + n.to_bytes(1, "big")
        elif n < 65536:
            size = b"\xc5" + n.to_bytes(2, "big")
        else:
            size = b"\xc6" + n.to_bytes(4, "big")
        head = b"\x93" + packb(obj.dtype.str) + packb(list(obj.shape)) + size
        pad = _x87_padding(obj.dtype)
        if pad is not None:  # not cached: the cached route below takes the raw bytes as they are
            return ext(EXT_NDARRAY, head + _zero_padding(obj, pad))
        heads[(obj.dtype, obj.shape)] = head
        return ext(EXT_NDARRAY, head + obj.tobytes())

    def rich_array(obj: np.ndarray) -> Any:
        np = numpy()
        if isinstance(obj, np.ma.MaskedArray):
            mask = np.ma.getmask(obj)
            return ext(EXT_NDRICH, packb(["masked", np.asarray(obj.data), False if mask is np.ma.nomask else
                                          np.asarray(mask), np.asarray(obj.fill_value)]))
        if isinstance(obj, np.matrix):
            return ext(EXT_NDRICH, packb(["matrix", np.asarray(obj)]))
        if isinstance(obj, np.recarray):
            return ext(EXT_NDRICH, packb(["recarray", np.asarray(obj)]))
        if type(obj) is not np.ndarray:
            name = _qualname(obj)
            warn_once(name, f"trajrec stores numpy arrays of type {name} as plain ndarrays (marked with their "
                            "type name in the file); convert them with np.asarray to silence this")
            return ext(EXT_NDRICH, packb(["subclass", name, np.asarray(obj)]))
        if obj.dtype.hasobject:
            if obj.dtype.names is not None:
                return ext(EXT_FALLBACK, packb(fallback_payload(obj, "a structured numpy array with object fields")))
            return ext(EXT_OBJARRAY, packb([list(obj.shape), obj.ravel().tolist()]))
        if obj.dtype.names is not None:
            try:
                spec = _dtype_spec(obj.dtype)
            except ValueError as exc:
                return ext(EXT_FALLBACK, packb(fallback_payload(obj, f"a structured numpy dtype ({exc})")))
            return ext(EXT_NDRICH, packb(["struct", spec, list(obj.shape), obj.tobytes()]))
        return plain_array(obj)

    def default(obj: Any) -> Any:
        nonlocal ndarray
        if type(obj) is ndarray:
            head = heads.get((obj.dtype, obj.shape))
            if head is not None:  # a plain array of a dtype and shape met before (inline: ~0.3 µs a step)
                return ext(EXT_NDARRAY, head + obj.tobytes())
            if obj.dtype.names is None and not obj.dtype.hasobject:
                return plain_array(obj)
        np = numpy_if_loaded()
        if np is not None and ndarray is not np.ndarray:  # numpy imported since the last call
            ndarray = np.ndarray
            return default(obj)
        if np is not None:
            if isinstance(obj, np.ndarray):
                return rich_array(obj)
            if isinstance(obj, np.generic):
                if isinstance(obj, np.bool_):
                    return bool(obj)
                if isinstance(obj, (np.str_, np.bytes_)):
                    return obj.item()  # plain str / bytes: a zero-width string dtype has no raw-bytes form
                if obj.dtype.hasobject:
                    return ext(EXT_FALLBACK, packb(fallback_payload(obj)))
                if obj.dtype.names is not None:
                    try:
                        return ext(EXT_NDRICH, packb(["void", _dtype_spec(obj.dtype), obj.tobytes()]))
                    except ValueError as exc:
                        return ext(EXT_FALLBACK, packb(fallback_payload(obj, f"a structured numpy scalar ({exc})")))
                return ext(EXT_NPSCALAR, packb([obj.dtype.str, array_bytes(obj)]))
        if isinstance(obj, tuple):
            if type(obj) is not tuple:
                warn_tuple_subclass(obj)
            return ext(EXT_TUPLE, packb(list(obj)))
        if isinstance(obj, int):  # bool is exact-typed and never gets here
            if type(obj) is int:
                if obj.bit_length() > _DECIMAL_BITS:
                    return ext(EXT_HUGEINT, obj.to_bytes(obj.bit_length() // 8 + 1, "little", signed=True))
                return ext(EXT_BIGINT, str(obj).encode("ascii"))
            return int(obj)
        if isinstance(obj, float):
            return float(obj)
        if type(obj) is SurrogateText:
            return ext(EXT_SURROGATES, obj.encode("utf-8", "surrogatepass"))
        if isinstance(obj, str):
            return str.__str__(obj)
        if isinstance(obj, dict):
            return dict(obj)
        if isinstance(obj, list):
            return list(obj)
        if isinstance(obj, (set, frozenset)):
            return ext(EXT_SET, packb(["frozenset" if isinstance(obj, frozenset) else "set", list(obj)]))
        if isinstance(obj, complex):  # a subclass is stored as its plain value, as for int and float
            return ext(EXT_COMPLEX, packb([float(obj.real), float(obj.imag)]))
        if isinstance(obj, memoryview):
            return obj.tobytes()
        if isinstance(obj, Unencodable):
            return ext(EXT_FALLBACK, packb([obj.type, obj.repr]))
        if isinstance(obj, UnknownExt):  # read from a file, written back unchanged (fsck --repair)
            return checked_ext(obj.code, obj.data)
        return ext(EXT_FALLBACK, packb(fallback_payload(obj)))

    return default


class _NoArray:
    """The class :func:`make_default`'s hook tests values against before numpy is imported: nothing is one."""


def _plain_dtype(spec: Any) -> np.dtype:
    # Object dtypes would let a file smuggle pointers into memory; only plain dtypes are read from raw bytes.
    dtype = numpy().dtype(str(spec))
    if dtype.hasobject:
        raise ValueError(f"refusing object dtype {spec!r} in a raw array payload")
    return dtype


def make_ext_hook(unpackb: Callable[[bytes], Any]) -> Callable[[int, bytes], Any]:
    """Build msgpack's ``ext_hook`` that turns extension values back into Python values."""

    def ext_hook(code: int, data: bytes) -> Any:
        if code == EXT_NDARRAY:
            dtype, shape, raw = unpackb(data)
            np = numpy()
            return np.frombuffer(raw, dtype=_plain_dtype(dtype)).reshape(shape).copy()
        if code == EXT_NPSCALAR:
            dtype, raw = unpackb(data)
            return numpy().frombuffer(raw, dtype=_plain_dtype(dtype))[0]
        if code == EXT_SURROGATES:
            return bytes(data).decode("utf-8", "surrogatepass")
        if code == EXT_HUGEINT:
            return int.from_bytes(data, "little", signed=True)
        if code == EXT_NDRICH:
            return _rich_array(unpackb(data))
        if code == EXT_BIGINT:
            return int(data.decode("ascii"))
        if code == EXT_TUPLE:
            return tuple(unpackb(data))
        if code == EXT_SET:
            kind, items = unpackb(data)
            return frozenset(items) if kind == "frozenset" else set(items)
        if code == EXT_FALLBACK:
            name, text = unpackb(data)
            return Unencodable(name, text)
        if code == EXT_COMPLEX:
            real, imag = unpackb(data)
            if type(real) is not float or type(imag) is not float:
                raise ValueError(f"a complex payload holds {type(real).__name__} and {type(imag).__name__}, "
                                 "not two floats")
            return complex(real, imag)
        if code == EXT_OBJARRAY:
            shape, items = unpackb(data)
            arr = numpy().empty(len(items), dtype=object)
            for k, item in enumerate(items):  # item by item: a slice assignment would broadcast nested lists
                arr[k] = item
            return arr.reshape(shape)
        return UnknownExt(code, bytes(data))

    return ext_hook


def _rich_array(payload: Any) -> Any:
    np = numpy()
    kind = payload[0]
    if kind == "struct":
        _kind, spec, shape, raw = payload
        return np.frombuffer(raw, dtype=_dtype_from_spec(spec)).reshape(shape).copy()
    if kind == "void":
        _kind, spec, raw = payload
        return np.frombuffer(raw, dtype=_dtype_from_spec(spec)).copy()[0]
    if kind == "masked":
        _kind, data, mask, fill = payload
        return np.ma.MaskedArray(data, mask=np.ma.nomask if mask is False else mask, fill_value=fill)
    if kind == "matrix":
        # A view, not np.asmatrix: matrix() itself warns PendingDeprecationWarning, under trajrec's name to whoever
        # reads the file (and as an error under -W error). The stored data is 2-d, as a matrix's always is.
        return np.asarray(payload[1]).view(np.matrix)
    if kind == "recarray":
        return payload[1].view(np.recarray)
    if kind == "subclass":
        return payload[2]
    raise ValueError(f"unknown numpy payload kind {kind!r:.40}")
