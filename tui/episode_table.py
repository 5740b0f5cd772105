"""``EpisodeTable``: the library's rows, one episode each, drawn with the Line API.

Textual's ``DataTable`` measures and formats every cell of every row when rows are added (measured here: 1.2 s
for 10,000 rows, again on every re-filter) and reads ``str`` cells as markup. This table holds a list of
:class:`trajrec.replay.library.EpisodeEntry` and formats only the rows on screen, so filtering or sorting 10,000
episodes is a list operation plus one screenful of drawing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from trajrec.replay.library import EpisodeEntry
from trajrec.replay.render import number_text, one_line

from .key_order import hold_keys


def _num(v: float | int | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        text = number_text(v)
        return text if len(text) <= 7 else f"{v:.3g}"  # the column's width: an exponent only when needed
    return f"{v:,}"


def _count(v: int, style: str) -> tuple[str, str | None]:
    return (f"{v:,}", style) if v else ("0", "dim")


def _outcome(e: EpisodeEntry) -> tuple[str, str | None]:
    if e.live:  # no index because a live Recorder is writing it, not a dead writer: the status line says so too
        return "recording", "bold yellow"
    outcome = e.outcome or ("incomplete" if not e.complete else "-")
    # "*": a file without an index whose summary is still known; "incomplete" says so already.
    text = one_line(outcome, 14) + ("" if e.complete or outcome in ("incomplete", "unreadable") else "*")
    if e.error is not None or e.outcome in ("error", "unreadable"):
        return text, "bold red"
    return text, {"passed": "green", "failed": "red"}.get(e.outcome)


def _labeled(e: EpisodeEntry) -> tuple[str, str | None]:
    if e.labeled is None:
        return "-", "dim"
    return f"{e.labeled:.0%}", "green" if e.labeled >= 1.0 else None


def _env(e: EpisodeEntry) -> tuple[str, str | None]:
    # Every built-in id starts with "trajrec/": in a column a few cells wide the prefix would be all one sees.
    env = e.env_id[len(BUILTIN_PREFIX):] if e.env_id.startswith(BUILTIN_PREFIX) else e.env_id
    return one_line(env or "-", 40), None


def _task(e: EpisodeEntry) -> Text:
    if e.error is not None:  # an unreadable file: the task column says why, the episode column names the file
        return Text(one_line(e.error, 200), style="red", end="")
    out = Text(one_line(e.task_id or "-", 40), end="")
    if e.task_text:
        out.append("  " + one_line(e.task_text, 200), style="dim")
    return out


def _episode(e: EpisodeEntry) -> tuple[str, str | None]:
    if e.error is not None:
        return one_line(e.name, 80), "red"
    return one_line(e.episode_id, 80), "dim"


#: The env id prefix of the built-in envs, left out of the env column.
BUILTIN_PREFIX = "trajrec/"


@dataclass(frozen=True)
class Column:
    """A library column: its key (a sort key of :func:`trajrec.replay.library.sort_entries`), label, width, the
    width it may shrink to on a narrow terminal (``min_width``), share of the spare width (``flex``), alignment,
    and how an entry becomes the cell's text and style."""

    key: str
    label: str
    width: int
    cell: Callable[[EpisodeEntry], "Text | tuple[str, str | None]"]
    right: bool = False
    flex: int = 0
    keep_end: bool = False  # cut on the left: episode ids differ at their end
    min_width: int = 0  # 0: never shrinks
    short: str = ""  # the header label when the column is narrower than its label


# Widths are chosen so every column stays visible at 80 columns: the minimum widths and separators sum to 77.
COLUMNS: tuple[Column, ...] = (
    Column("env", "env", 16, _env, min_width=9),
    Column("task", "task", 16, _task, flex=3, min_width=10),
    Column("steps", "steps", 7, lambda e: (_num(e.steps), None), right=True, min_width=5),
    Column("return", "return", 7, lambda e: (_num(e.ret), None), right=True, min_width=6),
    Column("outcome", "outcome", 10, _outcome),
    Column("failures", "fail", 5, lambda e: _count(e.failures, "yellow"), right=True, min_width=4),
    Column("retries", "retry", 5, lambda e: _count(e.retries, "magenta"), right=True),
    Column("recoveries", "recov", 5, lambda e: _count(e.recoveries, "green"), right=True),
    Column("labeled", "labeled", 7, _labeled, right=True, min_width=4, short="lab"),
    Column("episode", "episode", 14, _episode, flex=2, keep_end=True, min_width=9),
)

_FLEX = sum(c.flex for c in COLUMNS)


