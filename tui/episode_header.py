"""``EpisodeHeader``: which task the episode is, who produced it, and what the terminal check said."""

from __future__ import annotations

from typing import Any, Sequence

from rich.text import Text
from textual.widget import Widget

from trajrec.recorder import Check, Episode
from trajrec.recorder.fsck import being_recorded
from trajrec.recorder.reader import lost_spans
from trajrec.replay.labels import Label
from trajrec.replay.render import model_call_lines, number_text, one_line, safe, usage_text

from .label_session import rating_text
from .markers import label_style

_LABEL = "bold"


def terminal_check(episode: Episode) -> Check | None:
    """The episode-level check that decides the outcome: the last one with a pass/fail verdict (not a label brought
    back as a check by ``import atif``, which has a ``label_id``: a label never decides the outcome)."""
    last = None
    for check in episode.checks:
        if check.target == "episode" and check.passed is not None and "label_id" not in check.extra:
            last = check
    return last


def _agent(prov: dict[str, Any]) -> str:
    agent = prov.get("agent")
    if not agent:
        return "-"
    if not isinstance(agent, dict):
        return str(agent)
    parts = [str(agent.get("name") or "?")]
    if agent.get("version"):
        parts.append(str(agent["version"]))
    if agent.get("model"):
        parts.append(f"({agent['model']})")
    return " ".join(parts)


def _revision(prov: dict[str, Any]) -> str:
    rev = prov.get("code_revision")
    if not rev:
        return "-"
    if isinstance(rev, dict):
        commit = str(rev.get("commit") or "?")[:10]
        return commit + (" (dirty)" if rev.get("dirty") else "")
    return str(rev)


