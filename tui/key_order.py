"""Keys act in the order typed, however fast: the one place that orders them (:class:`OrderedKeys`, mixed into
the app) and the input that takes part (:class:`OrderedInput`).

Textual runs a priority binding when its key reaches the app, but queues every other key at the focused widget;
the widget's own bindings, and those of its parents, are looked up only once the key has bubbled back to the
app, with the focus of that moment. Keys typed in one burst (a paste, key repeat, ``tmux send-keys``, a busy
app) therefore overtook each other: a backspace typed before enter was looked up after enter had closed the
prompt and was lost (FINDINGS23 #1); ``/`` in the library took the focus before the table's enter was looked
up (#3). And a key that switches what is shown (``L``, the table's enter) only asks for it with a message, so
the keys typed after it ran on the old episode (#2).

So the app handles each key whole when it arrives (:meth:`OrderedKeys.on_event`): the priority bindings, then
the focused :class:`OrderedInput` types it or runs its own binding, then the bindings of the focus chain, all
before the next key is looked at. A key that leaves something to a message (an answer to a prompt, the next
episode, an episode to open) calls :func:`hold_keys`; the keys arriving meanwhile wait, and run in order once
every hold is released (:func:`release_keys`).

A step search is a wait that can take seconds (a 70,000-step episode: ~2.5 s), so it holds the keys with
:func:`hold_keys_for_search` instead: a :class:`SearchHold` that only its own search releases (a late answer of
an earlier search cannot release it), never dropped for its age, and cancelled by escape, which acts at once
while it holds (as ctrl+q does): the search stops and the keys waiting for its answer are dropped (they were
meant for the match; run on the step the search started from they would land on the wrong step, FINDINGS25).
A marker jump (``n`` ``r`` ``e`` ``v`` and their capitals) pressed before the marker index is read (right after
opening an episode or ``L``/``H``; seconds on a large file) is the other such wait, and holds the keys the same
way until the index answers it (FINDINGS32 #1), and so does a sort or a filter of a library too large to sort
at once (its rows come from a worker). Every key that moves the cursor later than it is handled holds the keys
behind it so.
"""

from __future__ import annotations

import time

from collections.abc import Callable

from textual import events
from textual.app import App
from textual.widgets import Input, TextArea

#: A hold not released after this many seconds is dropped (the keys run): a lost release must not make the
#: app deaf. Only the short holds have this guard: answering a prompt, L/H and the table's enter wait for a
#: message that follows at once on the app's own loop (the episode is opened synchronously, on that loop, so
#: this timer cannot fire while it opens, and the screen's hold is taken after it): they take milliseconds. A
#: step search can take seconds and has its own hold (:class:`SearchHold`), which escape cancels instead.
STALE_HOLD_SECONDS = 2.0


class SearchHold:
    """The hold of one long wait (a step search, a marker jump waiting for the index): keys arriving meanwhile
    wait until this hold is released (once), or escape cancels it (``cancel(dropped)`` is called with the number
    of waiting keys dropped)."""

    def __init__(self, app: App[object], cancel: Callable[[int], None]) -> None:
        self.app = app
        self.cancel = cancel

    @property
    def active(self) -> bool:
        """Whether this hold still holds the keys."""
        return isinstance(self.app, OrderedKeys) and self in self.app._search_holds

    def release(self) -> None:
        """Let the waiting keys run (a no-op when already released or cancelled)."""
        app = self.app
        if isinstance(app, OrderedKeys) and self in app._search_holds:
            app._search_holds.remove(self)
            if not app._holding and app._held:
                app.call_later(app._run_held)


def hold_keys_for_search(app: App[object], cancel: Callable[[int], None]) -> SearchHold:
    """Keys arriving from now on wait until the returned hold is released, however long that takes (see
    :class:`SearchHold`; a step search's and a pending marker jump's)."""
    hold = SearchHold(app, cancel)
    if isinstance(app, OrderedKeys):
        app._search_holds.append(hold)
    return hold


def next_search(app: App[object], hold: SearchHold | None, searches: int,
                cancel: Callable[[int, int], None]) -> tuple[int, SearchHold]:
    """Start a screen's next step search: release the hold of the one before (only its own search releases a hold:
    never left behind) and hold the keys for the new one. Returns ``(its number, its hold)``; ``cancel(number,
    keys dropped)`` runs when escape cancels it."""
    if hold is not None:
        hold.release()
    search = searches + 1
    return search, hold_keys_for_search(app, lambda dropped: cancel(search, dropped))


