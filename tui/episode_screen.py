"""``EpisodeScreen``: one episode: header, step timeline, step detail, state diff; navigation, playback and
labeling.

Steps are decoded on demand. Two thread workers read the file through their own readers: the marker index
(one byte per step, so ``n``/``N``/``r`` jump without decoding anything; a jump asked before it has the step
waits for it, and the keys typed after the jump wait with it) and text search. Labels go through a
:class:`~trajrec.tui.label_session.LabelSession` on the store of the episode's run folder; a third worker reads other
annotators' labels every couple of seconds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, ClassVar, Sequence

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.app import SuspendNotSupported
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.worker import get_current_worker

from trajrec.recorder import Check, Episode, Step, TrajrecError, open_episode
from trajrec.replay.labels import default_annotator
from trajrec.replay.render import checks_by_target, json_safe, one_line, safe, step_checks_shown, step_record

from .episode_header import EpisodeHeader
from .help_screen import bindings_of
from .key_hints import KeyHints
from .label_session import (DEFAULT_TAGS, EPISODE, Change, LabelSession, Target, parse_category, parse_score,
                            rating_text, where)
from .label_source import LabelSource
from .markers import CHECK_CODES, FAILURE_CODES, RECOVERY_CODES, RETRY_CODES, label_mark_of
from .key_order import SearchHold, hold_keys, hold_keys_for_search, next_search, release_keys
from .prompt_bar import PromptBar
from .state_pane import StatePane
from .step_detail import StepDetail
from .step_scan import find_text, scan_markers
from .timeline import StepTimeline
from .timeline_legend import TimelineLegend

# Playback speed keys ("+" and "-" rate steps).
SPEED_UP_KEYS, SPEED_DOWN_KEYS = "greater_than_sign", "less_than_sign"

#: Playback speeds, in steps per second.
SPEEDS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
DEFAULT_SPEED = 2.0

#: Seconds between two reads of labels other annotators appended (a listing and a stat per labels file).
LABEL_REFRESH_SECONDS = 2.0

#: Seconds between two looks at the file while following it (F): one stat call.
FOLLOW_SECONDS = 1.0

#: Widths of the timeline the | key cycles through, in percent of the screen.
TIMELINE_WIDTHS = (30, 45, 60)

#: Heights of the state pane the = key cycles through ("auto": as tall as its text, at most half).
STATE_HEIGHTS = ("auto", "1fr", "3fr")

_UNSCANNED = 255  # marker byte of a step the marker scan has not reached yet

#: Seconds the marker scan waits after a step is shown: the key's own work and its screen update (~20 ms).
KEY_BUSY_SECONDS = 0.04
#: The longest the marker scan waits between two frames, so a held key slows the scan but never stops it.
KEY_WAIT_MAX = 0.1


def _on_arrival(bindings: list[Binding]) -> list[Binding]:
    """``bindings`` as priority bindings: handled when the key arrives, in the order typed (see EpisodeScreen)."""
    return [dataclasses.replace(b, priority=True) for b in bindings]


class EpisodeScreen(Screen[None]):
    """One episode, replayed step by step.

    | Key(s) | Description |
    | :- | :- |
    | h, left / l, right | Previous / next step. |
    | up, k / down, j | Previous / next step (in the timeline). |
    | g / G | First / last step. |
    | n / N | Next / previous failure (tool error or exception). |
    | r / R | Next / previous recovery. |
    | e / E | Next / previous retry. |
    | v / V | Next / previous step with a check (passed or failed). |
    | : | Go to a step (negative counts from the end). |
    | / | Search the steps' action, observation and note; jumps to the next match. |
    | space | Play / pause. |
    | > / < | Faster / slower playback. |
    | s | State pane: the step's diff / the whole state after the step. |
    | w | Wrap long lines in the step and state panes (again: cut them, marked with …). |
    | z | Zoom: the focused pane fills the screen (again, or escape: back). |
    | \\| | Timeline width: 30% / 45% / 60% of the screen. |
    | = | State pane height: as tall as its text (at most half) / half / three quarters of the right side. |
    | y | Copy the step as JSON (to the terminal's clipboard, OSC 52). |
    | o | Open the step as JSON in $EDITOR (else $VISUAL, else vi). |
    | F | Follow: while the file grows (an episode still being recorded), show new steps and go to the last. |
    | H / L | Previous / next episode in the library's order. |
    | tab | Move focus between the timeline, the step and the state panes (to scroll them). |
    | q, escape | Back to the library. Opened on one file, q quits and escape does nothing. |
    | + / - / 0 | Rate the step good (+1) / bad (-1) / neutral (0); again with another value changes the rating. |
    | c | Note: the rationale of your label on the step (a step not rated yet gets a neutral label). |
    | t | Toggle a tag on your label: then a number (or a tag name, enter). |
    | # | Score: a number kept beside your label's value on the step (empty clears it). |
    | C | Category: text that becomes your label's value on the step (in place of its rating). |
    | P | The whole episode: then p (your verdict: pass), f (fail), s (a score), c (a category) or n (a note). |
    | u | Undo your last labeling action since the episode was opened (again: the one before). |
    | ctrl+r | Redo what u took back last (again: the one before). |
    | ] / [ | Next / previous step you have not labeled (wraps around). |
    | } / { | Next / previous step anyone labeled. |

    Labels are written as ``judge="human:<annotator>"``; other judges' labels on the step are listed with theirs.
    """

    # Every key of the screen is a priority binding, handled when it arrives, in the order typed. Textual runs a
    # priority binding at once but queues any other key at the focused widget (and then its parents), so a mix
    # ran out of order: in "+ l + l", typed faster than the screen answers, the l's overtook the +'s and the
    # ratings landed on later steps (FINDINGS17 #1). The timeline's own keys (j k, page keys) are priority
    # bindings too. Priority also makes l/h and the arrows step whichever pane has focus (the panes would
    # scroll), and opens a prompt (: / c t) at once, so that keys typed right after it go into the prompt
    # (Textual routes each key to the widget focused when it arrives). While the prompt asks, check_action
    # turns every key of the screen off: it is text for the prompt. The app handles every other key whole as it
    # arrives too (the prompt's editing keys, the panes' own keys), and keys typed after one that waits for a
    # message (a prompt's answer, L/H, a search, a marker jump before the marker index is read) wait for it:
    # tui/key_order.py (FINDINGS23, FINDINGS32 #1).
    NAVIGATION_BINDINGS: ClassVar[list[Binding]] = _on_arrival([
        Binding("l,right", "step(1)", "Step", tooltip="Next step", key_display="h l"),
        Binding("h,left", "step(-1)", "Prev", show=False, tooltip="Previous step"),
        Binding("g", "jump(0)", "First step", show=False),
        Binding("G", "jump(-1)", "Last step", show=False),
        Binding("n", "failure(1)", "Next failure"),
        Binding("N", "failure(-1)", "Prev failure", show=False, tooltip="Previous failure"),
        Binding("r", "recovery(1)", "Next recovery", show=False),
        Binding("R", "recovery(-1)", "Prev recovery", show=False, tooltip="Previous recovery"),
        Binding("e", "retry(1)", "Next retry", show=False),
        Binding("E", "retry(-1)", "Prev retry", show=False, tooltip="Previous retry"),
        Binding("v", "check(1)", "Next check", show=False, tooltip="Next step with a check (passed or failed)"),
        Binding("V", "check(-1)", "Prev check", show=False, tooltip="Previous step with a check"),
        Binding("colon", "goto", "Go to", tooltip="Go to a step (enter: go, escape: cancel)"),
        Binding("slash", "search", "Search", tooltip="Search the steps' text, jump to the next match (again: / enter)"),
        Binding("space", "play", "Play", show=False, tooltip="Play / pause"),
        Binding(SPEED_UP_KEYS, "speed(1)", "Faster", show=False, key_display=">",
                tooltip="Faster playback"),
        Binding(SPEED_DOWN_KEYS, "speed(-1)", "Slower", show=False, key_display="<",
                tooltip="Slower playback"),
        Binding("s", "toggle_state", "Diff/state", show=False,
                tooltip="State pane: diff of the step / whole state after it"),
        Binding("w", "toggle_wrap", "Wrap", show=False,
                tooltip="Wrap long lines in the step and state panes (again: cut them, marked with …)"),
        Binding("z", "zoom", "Zoom", show=False, tooltip="Zoom: the focused pane fills the screen (again, or escape: back)"),
        Binding("vertical_line", "resize", "Resize", show=False, key_display="|",
                tooltip="Timeline width: 30% / 45% / 60% of the screen"),
        Binding("equals_sign", "resize_state", "State height", show=False, key_display="=",
                tooltip="State pane height: fit its text / half / three quarters"),
        Binding("y", "copy_step", "Copy JSON", show=False,
                tooltip="Copy the step as JSON (to the terminal's clipboard, OSC 52)"),
        Binding("o", "edit_step", "Open in $EDITOR", show=False, tooltip="Open the step as JSON in $EDITOR"),
        Binding("F", "follow", "Follow", show=False,
                tooltip="Follow a file still being recorded: show new steps as they arrive, go to the last"),
        Binding("H", "episode(-1)", "Prev episode", show=False, tooltip="Previous episode in the library"),
        Binding("L", "episode(1)", "Next episode", show=False, tooltip="Next episode in the library"),
    ])

    LABEL_BINDINGS: ClassVar[list[Binding]] = _on_arrival([
        Binding("plus", "rate(1)", "Rate", key_display="+ - 0",
                tooltip="Rate this step good (+1); rating again changes your label"),
        Binding("minus", "rate(-1)", "Rate bad", show=False, tooltip="Rate this step bad (-1)"),
        Binding("0", "rate(0)", "Rate neutral", show=False, tooltip="Rate this step neutral (0)"),
        Binding("c", "note", "Note",
                tooltip="Note why: the rationale of your label (enter saves, empty clears, escape cancels)"),
        Binding("t", "tag", "Tag",
                tooltip="Toggle a tag on your label: then its number (or a name and enter)"),
        Binding("number_sign", "score", "Score", show=False, key_display="#",
                tooltip="Score your label on the step: a number beside its value (enter saves, empty clears)"),
        Binding("C", "category", "Category", show=False,
                tooltip="Category of your label on the step: text, in place of its rating (enter saves)"),
        Binding("u", "undo", "Undo", tooltip="Undo your last labeling action since the episode was opened"),
        Binding("ctrl+r", "redo", "Redo", show=False,
                tooltip="Redo what u took back last (again: the one before); a new labeling action ends it"),
        Binding("P", "episode_label", "Episode",
                tooltip="Your label on the whole episode: then p pass, f fail, s score, c category, n note"),
        Binding("right_square_bracket", "next_unlabeled(1)", "Unlabeled",
                tooltip="Next step you have not labeled (wraps around)"),
        Binding("left_square_bracket", "next_unlabeled(-1)", "Prev unlabeled", show=False,
                tooltip="Previous step you have not labeled (wraps around)"),
        Binding("right_curly_bracket", "next_labeled(1)", "Next labeled", show=False,
                tooltip="Next step anyone labeled"),
        Binding("left_curly_bracket", "next_labeled(-1)", "Prev labeled", show=False,
                tooltip="Previous step anyone labeled"),
    ])

    BACK_BINDINGS: ClassVar[list[Binding]] = _on_arrival([
        Binding("q", "back", "Back", tooltip="Back to the library (quit when opened on one file)"),
        Binding("escape", "back(True)", "Back", show=False,
                tooltip="Back to the library (opened on one file: nothing, q quits)"),
    ])
    #: Shown for q when the viewer was opened on one file (there is no library to go back to).
    QUIT_BINDING = Binding("q", "back", "Quit", tooltip="Quit (the viewer was opened on one file)", priority=True)

    BINDINGS: ClassVar[list[BindingType]] = [*NAVIGATION_BINDINGS, *LABEL_BINDINGS, *BACK_BINDINGS]

    DEFAULT_CSS = """
    EpisodeScreen {
        & > #episode-body { height: 1fr; }
        & StepTimeline {
            width: 45%;
            min-width: 30;
            height: 1fr;
            border: round $primary 40%;
            border-title-color: $text-muted;
        }
        & #episode-right { width: 1fr; }
        & StepTimeline:focus { border: round $accent; }
        /* A narrow terminal: the timeline gives way (its 30 columns left the step pane one word wide at 40). */
        &.-narrow StepTimeline { min-width: 12; }
        & StepDetail { height: 1fr; min-height: 5; }
        /* As tall as the diff (a one-line diff takes three lines), at most half the height: the step gets the
           rest. */
        & StatePane { height: auto; max-height: 50%; min-height: 3; }
        /* z: the zoomed pane fills the screen between the header and the key hints (!important: the |
           and = keys set the panes' sizes inline). */
        &.-maximized-view { hatch: none; }
        &.-maximized-view > EpisodeHeader { dock: top; }  /* Textual lays the zoomed pane out first */
        &.-maximized-view .-maximized {
            width: 1fr !important;
            height: 1fr !important;
            max-width: 100% !important;
            max-height: 100% !important;
        }
    }
    """

    #: Kept on screen while a pane is zoomed: the header, the prompt and the key hints (which say how to leave).
    ALLOW_IN_MAXIMIZED_VIEW = "EpisodeHeader, PromptBar, KeyHints"

    AUTO_FOCUS = "StepTimeline"

    #: Below 80 columns the screen has the class -narrow (see DEFAULT_CSS).
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [(0, "-narrow"), (80, "-normal")]

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
        search: int
        generation: int
        query: str
        done: int
        total: int

    @dataclass
    class SearchDone(Message):
        search: int
        generation: int
        query: str
        step: int | None
        wrapped: bool

    @dataclass
    class LabelsRead(Message):
        """The label worker read labels other writers appended to this episode's store."""

        generation: int

    def __init__(self, episode: Episode, *, step: int = 0, annotator: str | None = None,
                 labels: LabelSource | None = None, tags: Sequence[str] = DEFAULT_TAGS,
                 quit_on_back: bool = False, name: str | None = None) -> None:
        super().__init__(name=name)
        self.episode = episode
        self.annotator = annotator or default_annotator()
        self.labels = labels if labels is not None else LabelSource([episode.path])
        self.tags = tuple(tags)
        self.quit_on_back = quit_on_back
        if quit_on_back:  # the key hints and the help say what q does here
            self._bindings.key_to_bindings["q"] = [self.QUIT_BINDING]
        self.session: LabelSession | None = None  # None: this episode's labels cannot be read (see the note)
        self._drawn_reloads = 0  # session.reloads when the labels were last drawn (see _redraw_labels)
        self._label_step: Target = 0  # the step (or EPISODE) a note, tag, score or category prompt is about
        self._note_shown = ""  # the rationale as the note prompt showed it (on one line)
        self._tag_choices: list[str] = []
        self.speed = DEFAULT_SPEED
        self.last_query = ""
        self._start_step = step
        self._timer: Timer | None = None
        self._generation = 0
        self._markers = bytearray()
        self._scanned = 0
        self._pending: tuple[frozenset[int], int, str] | None = None  # a marker jump waiting for the index
        #: The hold of the pending marker jump: the keys typed after n/N/r/R/e/E/v/V wait for its step (key_order).
        self._seek_hold: SearchHold | None = None
        self._damage: list[tuple[int, int]] = []  # step ranges in frames that cannot be read
        self._shown: tuple[int, int] | None = None  # (generation, step) the panes show
        self._busy_until = 0.0  # time.monotonic() until which the marker scan waits (a step is being shown)
        self.following = False
        self._width_choice = TIMELINE_WIDTHS.index(45)  # the width in DEFAULT_CSS
        self._state_choice = 0
        self._state_rows = 0  # the state pane's height so far on this episode (see _hold_state_height)
        self._follow_timer: Timer | None = None
        self._file_stamp: tuple[int, int] | None = None
        self._checks_key: tuple[int, int] | None = None  # (generation, steps) _by_target was made for
        self._by_target: dict[int, list[Check]] = {}
        #: Set by the app when it holds the keys typed after the one that opened this screen (key_order).
        self.release_keys_on_mount = False
        self._searches = 0  # step searches started on this screen: each SearchDone names its own
        #: The hold of the running search: the keys typed after its enter wait for its answer (key_order).
        self._search_hold: SearchHold | None = None

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
        self.set_interval(LABEL_REFRESH_SECONDS, self.refresh_labels)
        self.watch(self, "maximized", self._apply_sizes, init=False)
        if self.release_keys_on_mount:  # the keys typed after the one that opened this episode
            self.release_keys_on_mount = False
            release_keys(self.app)

    def on_unmount(self) -> None:
        self._stop_playback()
        self._drop_pending()  # the marker worker ends with the screen: no batch will resolve the jump
        if self._search_hold is not None:  # its search's worker ends with the screen: no answer will release it
            self._search_hold.release()
            self._search_hold = None
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
        if self._state_rows:  # each episode starts as tall as its first diff
            self._state_rows = 0
            self._apply_sizes()
        self._scanned = 0
        self._drop_pending()  # (a file followed with F, reloaded: the keys after the jump act on the new steps)
        self._damage = []
        legend = self.query_one(TimelineLegend)
        legend.total = n
        legend.note = ""
        self._open_labels(episode)
        session = self.session
        self.query_one(EpisodeHeader).show(episode, session.episode_labels() if session is not None else (),
                                           session.judge if session is not None else None)
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
        """The recorded checks shown with ``step``: those that target it, wherever the env reported them, as the
        markers and the exports place them (``step_checks_shown``; labels from the label store have a section of
        their own)."""
        # The index's checks by target, kept while the episode and its length (a followed live file) stay.
        key = (self._generation, len(self.episode))
        if self._checks_key != key:
            self._checks_key, self._by_target = key, checks_by_target(self.episode)
        return step_checks_shown(self.episode, step, self._by_target)

    def refresh_step(self) -> None:
        """Redraw the current step's panes (after its checks or labels changed)."""
        self._show_step(self.step_index, force=True)

    @on(StepTimeline.CursorMoved)
    def _cursor_moved(self, message: StepTimeline.CursorMoved) -> None:
        self._show_step(message.step)

    def _show_step(self, i: int, *, force: bool = False) -> None:
        if not force and self._shown == (self._generation, i):
            return  # shown already, by _move_to, in the same screen update as the timeline's cursor
        self._busy_until = time.monotonic() + KEY_BUSY_SECONDS  # the marker scan gives way meanwhile
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
        self._show_detail(step)
        state.show(self.episode, step)
        self._hold_state_height(state)

    def _hold_state_height(self, pane: StatePane) -> None:
        """While the state pane is as tall as its text (the first ``=`` choice), it is given that height in rows:
        it grows to fit a longer diff but does not shrink back for a shorter one until the next episode (or the
        next ``=``). Stepping through diffs of 4, 5, 4 lines then redraws the panes without laying the screen
        out again each time (a layout is ~10 ms of a ~20 ms key), and the step pane above stops jumping."""
        if STATE_HEIGHTS[self._state_choice] != "auto" or self.maximized is not None or pane.mode != "diff":
            return
        room = pane.parent.size.height // 2 if isinstance(pane.parent, Widget) else 0  # the CSS max-height: 50%
        if room <= 0:
            return  # not laid out yet: the CSS height holds until the next step
        wide = pane.virtual_size.width > pane.scrollable_content_region.width  # a horizontal scrollbar's row
        rows = max(3, min(pane.virtual_size.height + 2 + wide, room))  # the text, the border, at most half
        if rows > self._state_rows:
            self._state_rows = rows
            pane.styles.height = rows

    def _show_detail(self, step: Step, *, scroll_home: bool = True) -> None:
        session = self.session
        labels = session.labels_at(step.index) if session is not None else ()
        self.query_one(StepDetail).show(step, len(self.episode), self.checks_for(step), labels,
                                        session.judge if session is not None else None, scroll_home=scroll_home)

    # -- stepping -------------------------------------------------------------------------------------------

    def _move_to(self, i: int) -> None:
        """Move to step ``i`` for the user: drops a pending seek and the last note (callers set a new one)."""
        self._drop_pending()
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
        hold_keys(self.app)  # the keys typed after L/H are the next episode's: they wait for it (key_order)
        self.post_message(self.NeighborRequested(self, delta))

    def action_back(self, escape: bool = False) -> None:
        if self.quit_on_back:
            if escape:  # one file: no library behind, and a quit on escape (pressed to leave a prompt) surprises
                self.notify("opened on one file: q quits", timeout=3, markup=False)
                return
            self.app.exit()
        else:
            self.dismiss()

    # -- markers: failures and recoveries -------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="episode-markers")
    def _scan_markers(self, path: str, generation: int) -> None:
        worker = get_current_worker()

        def damaged(first: int, last: int, error: str) -> None:
            self.post_message(self.MarkersDamaged(generation, first, last, safe(error)))

        def give_way() -> None:
            # While a key is being answered (and its screen update drawn), the scan waits between frames: two
            # threads sharing the GIL would double the key's time. A held key cannot stall the scan for good:
            # it waits at most KEY_WAIT_MAX seconds per frame.
            end = time.monotonic() + KEY_WAIT_MAX
            while not worker.is_cancelled:
                now = time.monotonic()
                busy = self._busy_until
                if now >= busy or now >= end:
                    return
                time.sleep(min(busy, end) - now)

        try:
            for start, codes in scan_markers(path, cancelled=lambda: worker.is_cancelled, on_damage=damaged,
                                             between_frames=give_way):
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
            self._drop_pending()
            legend.note = f"no {word} {what}"
            self.app.bell()
        else:
            self._pending = (codes, direction, what)  # resolved as marker batches arrive
            # The keys typed after the jump are meant for the step it goes to: they wait for it, as for a
            # search's match, however long the index takes (a 100,000-step file: seconds). Right after L/H or
            # opening a file the index has not been read yet, and a rating typed after n landed on the step the
            # jump started from (FINDINGS32 #1).
            if self._seek_hold is None or not self._seek_hold.active:
                self._seek_hold = hold_keys_for_search(self.app, self._seek_cancelled)
            legend.note = f"looking for the {word} {what}…: keys wait (escape cancels)"

    def _drop_pending(self) -> None:
        """Forget the pending marker jump (resolved, replaced or moot) and let the keys waiting for it run."""
        self._pending = None
        hold, self._seek_hold = self._seek_hold, None
        if hold is not None:
            hold.release()  # (the keys run on a later turn of the loop: after the move that resolved the jump)

    def _seek_cancelled(self, dropped: int) -> None:
        """Escape while a marker jump held the keys: the jump is dropped, and the keys waiting for its step too."""
        self._seek_hold = None
        if self._pending is None:
            return
        _codes, direction, what = self._pending
        self._pending = None
        waited = f"; {dropped} key{'s' if dropped != 1 else ''} typed after it dropped" if dropped else ""
        self.query_one(TimelineLegend).note = (f"looking for the {'next' if direction > 0 else 'previous'} {what} "
                                               f"cancelled{waited}")

    def action_failure(self, direction: int) -> None:
        self._seek(FAILURE_CODES, direction, "failure")

    def action_recovery(self, direction: int) -> None:
        self._seek(RECOVERY_CODES, direction, "recovery")

    def action_retry(self, direction: int) -> None:
        self._seek(RETRY_CODES, direction, "retry")

    def action_check(self, direction: int) -> None:
        self._seek(CHECK_CODES, direction, "step with a check")

    # -- go to, search --------------------------------------------------------------------------------------

    def action_goto(self) -> None:
        n = len(self.episode)
        if n:
            # No key filter: one would drop keys silently ("1e3" typed as 13); a wrong answer is told instead.
            self.query_one(PromptBar).ask("goto", f"go to step (0 … {n - 1:,}; negative: from the end):",
                                          placeholder=str(self.step_index))

    def action_search(self) -> None:
        if len(self.episode):
            self.query_one(PromptBar).ask("search", "search actions, observations, notes:", value=self.last_query)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While the prompt asks, the screen's keys (priority bindings, see above) are text for it, and escape
        # cancels it (the prompt's own binding); they are out of the key hints meanwhile.
        if self.query_one(PromptBar).asking:
            return False
        if action in _LABEL_ACTIONS and (self.session is None or (not len(self.episode)
                                                                  and action not in _EPISODE_ACTIONS)):
            return None  # shown dimmed: nothing to label, or the labels cannot be read
        return True

    @on(PromptBar.Answered)
    def _answered(self, message: PromptBar.Answered) -> None:
        with self.app.batch_update():  # the prompt closing and the jump: one screen update
            # The prompt gave the focus back to the pane it was opened from (FINDINGS23 #4).
            if self.focused is None or self.focused is message.bar.input:
                self.set_focus(self.query_one(StepTimeline))
            if message.value is None:
                return
            if message.purpose == "goto":
                self._goto_answered(message.value)
            elif message.purpose == "search":
                self._search_answered(message.value)
            elif message.purpose == "note" and message.value != self._note_shown:  # (enter alone: unchanged)
                step, text = self._label_step, message.value
                self._label(lambda session: session.set_rationale(step, text))
            elif message.purpose == "tag":
                self._tag_answered(message.value)
            elif message.purpose == "episode":
                self._episode_answered(message.value)
            elif message.purpose == "score":  # (the prompt's check let only a number or nothing through)
                step, score = self._label_step, parse_score(message.value)
                self._label(lambda session: session.set_score(step, score))
            elif message.purpose == "category" and message.value.strip():
                step, category = self._label_step, message.value
                self._label(lambda session: session.set_category(step, parse_category(category)))

    def _goto_answered(self, answer: str) -> None:
        text = answer.strip().replace(",", "").replace("_", "")  # "1,000" as the prompt writes counts
        if text in ("", "-"):
            return  # nothing asked
        if not text.lstrip("-").isdigit() or text.count("-") > 1:
            self.query_one(TimelineLegend).note = (f"not a step number: {one_line(answer, 20)!r} (type digits, "
                                                   "or -1 for the last step)")
            return
        i = int(text)
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
        self._searches, self._search_hold = next_search(self.app, self._search_hold, self._searches,
                                                        self._search_cancelled)
        self._search(self.episode.path, query, self.step_index, self._generation, self._searches)

    def _search_cancelled(self, search: int, dropped: int) -> None:
        """Escape while the search ``search`` held the keys: it stops, and the keys waiting for it are dropped."""
        if search != self._searches:
            return
        self._search_hold = None
        self.workers.cancel_group(self, "episode-search")
        waited = f"; {dropped} key{'s' if dropped != 1 else ''} typed after it dropped" if dropped else ""
        self.query_one(TimelineLegend).note = f"search for {self.last_query!r} cancelled{waited}"

    @work(thread=True, exclusive=True, group="episode-search")
    def _search(self, path: str, query: str, start: int, generation: int, search: int) -> None:
        worker = get_current_worker()
        try:
            step, wrapped = find_text(
                path, query, start, cancelled=lambda: worker.is_cancelled,
                progress=lambda done, total: self.post_message(
                    self.SearchProgress(search, generation, query, done, total)))
        except (TrajrecError, OSError):
            step, wrapped = None, False  # a damaged frame ends the search like "not found"; the timeline shows it
        if not worker.is_cancelled:
            self.post_message(self.SearchDone(search, generation, query, step, wrapped))

    @on(SearchProgress)
    def _search_progress(self, message: SearchProgress) -> None:
        if message.generation == self._generation and message.search == self._searches:
            hold = self._search_hold
            waiting = ": keys wait (escape cancels)" if hold is not None and hold.active else ""
            self.query_one(TimelineLegend).note = (
                f"searching for {message.query!r}… {message.done * 100 // max(1, message.total)}%{waiting}")

    @on(SearchDone)
    def _search_done(self, message: SearchDone) -> None:
        if message.search != self._searches:
            return  # an earlier search's late answer: neither its move nor a hold of another search
        hold, self._search_hold = self._search_hold, None
        if hold is not None:
            self.call_later(hold.release)  # after the move below
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
        self._apply_sizes()  # the whole state gets the pane's full "auto" height; a diff is held again from here
        self._hold_state_height(pane)

    def action_toggle_wrap(self) -> None:
        state = self.query_one(StatePane)
        wrap = not state.wrap  # the state pane starts cut, the step pane wrapped: both follow the state pane
        self.query_one(StepDetail).set_wrap(wrap)
        state.set_wrap(wrap)
        self.query_one(TimelineLegend).note = "long lines wrap" if wrap else "long lines cut (…): w wraps them"

    def action_zoom(self) -> None:
        if self.maximized is not None:
            self.minimize()
            return
        focused = self.focused
        if focused is None or not self.maximize(focused):
            self.maximize(self.query_one(StepTimeline))

    def action_resize(self) -> None:
        self._width_choice = (self._width_choice + 1) % len(TIMELINE_WIDTHS)
        self._apply_sizes()

    def action_resize_state(self) -> None:
        self._state_choice = (self._state_choice + 1) % len(STATE_HEIGHTS)
        self._apply_sizes()

    def _apply_sizes(self, _maximized: object = None) -> None:
        """Set the panes' sizes the ``|`` and ``=`` keys chose, as inline styles; a zoomed pane gets none (inline
        styles beat the zoom's CSS), and gets them back when unzoomed (``z`` or escape: this watches
        ``maximized``)."""
        timeline, pane = self.query_one(StepTimeline), self.query_one(StatePane)
        zoomed = self.maximized
        timeline.styles.width = None if zoomed is timeline else f"{TIMELINE_WIDTHS[self._width_choice]}%"
        height = STATE_HEIGHTS[self._state_choice]
        pane.styles.height = None if zoomed is pane else height
        # (None falls back to the CSS: at most half the height while it fits its text)
        pane.styles.max_height = None if zoomed is pane or height == "auto" else "100%"
        self._state_rows = 0  # the pane fits its next diff again (see _hold_state_height)

    def _step_json(self) -> str | None:
        if not len(self.episode):
            return None
        try:
            step = self.episode[self.step_index]
        except TrajrecError as exc:
            self.notify(one_line(str(exc), 300), title="step cannot be read", severity="error", markup=False)
            return None
        record = {"episode_id": self.episode.episode_id, "path": self.episode.path, **step_record(step)}
        # The export encoding, as `--json` writes it (docs/EXPORT.md, "JSON: exact or explicit"): strict JSON in
        # which NaN, bytes and a recorded "$" key are marked, so what is pasted is the recorded value, not the
        # display's text of it. Recorded text may hold C1 controls or bidi overrides: escaped, the JSON is the same
        # value and cannot drive the terminal or the editor it is pasted into.
        from trajrec.replay.exports.encode import jsonable_marked  # (not needed until a step is copied)

        return json_safe(json.dumps(jsonable_marked(record), ensure_ascii=False, indent=2))

    def action_copy_step(self) -> None:
        text = self._step_json()
        if text is not None:
            self.app.copy_to_clipboard(text)
            self.query_one(TimelineLegend).note = (f"step {self.step_index:,} copied as JSON ({len(text):,} "
                                                    "characters, via the terminal's clipboard)")

    def action_edit_step(self) -> None:
        text = self._step_json()
        if text is None:
            return
        editor = os.environ.get("EDITOR") or os.environ.get("VISUAL") or "vi"
        try:
            argv = shlex.split(editor)
        except ValueError as exc:  # unbalanced quotes
            argv, why = [], str(exc)
        else:
            why = "not found on PATH" if not argv or shutil.which(argv[0]) is None else ""
        if why:  # told before the screen is given up: a failed start inside suspend() would leave it blank
            self.notify(f"cannot run {editor!r}: {why}", title="open in $EDITOR", severity="error", markup=False)
            return
        failed: BaseException | None = None
        with tempfile.TemporaryDirectory(prefix="trajrec-step-") as folder:
            path = os.path.join(folder, f"{self.episode.episode_id}-step{self.step_index}.json")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
            try:
                with self.app.suspend():
                    # The episode file is never written: the editor gets a copy, deleted when it exits.
                    # An error is caught inside the block: suspend() has no finally, so one escaping it would
                    # leave the terminal out of the app's mode, the screen blank and the keys echoed.
                    try:
                        code = subprocess.call([*argv, path])
                    except OSError as exc:
                        failed = exc
            except SuspendNotSupported as exc:
                failed = exc
        if failed is not None:
            self.refresh(layout=True)
            self.notify(f"cannot run {editor!r}: {failed}", title="open in $EDITOR", severity="error", markup=False)
            return
        self.refresh(layout=True)
        if code:
            self.query_one(TimelineLegend).note = f"{editor} exited with status {code}"

    # -- follow (tail) --------------------------------------------------------------------------------------

    def action_follow(self) -> None:
        legend = self.query_one(TimelineLegend)
        if self.following:
            self._stop_following("")
            return
        self.following = True
        self._file_stamp = _stamp(self.episode.path)
        self._follow_timer = self.set_interval(FOLLOW_SECONDS, self.poll_file)
        self._move_to(max(0, len(self.episode) - 1))
        legend.follow = "following (F stops)" if not self.episode.complete else "following (the file is closed)"

    def _stop_following(self, why: str) -> None:
        self.following = False
        if self._follow_timer is not None:
            self._follow_timer.stop()
            self._follow_timer = None
        self.query_one(TimelineLegend).follow = why

    def poll_file(self) -> None:
        """Re-open the episode when its file changed on disk (the follow timer calls this): new steps appear and,
        while following, the cursor goes to the last one."""
        stamp = _stamp(self.episode.path)
        if stamp is None or stamp == self._file_stamp:
            return
        self._file_stamp = stamp
        try:
            episode = open_episode(self.episode.path)
        except (TrajrecError, OSError):
            return  # half of a block written: the next poll reads it whole
        if len(episode) == len(self.episode) and episode.complete == self.episode.complete:
            episode.close()
            return
        self.load(episode, step=-1 if self.following else self.step_index)
        if self.following and episode.complete:
            self._stop_following("recording finished: the file is closed")

    # -- labeling -------------------------------------------------------------------------------------------

    def _open_labels(self, episode: Episode) -> None:
        try:
            store = self.labels.store_for(episode.path)
            self.session = LabelSession(store, episode.episode_id, len(episode), self.annotator,
                                        lock=self.labels.lock, refresh=lambda: self.labels.refresh(store))
            self._drawn_reloads = self.session.reloads  # (the screen draws the labels it opened with)
        except TrajrecError as exc:  # e.g. a labels folder that cannot be listed: view without labeling
            self.session = None
            self.query_one(TimelineLegend).note = f"labels unavailable: {one_line(str(exc), 200)}"
        session = self.session
        self._notify_labels_left_out()
        self.query_one(StepTimeline).label_marks = self._label_mark if session is not None else None
        self._show_progress()

    def _notify_labels_left_out(self) -> None:
        """Say which labels the session left out (on steps this episode does not have), once each."""
        notice = self.session.notice if self.session is not None else None
        if notice:
            self.app.notify(safe(one_line(notice, 600)), title="labels left out", severity="warning", markup=False)

    def _label_mark(self, step: int) -> str:
        session = self.session
        if session is None:
            return " "
        mine = session.mine_at(step)
        return label_mark_of(mine.value if mine is not None else None, session.has_others(step))

    def _show_progress(self) -> None:
        session = self.session
        legend = self.query_one(TimelineLegend)
        if session is None:
            legend.labeled = ""
            return
        mine, anyone = session.progress()
        n = len(self.episode)
        legend.labeled = f"labeled {mine:,}/{n:,} (you)" + (f" {anyone:,}/{n:,} (anyone)" if anyone > mine else "")

    def _redraw_labels(self, step: Target | None = None) -> None:
        """Redraw what shows labels: the detail pane (keeping its scroll), the timeline line of ``step`` (None:
        every line and the header; also when the session read other writers' labels since the last redraw: any
        step may have changed; EPISODE: the header's labels), the progress."""
        if self.session is not None and self.session.reloads != self._drawn_reloads:
            step = None
            self._drawn_reloads = self.session.reloads
        if step == EPISODE:
            if self.session is not None:
                self.query_one(EpisodeHeader).show_labels(self.session.episode_labels(), self.session.judge)
            return
        i = self.step_index
        if len(self.episode) and (step is None or step == i):
            try:
                self._show_detail(self.episode[i], scroll_home=False)
            except TrajrecError:
                pass  # the detail pane already says the step cannot be read
        timeline = self.query_one(StepTimeline)
        if step is None:
            timeline.refresh()
            if self.session is not None:  # labels on the whole episode, under the verdict
                self.query_one(EpisodeHeader).show_labels(self.session.episode_labels(), self.session.judge)
        else:
            timeline.refresh_step(step)
        self._show_progress()

    def _label(self, act: Callable[[LabelSession], Change | None]) -> None:
        """Run one labeling action and show what it did (or why it could not)."""
        session = self.session
        if session is None:
            return
        legend = self.query_one(TimelineLegend)
        try:
            change = act(session)
        except TrajrecError as exc:  # a folder that is not writable, a label deleted by someone else meanwhile
            self.notify(one_line(str(exc), 400), title="label not saved", severity="error", markup=False)
            session.reload()
            self._redraw_labels()
            return
        # The session read other writers' labels first (see LabelSession.catch_up): _redraw_labels redraws every
        # step then.
        if change is None:
            if session.reloads != self._drawn_reloads:
                self._redraw_labels()
            legend.note = "no change"
            return
        self._redraw_labels(change.step)
        legend.note = f"{where(change.step)}: {change.what}" + (f" ({change.warning})" if change.warning else "")

    def action_rate(self, value: int) -> None:
        step = self.step_index
        self._label(lambda session: session.rate(step, value))

    def action_note(self) -> None:
        self._ask_note(self.step_index)

    def _ask_note(self, target: Target) -> None:
        if self.session is None:
            return
        self._label_step = target
        mine = self.session.mine_at(target)
        # The input holds one line: a rationale written elsewhere with line breaks is shown joined, and only
        # written back (joined) if edited.
        self._note_shown = " ".join((mine.rationale or "").split()) if mine is not None else ""
        self.query_one(PromptBar).ask("note", f"note on {where(target)} (enter saves, empty clears):",
                                      value=self._note_shown)

    def action_score(self) -> None:
        self._ask_score(self.step_index)

    def _ask_score(self, target: Target) -> None:
        if self.session is None:
            return
        self._label_step = target
        mine = self.session.mine_at(target)
        shown = f"{mine.score:g}" if mine is not None and mine.score is not None else ""
        self.query_one(PromptBar).ask("score", f"score of {where(target)} (a number, e.g. 0.75; empty clears):",
                                      value=shown, check=_problem_of(parse_score))

    def action_category(self) -> None:
        self._ask_category(self.step_index)

    def _ask_category(self, target: Target) -> None:
        if self.session is None:
            return
        self._label_step = target
        mine = self.session.mine_at(target)
        shown = mine.value if mine is not None and type(mine.value) is str else ""
        instead = (f"; replaces your {rating_text(mine.value)}" if mine is not None and type(mine.value) is not str
                   else "")
        self.query_one(PromptBar).ask("category", f"category of {where(target)} (text, e.g. wrong-tool{instead}):",
                                      value=shown, check=_problem_of(parse_category))

    def action_episode_label(self) -> None:
        """``P``: the annotator's label on the whole episode; the next key says what (see EPISODE_CHOICES)."""
        if self.session is None:
            return
        mine = self.session.mine_at(EPISODE)
        yours = ""
        if mine is not None:
            yours = f" (yours: {one_line(rating_text(mine.value), 30)}" + (
                f", score {mine.score:g}" if mine.score is not None else "") + ")"
        choices = "  ".join(f"{k} {what}" for k, what in EPISODE_CHOICES.items())
        self.query_one(PromptBar).ask("episode", f"episode{yours}: {choices}:",
                                      instant=f"[{''.join(EPISODE_CHOICES)}]", check=_episode_choice_problem)

    def _episode_answered(self, answer: str) -> None:
        choice = answer.strip()
        if choice in ("p", "f"):
            self._label(lambda session: session.set_verdict(choice == "p"))
        elif choice == "s":
            self._ask_score(EPISODE)
        elif choice == "c":
            self._ask_category(EPISODE)
        elif choice == "n":
            self._ask_note(EPISODE)

    def action_tag(self) -> None:
        if self.session is None:
            return
        step = self._label_step = self.step_index
        mine = self.session.mine_at(step)
        on = mine.tags if mine is not None else ()
        self._tag_choices = [*self.tags, *(t for t in on if t not in self.tags)]
        choices = "  ".join(f"{k} {one_line(t, 30)}{'✓' if t in on else ''}"
                            for k, t in enumerate(self._tag_choices, 1))
        self.query_one(PromptBar).ask(
            "tag", f"tag step {step:,}: {choices}  (✓ on) number or name:",
            instant=f"[1-{len(self._tag_choices)}]" if len(self._tag_choices) <= 9 else None)

    def _tag_answered(self, answer: str) -> None:
        text = answer.strip()
        if not text:
            return
        choices = self._tag_choices
        if text.isdigit():
            k = int(text)
            if not 1 <= k <= len(choices):
                self.query_one(TimelineLegend).note = f"no tag number {k} (1 … {len(choices)})"
                return
            tag = choices[k - 1]
        else:
            starts = [t for t in choices if t.startswith(text)]
            tag = text if text in choices or len(starts) != 1 else starts[0]  # else: a new tag, as typed
        step = self._label_step
        self._label(lambda session: session.toggle_tag(step, tag))

    def action_undo(self) -> None:
        self._undo_or_redo("undo")

    def action_redo(self) -> None:
        self._undo_or_redo("redo")

    def _undo_or_redo(self, verb: str) -> None:
        """Take back this session's last label change (``undo``) or give back the last one taken (``redo``)."""
        session = self.session
        if session is None:
            return
        legend = self.query_one(TimelineLegend)
        try:
            change = session.undo() if verb == "undo" else session.redo()
        except TrajrecError as exc:
            self.notify(one_line(str(exc), 400), title=f"cannot {verb}", severity="error", markup=False)
            session.reload()
            self._redraw_labels()
            return
        if change is None:
            legend.note = f"nothing to {verb}"
            self.app.bell()
            return
        if isinstance(change.step, int) and change.step != self.step_index:
            self._move_to(change.step)  # shows the step with its labels as they are now
        self._redraw_labels(change.step)  # (every step when other writers' labels were read on the way)
        legend.note = f"{'undid' if verb == 'undo' else 'redid'} {where(change.step)}: {change.what}"

    def action_next_unlabeled(self, direction: int = 1) -> None:
        session = self.session
        if session is None:
            return
        here = self.step_index
        step = session.next_unlabeled(here, direction)
        if step is None:
            self.query_one(TimelineLegend).note = "all steps labeled (by you)"
            self.app.bell()
            return
        self._move_to(step)
        if step == here:
            self.query_one(TimelineLegend).note = "this is the only step you have not labeled"

    def action_next_labeled(self, direction: int) -> None:
        session = self.session
        if session is None:
            return
        step = session.next_labeled(self.step_index, direction)
        if step is None:
            self.query_one(TimelineLegend).note = f"no labeled step {'after' if direction > 0 else 'before'} this one"
            self.app.bell()
            return
        self._move_to(step)

    def refresh_labels(self) -> None:
        """Read labels other annotators appended since the last read (the screen's timer calls this every
        ``LABEL_REFRESH_SECONDS``), in a thread; the panes redraw when any arrived."""
        if self.session is not None:
            self._read_labels(self.session, self._generation)

    @work(thread=True, exclusive=True, group="episode-labels")
    def _read_labels(self, session: LabelSession, generation: int) -> None:
        try:
            read = self.labels.refresh(session.store)
        except TrajrecError:
            return  # the folder went away; what was read stays on screen, the next tick tries again
        if read:
            self.post_message(self.LabelsRead(generation))

    @on(LabelsRead)
    def _labels_read(self, message: LabelsRead) -> None:
        if message.generation != self._generation or self.session is None:
            return
        self.session.reload()
        self._notify_labels_left_out()
        self._redraw_labels()

    # -- help -----------------------------------------------------------------------------------------------

    def help_sections(self) -> list[tuple[str, list[Binding]]]:
        screen_first = {k for b in self.BINDINGS if isinstance(b, Binding) and b.priority for k in b.key.split(",")}
        focus = [Binding("tab", "focus_next", tooltip="Move the focus: timeline, step pane, state pane"),
                 Binding("shift+tab", "focus_previous", tooltip="Move the focus back")]
        back = [self.QUIT_BINDING, self.BACK_BINDINGS[1]] if self.quit_on_back else self.BACK_BINDINGS
        return [("Episode", [*self.NAVIGATION_BINDINGS, *back]),
                ("Timeline (focused at the start)", [*bindings_of(self.query_one(StepTimeline)), *focus]),
                ("Step and state panes (focused with tab)", [
                    b for b in bindings_of(self.query_one(StepDetail))  # but keys the screen takes first
                    if not any(k in screen_first for k in b.key.split(","))]),
                (f"Labeling (as human:{self.annotator})", list(self.LABEL_BINDINGS))]

    def help_notes(self) -> list[tuple[str, Text]]:
        out = Text(end="")
        out.append("  ")
        out.append("  ".join(f"{k} {one_line(t, 30)}" for k, t in enumerate(self.tags, 1)))
        out.append("\n  set the list with `trajrec view --tags a,b,c` or $TRAJREC_TAGS; a name typed after t adds a "
                   "new tag\n  your name: --annotator NAME, else $TRAJREC_ANNOTATOR, else your login name",
                   style="dim")
        prompts = Text("  enter answers, escape cancels (you stay on the step), tab is a space; the prompt keeps "
                       "the focus until then, and gives it back to the pane it was opened from\n  keys act in the order typed, "
                       "however fast: + l + l rates two steps; L + l - rates steps 0, 1 of the next episode\n"
                       "  but a key typed within ~0.1 s after escape is read with it as one key (Alt+key) and the "
                       "escape is lost: leave a moment after escape\n"
                       "  a score that is not a number, or an empty category, is refused in the prompt: it stays "
                       "open and says why", style="dim", end="")
        episode = Text(end="")
        episode.append("  " + "  ".join(f"P {k}  {what}" for k, what in EPISODE_CHOICES.items()))
        episode.append("\n  your label on the whole episode, as `trajrec label add RUN --step episode` writes it "
                       "(exports' kto and dpo read it);\n  the header shows it at once; u undoes it. A label holds "
                       "one value: a category replaces a verdict or rating,\n  a score sits beside either",
                       style="dim")
        return [("Tags (t, then the number)", out), ("The episode (P, then a letter)", episode),
                ("Prompts (: / c t # C P)", prompts)]


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


_LABEL_ACTIONS = frozenset({"rate", "note", "tag", "score", "category", "episode_label", "undo", "redo",
                            "next_unlabeled", "next_labeled"})
#: Labeling actions that need no step: an episode without steps still takes a verdict.
_EPISODE_ACTIONS = frozenset({"episode_label", "undo", "redo"})

#: What ``P`` asks for next: the key typed after it (answered at once) and what it does.
EPISODE_CHOICES = {"p": "pass", "f": "fail", "s": "score", "c": "category", "n": "note"}


def _episode_choice_problem(text: str) -> str | None:
    """The ``P`` prompt's check: a choice it does not know (typed with enter, e.g. ``x``) is told, not ignored."""
    choice = text.strip()
    if not choice or choice in EPISODE_CHOICES:
        return None
    return f"no choice {one_line(choice, 20)!r}: type {', '.join(EPISODE_CHOICES)} (escape cancels)"


def _problem_of(parse: Callable[[str], object]) -> Callable[[str], str | None]:
    """A prompt check from a parser: its error's message, or None when it reads the text."""
    def problem(text: str) -> str | None:
        try:
            parse(text)
        except TrajrecError as exc:
            return one_line(str(exc), 200)
        return None
    return problem
