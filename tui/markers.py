"""How each step kind looks: marker character (from ``trajrec.replay.render``), style, legend label.

Shared by the timeline, its legend and the detail pane so a kind looks the same everywhere.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from trajrec.replay.render import STEP_KINDS

#: Kind -> (style, legend label), in legend order.
KIND_STYLES: dict[str, tuple[str, str]] = {
    "ok": ("dim", "ok"),
    "failure": ("bold yellow", "tool error"),
    "exception": ("bold red", "exception"),
    "retry": ("bold magenta", "retry"),
    "recovery": ("bold green", "recovery"),
    "check_passed": ("green", "check passed"),
    "check_failed": ("red", "check failed"),
}

#: One byte per kind for the marker index (``KIND_CODES[kind]``) and back (``KINDS[code]``).
KINDS: tuple[str, ...] = tuple(STEP_KINDS)
KIND_CODES: dict[str, int] = {k: i for i, k in enumerate(KINDS)}

# A marker byte is the kind's code plus two flags, so a jump finds what a step is beside what it is drawn as: a
# retry that failed again is drawn as a failure (and a retry that worked as a recovery), a failed step may carry
# a check. Codes stay below 32; 254 and 255 are the scan's "unreadable" and "not scanned yet".
KIND_MASK = 0x07
RETRY_FLAG = 0x08  # the step repeats a failed operation (retry_of is set)
CHECK_FLAG = 0x10  # a check was recorded on the step


def _codes(kinds: tuple[str, ...] = KINDS, flag: int = 0) -> frozenset[int]:
    return frozenset(c for c in range(0x20) if (c & KIND_MASK) < len(KINDS) and KINDS[c & KIND_MASK] in kinds
                     and c & flag == flag)


def marker_code(kind: str, *, retry: bool = False, checked: bool = False) -> int:
    """The marker byte of a step drawn as ``kind``."""
    return KIND_CODES[kind] | (RETRY_FLAG if retry else 0) | (CHECK_FLAG if checked else 0)


def code_kind(code: int) -> str:
    """The kind a marker byte is drawn as."""
    return KINDS[code & KIND_MASK]


FAILURE_CODES = _codes(("failure", "exception"))
RECOVERY_CODES = _codes(("recovery",))
RETRY_CODES = _codes(flag=RETRY_FLAG)
CHECK_CODES = _codes(flag=CHECK_FLAG)

#: What the jump keys of the episode screen find, with the markers of those steps: (label, kinds, keys).
#: The legend under the timeline and the help are drawn from this, so the keys shown are the keys bound.
JUMPS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("failure", ("exception", "failure"), "n/N"),
    ("recovery", ("recovery",), "r/R"),
    ("retry", ("retry",), "e/E"),  # e/E also find retries drawn as failures or recoveries
    ("check", ("check_passed", "check_failed"), "v/V"),
)

_STYLES = {kind: Style.parse(style) for kind, (style, _label) in KIND_STYLES.items()}

#: Diff line kinds from ``trajrec.replay.render.diff_lines`` -> style.
DIFF_STYLES: dict[str, Style] = {
    "added": Style.parse("green"),
    "removed": Style.parse("red"),
    "changed": Style.parse("yellow"),
    "context": Style.parse("dim"),
}


#: Label values in the timeline and the detail pane: ratings (and pass/fail) by sign; scores and categories plain.
_LABEL_STYLES = {1: Style.parse("bold green"), 0: Style.parse("dim"), -1: Style.parse("bold red")}
_OTHERS_STYLE = Style.parse("dim")

#: The timeline's label column: the annotator's rating, or a dot when only others labeled the step.
LABEL_MARKS: dict[str, tuple[str, str]] = {
    "+": ("bold green", "you rated +1"),
    "0": ("dim", "you rated 0"),
    "-": ("bold red", "you rated -1"),
    "*": ("bold", "you labeled it otherwise (score, category)"),
    "•": ("dim", "labeled by others only"),
}


def label_style(value: object) -> Style | None:
    if isinstance(value, bool):
        return _LABEL_STYLES[1 if value else -1]
    return _LABEL_STYLES.get(value) if isinstance(value, int) else None


def label_mark_of(value: object | None, others: bool) -> str:
    """The timeline's label column for a step (a key of :data:`LABEL_MARKS`, or a space): ``value`` is the
    annotator's label value (None: no label of theirs), ``others`` whether someone else labeled the step."""
    if value is None:
        return "•" if others else " "
    if isinstance(value, bool):
        return "+" if value else "-"
    if isinstance(value, int):
        return {1: "+", 0: "0", -1: "-"}.get(value, "*")
    return "*"


def label_mark(mark: str) -> Text:
    """A label mark (from :func:`label_mark_of`) as styled text."""
    style = LABEL_MARKS.get(mark, ("", ""))[0]
    return Text(mark, style=style, end="")


def kind_style(kind: str) -> Style:
    return _STYLES.get(kind, _STYLES["ok"])


def marker(kind: str) -> Text:
    """The marker of ``kind`` as styled text."""
    return Text(STEP_KINDS.get(kind, "?"), style=kind_style(kind), end="")


def legend() -> Text:
    """``x ! failure [n/N]  R recovery [r/R]  r retry [e/E]  ✓ ✗ check [v/V]  · ok`` on one line: each marker with the
    keys that jump to the next / previous step showing it."""
    out = Text(end="")
    for label, kinds, keys in JUMPS:
        if out:
            out.append("  ")
        for kind in kinds:
            out.append_text(marker(kind))
            out.append(" ")
        out.append(label, style="dim")
        # Keys in brackets: a key letter (r: next recovery) must not read as the marker beside it (r: a retry).
        out.append(f" [{keys}]", style="bold")
    out.append("  ")
    out.append_text(marker("ok"))
    out.append(" ok", style="dim")
    return out
