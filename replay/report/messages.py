"""Error messages grouped by shape: the parts that vary between occurrences (quoted values, paths, ids,
numbers) are masked, so ``no such file 'a.txt'`` and ``no such file 'b/c.txt'`` count as one kind of failure.

>>> normalize_message("calc: invalid syntax at column 5 of '45 x 3'; use numbers")
'calc: invalid syntax at column <n> of <str>; use numbers'
>>> normalize_message("cat: /tmp/run-3/notes.txt: No such file (errno 2)")
'cat: <path>: No such file (errno <n>)'
>>> normalize_message("ticket 3f2a9c1e-77b0-4c1e-9a43-0c1d2e3f4a5b not found after 1.5s")
'ticket <id> not found after <n>s'
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["MAX_MESSAGE", "normalize_message"]

#: Longest normalized message kept (characters); longer ones are cut with an ellipsis.
MAX_MESSAGE = 160

# Order matters: quoted values first (they may hold paths and numbers), then paths, then ids, then numbers.
_MASKS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`"), "<str>"),
    (re.compile(r"'[^'\n]*$|\"[^\"\n]*$"), "<str>"),  # a quote the message was cut inside of
    (re.compile(r"(?<![\w<])(?:[A-Za-z]:)?(?:~|\.{1,2})?(?:[/\\][\w.+@-]+)+[/\\]?|(?<![\w<])(?=[\w.+/-]*[A-Za-z])[\w.+-]+(?:/[\w.+-]+)+"
                r"|\b[\w-]+\.(?:py|txt|json|jsonl|md|csv|yaml|yml|toml|cfg|ini|log|sh|js|ts|html|xml|zst)\b"),
     "<path>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
                r"|\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,}\b"
                r"|\b(?=[\w-]*[A-Za-z])(?=[\w-]*\d)[A-Za-z][\w]*[-_]\w*\d\w*\b"), "<id>"),
    (re.compile(r"[-+]?\b\d+(?:[.,:]\d+)*(?:[eE][-+]?\d+)?"), "<n>"),
]
_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=8192)  # the same messages come back again and again; a hit skips five regex passes
def normalize_message(message: str) -> str:
    """The shape of an error message: its first line with quoted values as ``<str>``, file paths as ``<path>``,
    ids (uuids, hex digests, ``name-123`` tokens) as ``<id>`` and numbers as ``<n>``; blank runs collapsed, cut
    to :data:`MAX_MESSAGE` characters.

    >>> normalize_message("unknown tool 'serach' (did you mean 'search'?)")
    'unknown tool <str> (did you mean <str>?)'
    >>> normalize_message("expected e.g. 3.5 or 7/2, found src/app.py")
    'expected e.g. <n> or <n>/<n>, found <path>'
    >>> normalize_message("")
    '(no message)'
    """
    text = message.strip().split("\n", 1)[0] if message else ""
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    text = _SPACES.sub(" ", text).strip()
    if not text:
        return "(no message)"
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
