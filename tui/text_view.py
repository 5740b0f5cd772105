"""``TextView``: a scrollable pane of styled text, drawn with the Line API.

A ``Static`` in a scroll container re-wraps and re-renders all of its text whenever it changes, which for a
whole env state (hundreds of lines) costs more than a key press may. This view splits the text into lines
once per update (wrapping them to the width when asked) and renders only the lines on screen.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

_CUT_STYLE = Style(dim=True)


class TextView(ScrollView, can_focus=True):
    """Shows one ``rich.text.Text``; the owner calls :meth:`update`. Scroll keys as in any scroll container.

    With ``wrap=True`` long lines wrap at the pane's width; otherwise they run on, for horizontal scrolling,
    and a line that goes on past the right edge ends in a grey ``…`` there, so a cut line never passes for a
    whole one. :meth:`set_wrap` switches between the two.
    """

    DEFAULT_CSS = """
    TextView {
        overflow-y: auto;
        overflow-x: auto;
        scrollbar-gutter: stable;
        scrollbar-size: 1 1;
    }
    """

    def __init__(self, *, wrap: bool = True, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.wrap = wrap
        self._text = Text(end="")
        self._lines: list[Text] = []
        self._width = 0
        # Strips of the lines on screen and around it; the text itself is held once, in _lines.
        self._strips: LRUCache[tuple[int, int, int], Strip] = LRUCache(256)

    @property
    def text(self) -> Text:
        """The text shown."""
        return self._text

    def update(self, text: Text, *, scroll_home: bool = True) -> None:
        self._text = text
        self._layout_lines()
        if scroll_home:
            self.scroll_to(0, 0, animate=False, immediate=True)

    def set_wrap(self, wrap: bool) -> None:
        """Wrap long lines (True), or cut them at the right edge (False)."""
        if wrap != self.wrap:
            self.wrap = wrap
            self._layout_lines()

    def _layout_lines(self) -> None:
        width = self.scrollable_content_region.width
        self._width = width
        lines = self._text.split("\n", allow_blank=True)
        if self.wrap and width > 0:
            console = self.app.console
            wrapped: list[Text] = []
            for line in lines:
                if line.cell_len <= width:
                    wrapped.append(line)  # most lines: no wrapping work at all
                else:
                    wrapped.extend(line.wrap(console, width, overflow="fold"))
            lines = wrapped
            virtual_width = width
        else:
            virtual_width = max((line.cell_len for line in lines), default=0)
        self._lines = list(lines)
        self._strips.clear()
        size = Size(virtual_width, len(self._lines))
        height = self.styles.height
        if size != self.virtual_size and not (height is not None and height.is_auto) and self.is_scrollable:
            # Only this pane's scroll range changed: its scrollbars follow (they lay out when shown or hidden),
            # but the screen is not laid out again (12 ms on an 140x45 screen, most of a key's cost).
            self.set_reactive(Widget.virtual_size, size)
            self._scroll_update(size)
        else:
            self.virtual_size = size  # a pane as tall as its text changes height: the screen lays out
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        if self.scrollable_content_region.width != self._width:
            self._layout_lines()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        i = scroll_y + y
        style = self.rich_style
        if not 0 <= i < len(self._lines):
            return Strip.blank(width, style)
        key = (i, scroll_x, width)
        strip = self._strips.get(key)
        if strip is None:
            line = self._lines[i]
            strip = Strip(line.render(self.app.console), line.cell_len).apply_style(style)
            if line.cell_len > scroll_x + width and width > 1:
                # Cut at the right edge: the last cell says so (the line goes on; scroll, or w wraps).
                strip = Strip.join([strip.crop(scroll_x, scroll_x + width - 1),
                                    Strip([Segment("…", style + _CUT_STYLE)], 1)])
            else:
                strip = strip.crop_extend(scroll_x, scroll_x + width, style)
            self._strips.set(key, strip)
        return strip
