"""``KeyHints``: the main keys of the current screen, one line at the bottom (a light Footer).

Textual's ``Footer`` rebuilds its key widgets whenever the focus changes (each build mounts and styles ~10
widgets: measured ~25 ms). Opening and closing the ``:``/``/`` prompt moves the focus twice per go-to, so a
plain line of text, redrawn on change, keeps those keys under the 100 ms budget.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.dom import DOMNode
from textual.widget import Widget


class KeyHints(Widget):
    """``l Next  h Prev  n Next failure ...``: the shown (``show=True``) bindings active on this screen, as the
    Footer would list them; clicking one runs it."""

    DEFAULT_CSS = """
    KeyHints {
        dock: bottom;
        height: 1;
        background: $footer-background;
        color: $footer-foreground;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._spans: list[tuple[int, int, str, DOMNode]] = []  # x range, action, where it is bound

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, lambda _screen: self.refresh())
        self.watch(self.screen, "maximized", lambda _widget: self.refresh(), init=False)

    def render(self) -> Text:
        out = Text(end="")
        self._spans = []
        seen: set[str] = set()
        active = list(self.screen.active_bindings.values())
        if self.screen.maximized is not None:
            # A zoomed pane hides the rest of the screen: first say how to get it back (escape minimizes too).
            zoom = [(node, b) for node, b, _enabled, _tooltip in active if b.action == "zoom"]
            keys = [self.app.get_key_display(b) for _node, b in zoom[:1]] + ["esc"]
            start = out.cell_len
            out.append(f" {' '.join(keys)} ", style="bold")
            out.append("Unzoom ")
            self._spans.append((start, out.cell_len, "zoom", zoom[0][0]) if zoom else
                               (start, out.cell_len, "screen.minimize", self.screen))
            seen.add("zoom")
        for node, binding, enabled, _tooltip in active:
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            start = out.cell_len
            out.append(f" {self.app.get_key_display(binding)} ", style="bold" if enabled else "dim")
            out.append(f"{binding.description} ", style=None if enabled else "dim")
            self._spans.append((start, out.cell_len, binding.action, node))
        return out

    def on_click(self, event: events.Click) -> None:
        for start, end, action, node in self._spans:
            if start <= event.x < end:
                self.run_worker(self.app.run_action(action, node), exclusive=False)
                return
