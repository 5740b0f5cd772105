"""``StepDetail``: the current step in full: action, observation, note, failure and traceback, checks, labels,
info."""

from __future__ import annotations

from typing import Any, Iterable

from rich.text import Text

from trajrec.recorder import Check, Step
from trajrec.replay.labels import Label
from trajrec.replay.render import model_call_lines, number_text, one_line, reported_at, safe, step_kind, value_text

from .label_session import rating_text
from .markers import kind_style, label_style, marker
from .text_view import TextView

# How each kind of model-call line is drawn (see trajrec.replay.render.model_call_lines).
_MODEL_CALL_STYLES = {"head": "bold", "attempt": "yellow", "error": "red", "tool": "cyan", "text": None}

# What one value may show: enough to read, bounded so a megabyte observation cannot stall a key press.
MAX_VALUE_CHARS = 20_000


def _value(value: Any) -> str:
    text = value_text(value[:MAX_VALUE_CHARS + 1] if isinstance(value, str) else value, max_len=MAX_VALUE_CHARS)
    return text if len(text) < MAX_VALUE_CHARS else text + f"\n… (cut at {MAX_VALUE_CHARS:,} characters)"


def _section(out: Text, title: str, style: str = "bold") -> None:
    out.append("\n" if out else "")
    out.append(f"── {title} ", style=style)
    out.append("\n")


def check_line(check: Check, step: int | None = None) -> Text:
    """One check: verdict marker, kind, judge, value, score, rationale, tags, author (all recorded text escaped);
    shown on ``step``, "reported at step k" when another step's info reported it (a check is shown on the step it
    targets: :func:`trajrec.replay.render.step_checks_shown`)."""
    verdict = check.passed
    kind = "check_passed" if verdict else "check_failed" if verdict is False else "ok"
    out = Text(end="")
    out.append_text(marker(kind) if verdict is not None else Text("•", style="dim"))
    out.append(f" {one_line(check.kind, 12)} ", style="dim")
    out.append(one_line(check.judge, 40), style="bold")
    out.append(f" = {one_line(check.value, 30)}", style=kind_style(kind))
    if check.score is not None:
        out.append(f"  score {one_line(check.score, 12)}")
    if check.target == "episode":
        out.append("  (episode)", style="dim")
    at = reported_at(check)
    if step is not None and at is not None and at != step:
        out.append(f"  reported at step {at:,}", style="dim")
    if check.rationale:
        out.append("\n    " + safe(str(check.rationale)).replace("\n", "\n    "))
    extras = []
    if check.tags:
        extras.append("tags " + ", ".join(one_line(t, 20) for t in check.tags))
    if check.author:
        extras.append("by " + one_line(check.author, 24))
    if extras:
        out.append("\n    " + "  ".join(extras), style="dim")
    return out


def label_line(label: Label, *, mine: bool) -> Text:
    """One label: value (+1 green, -1 red), judge, ``(you)`` for the annotator's own, kind, tags, rationale."""
    out = Text(end="")
    out.append(f"{one_line(rating_text(label.value), 12):>2}", style=label_style(label.value))
    out.append(" ")
    out.append(one_line(label.judge, 40), style="bold")
    if mine:
        out.append(" (you)", style="bold cyan")
    if label.kind != "judge":
        out.append(f"  {one_line(label.kind, 12)}", style="dim")
    if label.score is not None:
        # As the episode header writes it (0.5, 1), not the float's repr (1.0).
        score = label.score
        out.append(f"  score {score:g}" if type(score) in (int, float) else f"  score {one_line(score, 12)}")
    if label.tags:
        out.append("  tags ", style="dim")
        out.append(", ".join(one_line(t, 30) for t in label.tags), style="cyan")
    if label.author and label.judge != f"human:{label.author}":
        out.append(f"  by {one_line(label.author, 24)}", style="dim")
    if label.rationale:
        out.append("\n   " + safe(str(label.rationale)).replace("\n", "\n   "))
    return out


