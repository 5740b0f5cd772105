"""``StepTimeline``: one line per step of an episode, drawn with the Line API.

Only the visible lines are ever built: :meth:`StepTimeline.render_line` decodes the step it needs through the
episode reader (which decompresses one frame of ~1,000 steps and keeps the last few), and keeps the finished
lines in a bounded cache. A 100,000-step episode costs the same to show and scroll as a 100-step one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

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

from trajrec.recorder import Episode, TrajrecError
from trajrec.replay.render import checks_by_target, one_line, safe, step_checks_shown, step_kind, tool_call_text

from .markers import label_mark, marker

# Strings are cut before escaping: one_line() escapes and squeezes the whole value, and an observation can
# be megabytes. A line never shows more than a few hundred characters.
_PEEK = 512


def _peek(value: object) -> object:
    return value[:_PEEK] if isinstance(value, str) else value


class StepTimeline(ScrollView, can_focus=True, inherit_bindings=False):
    """The steps of an episode, one per line: index, marker, action and the start of the observation.

    Attributes go down: the screen sets :attr:`cursor` (or calls :meth:`set_episode`); the timeline posts
    :class:`StepTimeline.CursorMoved` whenever the cursor changes, whoever moved it.

    | Key(s) | Description |
    | :- | :- |
    | up, k | Previous step. |
    | down, j | Next step. |
    | pageup / pagedown | A page of steps back / forward. |
    | home / end | First / last step. |

    Clicking a line moves the cursor there; the mouse wheel scrolls without moving it.

    With :attr:`label_marks` set (``step -> mark``, see ``markers.label_mark_of``), a column after the marker
    shows the annotator's rating (``+`` ``0`` ``-``) or ``•`` for steps only others labeled; call
    :meth:`refresh_step` after a step's labels change.

    | Class | Description |
    | :- | :- |
    | `step-timeline--cursor` | The current step's line. |
    | `step-timeline--index` | Step numbers. |
    | `step-timeline--observation` | The observation after the action. |
    """

    # Priority bindings (active while the timeline has the focus): handled when the key arrives, in one order
    # with the episode screen's keys, which are all priority bindings (a rating typed after j lands on the step
    # j moved to; see EpisodeScreen).
    BINDINGS = [
        Binding("up,k", "move(-1)", "Previous step", show=False, priority=True),
        Binding("down,j", "move(1)", "Next step", show=False, priority=True),
        Binding("pageup", "page(-1)", "Page back", show=False, priority=True),
        Binding("pagedown", "page(1)", "Page forward", show=False, priority=True),
        Binding("home", "jump(0)", "First step", show=False, priority=True),
        Binding("end", "jump(-1)", "Last step", show=False, priority=True),
    ]

    COMPONENT_CLASSES = {"step-timeline--cursor", "step-timeline--index", "step-timeline--observation"}

    DEFAULT_CSS = """
    StepTimeline {
        overflow-x: hidden;
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
        & > .step-timeline--cursor { background: $block-cursor-blurred-background; }
        &:focus > .step-timeline--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
        }
        & > .step-timeline--index { color: $foreground-muted; }
        & > .step-timeline--observation { color: $foreground-muted; }
    }
    """

    cursor: reactive[int] = reactive(0, init=False)
    """The current step."""

    @dataclass
    class CursorMoved(Message):
        """The cursor moved to ``step``."""

        timeline: StepTimeline
        step: int

        @property
        def control(self) -> StepTimeline:
            return self.timeline

    def __init__(self, episode: Episode | None = None, *, cursor: int = 0, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._episode: Episode | None = None
        self._by_target: dict[int, list[Any]] | None = None  # checks_by_target of the episode, made when first drawn
        self.label_marks: Callable[[int], str] | None = None
        # (step, is cursor, has focus, width, label mark) -> line. 1,024 lines is ~20 screens of scrollback.
        self._lines: LRUCache[tuple[int, bool, bool, int, str | None], Strip] = LRUCache(1024)
        if episode is not None:
            self.set_episode(episode, cursor)

    @property
    def episode(self) -> Episode | None:
        return self._episode

    @property
    def step_count(self) -> int:
        return len(self._episode) if self._episode is not None else 0

    def set_episode(self, episode: Episode, cursor: int = 0) -> None:
        """Show ``episode`` with the cursor on step ``cursor``; posts :class:`CursorMoved`."""
        self._episode = episode
        self._by_target = None
        self._lines.clear()
        self.virtual_size = Size(self.size.width, len(episode))
        self.set_reactive(StepTimeline.cursor, self.validate_cursor(cursor))
        self.scroll_to(y=0, animate=False)
        self._show_cursor(center=True)
        self.refresh()
        self.post_message(self.CursorMoved(self, self.cursor))

    # -- cursor ---------------------------------------------------------------------------------------------

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, self.step_count - 1))

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old)
        self.refresh_line(new)
        self._show_cursor(center=abs(new - old) > self.scrollable_content_region.height)
        self.post_message(self.CursorMoved(self, new))

    def _show_cursor(self, *, center: bool = False) -> None:
        height = self.scrollable_content_region.height
        if height <= 0:
            return  # not laid out yet: on_resize comes back here
        top = round(self.scroll_y)
        margin = min(2, (height - 1) // 2)  # keep a little context above and below the cursor
        c = self.cursor
        if top + margin <= c <= top + height - 1 - margin:
            return
        if center:
            y = c - height // 2
        elif c < top + margin:
            y = c - margin
        else:
            y = c - height + 1 + margin
        self.scroll_to(y=max(0, y), animate=False)

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, self.step_count)
        self._show_cursor(center=True)

    def refresh_step(self, step: int) -> None:
        """Redraw the line of ``step`` (its labels changed; the label mark is part of the cache key)."""
        self.refresh_line(step)

    def on_focus(self) -> None:
        self.refresh_line(self.cursor)

    def on_blur(self) -> None:
        self.refresh_line(self.cursor)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()

    def action_move(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.cursor += direction * max(1, self.scrollable_content_region.height - 1)

    def action_jump(self, step: int) -> None:
        self.cursor = step if step >= 0 else self.step_count + step

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and self.step_count:
            self.cursor = round(self.scroll_y) + offset.y

    # -- drawing --------------------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        i = round(self.scroll_y) + y
        if self._episode is None or not 0 <= i < self.step_count:
            return Strip.blank(width, self.rich_style)
        mark = self.label_marks(i) if self.label_marks is not None else None
        key = (i, i == self.cursor, self.has_focus, width, mark)
        strip = self._lines.get(key)
        if strip is None:
            strip = self._render_step(i, width, is_cursor=key[1], mark=mark)
            self._lines.set(key, strip)
        return strip

    def _render_step(self, i: int, width: int, *, is_cursor: bool, mark: str | None) -> Strip:
        assert self._episode is not None
        base = self.rich_style
        if is_cursor:
            base = base + self.get_component_rich_style("step-timeline--cursor")
        digits = len(str(max(0, self.step_count - 1)))
        text = Text(style=base, no_wrap=True, overflow="crop", end="")
        text.append(f"{i:>{digits}} ", style=None if is_cursor else self.get_component_rich_style(
            "step-timeline--index", partial=True))
        room = width - digits - 3 - (mark is not None)
        try:
            step = self._episode[i]
        except TrajrecError as exc:
            text.append("? ", style="bold red")
            text.append(one_line(safe(str(exc)), max(1, room)), style="red")
        else:
            # Drawn by the checks that target the step, wherever the env reported them (as the exports count them)
            if self._by_target is None:
                self._by_target = checks_by_target(self._episode)
            text.append_text(marker(step_kind(step, step_checks_shown(self._episode, step, self._by_target))))
            if mark is not None:
                text.append_text(label_mark(mark))
            text.append(" ")
            call = tool_call_text(step.action)  # read_file(path="a.py") reads better than its JSON
            action = one_line(call if call is not None else _peek(step.action), max(1, room))
            text.append(action)
            rest = room - len(action) - 3
            if rest > 3 and step.observation is not None:
                obs_style: Style | None = None if is_cursor else self.get_component_rich_style(
                    "step-timeline--observation", partial=True)
                text.append(" → " + one_line(_peek(step.observation), rest), style=obs_style)
        strip = Strip(text.render(self.app.console), text.cell_len)
        return strip.crop_extend(0, width, base)
