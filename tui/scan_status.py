"""``ScanStatus``: one line over the library: what is shown, how it is sorted, and reading progress."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

_BAR = 24


class ScanStatus(Widget):
    """``runs/ · 10,000 episodes · 1,234 shown · sorted by steps ▼ · reading 3,200 / 10,000 [■■■□□□]``.

    The library screen sets the attributes; this only draws them.
    """

    DEFAULT_CSS = """
    ScanStatus {
        height: auto;
        padding: 0 1;
        background: $boost;
    }
    """

    source: reactive[str] = reactive("")
    total: reactive[int] = reactive(0)
    """Episodes found (known once the folder is listed)."""
    done: reactive[int] = reactive(0)
    """Episodes read so far."""
    episodes: reactive[int] = reactive(0)
    """Episodes in the library (rows before the filter): ``done`` less the files skipped."""
    live: reactive[int] = reactive(0)
    """Episodes a live Recorder is still writing (``EpisodeEntry.live``)."""
    skipped: reactive[int] = reactive(0)
    """Files found but not listed: empty episodes (nothing recorded)."""
    shown: reactive[int] = reactive(0)
    filtered: reactive[bool] = reactive(False)
    sort: reactive[str] = reactive("")
    finished: reactive[bool] = reactive(False)
    search: reactive[str] = reactive("")
    """The step search across episodes (ctrl+f): its query and progress or result."""
    problem: reactive[str] = reactive("", layout=True)  # a second line: the height changes
    """A warning to show (a summary cache that could not be read or saved, a bad filter)."""

    def render(self) -> Text:
        out = Text(end="")
        out.append(self.source, style="bold")  # a path the user typed; Text, never markup
        out.append(f"  ·  {self.episodes:,} episode{'s' if self.episodes != 1 else ''}")
        if self.live:
            one = self.live == 1
            out.append(f"  ·  {self.live:,} being recorded (a live Recorder holds {'it' if one else 'them'}; what "
                       f"{'it has' if one else 'they have'} written so far)", style="yellow")
        if self.skipped:
            out.append(f"  ·  {self.skipped:,} empty file{'s' if self.skipped != 1 else ''} skipped", style="yellow")
        if self.filtered:
            out.append(f"  ·  {self.shown:,} match the filter", style="bold")
        if self.sort:
            out.append(f"  ·  sorted by {self.sort}")
        if not self.finished:
            frac = self.done / self.total if self.total else 0.0
            filled = int(frac * _BAR)
            out.append(f"  ·  reading {self.done:,} / {self.total:,} " if self.total else "  ·  reading… ",
                       style="italic")
            out.append("━" * filled, style="green")
            out.append("━" * (_BAR - filled), style="dim")
        if self.search:
            out.append("  ·  ")
            out.append(self.search, style="bold cyan")  # quotes the user's query: plain Text
        if self.problem:
            out.append("\n")
            out.append(self.problem, style="yellow")
        return out
