"""``LibraryScreen``: every episode under the given paths, filtered and sorted; enter opens one.

Summaries are read by :func:`trajrec.replay.library.scan` in a thread worker and arrive in batches
(:class:`LibraryScreen.EntriesRead`), the first one small, so the first screen shows while a big folder is
still being read, with its progress in the status line.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input
from textual.worker import get_current_worker

from trajrec.recorder import TrajrecError
from trajrec.replay.library import (
    EpisodeEntry,
    Filter,
    FilterError,
    LabeledFraction,
    LabelFacts,
    ScanBatch,
    parse_filter,
    scan,
    sort_entries,
)

from .episode_table import COLUMNS, EpisodeTable
from .key_hints import KeyHints
from .key_order import OrderedInput, SearchHold, hold_keys_for_search, next_search
from .prompt_bar import PromptBar
from .scan_status import ScanStatus
from .step_scan import find_text

_SORT_KEYS = [c.key for c in COLUMNS]

#: Batches at least this big are frozen out of the cyclic collector's reach (see ``_entries_read``).
_FREEZE_BATCH = 5000


class _Job:
    """A worker's argument that Textual need not print: ``@work`` builds each worker's description from the
    ``repr`` of its arguments, which for a million entries takes seconds on the UI thread."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"<{type(self.value).__name__}>"


def _view_rows(entries: list[EpisodeEntry], flt: Filter, step_hits: dict[str, int] | None, column: str | None,
               reverse: bool, cancelled: Callable[[], bool] | None = None) -> list[EpisodeEntry] | None:
    """The entries the filter (and a step search) keep, sorted; None if ``cancelled()`` turned true."""
    rows = entries
    if flt:
        rows = []
        for start in range(0, len(entries), 10_000):
            if cancelled is not None and cancelled():
                return None
            rows.extend(e for e in entries[start:start + 10_000] if flt.matches(e))
    if step_hits is not None:
        rows = [e for e in rows if e.path in step_hits]
    if column is not None or reverse:
        if cancelled is not None and cancelled():
            return None
        rows = sort_entries(rows, column, reverse=reverse)
    return rows


