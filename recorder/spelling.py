"""Option names in messages as the caller wrote them: ``overwrite=True`` from Python, ``--overwrite`` from the CLI.

The library's checks are shared by the Python API and the ``trajrec`` commands; a message names the fix in the
caller's terms. The CLI runs its commands inside :func:`cli_spelling`; everything else gets Python's spelling.

>>> option("label_map"), option("overwrite", True)
('label_map=', 'overwrite=True')
>>> with cli_spelling():
...     option("label_map"), option("overwrite", True)
('--label-map', '--overwrite')
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

__all__ = ["cli_spelling", "in_cli", "option"]

_CLI: ContextVar[bool] = ContextVar("trajrec_cli_spelling", default=False)
_NO = object()


@contextmanager
def cli_spelling() -> Iterator[None]:
    """Within this block, :func:`option` spells options as ``trajrec`` flags (``--label-map``)."""
    token = _CLI.set(True)
    try:
        yield
    finally:
        _CLI.reset(token)


def in_cli() -> bool:
    """True inside :func:`cli_spelling` (a ``trajrec`` command is running)."""
    return _CLI.get()


def option(name: str, value: Any = _NO) -> str:
    """An option as the caller writes it.

    Args:
        name: the Python keyword (``label_map``) or the flag (``--label-map``); either gives both spellings.
        value: with a value, the setting: ``overwrite=True`` / ``--overwrite`` (a CLI flag's value of True is the
            bare flag; another value follows it: ``--weights all``).

    Returns:
        ``label_map=`` (Python) or ``--label-map`` (CLI) without ``value``.
    """
    bare = name[2:] if name.startswith("--") else name
    if _CLI.get():
        flag = "--" + bare.replace("_", "-")
        if value is _NO or value is True:
            return flag
        return f"{flag} {value}"
    kw = bare.replace("-", "_")
    return f"{kw}=" if value is _NO else f"{kw}={value!r}"
