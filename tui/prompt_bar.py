"""``PromptBar``: the one-line input behind ``:`` (go to step), ``/`` (search), ``c`` (note) and ``t`` (tag), at
the bottom of a screen.

Inline rather than a modal screen: closing a modal screen re-applies the CSS of the screen below and repaints
all of it (measured: ~60 ms of a go-to's ~115 ms), where hiding one line costs one layout pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label
from textual.widgets.input import Selection


class PromptBar(Horizontal):
    """Asks for one line: :meth:`ask` shows it with the focus in its input; enter answers with the text,
    escape with None (:class:`PromptBar.Answered`); either way it hides again. With ``instant``, text that
    matches it whole answers at once, without enter (``t`` then ``2`` picks tag 2).

    | Key(s) | Description |
    | :- | :- |
    | enter | Accept. |
    | escape | Cancel. |
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    PromptBar {
        display: none;
        height: 1;
        background: $surface;
        &.-asking { display: block; }
        & > Label { color: $accent; padding: 0 1; width: auto; }
        & > Input { width: 1fr; }
    }
    """

    @dataclass
    class Answered(Message):
        """The user answered the question ``purpose``: ``value`` is the text, or None when cancelled."""

        bar: PromptBar
        purpose: str
        value: str | None

        @property
        def control(self) -> PromptBar:
            return self.bar

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.purpose = ""
        self._instant: re.Pattern[str] | None = None

    def compose(self) -> ComposeResult:
        yield Label(markup=False)
        # The answer so far is selected here, not on focus: focus events come a turn late (see ask).
        yield Input(compact=True, select_on_focus=False)

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def asking(self) -> bool:
        return self.has_class("-asking")

    def ask(self, purpose: str, prompt: str, *, value: str = "", placeholder: str = "",
            restrict: str | None = None, instant: str | None = None) -> None:
        """Show the bar with ``prompt`` and give its input the focus (at once: keys typed right after the key
        that asked, in one burst, must land here). ``instant``: a regular expression; typed text matching it
        whole answers without enter."""
        self.purpose = purpose
        self._instant = re.compile(instant) if instant else None
        self.query_one(Label).update(prompt)
        field = self.input
        field.restrict = restrict
        field.placeholder = placeholder
        field.value = value
        field.selection = Selection(0, len(value))  # typing replaces the last answer; enter reuses it
        self.add_class("-asking")
        self.screen.set_focus(field)

    def _close(self, value: str | None) -> None:
        self.remove_class("-asking")
        self.post_message(self.Answered(self, self.purpose, value))

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if self.asking and self._instant is not None and self._instant.fullmatch(event.value):
            self._close(event.value)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._close(event.value)

    def action_cancel(self) -> None:
        self._close(None)
