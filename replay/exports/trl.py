"""``trl-stepwise``: the stepwise-supervision schema (math_shepherd / prm800k style), one row per episode.

``prompt`` = the episode's system prompt when it has one (:meth:`~.base.EpisodeView.system`, then a blank line),
the task text and the reset observation; ``completions`` = one text per step (the agent's thought, a space, the
action; a message action ``{"message": text}`` is its text, and text the thought already says is not said twice);
``labels`` = one bool per completion, from the preferred label of that step mapped by ``--label-map strict`` or
``lenient``. TRL's ``PRMTrainer`` (trl <= 1.13; removed in 1.14) and other PRM trainers
join completions with a step separator (PRMConfig's default ``"\n"``) and put one label on each: so a completion
never contains ``--step-separator`` (each occurrence is replaced with a space), or the trainer would see more steps
than labels. Extra columns: ``scores`` (the rating or score behind each label, -1..1; null for a filled step),
``episode_id``, ``steps`` (the step index of each completion), ``label_judges`` (null for a step filled by the
``false``/``neutral`` policies), ``env_id``, ``task_id``, ``outcome``, and the marks of a partial episode the other
formats carry (``chat.episode_complete``/``episode_lost``/``unverified_of``): ``complete`` (false for an episode
that lost steps, exported with ``--keep-partial``), ``lost`` (where) and ``unverified`` (one bool per completion:
salvaged from a damaged frame by ``fsck --repair``).
"""

from __future__ import annotations

from typing import Any, Iterable

import os

from trajrec.recorder.errors import TrajrecUsageError

from ..labels import rating
from .base import EpisodeView, ExportOptions, JsonlFormat, NO_STEP, Skip
from .chat import episode_complete, episode_lost, turn_text, unverified_of
from .choice import fill_value, map_label
from .encode import text_of


def _str(v: Any) -> str | None:
    return v if v is None or isinstance(v, str) else text_of(v)

#: Label maps whose labels are booleans: the only ones this format takes.
BOOL_MAPS = ("strict", "lenient")


class TrlStepwiseFormat(JsonlFormat):
    name = "trl-stepwise"
    built_rows = True

    def __init__(self, out: str | os.PathLike[str], options: ExportOptions) -> None:
        if options.label_map not in BOOL_MAPS:
            raise TrajrecUsageError(
                f"trl-stepwise labels are booleans (the stepwise-supervision type); --label-map {options.label_map} "
                "gives numbers. Use --label-map strict or lenient (the rating or score of each step is in the "
                "`scores` column), or --format parquet for numeric labels")
        super().__init__(out, options)

    def rows(self, view: EpisodeView) -> tuple[Iterable[dict[str, Any]], int]:
        opts = self.options
        policy, label_map = opts.unlabeled, opts.label_map
        fill = fill_value(policy, label_map)
        completions: list[str] = []
        labels: list[Any] = []
        steps: list[int] = []
        judges: list[str | None] = []
        scores: list[float | None] = []
        sep = opts.step_separator
        doubt = unverified_of(view.ep)
        read = False  # a step was read (none: recorded none, or none readable: "no step", not a labeling matter)
        for rec in view.steps():
            read = True
            i = rec["i"]
            chosen = view.choose(i, mapped=True)
            if chosen is None:
                if policy == "skip-episode":
                    raise Skip("an unlabeled step (--unlabeled skip-episode)", unlabeled=True)
                if policy == "truncate":
                    break
                if policy == "drop-step":
                    continue
                value, judge, score = fill, None, None
            else:
                value, judge = map_label(chosen.value, label_map), chosen.judge
                r = rating(chosen.value)
                score = chosen.score if chosen.score is not None else (
                    float(chosen.value) if isinstance(chosen.value, float) else (float(r) if r is not None else None))
            text = turn_text(view.thought(rec) or "", rec.get("action"), sep=" ")  # chat's turn, on one line
            if opts.observations:
                text = f"{text} Observation: {text_of(rec.get('observation'))}"
            completions.append(text.replace(sep, " ") if sep in text else text)
            scores.append(score)
            labels.append(value)
            steps.append(i)
            judges.append(_str(judge))
        if not completions:
            if not read:
                raise Skip(NO_STEP)
            raise Skip("no labeled step to export", unlabeled=True)
        task = view.task
        system = view.system()
        row = {
            "prompt": f"{system}\n\n{view.prompt()}" if system else view.prompt(),
            "completions": completions,
            "labels": labels,
            "scores": scores,
            "episode_id": view.episode_id,
            "steps": steps,
            "label_judges": judges,
            "env_id": _str(task.get("env_id")),
            "task_id": _str(task.get("id")),
            "outcome": _str(view.ep.summary.get("outcome")),
            # Step numbers alone would not show a write gap (the recorder numbers only the steps it wrote).
            "complete": episode_complete(view.ep),
            "lost": episode_lost(view.ep),
            "unverified": [i in doubt for i in steps],
        }
        return [row], len(steps)
