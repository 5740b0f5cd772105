"""``PromptBar``: the one-line input behind ``:`` (go to step), ``/`` (search), ``c`` (note), ``t`` (tag), ``#``
(score), ``C`` (category) and ``P`` (the episode's label), at the bottom of a screen.

Inline rather than a modal screen: closing a modal screen re-applies the CSS of the screen below and repaints
all of it (measured: ~60 ms of a go-to's ~115 ms), where hiding one line costs one layout pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual import events
from textual.events import DescendantBlur
from textual.widget import Widget
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label
from textual.widgets.input import Selection

from .key_order import OrderedInput, hold_keys, release_keys


class PromptBar(Horizontal):
    """Asks for one line: :meth:`ask` shows it with the focus in its input; enter answers with the text,
    escape with None (:class:`PromptBar.Answered`); either way it hides again. With ``instant``, text that
    matches it whole answers at once, without enter (``t`` then ``2`` picks tag 2). With ``check``, enter on an
    answer it finds wrong (a score that is not a number) answers nothing: the bar stays open and says why
    (:attr:`problem`), the text kept with the cursor at its end for correcting.

    | Key(s) | Description |
    | :- | :- |
    | enter | Accept. |
    | escape | Cancel. |
    | tab | A space (a tab in pasted or typed text); the focus stays in the prompt. |

    The prompt keeps the focus until enter or escape: a tab is text (the screen's tab would move the focus away
    and leave the prompt open and deaf: enter not saving, later letters running as commands; FINDINGS17 #3),
    shift+tab does nothing, and a click elsewhere gives the focus back to the prompt.

    Keys typed in one burst keep their order across the answer (``c note enter + l``: the ``+`` rates, it is not
    the note's; ``c abc backspace enter`` saves ``ab``). The app hands each key to the input as it arrives
    (:mod:`trajrec.tui.key_order`): the input types it, runs its own binding (backspace, the arrows, ctrl+u ...)
    or answers (enter, escape, tab, an ``instant`` match) before the next key is looked at; the keys typed after
    the answer wait until the screen has acted on it.
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("tab", "type_space", "Space", show=False),
        Binding("shift+tab", "stay", show=False),
    ]

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
        self.prompt = ""
        #: Why ``check`` refused the last enter (shown before the prompt), or "".
        self.problem = ""
        self._instant: re.Pattern[str] | None = None
        self._check: Callable[[str], str | None] | None = None
        self._focus_before: Widget | None = None  # focused when the prompt opened; focused again when it closes

    def compose(self) -> ComposeResult:
        yield Label(markup=False)
        # The answer so far is selected here, not on focus: focus events come a turn late (see ask).
        yield _PromptInput(compact=True, select_on_focus=False)

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def asking(self) -> bool:
        return self.has_class("-asking")

    def ask(self, purpose: str, prompt: str, *, value: str = "", placeholder: str = "",
            restrict: str | None = None, instant: str | None = None,
            check: Callable[[str], str | None] | None = None) -> None:
        """Show the bar with ``prompt`` and give its input the focus (at once: keys typed right after the key
        that asked, in one burst, must land here). ``instant``: a regular expression; typed text matching it
        whole answers without enter. ``check``: called with the text on enter; a message (what is wrong and
        what to type) keeps the bar open, showing it; None lets the answer through."""
        self.purpose = purpose
        self.prompt = prompt
        self.problem = ""
        self._instant = re.compile(instant) if instant else None
        self._check = check
        self.query_one(Label).update(prompt)
        field = self.input
        field.restrict = restrict
        field.placeholder = placeholder
        field.value = value
        field.selection = Selection(0, len(value))  # typing replaces the last answer; enter reuses it
        self.add_class("-asking")
        focused = self.screen.focused
        self._focus_before = focused if focused is not None and focused is not field else None
        self.screen.set_focus(field)

    def _close(self, value: str | None) -> None:
        """Hide, give the focus back (at once: keys arriving from now on are the screen's), and post the answer
        to the screen's queue (straight, not bubbling through this bar's queue: keys handed back come after)."""
        self.remove_class("-asking")
        before = self._focus_before
        self._focus_before = None
        if before is not None and before.is_attached and self.screen.focused is self.input:
            self.screen.set_focus(before)
        # The keys typed after the answer wait for the screen to act on it (a go-to, then a rating on the step
        # it went to).
        hold_keys(self.app)
        self.screen.post_message(self.Answered(self, self.purpose, value))
        self.screen.call_later(release_keys, self.app)

    def _enter(self) -> None:
        """Enter: answer with the text, unless ``check`` refuses it (then say why and keep asking: the keys
        typed after the enter are typed into the prompt, as they would be had the enter not been pressed)."""
        value = self.input.value
        problem = self._check(value) if self._check is not None else None
        if not problem:
            self._close(value)
            return
        self.problem = problem
        label = Text(problem, style="bold red", end="")
        label.append("  " + self.prompt, style="")
        self.query_one(Label).update(label)
        # The cursor at the end, nothing selected: a backspace takes the last character back and typing goes on
        # after it, as if the enter had not been pressed (selected, one backspace erased the whole answer, and
        # an enter then cleared a saved score).
        self.input.selection = Selection(len(value), len(value))

    def _typed(self) -> None:
        """After a key typed into the input: text matching ``instant`` whole answers at once."""
        if self.asking and self._instant is not None and self._instant.fullmatch(self.input.value):
            self._close(self.input.value)

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()  # (enter is answered by the input itself, see _PromptInput)

    def action_cancel(self) -> None:
        self._close(None)

    def action_type_space(self) -> None:
        """A tab, typed as a space (the answer is one line of words), as a printable key is typed: over the
        selection if there is one."""
        field = self.input
        start, end = sorted(field.selection)
        if start != end:
            field.replace(" ", start, end)
        else:
            field.insert_text_at_cursor(" ")

    def action_stay(self) -> None:
        """shift+tab: the focus stays in the prompt."""

    def _hand_back(self, event: events.Key) -> None:
        """A key that reached the input after it answered: to the app, behind the answer, as if typed now."""
        key = events.Key(event.key, event.character)
        self.screen.call_later(self.app.post_message, key)

    @on(DescendantBlur)
    def _blurred(self, event: DescendantBlur) -> None:
        # The focus left the input while it asks (a click on a pane): it comes back once the click is handled,
        # unless another screen (the help) is on top; the prompt is left with enter or escape only.
        if self.asking:
            self.call_after_refresh(self._take_focus_back)

    def _take_focus_back(self) -> None:
        if self.asking and self.screen.is_current and self.screen.focused is not self.input:
            self.screen.set_focus(self.input)


class _PromptInput(OrderedInput):
    """The prompt's input: answers enter, escape, tab and an ``instant`` match as the keys arrive, in the order
    typed (see :class:`PromptBar`)."""

    #: The last key offered while asking that the input neither typed nor had a binding for (ctrl+r, f5).
    _unhandled: events.Key | None = None

    async def type_key(self, event: events.Key) -> bool:
        bar = self.parent
        if not isinstance(bar, PromptBar):
            return await super().type_key(event)
        if not bar.asking:  # (a key that came the usual way, after the answer)
            if event is not self._unhandled:
                bar._hand_back(event)
            # else: typed while the prompt asked, and left to Textual's route (the app's bindings, f1 the help),
            # which delivers it here after a later key answered: handed back now it would run after the answer
            # (ctrl+r typed into a note, then escape, redid a label). It did nothing when typed: it does nothing.
            return True
        key = event.key
        if key == "enter":
            bar._enter()
        elif key == "escape":
            bar._close(None)
        elif key == "tab":
            bar.action_type_space()
            bar._typed()
        elif key == "shift+tab":
            pass
        elif await super().type_key(event):
            if event.is_printable:
                bar._typed()
        else:
            self._unhandled = event
            return False
        return True
