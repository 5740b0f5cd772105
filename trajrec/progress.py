"""A small progress bar for long commands, on stderr, only when stderr is a terminal (or forced)."""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Iterable, Iterator, TypeVar

T = TypeVar("T")


class Progress:
    """Counts work done and redraws one stderr line at most 10 times a second.

    >>> with Progress(3, "demo", stream=None) as bar:
    ...     for _ in range(3):
    ...         bar.advance()
    >>> bar.done
    3
    """

    def __init__(self, total: int | None, label: str, *, stream: IO[str] | None | str = "stderr", unit: str = "") -> None:
        out: IO[str] | None = sys.stderr if isinstance(stream, str) else stream  # looked up now: tests swap it
        # The bar's own carriage returns must reach the terminal: bypass the CLI's escaping stream.
        out = getattr(out, "unescaped", out)
        self.total = total
        self.label = label
        self.unit = unit
        self.done = 0
        force = os.environ.get("TRAJREC_PROGRESS") == "1"
        self._stream = out if out is not None and (force or getattr(out, "isatty", lambda: False)()) else None
        self._start = time.monotonic()
        self._last = 0.0
        self._drawn = -1

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._stream is None:
            return
        now = time.monotonic()
        if now - self._last >= 0.1 or (self.total is not None and self.done >= self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        self._drawn = self.done
        elapsed = now - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(1.0, self.done / self.total)
            filled = int(frac * 30)
            bar = "#" * filled + "-" * (30 - filled)
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            text = f"\r{self.label} [{bar}] {self.done}/{self.total}{self.unit} {rate:,.0f}/s eta {eta:,.0f}s "
        else:
            text = f"\r{self.label} {self.done}{self.unit} {rate:,.0f}/s "
        assert self._stream is not None
        self._stream.write(text)
        self._stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stream is not None:
            if self._drawn != self.done:
                self._draw(time.monotonic())
            self._stream.write("\n")
            self._stream.flush()


def track(items: Iterable[T], total: int | None, label: str) -> Iterator[T]:
    """Iterate ``items`` with a progress bar."""
    with Progress(total, label) as bar:
        for item in items:
            yield item
            bar.advance()