class LibraryScreen(Screen[None]):
    """The library of episodes.

    | Key(s) | Description |
    | :- | :- |
    | enter | Open the selected episode. |
    | /, f | Focus the filter (enter or escape goes back to the table). |
    | escape | Clear the filter. |
    | s / S | Sort by the next column / reverse the order. |
    | 1 … 9, 0 | Sort by column 1 … 10 (again: reverse). |
    | ctrl+f | Search the steps (action, observation, note) of every shown episode; the list keeps the episodes
      with a match, and enter opens one at its first matching step (escape: back to all). |
    | r | Report: what these episodes (the filter applied) are worth as training data. |
    | q | Quit. |

    Clicking a column header sorts by it (again: reverse).
    """

    BINDINGS = [
        # "/" and enter act when they arrive (priority), so a burst like "/failed⏎" lands in the filter (see
        # action_focus_filter and check_action).
        Binding("slash", "focus_filter", "Filter", tooltip="Focus the filter (enter or escape: back to the table)",
                priority=True),
        Binding("f", "focus_filter", "Filter", show=False, tooltip="Focus the filter"),
        Binding("enter", "leave_filter", "Apply filter", show=False, priority=True),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("s", "sort_next", "Sort", tooltip="Sort by the next column"),
        Binding("S", "sort_reverse", "Reverse", tooltip="Reverse the sort order"),
        *(Binding(str((i + 1) % 10), f"sort_by('{key}')", f"Sort by {key}", show=False)
          for i, key in enumerate(_SORT_KEYS)),
        # Priority, like "/": the prompt opens when the key arrives, so the query typed right after lands in it.
        Binding("ctrl+f", "search_steps", "Search steps", priority=True,
                tooltip="Search the steps of every shown episode; enter opens one at its match"),
        Binding("r", "report", "Report", tooltip="Report on the episodes shown: coverage, difficulty, failures, "
                                                 "labels, behaviour, lineage"),
        Binding("q", "app.quit", "Quit"),
    ]

    DEFAULT_CSS = """
    LibraryScreen {
        & > #library-filter { margin: 0 1 1 1; background: $surface; }
        & > #library-filter:focus { background: $surface-lighten-1; }
        & > EpisodeTable { height: 1fr; }
    }
    """

    AUTO_FOCUS = "EpisodeTable"

    #: Libraries with more entries than this are filtered and sorted in a worker thread.
    SYNC_ROWS = 50_000

    @dataclass
    class EntriesRead(Message):
        """A batch of summaries from the scan worker, and the folders its episodes are in."""

        batch: ScanBatch
        folders: dict[str, None] = field(default_factory=dict)

    @dataclass
    class StepsSearched(Message):
        """Progress (``done`` of ``total`` episodes) or, with ``finished``, the result of a step search."""

        search: int
        query: str
        done: int
        total: int
        hits: dict[str, int]
        finished: bool = False

    @dataclass
    class ViewComputed(Message):
        """The rows of view ``generation``, filtered and sorted by the view worker."""

        rows: list[EpisodeEntry]
        keep: str | None
        generation: int

    @dataclass
    class ScanFailed(Message):
        """The scan worker stopped on an error (e.g. a folder that vanished)."""

        error: str

    def __init__(self, paths: Sequence[str], *, use_catalog: bool = True,
                 labeled_fraction: LabeledFraction | None = None, label_facts: LabelFacts | None = None,
                 name: str | None = None) -> None:
        super().__init__(name=name)
        self.paths = [os.fspath(p) for p in paths]
        self.use_catalog = use_catalog
        self.labeled_fraction = labeled_fraction
        self.label_facts = label_facts  # the filter's label fields, as `trajrec ls --where` computes them
        self.entries: list[EpisodeEntry] = []
        #: The folders of the episodes read so far (the app polls them for new labels: a hundred folders, not a
        #: million paths).
        self.folders: dict[str, None] = {}
        self.filter: Filter = parse_filter("")
        self.sort_column: str | None = None
        self.sort_reverse = False
        self.scan_done = False
        self.step_query = ""
        self.step_hits: dict[str, int] | None = None  # path -> first matching step, while a search is shown
        self._searches = 0  # step searches started: each StepsSearched names its own
        #: The hold of the running step search: the keys typed after its enter wait for its answer (key_order).
        self._search_hold: SearchHold | None = None
        self._view_generation = 0  # bumped by every _update_view; the table shows _shown_generation
        self._shown_generation = 0
        self._filter_text = ""  # the filter's text the rows were last filtered by (see _apply_filter)
        #: The hold of a view computed in a worker after a key that changes the rows (a sort, the filter's enter,
        #: escape clearing it): the keys typed after it wait for the new rows (key_order).
        self._view_hold: SearchHold | None = None

    def compose(self) -> ComposeResult:
        yield ScanStatus()
        yield OrderedInput(placeholder="/ filter: words  failed  faulty  env:ID  failures>0  -TERM   (? help)",
                    id="library-filter", compact=True, select_on_focus=False)
        yield EpisodeTable()
        yield PromptBar()
        yield KeyHints()

    def on_mount(self) -> None:
        status = self.query_one(ScanStatus)
        status.source = "  ".join(self.paths)
        self._scan()

    # -- reading --------------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="library-scan")
    def _scan(self) -> None:
        worker = get_current_worker()
        try:
            for batch in scan(self.paths, use_catalog=self.use_catalog, labeled_fraction=self.labeled_fraction,
                              cancelled=lambda: worker.is_cancelled):
                folders = dict.fromkeys([p[:i] if (i := p.rfind(os.sep)) > 0 else os.path.dirname(p)
                                         for p in [e.path for e in batch.entries]])
                self.post_message(self.EntriesRead(batch, folders))
        except OSError as exc:  # a folder that vanished or cannot be listed; files that fail are rows already
            self.post_message(self.ScanFailed(f"cannot read {exc.filename}: {exc.strerror}"))

    @on(EntriesRead)
    def _entries_read(self, message: EntriesRead) -> None:
        batch = message.batch
        status = self.query_one(ScanStatus)
        self.entries.extend(batch.entries)
        self.folders.update(message.folders)
        if len(batch.entries) >= _FREEZE_BATCH:
            # The entries live as long as the library and hold no cycles. Left to the cyclic collector, each of
            # its full passes would walk all of them (a million: about a second with the GIL held, keys
            # stalled); frozen, they are skipped. Reference counting still frees them.
            gc.freeze()
        status.total = batch.total
        status.done = batch.done
        status.skipped += batch.skipped
        status.live += sum(e.live for e in batch.entries)
        status.episodes = len(self.entries)
        if batch.problems:
            status.problem = "; ".join(batch.problems)
        table = self.query_one(EpisodeTable)
        if (self.sort_column is None and not self.sort_reverse and self.step_hits is None and self.view_ready
                and (not self.filter or len(self.entries) > self.SYNC_ROWS)):
            # Path order is arrival order: the new rows (those the filter keeps) go at the end, nothing to re-sort.
            table.append_rows([e for e in batch.entries if self.filter.matches(e)] if self.filter
                              else batch.entries)
            status.shown = len(table.rows)
        else:
            self._update_view()
        if batch.total is not None and batch.done >= batch.total:
            self.scan_done = True
            status.finished = True
            table.empty_text = "no episodes match the filter" if self.filter else (
                f"no episode files (*.msgpack.zst) under {'  '.join(self.paths)}")
            table.refresh()

    @on(ScanFailed)
    def _scan_failed(self, message: ScanFailed) -> None:
        self.scan_done = True
        status = self.query_one(ScanStatus)
        status.finished = True
        status.problem = message.error

    # -- view -----------------------------------------------------------------------------------------------

    def _update_view(self) -> None:
        """Filter and sort the entries into the table: at once for a library of up to :attr:`SYNC_ROWS`
        entries, else in a worker thread (a filter over a million entries takes seconds; keys typed meanwhile
        are handled, and a newer view cancels an older one)."""
        table = self.query_one(EpisodeTable)
        keep = table.current.path if table.current is not None else None
        self._view_generation += 1
        args = (list(self.entries), self.filter, self.step_hits, self.sort_column, self.sort_reverse)
        if len(self.entries) <= self.SYNC_ROWS:
            rows = _view_rows(*args)
            assert rows is not None
            self._show_rows(rows, keep)
        else:
            self.query_one(ScanStatus).search = "filtering and sorting…"
            self._compute_view(_Job((args, keep, self._view_generation)))

    @property
    def view_ready(self) -> bool:
        """Whether the table shows the latest filter and sort (False while a worker computes them)."""
        return self._shown_generation == self._view_generation

    @work(thread=True, exclusive=True, group="library-view")
    def _compute_view(self, job: _Job) -> None:
        args, keep, generation = job.value
        worker = get_current_worker()
        rows = _view_rows(*args, cancelled=lambda: worker.is_cancelled)
        if rows is not None and not worker.is_cancelled:
            self.post_message(self.ViewComputed(rows, keep, generation))

    @on(ViewComputed)
    def _view_computed(self, message: ViewComputed) -> None:
        if message.generation == self._view_generation:  # else a newer view is on its way
            self.query_one(ScanStatus).search = ""
            self._show_rows(message.rows, message.keep)
            self._release_search_hold()
            hold, self._view_hold = self._view_hold, None
            if hold is not None:
                self.call_later(hold.release)  # the keys typed after the sort or the filter's enter: on these rows

    def _hold_keys_for_view(self) -> None:
        """After a key that changes the rows: if they are computed in a worker (a library over SYNC_ROWS), the
        keys typed after it wait for them, however long that takes (a million entries: seconds), as after a
        step search; escape stops the wait. ``3 g enter`` opened the first episode of the old order (FINDINGS32
        #1's rule: a key that moves the cursor later than it is handled holds the keys behind it). Not while the
        library is still being read: each batch starts a new view then, and the keys would wait for the scan."""
        if self.view_ready or not self.scan_done:
            return
        if self._view_hold is None or not self._view_hold.active:
            self._view_hold = hold_keys_for_search(self.app, self._view_wait_cancelled)
        self.query_one(ScanStatus).search = "filtering and sorting…: keys wait (escape cancels)"

    def _view_wait_cancelled(self, dropped: int) -> None:
        """Escape while the keys waited for a view: they are dropped (the view still arrives)."""
        self._view_hold = None
        if not self.view_ready:
            waited = f"; {dropped} key{'s' if dropped != 1 else ''} typed after it dropped" if dropped else ""
            self.query_one(ScanStatus).search = f"filtering and sorting…{waited}"

    def _release_search_hold(self) -> None:
        """Let the keys typed after a step search's enter run, once its answer is in the table (a large
        library's view is computed in a worker: then when that view is shown)."""
        if self._search_hold is not None and self.view_ready and self.step_hits is not None:
            hold, self._search_hold = self._search_hold, None
            self.call_later(hold.release)

    def _show_rows(self, rows: list[EpisodeEntry], keep: str | None) -> None:
        self._shown_generation = self._view_generation
        table = self.query_one(EpisodeTable)
        table.sort_column = self.sort_column
        table.sort_reverse = self.sort_reverse
        table.set_rows(rows, keep=keep)
        status = self.query_one(ScanStatus)
        status.shown = len(rows)
        status.filtered = bool(self.filter) or self.step_hits is not None
        status.sort = "" if self.sort_column is None else f"{self.sort_column} {'▼' if self.sort_reverse else '▲'}"
        table.empty_text = "no episodes match the filter" if self.filter else (
            "no episodes yet" if not self.scan_done else "no episodes")

    @property
    def order(self) -> list[str]:
        """Paths of the episodes as shown (filtered and sorted): the order ``H``/``L`` walk."""
        return [e.path for e in self.query_one(EpisodeTable).rows]

    def neighbor(self, path: str, delta: int) -> str | None:
        """The episode ``delta`` rows from ``path`` in the shown order (None past either end)."""
        rows = self.query_one(EpisodeTable).rows
        index = next((i for i, e in enumerate(rows) if e.path == path), None)
        if index is None:
            # Filtered out since it was opened: walk the whole library in path order instead.
            rows = sorted(self.entries, key=lambda e: e.path)
            index = next((i for i, e in enumerate(rows) if e.path == path), None)
            if index is None:
                return None
        j = index + delta
        return rows[j].path if 0 <= j < len(rows) else None

    def select_path(self, path: str) -> None:
        self.query_one(EpisodeTable).select_path(path)

    def refresh_labeled(self, episode_ids: set[str] | None = None) -> None:
        """Ask the labels provider again (for ``episode_ids``, or all) and redraw: call after labeling."""
        if self.labeled_fraction is None:
            return
        # As in the scan: a provider that knows which episodes have labels is asked only about those.
        labeled_ids = getattr(getattr(self.labeled_fraction, "__self__", None), "labeled_episodes", None)
        labeled = labeled_ids() if labeled_ids is not None else None
        for e in self.entries:
            if episode_ids is None or e.episode_id in episode_ids:
                e.labeled = (self.labeled_fraction(e.path, e.episode_id, e.steps)
                             if labeled is None or e.episode_id in labeled else None)
        if self.sort_column == "labeled" or self.filter.query.needs_labels:
            self._update_view()
        else:
            self.query_one(EpisodeTable).refresh_rows()

    # -- filter ---------------------------------------------------------------------------------------------

    @on(Input.Changed, "#library-filter")
    def _filter_changed(self, _event: Input.Changed) -> None:
        self._apply_filter()

    def _apply_filter(self) -> None:
        """Filter the rows by the filter's text as it is now, unless they already are. The filter input's
        Changed messages come a turn after its keys, so the filter's enter and escape apply it themselves, at
        once: the keys typed after them act on the filtered rows (``/ -faulty enter enter`` opened the first row
        of the unfiltered table, FINDINGS32 #1's rule). The late messages then find it applied; an earlier text
        of theirs is not applied over a later one."""
        text = self.query_one("#library-filter", Input).value
        if text == self._filter_text:
            return
        self._filter_text = text
        status = self.query_one(ScanStatus)
        try:
            self.filter = parse_filter(text, self.label_facts)
        except FilterError as exc:
            status.problem = str(exc)
            return
        unknown = self.filter.unknown_fields
        # Said, not silently matching nothing: this library has no label stores to compute these from.
        status.problem = (f"{', '.join(unknown)}: not known here (no label stores given to the library); "
                          "`trajrec ls --where` computes them" if unknown else "")
        self._update_view()

    # Textual routes each key to the widget focused when the key arrives, so keys typed in one burst after
    # "/" (fast typing, a paste, tmux send-keys) would go to the table. "/" and enter are therefore priority
    # bindings handled on arrival, and move the focus with set_focus (focus() would wait a turn). The filter's
    # editing keys and the table's keys are handled on arrival as well, and keys typed after the table's enter
    # wait for the episode it opens (tui/key_order.py; FINDINGS23 #3).

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_filter":
            return self.focused is self.query_one("#library-filter", Input)  # else enter opens the episode
        if action in ("focus_filter", "search_steps") and self.query_one(PromptBar).asking:
            return False  # "/" typed into the search prompt is text
        return True

    def action_focus_filter(self) -> None:
        field = self.query_one("#library-filter", Input)
        if self.focused is field:  # (has_focus follows a turn later, with the Focus event)
            field.insert_text_at_cursor("/")  # a "/" typed in the filter is text (paths: env:trajrec/)
        else:
            self.set_focus(field)
            field.cursor_position = len(field.value)  # type on at the end of the filter

    def action_leave_filter(self) -> None:
        self._apply_filter()
        self._hold_keys_for_view()
        self.set_focus(self.query_one(EpisodeTable))

    def action_clear_filter(self) -> None:
        filter_input = self.query_one("#library-filter", Input)
        if self.step_hits is not None and self.focused is not filter_input:
            self.clear_step_search()
        elif self.focused is filter_input:
            self.set_focus(self.query_one(EpisodeTable))  # escape in the filter: back to the table, keep it
        elif filter_input.value:
            filter_input.value = ""
        self._apply_filter()  # now, not on the Changed message: the keys typed after escape act on these rows
        self._hold_keys_for_view()

    # -- searching the steps of every episode ------------------------------------------------------------

    def action_search_steps(self) -> None:
        self.query_one(PromptBar).ask("search", "search the steps of every shown episode (action, observation, "
                                                "note):", value=self.step_query)

    @on(PromptBar.Answered)
    def _search_answered(self, message: PromptBar.Answered) -> None:
        if self.focused is None or self.focused is message.bar.input:  # (else: where the prompt was opened from)
            self.set_focus(self.query_one(EpisodeTable))
        if not message.value:
            return
        self.step_query = message.value
        paths = [e.path for e in self.query_one(EpisodeTable).rows if not e.error]
        self.query_one(ScanStatus).search = f"searching steps for {message.value!r}…: keys wait (escape cancels)"
        # The keys typed after enter act on the episodes found (enter opens the first at its match): key_order.
        self._searches, self._search_hold = next_search(self.app, self._search_hold, self._searches,
                                                        self._search_cancelled)
        self._search_steps(_Job(paths), message.value, self._searches)

    def _search_cancelled(self, search: int, dropped: int) -> None:
        """Escape while the step search ``search`` held the keys: it stops, the keys waiting for it are dropped."""
        if search != self._searches:
            return
        self._search_hold = None
        self.clear_step_search()
        if dropped:
            self.query_one(ScanStatus).search = (f"search cancelled; {dropped} key{'s' if dropped != 1 else ''} "
                                                 "typed after it dropped")

    @work(thread=True, exclusive=True, group="library-step-search")
    def _search_steps(self, job: _Job, query: str, search: int) -> None:
        paths: list[str] = job.value
        worker = get_current_worker()
        hits: dict[str, int] = {}
        last = time.monotonic()
        for k, path in enumerate(paths, 1):
            try:
                step, _wrapped = find_text(path, query, -1, cancelled=lambda: worker.is_cancelled)
            except (TrajrecError, OSError):
                step = None  # a file that cannot be read has no match; the library row says what is wrong
            if worker.is_cancelled:
                return
            if step is not None:
                hits[path] = step
            if time.monotonic() - last >= 0.1:
                last = time.monotonic()
                self.post_message(self.StepsSearched(search, query, k, len(paths), dict(hits)))
        self.post_message(self.StepsSearched(search, query, len(paths), len(paths), hits, finished=True))

    @on(StepsSearched)
    def _steps_searched(self, message: StepsSearched) -> None:
        if message.search != self._searches:
            return  # an older search (its answer releases no hold of a later one)
        status = self.query_one(ScanStatus)
        if not message.finished:
            hold = self._search_hold
            waiting = ": keys wait (escape cancels)" if hold is not None and hold.active else ""
            status.search = (f"searching steps for {message.query!r}… {message.done:,} / {message.total:,} "
                             f"episodes{waiting}")
            return
        self.step_hits = message.hits
        n = len(message.hits)
        status.search = (f"steps matching {message.query!r}: {n:,} episode{'s' if n != 1 else ''} "
                         "(enter opens at the match; escape: all episodes)")
        self._update_view()
        self._release_search_hold()  # the keys typed after enter act on the table of the episodes found
        if not n:
            self.query_one(EpisodeTable).empty_text = f"no step of the shown episodes contains {message.query!r}"
            self.app.bell()

    def clear_step_search(self) -> None:
        """Back to every episode (the filter still applies)."""
        self.workers.cancel_group(self, "library-step-search")
        self._searches += 1  # the answers of the cancelled search already on their way are ignored
        if self._search_hold is not None:
            self._search_hold.release()
            self._search_hold = None
        self.step_hits = None
        self.query_one(ScanStatus).search = ""
        self._update_view()

    def start_step(self, path: str) -> int:
        """The step to open ``path`` at: its first match while a step search is shown, else 0."""
        return (self.step_hits or {}).get(path, 0)

    # -- sorting --------------------------------------------------------------------------------------------

    def action_report(self) -> None:
        from .report_screen import ReportScreen

        where = self.filter.query.text if self.filter else None
        self.app.push_screen(ReportScreen(self.paths, where=where, task_bank=getattr(self.app, "task_bank", None)))

    def action_sort_by(self, column: str) -> None:
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, False
        self._update_view()
        self._hold_keys_for_view()

    def action_sort_next(self) -> None:
        keys: list[str | None] = [None, *_SORT_KEYS]
        self.sort_column = keys[(keys.index(self.sort_column) + 1) % len(keys)]
        self.sort_reverse = False
        self._update_view()
        self._hold_keys_for_view()

    def action_sort_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._update_view()
        self._hold_keys_for_view()

    @on(EpisodeTable.HeaderClicked)
    def _header_clicked(self, message: EpisodeTable.HeaderClicked) -> None:
        self.action_sort_by(message.column)

    def help_sections(self) -> list[tuple[str, list[Binding]]]:
        return [("Library", list(self.BINDINGS)), ("Episode list", list(EpisodeTable.BINDINGS))]