def hold_keys(app: App[object]) -> None:
    """Keys arriving from now on wait until :func:`release_keys` is called as often as this (no-op on an app
    without :class:`OrderedKeys`)."""
    if isinstance(app, OrderedKeys):
        app._holds += 1
        app._held_since = time.monotonic()
        app.set_timer(STALE_HOLD_SECONDS + 0.1, app._drop_stale_hold)


def release_keys(app: App[object]) -> None:
    """Release one :func:`hold_keys`; with none left the waiting keys run, in the order typed."""
    if isinstance(app, OrderedKeys) and app._holds:
        app._holds -= 1
        app._escape_cancels_search()  # (an escape typed in the same burst as the search's enter)
        if not app._holding and app._held:
            app.call_later(app._run_held)


class OrderedKeys:
    """App mixin: every key is handled whole, in the order typed (see the module docstring)."""

    _holds = 0
    _held_since = 0.0

    @property
    def _search_holds(self) -> list[SearchHold]:
        holds: list[SearchHold] | None = self.__dict__.get("_search_holds_list")
        if holds is None:
            holds = self.__dict__["_search_holds_list"] = []
        return holds

    @property
    def _holding(self) -> bool:
        return bool(self._holds or self._search_holds)

    @property
    def _held(self) -> list[events.Key]:
        held: list[events.Key] | None = self.__dict__.get("_held_keys")
        if held is None:
            held = self.__dict__["_held_keys"] = []
        return held

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded and isinstance(self, App):
            if event.key == "ctrl+q":  # quitting never waits
                await super().on_event(event)  # type: ignore[misc]
            elif self._holding or self._held:
                self._held.append(event)
                self._escape_cancels_search()
            else:
                await self._key_now(event)
            return
        await super().on_event(event)  # type: ignore[misc]

    async def _key_now(self, event: events.Key) -> None:
        assert isinstance(self, App)
        self.app_focus = True  # (what Textual's own route does first)
        screen = self.screen
        if not (event.key == "escape" and screen.maximized is not None and self.escape_to_minimize):
            focused = self.focused
            if await self._check_bindings(event.key, priority=True):
                return
            if isinstance(focused, OrderedInput):
                if await focused.type_key(event):
                    return
            elif isinstance(focused, (Input, TextArea)):
                await super().on_event(event)  # type: ignore[misc]  # (another input: Textual's own route)
                return
            if await self._check_bindings(event.key, priority=False):
                return
        await super().on_event(event)  # type: ignore[misc]  # to the focused widget's own key handler

    async def _run_held(self) -> None:
        while self._held and not self._holding:
            await self._key_now(self._held.pop(0))
        self._escape_cancels_search()  # (a search started by a held key, and an escape held after it)

    def _escape_cancels_search(self) -> None:
        """Escape waiting while a search holds the keys acts at once: the searches are cancelled and the keys
        typed before the escape (meant for their answer) are dropped; the keys typed after it run."""
        held = self._held
        if not self._search_holds or not any(key.key == "escape" for key in held):
            return
        at = next(i for i, key in enumerate(held) if key.key == "escape")
        holds, dropped = list(self._search_holds), at
        self._search_holds.clear()
        del held[: at + 1]
        for hold in holds:
            hold.cancel(dropped)
        if held and not self._holding:
            assert isinstance(self, App)
            self.call_later(self._run_held)

    def _drop_stale_hold(self) -> None:
        if self._holds and time.monotonic() - self._held_since >= STALE_HOLD_SECONDS:
            self._holds = 0
            if self._held and not self._search_holds:
                assert isinstance(self, App)
                self.call_later(self._run_held)


class OrderedInput(Input):
    """An input whose keys are handled when they arrive at the app (:meth:`type_key`), its own bindings
    (backspace, the arrows, home/end, ctrl+u ...) included, so they keep their order with the keys around them."""

    async def type_key(self, event: events.Key) -> bool:
        """Type the printable ``event`` or run this input's binding for it; False if it has none."""
        if event.is_printable and event.character is not None:
            self._restart_blink()
            selection = self.selection
            if selection.is_empty:
                self.insert_text_at_cursor(event.character)
            else:
                self.replace(event.character, *selection)
            return True
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if await self.app.run_action(binding.action, self):  # (Widget.run_action returns None)
                self._restart_blink()
                return True
        return False

    async def _on_key(self, event: events.Key) -> None:
        # A key that came the usual way (an app without OrderedKeys): the same handling.
        if await self.type_key(event):
            event.stop()
            event.prevent_default()
