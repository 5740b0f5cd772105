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
"""

from __future__ import annotations

import time

from textual import events
from textual.app import App
from textual.widgets import Input, TextArea

#: A hold not released after this many seconds is dropped (the keys run): a lost release must not make the
#: app deaf. Opening an episode or answering a prompt takes milliseconds.
STALE_HOLD_SECONDS = 2.0


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
        if not app._holds and app._held:
            app.call_later(app._run_held)


class OrderedKeys:
    """App mixin: every key is handled whole, in the order typed (see the module docstring)."""

    _holds = 0
    _held_since = 0.0

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
            elif self._holds or self._held:
                self._held.append(event)
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
        while self._held and not self._holds:
            await self._key_now(self._held.pop(0))

    def _drop_stale_hold(self) -> None:
        if self._holds and time.monotonic() - self._held_since >= STALE_HOLD_SECONDS:
            self._holds = 0
            if self._held:
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
