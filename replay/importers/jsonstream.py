"""Reading big JSON files a value at a time, so an import's memory stays flat in the file's size.

Trajectory files are one JSON document whose bulk is one array (``samples`` of an Inspect log, ``messages`` of a
mini-swe-agent file, ``trajectory`` of a SWE-agent file, ``steps`` of an ATIF file). :class:`JsonStream` walks
the top-level object key by key and decodes each value with the C decoder (``json.JSONDecoder.raw_decode``) from
a buffer that holds only the value being read; the elements of a chosen array are handed out one at a time.
Memory is bounded by the largest single element, not by the file.

Errors are :class:`ImportFormatError`: they name the file, the field (``$.samples[3]``) and the character offset.

>>> import io
>>> s = JsonStream(io.StringIO('{"a": 1, "items": [{"x": 1}, {"x": 2}], "b": [3]}'), "demo.json")
>>> for key in s.keys():
...     if key == "items":
...         print([item["x"] for _, item in s.items()])
...     else:
...         print(key, s.value())
a 1
[1, 2]
b [3]
"""

from __future__ import annotations

import json
import os
import re
from typing import IO, Any, Iterator

from trajrec.recorder.errors import TrajrecError

__all__ = ["ImportFormatError", "JsonStream", "shown"]

_WS = re.compile(r"[ \t\n\r]*")
_CHUNK = 1 << 20  # characters per read; a value larger than the buffer doubles it
_decode = json.JSONDecoder().raw_decode


def shown(value: Any, limit: int = 60) -> str:
    """A value found in a source file, for an error message: as JSON (``null``, ``{"x": 1}``, ``"oops"``, what
    the file says, not a Python repr), at most ``limit`` characters (longer text ends with ``...``).

    >>> shown(None), shown({"x": 1}), shown("oops"), shown(float("nan")), shown("x" * 80)[-6:]
    ('null', '{"x": 1}', '"oops"', 'NaN', 'xxx...')
    """
    text = json.dumps(value, allow_nan=True, default=repr, ensure_ascii=True)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _decoder_message(msg: str, offset: int) -> str:
    """The JSON decoder's message whole: a few end in "at" and leave the place to the text the decoder adds
    (``Unterminated string starting at``); say the character there, so the sentence does not stop mid-way.

    >>> _decoder_message("Unterminated string starting at", 299), _decoder_message("Expecting value", 3)
    ('Unterminated string starting at character 299', 'Expecting value')
    """
    return f"{msg} character {offset}" if msg.endswith(" at") else msg


class ImportFormatError(TrajrecError, ValueError):
    """Raised when a file handed to ``trajrec import`` is not what its format says.

    Attributes:
        path: the source file.
        field: where in the file, as a JSONPath-like string (``$.trajectory[3].action``) or a member name.
        offset: character offset of the problem when known, else None.
    """

    def __init__(self, path: str | os.PathLike[str], field: str | None, message: str, offset: int | None = None) -> None:
        self.path = os.fspath(path)
        self.field = field
        self.offset = offset
        self.reason = message
        where = self.path
        if field:
            where += f" field {field}"
        if offset is not None:
            where += f" (character {offset})"
        super().__init__(f"{where}: {message}")


