"""``ReportScreen``: the figures of ``trajrec report`` for the library's episodes (its filter applied), as text
tables, computed in a thread worker while the screen shows progress.

The text is :func:`trajrec.replay.report.render_text`'s, shown as literal text (never markup), so what a run
records cannot style or break the screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import get_current_worker

from trajrec.recorder import TrajrecError
from trajrec.replay.report import build_report, render_text
from trajrec.replay.report.tasks import TaskBank

from .key_hints import KeyHints


class ReportScreen(Screen[None]):
    """What the library's episodes are worth as training data: coverage, difficulty, failures, checks and labels,
    behaviour, lineage (the tables of ``trajrec report``).

    | Key(s) | Description |
    | :- | :- |
    | escape, q | Back to the library. |
    | r | Compute the report again (after labeling, say). |
    | 1 … 9 | Open the n-th episode worth a look at the step it is listed with. |
    | up, down, pageup, pagedown, home, end | Scroll. |
    """

    BINDINGS = [
        Binding("escape,q", "back", "Back"),
        Binding("r", "recompute", "Recompute", tooltip="Compute the report again"),
        *(Binding(str(n), f"open_notable({n})", f"Open episode {n} worth a look", show=False) for n in range(1, 10)),
    ]

    DEFAULT_CSS = """
    ReportScreen {
        & > #report-status { height: auto; padding: 0 1; background: $boost; }
        & > VerticalScroll { height: 1fr; }
        & #report-body { padding: 0 1; width: auto; }
    }
    """

    AUTO_FOCUS = "VerticalScroll"

    @dataclass
    class Progressed(Message):
        done: int
        total: int

    @dataclass
    class Computed(Message):
        report: dict[str, Any]
        text: str

    @dataclass
    class Failed(Message):
        error: str

    def __init__(self, paths: Sequence[str], *, where: str | None = None, task_bank: TaskBank | None = None,
                 rows: int = 15) -> None:
        super().__init__()
        self.paths = list(paths)
        self.where = where or None
        self.task_bank = task_bank
        self.rows = rows
        self.report: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("computing the report ..."), id="report-status")
        with VerticalScroll():
            yield Static(Text(""), id="report-body")
        yield KeyHints()

    def on_mount(self) -> None:
        self._compute()

    @work(thread=True, exclusive=True, group="report")
    def _compute(self) -> None:
        worker = get_current_worker()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            import time

            if worker.is_cancelled:
                raise _Cancelled
            now = time.monotonic()
            if now - last[0] >= 0.1 or done == total:  # a bounded rate of messages, whatever the run's size
                last[0] = now
                self.post_message(self.Progressed(done, total))

        try:
            report = build_report(self.paths, where=self.where, task_bank=self.task_bank, progress=progress)
        except _Cancelled:
            return
        except (TrajrecError, OSError) as exc:
            self.post_message(self.Failed(str(exc)))
            return
        self.post_message(self.Computed(report, render_text(report, rows=self.rows)))

    @on(Progressed)
    def _progressed(self, message: Progressed) -> None:
        self.query_one("#report-status", Static).update(
            Text(f"computing the report: {message.done:,} / {message.total:,} episodes read"))

    @on(Computed)
    def _computed(self, message: Computed) -> None:
        self.report = message.report
        where = f" where {self.where}" if self.where else ""
        self.query_one("#report-status", Static).update(Text(
            f"report on {message.report['episodes']:,} episodes{where} in {message.report['seconds']:.1f} s  "
            "·  r recompute  ·  trajrec report PATH --html FILE for charts"))
        self.query_one("#report-body", Static).update(Text(message.text))

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.query_one("#report-status", Static).update(Text(f"cannot compute the report: {message.error}"))

    def action_back(self) -> None:
        self.workers.cancel_group(self, "report")
        self.dismiss(None)

    def action_open_notable(self, n: int) -> None:
        look = (self.report or {}).get("failures", {}).get("worth_a_look", [])
        if not 1 <= n <= len(look):
            self.notify(f"no episode {n} in the list worth a look ({len(look)} listed)", timeout=2, markup=False)
            self.app.bell()
            return
        item = look[n - 1]
        opener = getattr(self.app, "open_episode", None)
        if opener is not None:
            opener(item["path"], step=item.get("step") or 0)

    def action_recompute(self) -> None:
        self.query_one("#report-status", Static).update(Text("computing the report ..."))
        self._compute()

    def help_sections(self) -> list[tuple[str, list[Binding]]]:
        return [("Report", list(self.BINDINGS))]


class _Cancelled(Exception):
    """Raised inside the worker's progress callback to stop a report nobody is waiting for."""
