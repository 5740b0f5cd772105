"""``TrajrecApp`` and :func:`create_app`, the factory ``trajrec view`` and the tests share.

The app owns the screens and the order between episodes: the library screen is always at the bottom; an
episode screen goes on top of it. Screens report up with messages (``EpisodeTable.Opened``,
``EpisodeScreen.NeighborRequested``); the app answers by opening episodes.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

from rich.terminal_theme import TerminalTheme
from textual import on, work
from textual._ansi_theme import ALABASTER
from textual.app import App
from textual.reactive import Reactive
from textual.binding import Binding
from textual.widgets import Input

from trajrec.recorder import TrajrecError, TrajrecUsageError, open_episode
from trajrec.replay.labels import default_annotator
from trajrec.replay.library import LabeledFraction
from trajrec.replay.render import safe
from trajrec.replay.report.tasks import TaskBank

from .episode_screen import LABEL_REFRESH_SECONDS, EpisodeScreen
from .episode_table import EpisodeTable
from .help_screen import HelpScreen, Notes, other_keys
from .label_session import DEFAULT_TAGS
from .key_order import OrderedKeys, hold_keys, release_keys
from .label_source import LabelSource
from .library_screen import LibraryScreen


def _light_ansi_theme() -> TerminalTheme:
    """Textual's light ANSI palette with yellow, green and cyan darkened for text on a light background.

    The viewer draws markers in the 16 ANSI colors, which Textual maps to a dark or a light palette by theme.
    The default light palette's yellow (#cb9000) is 2.1:1 against the light theme's background; these reach
    4.4-4.9:1 (WCAG 2.x contrast), as its red, blue and magenta already do.
    """
    normal = [tuple(ALABASTER.ansi_colors[i]) for i in range(8)]
    bright = [tuple(ALABASTER.ansi_colors[i]) for i in range(8, 16)]
    normal[2], normal[3], normal[6] = (46, 107, 18), (138, 90, 0), (0, 109, 148)
    return TerminalTheme(tuple(ALABASTER.background_color), tuple(ALABASTER.foreground_color), normal, bright)


class TrajrecApp(OrderedKeys, App[None]):
    """Browse a library of episodes and replay them.

    | Key(s) | Description |
    | :- | :- |
    | ?, f1 | Help: every key of the current screen. |
    | ctrl+q | Quit from anywhere. |
    | ctrl+t | Switch between the light and the dark theme. |

    Each screen documents its own keys (:class:`LibraryScreen`, :class:`EpisodeScreen`). Keys act in the order
    typed, however fast (:mod:`trajrec.tui.key_order`): keys typed after one that opens an episode wait for it.
    """

    TITLE = "trajrec"
    ENABLE_COMMAND_PALETTE = False
    ansi_theme_light = Reactive(_light_ansi_theme(), init=False)

    BINDINGS = [
        Binding("question_mark,f1", "help", "Help", tooltip="Help: every key"),
        Binding("ctrl+q", "quit", "Quit", show=False, tooltip="Quit from anywhere", priority=True),
        Binding("ctrl+t", "toggle_theme", "Light/dark", show=False, tooltip="Switch between the light and dark theme"),
    ]

    def __init__(self, paths: Sequence[str | os.PathLike[str]], *, annotator: str | None = None,
                 tags: Sequence[str] = DEFAULT_TAGS, step: int | None = None,
                 labeled_fraction: LabeledFraction | None = None, labels: LabelSource | None = None,
                 use_catalog: bool = True, theme: str | None = None,
                 task_bank: TaskBank | None = None) -> None:
        super().__init__()
        self.task_bank = task_bank
        if theme is not None:
            self.theme = theme_name(theme)
        self.paths = [os.fspath(p) for p in paths]
        self.annotator = annotator or default_annotator()
        self.tags = tuple(tags)
        self.labels = labels if labels is not None else LabelSource(self.paths)
        self.labeled_fraction = labeled_fraction if labeled_fraction is not None else self.labels.labeled_fraction
        self.use_catalog = use_catalog
        # One file named on its own opens straight into the episode; q then quits.
        self.start_file = self.paths[0] if len(self.paths) == 1 and os.path.isfile(self.paths[0]) else None
        self.start_step = step or 0
        self.library = LibraryScreen(self.paths, use_catalog=use_catalog, labeled_fraction=self.labeled_fraction,
                                     label_facts=self.labels.label_facts)
        self.visited: set[str] = set()  # episode ids opened in this session, for refresh_labeled
        self._labels_shown = 0  # self.labels.reads when the library's labeled column was last brought up to date

    def on_mount(self) -> None:
        self.push_screen(self.library)
        self.set_interval(LABEL_REFRESH_SECONDS, self.poll_labels)
        if self.start_file is not None:
            self.open_episode(self.start_file, step=self.start_step, quit_on_back=True)

    def open_episode(self, path: str, *, step: int = 0, quit_on_back: bool = False) -> bool:
        """Open the episode at ``path`` on a new episode screen; False (and a notice) if it cannot be read."""
        try:
            episode = open_episode(path)
        except (TrajrecError, OSError) as exc:
            self.notify(safe(str(exc)), title="cannot open episode", severity="error", markup=False)
            return False
        self.visited.add(episode.episode_id)
        screen = EpisodeScreen(episode, step=step, annotator=self.annotator, labels=self.labels, tags=self.tags,
                               quit_on_back=quit_on_back)
        hold_keys(self)  # the keys typed after this one are the episode's: released when its screen is mounted
        screen.release_keys_on_mount = True
        self.push_screen(screen, self._episode_closed)
        return True

    def _episode_closed(self, _result: None) -> None:
        if isinstance(self.screen, LibraryScreen):
            try:
                self.labels.refresh()  # other annotators' labels too
            except TrajrecError as exc:
                self.notify(safe(str(exc)), title="cannot read labels", severity="warning", markup=False)
            self._show_labeled(self.visited)
            if self.library.scan_done:  # folders labeled for the first time meanwhile: read off the keys' thread
                self._read_labels(self._folder_paths())

    def _show_labeled(self, visited: set[str] | None = None) -> None:
        """Bring the library's labeled column up to date: every row when labels of other writers were read since
        it last was (the episode screen reads its folder's store every 2 s, so labels written while an episode
        was open are read there, not here: FINDINGS17 #4), else the rows of ``visited`` (labeled here)."""
        reads = self.labels.reads
        changed = reads != self._labels_shown
        self._labels_shown = reads
        if changed or visited is None:
            self.library.refresh_labeled()
        elif visited:
            self.library.refresh_labeled(visited)

    def _folder_paths(self) -> list[str]:
        # One path per folder: discover looks at folders, and a million paths (built, then printed into the
        # worker's description by Textual) stalled the keys every tick.
        return [os.path.join(folder, "_") for folder in self.library.folders]

    @on(EpisodeTable.Opened)
    def _open_from_library(self, message: EpisodeTable.Opened) -> None:
        try:
            self.open_episode(message.entry.path, step=self.library.start_step(message.entry.path))
        finally:
            release_keys(self)  # the table's hold (see EpisodeTable.action_open); the screen holds its own

    @on(EpisodeScreen.NeighborRequested)
    def _neighbor(self, message: EpisodeScreen.NeighborRequested) -> None:
        try:
            self._load_neighbor(message)
        finally:
            release_keys(self)  # the keys typed after L/H (see EpisodeScreen.action_episode) are the new episode's

    def _load_neighbor(self, message: EpisodeScreen.NeighborRequested) -> None:
        # The screen's episode now, not when the key was pressed: quick H/L presses queue up before loading.
        path = self.library.neighbor(message.screen.episode.path, message.delta)
        if path is None:
            self.notify(f"no {'next' if message.delta > 0 else 'previous'} episode in the library", timeout=2,
                        markup=False)
            self.bell()
            return
        try:
            episode = open_episode(path)
        except (TrajrecError, OSError) as exc:
            self.notify(safe(str(exc)), title="cannot open episode", severity="error", markup=False)
            return
        self.visited.add(episode.episode_id)
        message.screen.load(episode)
        self.library.select_path(path)

    def poll_labels(self) -> None:
        """While the library shows, read labels other people and processes appended (the app's timer calls this
        every ``LABEL_REFRESH_SECONDS``); the "labeled" column follows. The episode screen has its own reader."""
        if isinstance(self.screen, LibraryScreen) and self.library.scan_done:
            self._read_labels(self._folder_paths())

    @work(thread=True, exclusive=True, group="library-labels")
    def _read_labels(self, paths: list[str]) -> None:
        try:
            # A listing and a stat per labels file when nothing changed, and a stat per folder without labels.
            self.labels.refresh()
            self.labels.discover(paths)
        except TrajrecError:
            return  # a folder that went away: the next tick tries again
        if self.labels.reads != self._labels_shown:  # (what it read, and what an episode screen read meanwhile)
            self.call_from_thread(self._show_labeled)

    def action_toggle_theme(self) -> None:
        self.theme = THEMES["light"] if self.theme == THEMES["dark"] else THEMES["dark"]

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        screen = self.screen
        sections = getattr(screen, "help_sections", lambda: [])()
        sections.append(("Everywhere", list(self.BINDINGS)))
        # Whatever else is bound (inherited scroll keys of the panes, tab...): every key is in the help.
        panes = [w for w in screen.query("*") if w.can_focus and not isinstance(w, Input)]
        extra = other_keys(sections, [screen, *panes, self])
        if extra:
            sections.append(("Other keys", extra))
        notes: list[Notes] = getattr(self.screen, "help_notes", lambda: [])()
        self.push_screen(HelpScreen(sections, filter_help=isinstance(self.screen, LibraryScreen),
                                    legend=isinstance(self.screen, EpisodeScreen), notes=notes))


def create_app(paths: Iterable[str | os.PathLike[str]], *, annotator: str | None = None,
               tags: Sequence[str] = DEFAULT_TAGS, step: int | None = None,
               labeled_fraction: LabeledFraction | None = None, labels: LabelSource | None = None,
               use_catalog: bool = True, theme: str | None = None,
               task_bank: TaskBank | None = None) -> TrajrecApp:
    """Build the trajrec TUI over episode files and folders.

    Args:
        paths: episode files and folders (searched recursively). One file opens straight into its episode.
        annotator: who labels (``judge="human:<annotator>"``); default ``$TRAJREC_ANNOTATOR``, else the login name.
        tags: the tags ``t`` offers.
        step: with one file, the step to open at (negative counts from the end).
        labeled_fraction: ``labeled_fraction(episode_path, episode_id, n_steps) -> float | None`` fills the
            library's "labeled" column (None: "-"), called from the library's scan thread (default:
            ``labels.labeled_fraction``, the share of steps with any live label).
        labels: where labels are read and written: the run folders' label stores under one lock (default: a
            :class:`~trajrec.tui.label_source.LabelSource` of ``paths``, read on first use).
        use_catalog: read and write the summary cache ``<folder>/.trajrec/catalog/``.
        theme: ``"dark"``, ``"light"`` or the name of any Textual theme (default: dark). ``NO_COLOR`` in the
            environment turns colors off whatever the theme (Textual reads it).
        task_bank: ``task_bank(env_id) -> {task id: split} | None`` for the report screen's coverage (``trajrec
            view`` passes the built-in envs' banks, :func:`trajrec.envs.banks.task_bank`).

    Raises:
        TrajrecUsageError: an unknown theme name (the message lists the known ones).
    """
    return TrajrecApp(list(paths), annotator=annotator, tags=tags, step=step, labeled_fraction=labeled_fraction,
                      labels=labels, use_catalog=use_catalog, theme=theme, task_bank=task_bank)


#: Short theme names ``trajrec view --theme`` takes, beside the names of Textual's themes.
THEMES = {"dark": "textual-dark", "light": "textual-light"}


def theme_name(theme: str) -> str:
    """The Textual theme for ``theme`` (``dark``, ``light`` or a Textual theme name).

    Raises:
        TrajrecUsageError: an unknown name.
    """
    from textual.theme import BUILTIN_THEMES

    name = THEMES.get(theme, theme)
    if name not in BUILTIN_THEMES:
        import difflib

        names = sorted([*THEMES, *BUILTIN_THEMES])
        near = difflib.get_close_matches(theme, names, n=1)
        raise TrajrecUsageError(f"unknown theme {theme!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
                                + f"; themes: {', '.join(names)}")
    return name