def step_text(step: Step, total: int, checks: Iterable[Check], labels: Iterable[Label] = (),
              judge: str | None = None) -> Text:
    """The detail of ``step`` as styled text; ``checks`` are the checks shown on it (its marker is drawn by them),
    ``labels`` the live labels on it, those of ``judge`` (the annotator) marked as theirs."""
    checks = list(checks)
    out = Text(end="")
    kind = step_kind(step, checks)
    out.append(f"step {step.index:,}", style="bold")
    out.append(f" of 0..{total - 1:,}  ", style="dim")
    out.append_text(marker(kind))
    out.append(f"  reward {number_text(step.reward)}  ")
    if step.duration:
        out.append(f"took {step.duration * 1000:.3g} ms  ", style="dim")
    if step.terminated:
        out.append("terminated  ", style="bold")
    if step.truncated:
        out.append("truncated  ", style="bold")
    if getattr(step, "after_end", False):
        # Taken after the step that ended the episode, with no reset between (docs/RECORDING.md): not part of the
        # episode's end, return or outcome.
        out.append("\n")
        out.append("after the end (no reset): not part of the episode's outcome or return", style="bold yellow")
    links = []
    if step.retry_of is not None:
        links.append(("retry of step", [step.retry_of], "retry"))
    if step.recovers:
        links.append(("recovers step" + ("s" if len(step.recovers) > 1 else ""), step.recovers, "recovery"))
    for label, steps, style_kind in links:
        out.append("\n")
        out.append(f"{label} {', '.join(f'{s:,}' for s in steps)}", style=kind_style(style_kind))
    # Links to failed steps whose records were lost (a write failed): no step number to jump to, only the place.
    lost = getattr(step, "lost_links", None)
    if isinstance(lost, dict):
        if lost.get("retry_of") is not None:
            out.append("\n")
            out.append(f"retry of a lost step (before step {lost['retry_of']})", style=kind_style("retry"))
        gone = lost.get("recovers")
        if isinstance(gone, list) and gone:
            where = ", ".join(f"before step {k}" for k in dict.fromkeys(gone))
            out.append("\n")
            out.append(f"recovers {len(gone)} lost step{'s' if len(gone) > 1 else ''} ({where})",
                       style=kind_style("recovery"))
    if step.failure is not None:
        f = step.failure
        _section(out, f"failure: {one_line(f.kind, 30)}", "bold red")
        if f.type:
            out.append(one_line(f.type, 60) + ": ", style="bold red")
        out.append(_value(f.message), style="red")
        if f.traceback:
            out.append("\n")
            out.append(_value(f.traceback), style="dim")
    _section(out, "action")
    out.append(_value(step.action))
    _section(out, "observation")
    out.append(_value(step.observation))
    if step.note:
        _section(out, "note")
        note = step.note if isinstance(step.note, dict) else {"note": step.note}
        for key, value in note.items():
            calls = [value] if key == "model_call" else value if key == "model_calls" and isinstance(value, list) else None
            out.append(f"{one_line(key, 30)}: ", style="bold cyan")
            if calls is None:
                out.append(_value(value))
                out.append("\n")
                continue
            for call in calls:
                out.append("\n")
                for kind, line in model_call_lines(call):
                    out.append("  " + line.replace("\n", "\n  ") + "\n", style=_MODEL_CALL_STYLES.get(kind))
        out.rstrip()
    checks = list(checks)
    if checks:
        _section(out, f"checks ({len(checks)})")
        for i, check in enumerate(checks):
            if i:
                out.append("\n")
            out.append_text(check_line(check, step.index))
    labels = list(labels)
    if labels:
        _section(out, f"labels ({len(labels)})")
        for i, lab in enumerate(labels):
            if i:
                out.append("\n")
            out.append_text(label_line(lab, mine=lab.judge == judge))
    if step.info:
        _section(out, "info")
        out.append(_value(step.info), style="dim")
    return out


class StepDetail(TextView):
    """A scrollable pane showing one step (wrapped); the screen calls :meth:`show` (or :meth:`show_error`)."""

    DEFAULT_CSS = """
    StepDetail {
        border: round $primary 40%;
        border-title-color: $text-muted;
        padding: 0 0 0 1;
        &:focus { border: round $accent; }
    }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(wrap=True, name=name, id=id, classes=classes)

    def on_mount(self) -> None:
        self.border_title = "step"

    def show(self, step: Step, total: int, checks: Iterable[Check], labels: Iterable[Label] = (),
             judge: str | None = None, *, scroll_home: bool = True) -> None:
        """Show ``step``; ``scroll_home=False`` keeps the scroll position (a redraw of the same step)."""
        self.update(step_text(step, total, checks, labels, judge), scroll_home=scroll_home)

    def show_error(self, message: str) -> None:
        self.update(Text(safe(message), style="bold red"))
