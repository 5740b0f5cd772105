"""``TimelineLegend``: what the timeline's markers mean, where the cursor is, and the playback state."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from .markers import legend


class TimelineLegend(Widget):
    """One line under the panes: ``step 12 / 100  ▶ 4 steps/s  labeled 3/100 (you)  <note>``, then the marker
    legend as far as it fits (the help screen has it in full).

    The screen sets the attributes; the legend only draws them.
    """

    DEFAULT_CSS = """
    TimelineLegend {
        height: 1;
        padding: 0 1;
        background: $surface;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    step: reactive[int] = reactive(0)
    total: reactive[int] = reactive(0)
    playing: reactive[bool] = reactive(False)
    speed: reactive[float] = reactive(2.0)
    labeled: reactive[str] = reactive("")
    """Labeling progress (``labeled 3/100 (you)``)."""
    follow: reactive[str] = reactive("")
    """Following a growing file (``F``): what the screen says about it (empty: not following)."""
    note: reactive[str] = reactive("")
    """A short status: scan progress, search progress, why a jump found nothing."""

    def render(self) -> Text:
        out = Text(end="")
        out.append(f"step {self.step:,} / {max(0, self.total - 1):,}" if self.total else "no steps", style="bold")
        speed = f"{self.speed:g} steps/s"
        out.append("   ")
        out.append(f"▶ playing {speed}" if self.playing else f"⏸ {speed}", style="bold green" if self.playing else "")
        if self.labeled:
            out.append("   ")
            out.append(self.labeled, style="cyan")
        if self.follow:
            out.append("   ")
            out.append(self.follow, style="bold cyan")
        if self.note:
            out.append("   ")
            out.append(self.note, style="italic")  # notes are ours, but may quote a search query: plain Text
        out.append("    ")
        out.append_text(legend())
        return out