def header_text(episode: Episode, width: int = 120, labels: Sequence[Label] = (), judge: str | None = None) -> Text:
    """Four lines: the episode and its task, the task text, provenance, the terminal check; a fifth with the model
    calls' tokens, latency and cost when the steps carry model calls; under the verdict, why an episode ended as
    ``error`` (the agent's error and its failed model call's attempts, or the env's exception), and one line with
    the live ``labels`` on the whole episode (value, judge, ``(you)`` for ``judge``'s, rationale) when there are
    any."""
    task, prov, s = episode.task, episode.provenance, episode.summary
    w = max(20, width)
    out = Text(end="")

    def field(label: str, value: str, style: str | None = None) -> None:
        out.append(f"{label} ", style="dim")
        out.append(safe(value, keep_newlines=False), style=style)  # recorded text: never an escape sequence
        out.append("  ")

    ret = s.get("return")
    field("env", one_line(str(task.get("env_id") or "-"), 40), _LABEL)
    field("task", one_line(str(task.get("id") or "-"), 40))
    if task.get("split"):
        field("split", one_line(str(task["split"]), 12))
    if episode.lost:  # a repaired file: the steps fsck --repair recorded as lost cannot be shown
        field("steps", f"{episode.readable_steps:,} of {len(episode):,} readable (lost: {lost_spans(episode)})",
              "bold yellow")
    else:
        field("steps", f"{len(episode):,}")
    field("return", number_text(ret))
    # A file a live Recorder holds has no index because it is being written, not because its writer died: said
    # as show, ls and fsck say it (being_recorded), not as the crashed writer's "did not close the file".
    live = not episode.complete and being_recorded(episode.path)
    outcome = "being recorded" if live else str(s.get("outcome") or "-")
    field("outcome", one_line(outcome, 20), "bold green" if outcome == "passed" else
          "bold red" if outcome in ("failed", "error") else "bold yellow" if live else None)
    if live:
        out.append("(a live Recorder holds it; F follows it)  ", style="yellow")
    elif not episode.complete:
        why = episode.incomplete_text() if hasattr(episode, "incomplete_text") else "no index"
        out.append(f"({why})  ", style="bold yellow")
    if getattr(episode, "header_lost", None) is not None:  # the "-" above are unknown, not empty: say why
        out.append("(header record lost to damage: task and provenance unknown)  ", style="bold yellow")
    unwritten = [g for g in getattr(episode, "gaps", ()) if not g.numbered]
    if unwritten:  # env steps whose records a failed write kept out of the file: the episode is not whole
        lost = sum(g.n or 0 for g in unwritten)
        places = ", ".join(f"{g.n:,} before step {g.first}" for g in unwritten[:3]) + (", ..." if len(unwritten) > 3
                                                                                        else "")
        out.append(f"({lost:,} env step{'s' if lost != 1 else ''} not recorded, a write failed: {places})  ",
                   style="bold yellow")
    field("episode", one_line(episode.episode_id, 60), "dim")
    out.rstrip()
    out.append("\n")
    # The goal gets two lines (it is often a paragraph); every other line is cut at the width.
    room = max(10, w - 8)
    goal = one_line(str(task.get("text") or "-"), 2 * room)
    first, rest = goal, ""
    if len(goal) > room:
        cut = goal.rfind(" ", room // 2, room + 1)
        cut = cut if cut > 0 else room
        first, rest = goal[:cut], goal[cut:].lstrip()
    out.append("goal    ", style="dim")
    out.append(first)
    out.append("\n")
    if rest:
        out.append("        " + rest + "\n")
    recorder_info = prov.get("recorder") or {}
    version = recorder_info.get("version") if isinstance(recorder_info, dict) else None
    field("agent", one_line(_agent(prov), 40))
    field("host", one_line(str(prov.get("host") or "-"), 30))
    field("trajrec", one_line(str(version or "-"), 12))
    field("rev", one_line(_revision(prov), 24))
    if prov.get("run_id"):
        field("run", one_line(str(prov["run_id"]), 36))
    out.rstrip()
    out.append("\n")
    usage = usage_text(s.get("model"))
    if usage:  # only episodes whose steps carry model calls: other headers keep their four lines
        out.append("model   ", style="dim")
        out.append(one_line(usage, max(10, w - 8)))
        out.append("\n")
    out.append("verdict ", style="dim")
    check = terminal_check(episode)
    if check is None:
        out.append("no terminal check", style="dim")
    else:
        out.append(" PASSED " if check.passed else " FAILED ", style="bold white on green" if check.passed
                   else "bold white on red")
        out.append(f" {one_line(check.judge, 40)} ", style="bold")
        out.append(f"({one_line(check.kind, 20)}) ", style="dim")
        if check.rationale:
            out.append(one_line(check.rationale, max(10, w - 40)))
    _error_lines(out, s, w)
    if labels:
        out.append("\nlabels  ", style="dim")
        for k, lab in enumerate(labels):
            if k:
                out.append("  ·  ", style="dim")
            out.append(one_line(rating_text(lab.value), 20), style=label_style(lab.value))
            if lab.score is not None:
                out.append(f" score {lab.score:g}")
            if lab.tags:
                out.append(" [" + one_line(", ".join(lab.tags), 40) + "]", style="dim")
            out.append(f" {one_line(lab.judge, 40)}", style="bold")
            if lab.judge == judge:
                out.append(" (you)", style="dim")
            if lab.rationale:
                out.append(": " + safe(one_line(str(lab.rationale), max(10, w // 2)), keep_newlines=False))
    return out


#: The most failed attempts of the call that ended an episode listed in the header (the rest are counted).
_MAX_ATTEMPT_LINES = 3


def _error_lines(out: Text, summary: dict[str, Any], width: int) -> None:
    """Why an episode ended as ``error``, under the verdict: the summary's ``agent_error`` (the agent could not
    act: its message, then the failed model call's attempts, which belong to no step) or else its ``error`` (the
    env raised: the step and exception type; that step's pane holds the rest)."""
    agent_error = summary.get("agent_error")
    if isinstance(agent_error, dict):
        message = agent_error.get("message") or agent_error.get("type") or "the agent failed"
        out.append("\nerror   ", style="dim")
        out.append(one_line(f"agent: {message}", max(10, width - 8)), style="bold red")
        lines = [line for kind, line in model_call_lines(agent_error.get("model_call"), width=max(20, width - 10))
                 if kind in ("attempt", "error")] if isinstance(agent_error.get("model_call"), dict) else []
        for line in lines[:_MAX_ATTEMPT_LINES]:
            out.append("\n        " + one_line(line, max(10, width - 8)), style="red")
        if len(lines) > _MAX_ATTEMPT_LINES:
            out.append(f"\n        ... {len(lines) - _MAX_ATTEMPT_LINES} more (trajrec show --json)", style="dim")
    elif summary.get("outcome") == "error" and summary.get("error"):
        out.append("\nerror   ", style="dim")
        out.append(one_line(str(summary["error"]), max(10, width - 8)), style="bold red")


class EpisodeHeader(Widget):
    """The top of the episode screen (see :func:`header_text`); the screen calls :meth:`show`."""

    DEFAULT_CSS = """
    EpisodeHeader {
        height: auto;
        padding: 0 1;
        background: $boost;
        border-bottom: solid $primary 50%;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._episode: Episode | None = None
        self._labels: list[Label] = []
        self._judge: str | None = None

    def show(self, episode: Episode, labels: Sequence[Label] = (), judge: str | None = None) -> None:
        """Show ``episode`` with the live ``labels`` on it as a whole (``judge``: the annotator's, marked)."""
        self._episode = episode
        self._labels, self._judge = list(labels), judge
        self.refresh(layout=True)

    def show_labels(self, labels: Sequence[Label], judge: str | None = None) -> None:
        """Show other episode labels (they changed); lays the screen out again only when the line comes or goes."""
        labels = list(labels)
        if labels == self._labels and judge == self._judge:
            return
        layout = bool(labels) != bool(self._labels)
        self._labels, self._judge = labels, judge
        self.refresh(layout=layout)

    def render(self) -> Text:
        if self._episode is None:
            return Text("")
        return header_text(self._episode, self.size.width - 2, self._labels, self._judge)
