"""How each step kind looks: marker character (from ``replay.render``), style, legend label.

Shared by the timeline, its legend and the detail pane so a kind looks the same everywhere.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from replay.render import STEP_KINDS

#: Kind -> (style, legend label), in legend order.
KIND_STYLES: dict[str, tuple[str, str]] = {
    "ok": ("grey62", "ok"),
    "failure": ("bold dark_orange", "tool error"),
    "exception": ("bold red", "exception"),
    "retry": ("bold magenta", "retry"),
    "recovery": ("bold green", "recovery"),
    "check_passed": ("green", "check passed"),
    "check_failed": ("red", "check failed"),
}

#: One byte per kind for the marker index (``KIND_CODES[kind]``) and back (``KINDS[code]``).
KINDS: tuple[str, ...] = tuple(STEP_KINDS)
KIND_CODES: dict[str, int] = {k: i for i, k in enumerate(KINDS)}
FAILURE_CODES = frozenset({KIND_CODES["failure"], KIND_CODES["exception"]})
RECOVERY_CODES = frozenset({KIND_CODES["recovery"]})

_STYLES = {kind: Style.parse(style) for kind, (style, _label) in KIND_STYLES.items()}

#: Diff line kinds from ``replay.render.diff_lines`` -> style.
DIFF_STYLES: dict[str, Style] = {
    "added": Style.parse("green"),
    "removed": Style.parse("red"),
    "changed": Style.parse("yellow"),
    "context": Style.parse("grey62"),
}


def kind_style(kind: str) -> Style:
    return _STYLES.get(kind, _STYLES["ok"])


def marker(kind: str) -> Text:
    """The marker of ``kind`` as styled text."""
    return Text(STEP_KINDS.get(kind, "?"), style=kind_style(kind), end="")


def legend() -> Text:
    """``· ok  ! tool error  x exception ...`` on one line."""
    out = Text(end="")
    for kind, (_style, label) in KIND_STYLES.items():
        if out:
            out.append("  ")
        out.append_text(marker(kind))
        out.append(f" {label}", style="grey62")
    return out
