"""``HelpScreen``: every key of the screen it was opened from, the library filter grammar and the markers.

Built from the live ``BINDINGS`` of the screens and widgets, so it cannot fall out of date; a screen may add
sections of text (the episode screen: who labels, and the tag list).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Static

from trajrec.replay.library import FILTER_HELP

from .markers import KIND_STYLES, LABEL_MARKS, label_mark, legend, marker

#: A help section: a title and the bindings it lists.
Section = tuple[str, Sequence[Binding]]
#: A section of text: a title and what it says.
Notes = tuple[str, Text]


def bindings_of(node: DOMNode) -> list[Binding]:
    """Every binding ``node`` answers: its class's ``BINDINGS`` and those it inherits (a ``ScrollView``'s scroll
    keys, a ``Screen``'s tab), the same map Textual dispatches keys with."""
    merged: dict[tuple[str, str, str], list[str]] = {}  # Textual keeps one binding per key: join them again
    for bs in node._bindings.key_to_bindings.values():
        for b in bs:
            merged.setdefault((b.action, b.description, b.tooltip), []).append(b.key)
    return [Binding(",".join(keys), action, description, tooltip=tooltip)
            for (action, description, tooltip), keys in merged.items()]


def other_keys(sections: Sequence[Section], nodes: Iterable[DOMNode]) -> list[Binding]:
    """The bindings of ``nodes`` no section lists yet (by key), one per key and action, for an "Other keys"
    section: so every key that does something is in the help, whatever a screen chose to describe."""
    listed = {key.strip() for _title, bindings in sections for b in bindings for key in b.key.split(",")}
    out: list[Binding] = []
    for node in nodes:
        for b in bindings_of(node):
            keys = [k for k in b.key.split(",") if k not in listed]
            if not keys or b.action in _INTERNAL_ACTIONS:
                continue
            listed.update(keys)
            out.append(Binding(",".join(keys), b.action, b.description or b.action.replace("_", " ").capitalize(),
                               tooltip=b.tooltip))
    return out


#: Actions Textual binds that this app does not offer (its command palette is off).
_INTERNAL_ACTIONS = frozenset({"command_palette", "app.command_palette"})


class HelpScreen(ModalScreen[None]):
    """Lists keys by section; any of ``?``, F1, escape or ``q`` closes it.

    | Key(s) | Description |
    | :- | :- |
    | ?, f1, escape, q | Close the help. |
    """

    BINDINGS = [Binding("question_mark,f1,escape,q", "close", "Close help")]

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        background: $background 40%;
        & > VerticalScroll {
            width: 96;
            max-width: 100%;
            height: 90%;
            border: round $accent;
            border-title-align: center;
            background: $surface;
            padding: 0 1;
        }
    }
    """

    def __init__(self, sections: Iterable[Section], *, filter_help: bool = False, legend: bool = False,
                 notes: Iterable[Notes] = ()) -> None:
        super().__init__()
        self._sections = list(sections)
        self._filter_help = filter_help
        self._legend = legend
        self._notes = list(notes)

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "trajrec keys"
            scroll.border_subtitle = "? or escape closes"
            yield Static(self.help_text(), id="help-body")

    def key_names(self, binding: Binding) -> str:
        return ", ".join(self.app.get_key_display(Binding(k, binding.action)) for k in binding.key.split(","))

    def help_text(self) -> Text:
        out = Text(end="")
        for title, bindings in self._sections:
            rows: list[tuple[str, str]] = []
            seen: set[str] = set()
            for b in bindings:
                desc = b.tooltip or b.description
                if not desc or (b.key, desc) in seen:
                    continue
                seen.add((b.key, desc))
                rows.append((self.key_names(b), desc))
            if not rows:
                continue
            out.append(f"{title}\n", style="bold underline")
            width = max(len(k) for k, _ in rows)
            for keys, desc in rows:
                out.append(f"  {keys:<{width}}  ", style="bold cyan")
                out.append(f"{desc}\n")
            out.append("\n")
        for title, text in self._notes:
            out.append(f"{title}\n", style="bold underline")
            out.append_text(text)
            out.append("\n\n")
        if self._legend:
            out.append("Step markers\n", style="bold underline")
            for kind, (_style, label) in KIND_STYLES.items():
                out.append("  ")
                out.append_text(marker(kind))
                out.append(f"  {label}\n")
            out.append("  (a step shows its most important kind: failure, then recovery, retry, checks)\n",
                       style="dim")
            out.append("  jump keys (next/previous): ")
            out.append_text(legend())
            out.append("\n  (e/E and v/V also find retries and checks on steps drawn as failures or recoveries)\n\n",
                       style="dim")
            out.append("Label marks (the column after the step marker)\n", style="bold underline")
            for mark, (_style, label) in LABEL_MARKS.items():
                out.append("  ")
                out.append_text(label_mark(mark))
                out.append(f"  {label}\n")
            out.append("\n")
        if self._filter_help:
            out.append("Library filter\n", style="bold underline")
            out.append(FILTER_HELP + "\n")
        out.rstrip()
        return out

    def action_close(self) -> None:
        self.dismiss(None)