class JsonStream:
    """A top-level JSON object (or array) read one value at a time.

    Call :meth:`keys` to walk the object; for each key read the value with :meth:`value`, skip it with
    :meth:`skip` or stream its elements with :meth:`items` (an array). When the top level is an array, use
    :meth:`items` directly.
    """

    def __init__(self, fh: IO[str], path: str | os.PathLike[str]) -> None:
        self._fh = fh
        self.path = os.fspath(path)
        self._buf = ""
        self._pos = 0
        self._base = 0  # characters consumed before the buffer's start
        self._eof = False
        self._field = "$"
        self._pending = False  # a key was handed out and its value not yet consumed

    # -- low level --------------------------------------------------------------------------------------------

    def _fill(self, want: int = _CHUNK) -> bool:
        if self._eof:
            return False
        chunk = self._fh.read(max(want, _CHUNK))
        if not chunk:
            self._eof = True
            return False
        self._base += self._pos
        self._buf = self._buf[self._pos:] + chunk
        self._pos = 0
        return True

    def _peek(self) -> str:
        while True:
            self._pos = _WS.match(self._buf, self._pos).end()  # type: ignore[union-attr]
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return ""

    def _error(self, message: str, field: str | None = None) -> ImportFormatError:
        return ImportFormatError(self.path, field or self._field, message, self._base + self._pos)

    def _expect(self, ch: str, what: str) -> None:
        got = self._peek()
        if got != ch:
            found = repr(got) if got else "the end of the file"
            raise self._error(f"expected {what} ({ch!r}), found {found}; is the file complete JSON?")
        self._pos += 1

    def _decode(self) -> Any:
        self._peek()
        while True:
            try:
                value, end = _decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                # Cut mid-value by the buffer: read more (doubling, so a big value costs O(n) reads) and retry.
                # An error well inside the buffer is a real defect: raise it now rather than read the whole rest.
                cut = exc.pos >= len(self._buf) - 8 or exc.msg.startswith("Unterminated string")
                if cut and self._fill(len(self._buf)):
                    continue
                at = self._base + exc.pos
                raise ImportFormatError(self.path, self._field, f"invalid JSON: {_decoder_message(exc.msg, at)}",
                                        at) from None
            # A number or literal at the very end of the buffer may continue in the next chunk.
            if end >= len(self._buf) and not self._eof and self._fill(len(self._buf)):
                continue
            self._pos = end
            return value

    # -- object walking ---------------------------------------------------------------------------------------

    def keys(self) -> Iterator[str]:
        """The keys of the top-level object in file order; consume each key's value before asking the next."""
        self._expect("{", "a JSON object")
        first = True
        while True:
            if self._pending:
                self.skip()
            ch = self._peek()
            if ch == "}":
                self._pos += 1
                return
            if not first:
                self._expect(",", "',' between members")
                self._peek()
            first = False
            key = self._decode()
            if not isinstance(key, str):
                raise self._error("expected a member name")
            self._expect(":", "':' after a member name")
            self._field = f"$.{key}"
            self._pending = True
            yield key

    def value(self) -> Any:
        """Decode the value of the current key (or the whole document when no key was read)."""
        self._pending = False
        return self._decode()

    def skip(self) -> None:
        """Pass over the current key's value; an array is passed element by element, so memory stays flat."""
        if self._peek() == "[":
            for _ in self.items():
                pass
        else:
            self.value()

    def skip_rest(self, field: str | None = None) -> None:
        """Pass over the remaining elements of an array whose :meth:`items` loop was left early."""
        while True:
            ch = self._peek()
            if ch == "]":
                self._pos += 1
                return
            self._expect(",", "',' between array elements")
            self._decode()

    def _found(self) -> str:
        """What starts here, for an error message: a scalar as JSON (``"oops"``, ``12``), else its kind (an
        object is not decoded: it may be large)."""
        ch = self._peek()
        if ch == "{":
            return "an object"
        try:
            return shown(self._decode())
        except ImportFormatError:
            return repr(ch)

    def kind(self) -> str:
        """The JSON type that starts next: ``object``, ``array``, ``string``, ``other`` or ``end``."""
        ch = self._peek()
        return {"{": "object", "[": "array", '"': "string", "": "end"}.get(ch, "other")

    def items(self) -> Iterator[tuple[int, Any]]:
        """``(index, element)`` of the array that starts here, decoded one element at a time."""
        self._pending = False
        field = self._field
        if self._peek() not in ("[", ""):
            at = self._base + self._pos
            raise ImportFormatError(self.path, field, f"expected an array, found {self._found()}", at)
        self._expect("[", "an array")
        i = 0
        while True:
            ch = self._peek()
            if ch == "]":
                self._pos += 1
                self._field = field
                return
            if i:
                self._expect(",", "',' between array elements")
            self._field = f"{field}[{i}]"
            value = self._decode()
            self._field = field
            yield i, value
            i += 1
