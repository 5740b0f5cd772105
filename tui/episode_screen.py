"""``EpisodeScreen``: one episode: header, step timeline, step detail, state diff; navigation and playback.

Steps are decoded on demand. Two thread workers read the file through their own readers: the marker index
(one byte per step, so ``n``/``N``/``r`` jump without decoding anything) and text search.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import get_current_worker

from recorder import Check, Episode, Step, TrajrecError
from replay.render import safe

from .episode_header import EpisodeHeader
from .key_hints import KeyHints
from .markers import FAILURE_CODES, RECOVERY_CODES
from .prompt_bar import PromptBar
from .state_pane import StatePane
from .step_detail import StepDetail
from .step_scan import find_text, scan_markers
from .timeline import StepTimeline
from .timeline_legend import TimelineLegend

# Playback speed keys. When labeling takes "+"/"-", delete ",plus" and ",minus" on this one line.
SPEED_UP_KEYS, SPEED_DOWN_KEYS = "greater_than_sign,plus", "less_than_sign,minus"

#: Playback speeds, in steps per second.
SPEEDS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
DEFAULT_SPEED = 2.0

_UNSCANNED = 255  # marker byte of a step the marker scan has not reached yet


class EpisodeScreen(Screen[None]):
    """One episode, replayed step by step.

    | Key(s) | Description |
    | :- | :- |
    | h, left / l, right | Previous / next step. |
    | up, k / down, j | Previous / next step (in the timeline). |
    | g / G | First / last step. |
    | n / N | Next / previous failure (tool error or exception). |
    | r / R | Next / previous recovery. |
    | : | Go to a step (negative counts from the end). |
    | / | Search the steps' action, observation and note; jumps to the next match. |
    | space | Play / pause. |
    | >, + / <, - | Faster / slower playback (``+``/``-`` go to labeling later: see ``SPEED_UP_KEYS``). |
    | s | State pane: the step's diff / the whole state after the step. |
    | H / L | Previous / next episode in the library's order. |
    | tab | Move focus between the timeline, the step and the state panes (to scroll them). |
    | q, escape | Back to the library (quit when opened on one file). |

    Labeling plugs in here: add its keys to ``BINDINGS``; the current step is ``self.step_index`` of
    ``self.episode``; call :meth:`refresh_step` after a label changes so the detail pane redraws, and list
    label checks in :meth:`checks_for`.
    """

    BINDINGS = [
        # Stepping is a priority binding so it works whichever pane has focus (the panes would scroll).
        Binding("l,right", "step(1)", "Next", priority=True, tooltip="Next step"),
        Binding("h,left", "step(-1)", "Prev", priority=True, tooltip="Previous step"),
        Binding("g", "jump(0)", "First step", show=False),
        Binding("G", "jump(-1)", "Last step", show=False),
        Binding("n", "failure(1)", "Next failure"),
        Binding("N", "failure(-1)", "Prev failure", show=False, tooltip="Previous failure"),
        Binding("r", "recovery(1)", "Next recovery", show=False),
        Binding("R", "recovery(-1)", "Prev recovery", show=False, tooltip="Previous recovery"),
        # Priority: the prompt opens when the key arrives, so keys typed right after it go into the prompt
        # (Textual routes each key to the widget focused when it arrives).
        Binding("colon", "goto", "Go to", tooltip="Go to a step (enter: go, escape: cancel)", priority=True),
        Binding("slash", "search", "Search", tooltip="Search the steps' text, jump to the next match (again: / enter)",
                priority=True),
        Binding("space", "play", "Play", tooltip="Play / pause"),
        Binding(SPEED_UP_KEYS, "speed(1)", "Faster", show=False, key_display=">",
                tooltip="Faster playback"),
        Binding(SPEED_DOWN_KEYS, "speed(-1)", "Slower", show=False, key_display="<",
                tooltip="Slower playback"),
        Binding("s", "toggle_state", "Diff/state", tooltip="State pane: diff of the step / whole state after it"),
        Binding("H", "episode(-1)", "Prev episode", show=False, tooltip="Previous episode in the library"),
        Binding("L", "episode(1)", "Next episode", show=False, tooltip="Next episode in the library"),
        Binding("q,escape", "back", "Back", tooltip="Back to the library (quit when opened on one file)"),
    ]

    DEFAULT_CSS = """
    EpisodeScreen {
        & > #episode-body { height: 1fr; }
        & StepTimeline {
            width: 45%;
            min-width: 40;
            height: 1fr;
            border: round $primary 40%;
            border-title-color: $text-muted;
        }
        & #episode-right { width: 1fr; }
        & StepTimeline:focus { border: round $accent; }
        & StepDetail { height: 3fr; }
        & StatePane { height: 2fr; }
    }
    """

    AUTO_FOCUS = "StepTimeline"

    @dataclass
    class NeighborRequested(Message):
        """``H``/``L``: the user wants the episode ``delta`` places away in the library (the app decides)."""

        screen: EpisodeScreen
        delta: int

    @dataclass
    class MarkersScanned(Message):
        """Marker codes of steps ``start`` … from the marker worker (``generation`` names the episode load)."""

        generation: int
        start: int
        codes: bytes

    @dataclass
    class MarkersDamaged(Message):
        """Steps ``first`` … ``last`` sit in a frame that cannot be read (the marker worker skipped it)."""

        generation: int
        first: int
        last: int
        error: str

    @dataclass
    class SearchProgress(Message):
        generation: int
        query: str
        done: int
        total: int

    @dataclass
    class SearchDone(Message):
        generation: int
        query: str
        step: int | None
        wrapped: bool

    def __init__(self, episode: Episode, *, step: int = 0, annotator: str | None = None,
                 quit_on_back: bool = False, name: str | None = None) -> None:
        super().__init__(name=name)
        self.episode = episode
        self.annotator = annotator
        self.quit_on_back = quit_on_back
        self.speed = DEFAULT_SPEED
        self.last_query = ""
        self._start_step = step
        self._timer: Timer | None = None
        self._generation = 0
        self._markers = bytearray()
        self._scanned = 0
        self._pending: tuple[frozenset[int], int, str] | None = None
        self._damage: list[tuple[int, int]] = []  # step ranges in frames that cannot be read
        self._shown: tuple[int, int] | None = None  # (generation, step) the panes show

    def compose(self) -> ComposeResult:
        yield EpisodeHeader()
        with Horizontal(id="episode-body"):
            yield StepTimeline()
            with Vertical(id="episode-right"):
                yield StepDetail()
                yield StatePane()
        yield TimelineLegend()
        yield PromptBar()
        yield KeyHints()

    def on_mount(self) -> None:
        self.query_one(StepTimeline).border_title = "steps"
        self.load(self.episode, step=self._start_step)

    def on_unmount(self) -> None:
        self._stop_playback()
        self.episode.close()

    # -- loading --------------------------------------------------------------------------------------------

    def load(self, episode: Episode, *, step: int = 0) -> None:
        """Show ``episode`` (closing the one shown before) at ``step`` (negative counts from the end)."""
        if episode is not self.episode:
            self.episode.close()
        self.episode = episode
        self._stop_playback()
        self._generation += 1
        n = len(episode)
        self._markers = bytearray([_UNSCANNED]) * n  # 1 byte per step: 100 KB for 100,000 steps
        self._scanned = 0
        self._pending = None
        self._damage = []
        legend = self.query_one(TimelineLegend)
        legend.total = n
        legend.note = ""
        self.query_one(EpisodeHeader).show(episode)
        timeline = self.query_one(StepTimeline)
        timeline.border_title = f"steps ({n:,})"
        if step < 0:
            step += n
        timeline.set_episode(episode, step)
        if n == 0:
            self._show_empty()
        else:
            self._scan_markers(episode.path, self._generation)

    def _show_empty(self) -> None:
        detail = self.query_one(StepDetail)
        try:
            obs = self.episode.reset.observation
        except TrajrecError as exc:
            obs = f"(reset record unreadable: {exc})"
        detail.show_error(f"no steps recorded.\n\nreset observation:\n{safe(str(obs))}")
        self.query_one(StatePane).clear()

    @property
    def step_index(self) -> int:
        """The current step."""
        return self.query_one(StepTimeline).cursor

    def checks_for(self, step: Step) -> list[Check]:
        """The checks shown with ``step``: recorded ones (labels from a label store join here)."""
        return list(step.checks)

    def refresh_step(self) -> None:
        """Redraw the current step's panes (after its checks or labels changed)."""
        self._show_step(self.step_index, force=True)

    @on(StepTimeline.CursorMoved)
    def _cursor_moved(self, message: StepTimeline.CursorMoved) -> None:
        self._show_step(message.step)

    def _show_step(self, i: int, *, force: bool = False) -> None:
        if not force and self._shown == (self._generation, i):
            return  # shown already, by _move_to, in the same screen update as the timeline's cursor
        self._shown = (self._generation, i)
        legend = self.query_one(TimelineLegend)
        legend.step = i
        if not len(self.episode):
            return
        detail = self.query_one(StepDetail)
        state = self.query_one(StatePane)
        try:
            step = self.episode[i]
        except TrajrecError as exc:
            detail.show_error(f"step {i} cannot be read: {exc}")
            state.clear()
            return
        detail.show(step, len(self.episode), self.checks_for(step))
        state.show(self.episode, step)

    # -- stepping -------------------------------------------------------------------------------------------

    def _move_to(self, i: int) -> None:
        """Move to step ``i`` for the user: drops a pending seek and the last note (callers set a new one)."""
        self._pending = None
        self.query_one(TimelineLegend).note = ""
        timeline = self.query_one(StepTimeline)
        timeline.cursor = i
        # The panes follow now rather than on the CursorMoved message, so the key costs one screen update.
        self._show_step(timeline.cursor)

    def action_step(self, delta: int) -> None:
        timeline = self.query_one(StepTimeline)
        self._move_to(timeline.cursor + delta)

    def action_jump(self, i: int) -> None:
        self._move_to(i if i >= 0 else len(self.episode) + i)

    def action_episode(self, delta: int) -> None:
        self._stop_playback()
        self.post_message(self.NeighborRequested(self, delta))

    def action_back(self) -> None:
        if self.quit_on_back:
            self.app.exit()
        else:
            self.dismiss()

    # -- markers: failures and recoveries -------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="episode-markers")
    def _scan_markers(self, path: str, generation: int) -> None:
        worker = get_current_worker()

        def damaged(first: int, last: int, error: str) -> None:
            self.post_message(self.MarkersDamaged(generation, first, last, safe(error)))

        try:
            for start, codes in scan_markers(path, cancelled=lambda: worker.is_cancelled, on_damage=damaged):
                self.post_message(self.MarkersScanned(generation, start, codes))
        except TrajrecError as exc:  # the file went away or its index cannot be read any more
            n = len(self._markers)
            self.post_message(self.MarkersDamaged(generation, 0, n - 1, safe(str(exc))))
            self.post_message(self.MarkersScanned(generation, n, b""))

    @on(MarkersScanned)
    def _markers_scanned(self, message: MarkersScanned) -> None:
        if message.generation != self._generation:
            return  # from the episode shown before
        end = message.start + len(message.codes)
        self._markers[message.start:end] = message.codes
        self._scanned = max(self._scanned, end)
        n = len(self._markers)
        legend = self.query_one(TimelineLegend)
        if self._pending is None and not self._damage:
            legend.note = "" if end >= n else f"indexing markers {end * 100 // max(1, n)}%"
        self._retry_pending()

    @on(MarkersDamaged)
    def _markers_damaged(self, message: MarkersDamaged) -> None:
        if message.generation != self._generation:
            return
        self._damage.append((message.first, message.last))
        spans = ", ".join(f"{a:,}–{b:,}" for a, b in self._damage[:3]) + (" …" if len(self._damage) > 3 else "")
        self.query_one(TimelineLegend).note = f"steps {spans} cannot be read ({message.error}); try trajrec fsck"

    def _retry_pending(self) -> None:
        if self._pending is not None:
            codes, direction, what = self._pending
            self._seek(codes, direction, what)

    @property
    def markers_ready(self) -> bool:
        """True once every step's marker is known (the marker worker finished)."""
        return self._scanned >= len(self._markers)

    def _find_marker(self, codes: frozenset[int], start: int, direction: int) -> int | None:
        """The nearest step after (before) ``start`` whose marker is in ``codes``, among scanned steps."""
        m = self._markers
        if direction > 0:
            hits = [j for j in (m.find(c, start + 1, self._scanned) for c in codes) if j >= 0]
            return min(hits) if hits else None
        hits = [j for j in (m.rfind(c, 0, min(start, self._scanned)) for c in codes) if j >= 0]
        return max(hits) if hits else None

    def _seek(self, codes: frozenset[int], direction: int, what: str) -> None:
        legend = self.query_one(TimelineLegend)
        cursor = self.step_index
        found = self._find_marker(codes, cursor, direction)
        word = "next" if direction > 0 else "previous"
        if found is not None:
            self._move_to(found)
            legend.note = ""
            return
        covered = self._scanned >= len(self._markers) or (direction < 0 and self._scanned >= cursor)
        if covered:
            self._pending = None
            legend.note = f"no {word} {what}"
            self.app.bell()
        else:
            self._pending = (codes, direction, what)  # resolved as marker batches arrive
            legend.note = f"looking for the {word} {what}…"

    def action_failure(self, direction: int) -> None:
        self._seek(FAILURE_CODES, direction, "failure")

    def action_recovery(self, direction: int) -> None:
        self._seek(RECOVERY_CODES, direction, "recovery")

    # -- go to, search --------------------------------------------------------------------------------------

    def action_goto(self) -> None:
        n = len(self.episode)
        if n:
            self.query_one(PromptBar).ask("goto", f"go to step (0 … {n - 1:,}; negative: from the end):",
                                          restrict=r"-?[0-9]*", placeholder=str(self.step_index))

    def action_search(self) -> None:
        if len(self.episode):
            self.query_one(PromptBar).ask("search", "search actions, observations, notes:", value=self.last_query)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While the prompt bar has the focus, the priority keys (h, l, :, /) are text for it.
        if action in ("step", "goto", "search") and self.query_one(PromptBar).asking:
            return False
        return True

    @on(PromptBar.Answered)
    def _answered(self, message: PromptBar.Answered) -> None:
        with self.app.batch_update():  # the prompt closing and the jump: one screen update
            self.set_focus(self.query_one(StepTimeline))
            if message.value is None:
                return
            if message.purpose == "goto":
                self._goto_answered(message.value)
            elif message.purpose == "search":
                self._search_answered(message.value)

    def _goto_answered(self, answer: str) -> None:
        try:
            i = int(answer)
        except ValueError:
            return  # empty or a lone "-": nothing asked
        n = len(self.episode)
        target = i if i >= 0 else n + i
        clamped = max(0, min(target, n - 1))
        self._move_to(clamped)
        if clamped != target:
            self.query_one(TimelineLegend).note = f"step {i:,} is out of range (0 … {n - 1:,}); went to {clamped:,}"

    def _search_answered(self, query: str) -> None:
        if not query:
            return
        self.last_query = query
        self.query_one(TimelineLegend).note = f"searching for {query!r}…"
        self._search(self.episode.path, query, self.step_index, self._generation)

    @work(thread=True, exclusive=True, group="episode-search")
    def _search(self, path: str, query: str, start: int, generation: int) -> None:
        worker = get_current_worker()
        try:
            step, wrapped = find_text(
                path, query, start, cancelled=lambda: worker.is_cancelled,
                progress=lambda done, total: self.post_message(self.SearchProgress(generation, query, done, total)))
        except TrajrecError:
            step, wrapped = None, False  # a damaged frame ends the search like "not found"; the timeline shows it
        if not worker.is_cancelled:
            self.post_message(self.SearchDone(generation, query, step, wrapped))

    @on(SearchProgress)
    def _search_progress(self, message: SearchProgress) -> None:
        if message.generation == self._generation:
            self.query_one(TimelineLegend).note = (
                f"searching for {message.query!r}… {message.done * 100 // max(1, message.total)}%")

    @on(SearchDone)
    def _search_done(self, message: SearchDone) -> None:
        if message.generation != self._generation:
            return
        legend = self.query_one(TimelineLegend)
        if message.step is None:
            legend.note = f"{message.query!r} not found"
            self.app.bell()
            return
        self._move_to(message.step)
        legend.note = f"{message.query!r} at step {message.step:,}" + (" (wrapped around)" if message.wrapped else "")

    # -- playback -------------------------------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._timer is not None

    def action_play(self) -> None:
        if self.playing:
            self._stop_playback()
            return
        n = len(self.episode)
        if n < 2:
            return
        if self.step_index >= n - 1:
            self._move_to(0)  # play again from the start
        self._timer = self.set_interval(1.0 / self.speed, self._tick)
        self.query_one(TimelineLegend).playing = True

    def _tick(self) -> None:
        timeline = self.query_one(StepTimeline)
        if timeline.cursor >= len(self.episode) - 1:
            self._stop_playback()
            return
        timeline.cursor += 1

    def _stop_playback(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        for legend in self.query(TimelineLegend):  # none left while the screen unmounts
            legend.playing = False

    def action_speed(self, direction: int) -> None:
        index = min(range(len(SPEEDS)), key=lambda k: abs(SPEEDS[k] - self.speed))
        self.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, index + direction))]
        self.query_one(TimelineLegend).speed = self.speed
        if self._timer is not None:
            self._timer.stop()
            self._timer = self.set_interval(1.0 / self.speed, self._tick)

    # -- panes ----------------------------------------------------------------------------------------------

    def action_toggle_state(self) -> None:
        pane = self.query_one(StatePane)
        pane.mode = "state" if pane.mode == "diff" else "diff"

    def help_sections(self) -> list[tuple[str, list[Binding]]]:
        return [("Episode", list(self.BINDINGS)), ("Timeline (focused)", list(StepTimeline.BINDINGS))]