@lru_cache(maxsize=16)
def _widths(width: int) -> list[int]:
    """Column widths for a table ``width`` cells wide: spare cells go to the flexible columns; on a narrow
    terminal every column shrinks towards its ``min_width``, widest first, so that none drops off the end."""
    spare = width - sum(c.width + 1 for c in COLUMNS) - 1
    if spare >= 0:
        return [c.width + spare * c.flex // _FLEX for c in COLUMNS]
    widths = [c.width for c in COLUMNS]
    while spare < 0:
        room = [i for i, c in enumerate(COLUMNS) if c.min_width and widths[i] > c.min_width]
        if not room:
            break  # narrower than every minimum: the last columns are cut off
        i = max(room, key=lambda k: (widths[k] - COLUMNS[k].min_width, COLUMNS[k].flex))
        widths[i] -= 1
        spare += 1
    return widths


class EpisodeTable(ScrollView, can_focus=True, inherit_bindings=False):
    """Episodes as rows under a sticky header; the screen sets the rows (:meth:`set_rows`) and the sort marks.

    | Key(s) | Description |
    | :- | :- |
    | up, k / down, j | Previous / next episode. |
    | pageup / pagedown | A page up / down. |
    | home, g / end, G | First / last episode. |
    | enter | Open the episode. |

    Clicking a header sorts by that column (the screen decides: :class:`EpisodeTable.HeaderClicked`);
    clicking a row selects it, clicking it again (or double-clicking) opens it.

    | Class | Description |
    | :- | :- |
    | `episode-table--header` | The header line. |
    | `episode-table--cursor` | The selected row. |
    """

    BINDINGS = [
        Binding("up,k", "move(-1)", "Previous episode", show=False),
        Binding("down,j", "move(1)", "Next episode", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "First episode", show=False),
        Binding("end,G", "jump(-1)", "Last episode", show=False),
        Binding("enter", "open", "Open", show=True),
    ]

    COMPONENT_CLASSES = {"episode-table--header", "episode-table--cursor"}

    DEFAULT_CSS = """
    EpisodeTable {
        overflow-x: hidden;
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
        & > .episode-table--header { background: $panel; text-style: bold; }
        & > .episode-table--cursor { background: $block-cursor-blurred-background; }
        &:focus > .episode-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
        }
    }
    """

    cursor: reactive[int] = reactive(0, init=False)
    """Index of the selected row in the current rows."""

    @dataclass
    class Opened(Message):
        """The user asked to open ``entry`` (enter, a second click, a double click)."""

        table: EpisodeTable
        entry: EpisodeEntry

        @property
        def control(self) -> EpisodeTable:
            return self.table

    @dataclass
    class HeaderClicked(Message):
        """The header of column ``column`` (a :data:`COLUMNS` key) was clicked."""

        table: EpisodeTable
        column: str

        @property
        def control(self) -> EpisodeTable:
            return self.table

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._rows: list[EpisodeEntry] = []
        self.sort_column: str | None = None
        self.sort_reverse = False
        self.empty_text = "no episodes"
        # (row, path, is cursor, has focus, width) -> line; cleared whenever rows or their values change.
        self._lines: LRUCache[tuple[int, str, bool, bool, int], Strip] = LRUCache(512)

    # -- data -----------------------------------------------------------------------------------------------

    @property
    def rows(self) -> Sequence[EpisodeEntry]:
        return self._rows

    @property
    def current(self) -> EpisodeEntry | None:
        return self._rows[self.cursor] if 0 <= self.cursor < len(self._rows) else None

    def set_rows(self, rows: list[EpisodeEntry], *, keep: str | None = None) -> None:
        """Show ``rows`` (the table keeps the list); the cursor stays on the episode at path ``keep`` if shown."""
        self._rows = rows
        self._lines.clear()
        self.virtual_size = Size(self.size.width, len(rows) + 1)
        index = 0
        if keep is not None:
            index = next((i for i, e in enumerate(rows) if e.path == keep), 0)
        self.set_reactive(EpisodeTable.cursor, self.validate_cursor(index))
        self._show_cursor()
        self.refresh()

    def append_rows(self, rows: Sequence[EpisodeEntry]) -> None:
        """Add rows at the end (while a folder is being read); the cursor does not move."""
        self._rows.extend(rows)
        self.virtual_size = Size(self.size.width, len(self._rows) + 1)
        self.refresh()

    def refresh_rows(self) -> None:
        """Redraw after entries changed in place (e.g. new labeled fractions)."""
        self._lines.clear()
        self.refresh()

    def select_path(self, path: str) -> bool:
        for i, e in enumerate(self._rows):
            if e.path == path:
                self.cursor = i
                return True
        return False

    # -- cursor ---------------------------------------------------------------------------------------------

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self._rows) - 1))

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old + 1)
        self.refresh_line(new + 1)
        self._show_cursor()

    def _show_cursor(self) -> None:
        height = self.scrollable_content_region.height - 1  # the header takes a line
        if height <= 0:
            return
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)

    def on_resize(self, event: events.Resize) -> None:
        self._lines.clear()
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._rows) + 1)
        self._show_cursor()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()

    def action_move(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.cursor += direction * max(1, self.scrollable_content_region.height - 2)

    def action_jump(self, row: int) -> None:
        self.cursor = row if row >= 0 else len(self._rows) + row

    def action_open(self) -> None:
        if self.current is not None:
            hold_keys(self.app)  # the keys typed after enter are the episode's: they wait for it (key_order)
            self.post_message(self.Opened(self, self.current))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            column = self._column_at(offset.x)
            if column is not None:
                self.post_message(self.HeaderClicked(self, column))
            return
        row = round(self.scroll_y) + offset.y - 1
        if not 0 <= row < len(self._rows):
            return
        if row == self.cursor or event.chain >= 2:
            self.cursor = row
            self.action_open()
        else:
            self.cursor = row

    # -- drawing --------------------------------------------------------------------------------------------

    def _widths(self, width: int) -> list[int]:
        return _widths(width)

    def _column_at(self, x: int) -> str | None:
        pos = 0
        for column, w in zip(COLUMNS, self._widths(self.scrollable_content_region.width), strict=True):
            if pos <= x < pos + w + 1:
                return column.key
            pos += w + 1
        return None

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            return self._header(width)
        row = round(self.scroll_y) + y - 1
        if not 0 <= row < len(self._rows):
            if row == 0 and not self._rows:
                text = Text(f" {self.empty_text}", end="")
                return (Strip(text.render(self.app.console), text.cell_len)
                        .apply_style(self.rich_style + Style(dim=True, italic=True))
                        .crop_extend(0, width, self.rich_style))
            return Strip.blank(width, self.rich_style)
        entry = self._rows[row]
        key = (row, entry.path, row == self.cursor, self.has_focus, width)
        strip = self._lines.get(key)
        if strip is None:
            strip = self._render_row(entry, width, is_cursor=key[2])
            self._lines.set(key, strip)
        return strip

    def _header(self, width: int) -> Strip:
        style = self.rich_style + self.get_component_rich_style("episode-table--header")
        text = Text(no_wrap=True, end="")
        for column, w in zip(COLUMNS, self._widths(width), strict=True):
            label = column.short if column.short and len(column.label) > w else column.label
            if column.key == self.sort_column:
                # The arrow stays when the column is narrow: the label gives way.
                arrow = "▼" if self.sort_reverse else "▲"
                label = (label + " " + arrow) if len(label) + 2 <= w else label[:max(0, w - 1)] + arrow
            text.append((label.rjust(w) if column.right else label.ljust(w))[:w] + " ")
        # Text.render leaves unstyled text without a style: the header's style is applied to the strip.
        return Strip(text.render(self.app.console), text.cell_len).apply_style(style).crop_extend(0, width, style)

    def _render_row(self, entry: EpisodeEntry, width: int, *, is_cursor: bool) -> Strip:
        base = self.rich_style
        if is_cursor:
            base = base + self.get_component_rich_style("episode-table--cursor")
        text = Text(no_wrap=True, end="")
        for column, w in zip(COLUMNS, self._widths(width), strict=True):
            value = column.cell(entry)
            if isinstance(value, Text):
                cell = value
            else:
                cell = Text(value[0], style=value[1] or "", end="")
            if is_cursor:
                # The cursor's colors win (red, green or dimmed text would be unreadable on it, 1.5:1 for red on
                # the light theme's cursor); the outcome's word says passed or failed, in bold.
                cell.style = "bold" if column.key == "outcome" else ""
                cell.spans = []
            if column.right and cell.cell_len < w:
                cell.pad_left(w - cell.cell_len)
            elif column.keep_end and cell.cell_len > w:
                cell = Text("…", style=cell.style, end="") + cell[cell.cell_len - w + 1:]
            cell.truncate(w, overflow="ellipsis", pad=True)
            text.append_text(cell)
            text.append(" ")
        # Text.render gives unstyled runs no style at all: the row's style goes under every segment here.
        return Strip(text.render(self.app.console), text.cell_len).apply_style(base).crop_extend(0, width, base)
