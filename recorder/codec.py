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
===  ==================  ==========================================================

Subclasses of dict/list/str/int/float (OrderedDict, IntEnum, ...) are stored as their plain base value.
The codec never executes code while decoding: a fallback comes back as :class:`Unencodable`, an unknown
extension code as :class:`UnknownExt`.

This module knows values, not bytes: :mod:`trajrec.recorder.format` owns msgpack and hands the codec its
``packb``/``unpackb`` for nested payloads.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

EXT_NDARRAY = 1
EXT_NPSCALAR = 2
EXT_BIGINT = 3
EXT_TUPLE = 4
EXT_SET = 5
EXT_FALLBACK = 6
EXT_OBJARRAY = 7


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


@dataclass(frozen=True)
class UnknownExt:
    """An extension value written by a newer trajrec, kept as raw bytes."""

    code: int
    data: bytes


_warned_types: set[str] = set()


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


def _user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised in :func:`fallback_payload` point at the user's line (the
    ``env.step`` or ``reset`` call), past trajrec's and gymnasium's frames."""
    dirs = _internal_dirs()
    level, frame = 2, sys._getframe(2)  # 2: the caller of fallback_payload
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(dirs):
        level += 1
        frame = frame.f_back  # type: ignore[assignment]
    return level


def fallback_payload(obj: Any) -> list[str]:
    """The ``[type, repr]`` pair stored for an unencodable value; warns once per type."""
    name = _qualname(obj)
    try:
        text = repr(obj)
    except Exception as exc:  # a broken __repr__ must not take the agent down
        text = f"<unrepresentable {name}: {type(exc).__name__}: {exc}>"
    if len(text) > 10_000:
        text = text[:10_000] + "...<truncated>"
    if name not in _warned_types:
        _warned_types.add(name)
        warnings.warn(
            f"trajrec cannot encode values of type {name}; storing their repr instead "
            "(convert them to plain data in the env or in state_fn to keep them exactly)",
            CodecWarning,
            stacklevel=_user_stacklevel(),
        )
    return [name, text]


def make_default(packb: Callable[[Any], bytes], ext: Callable[[int, bytes], Any]) -> Callable[[Any], Any]:
    """Build msgpack's ``default`` hook.

    Args:
        packb: packs a nested payload with this same hook.
        ext: builds an extension value from ``(code, bytes)``.
    """

    prefixes: dict[tuple[str, tuple[int, ...]], bytes] = {}

    def default(obj: Any) -> Any:
        if type(obj) is np.ndarray:
            if obj.dtype.hasobject:
                return ext(EXT_OBJARRAY, packb([list(obj.shape), obj.ravel().tolist()]))
            # Hot path (an array observation every step): build the payload from a cached prefix instead of
            # packing a fresh list, which costs a Packer per call.
            key = (obj.dtype.str, obj.shape)
            prefix = prefixes.get(key)
            if prefix is None:
                if len(prefixes) > 256:
                    prefixes.clear()
                prefix = prefixes[key] = b"\x93" + packb(obj.dtype.str) + packb(list(obj.shape))
            raw = obj.tobytes()
            n = len(raw)
            if n < 256:
                head = b"\xc4" + n.to_bytes(1, "big")
            elif n < 65536:
                head = b"\xc5" + n.to_bytes(2, "big")
            else:
                head = b"\xc6" + n.to_bytes(4, "big")
            return ext(EXT_NDARRAY, prefix + head + raw)
        if isinstance(obj, np.ndarray):
            return default(np.asarray(obj))
        if isinstance(obj, np.generic):
            if isinstance(obj, np.bool_):
                return bool(obj)
            if isinstance(obj, (np.str_, np.bytes_)):
                return obj.item()  # plain str / bytes: a zero-width string dtype has no raw-bytes form
            if obj.dtype.hasobject:
                return ext(EXT_FALLBACK, packb(fallback_payload(obj)))
            return ext(EXT_NPSCALAR, packb([obj.dtype.str, obj.tobytes()]))
        if isinstance(obj, tuple):
            return ext(EXT_TUPLE, packb(list(obj)))
        if isinstance(obj, int):  # bool is exact-typed and never gets here
            if type(obj) is int:
                return ext(EXT_BIGINT, str(obj).encode("ascii"))
            return int(obj)
        if isinstance(obj, float):
            return float(obj)
        if isinstance(obj, str):
            return str.__str__(obj)
        if isinstance(obj, dict):
            return dict(obj)
        if isinstance(obj, list):
            return list(obj)
        if isinstance(obj, (set, frozenset)):
            return ext(EXT_SET, packb(["frozenset" if isinstance(obj, frozenset) else "set", list(obj)]))
        if isinstance(obj, (bytearray, memoryview)):
            return bytes(obj)
        return ext(EXT_FALLBACK, packb(fallback_payload(obj)))

    return default


def _plain_dtype(spec: Any) -> np.dtype:
    # Object dtypes would let a file smuggle pointers into memory; only plain dtypes are read from raw bytes.
    dtype = np.dtype(str(spec))
    if dtype.hasobject:
        raise ValueError(f"refusing object dtype {spec!r} in a raw array payload")
    return dtype


def make_ext_hook(unpackb: Callable[[bytes], Any]) -> Callable[[int, bytes], Any]:
    """Build msgpack's ``ext_hook`` that turns extension values back into Python values."""

    def ext_hook(code: int, data: bytes) -> Any:
        if code == EXT_NDARRAY:
            dtype, shape, raw = unpackb(data)
            return np.frombuffer(raw, dtype=_plain_dtype(dtype)).reshape(shape).copy()
        if code == EXT_NPSCALAR:
            dtype, raw = unpackb(data)
            return np.frombuffer(raw, dtype=_plain_dtype(dtype))[0]
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
        if code == EXT_OBJARRAY:
            shape, items = unpackb(data)
            arr = np.empty(len(items), dtype=object)
            arr[:] = items
            return arr.reshape(shape)
        return UnknownExt(code, bytes(data))

    return ext_hook
