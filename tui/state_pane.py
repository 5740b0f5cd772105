"""``StatePane``: how a step changed the env's state (the diff), or the whole state after it."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from trajrec.recorder import Episode, Step, TrajrecError, state_not_read
from trajrec.replay.render import diff_lines, path_text, safe, state_diff_missing, tree_text

from .markers import DIFF_STYLES
from .text_view import TextView

# Bounds what one key press may render: a whole state can be large; the pane is a view, not an export.
MAX_STATE_CHARS = 50_000
# What one value in a diff line may show when lines wrap.
MAX_WRAPPED_VALUE = 2_000


def diff_text(step: Step, *, width: int = 80, has_state: bool = True) -> Text:
    """The state changes of ``step``: added green, removed red, changed yellow, long strings as unified diffs."""
    if not has_state:
        return Text("no state recorded for this episode (record with Recorder(state_fn=...) or an env with "
                    "state_dict())", style="dim")
    if not step.diff:
        missing = state_diff_missing(step)
        if missing:  # not "no change": the recorder could not tell (the whole state after it is stored: s)
            return Text(f"{missing}; s shows the state after this step", style="yellow")
        return Text("no state change at this step", style="dim")
    out = Text(end="")
    for i, (kind, line) in enumerate(diff_lines(step.diff, width=max(20, width))):
        if i:
            out.append("\n")
        out.append(line, style=DIFF_STYLES.get(kind))  # diff_lines output is already safe()
    return out


def state_text(episode: Episode, step: Step) -> Text:
    """The whole state after ``step`` (from ``episode.state_at``), the paths this step changed listed first."""
    try:
        state = episode.state_at(step.index)
    except TrajrecError as exc:
        return Text(safe(str(exc)), style="dim")
    out = Text(end="")
    if step.diff:
        out.append("changed here: ", style="dim")
        out.append(", ".join(path_text(row.path) for row in step.diff[:20]), style="yellow")
        if len(step.diff) > 20:
            out.append(f" … ({len(step.diff) - 20} more)", style="dim")
        out.append("\n")
    why = state_not_read(state)
    if why is not None:  # the marked value of a state the recorder could not read: say so, not its repr
        out.append(safe(f"the state after this step is unknown: {why}"), style="yellow")
        return out
    # Renders no more of a huge state than is shown; a file's text in the state reads as its lines.
    text = tree_text(state, max_len=MAX_STATE_CHARS + 1)
    if len(text) > MAX_STATE_CHARS:
        text = text[:MAX_STATE_CHARS] + f"\n… (cut at {MAX_STATE_CHARS:,} characters)"
    out.append(text)
    return out


class StatePane(TextView):
    """Shows the current step's state diff, or (``mode == "state"``) the whole state after the step.

    The screen sets :attr:`mode` and calls :meth:`show`; stepping back shows the state as it was then,
    rebuilt by the reader from the nearest snapshot. Lines do not wrap unless asked (:meth:`set_wrap`; JSON
    reads better cropped, and a cut line ends in ``…``), and the scroll position is kept from step to step in the whole-state view so
    one part of the state can be watched while stepping.
    """

    DEFAULT_CSS = """
    StatePane {
        border: round $primary 40%;
        border-title-color: $text-muted;
        padding: 0 0 0 1;
        &:focus { border: round $accent; }
    }
    """

    mode: reactive[str] = reactive("diff", init=False)
    """``"diff"`` (the changes of the step) or ``"state"`` (the whole state after it)."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(wrap=False, name=name, id=id, classes=classes)
        self._episode: Episode | None = None
        self._step: Step | None = None

    def on_mount(self) -> None:
        self._retitle()

    def _retitle(self) -> None:
        self.border_title = "state diff" if self.mode == "diff" else "whole state after the step"
        self.border_subtitle = "s: whole state" if self.mode == "diff" else "s: diff"

    def watch_mode(self) -> None:
        self._retitle()
        self._draw()

    def show(self, episode: Episode, step: Step) -> None:
        self._episode = episode
        self._step = step
        self._draw()

    def clear(self) -> None:
        self._step = None
        self.update(Text(""))

    def set_wrap(self, wrap: bool) -> None:
        if wrap != self.wrap:
            super().set_wrap(wrap)
            self._draw()  # diff values are cut to the width unless lines wrap

    def _draw(self) -> None:
        if self._episode is None or self._step is None:
            return
        if self.mode == "state" and self._episode.has_state:
            text = state_text(self._episode, self._step)
        else:
            # Values in diff lines are cut to the pane's width, unless lines wrap: then they show (nearly) whole.
            width = MAX_WRAPPED_VALUE if self.wrap else self.scrollable_content_region.width or 80
            text = diff_text(self._step, width=width, has_state=self._episode.has_state)
        self.update(text, scroll_home=self.mode == "diff")
