"""``trl-stepwise``: TRL's stepwise supervision format (what ``trl.PRMTrainer`` reads), one row per episode.

``prompt`` = the task text and the reset observation; ``completions`` = one text per step (the agent's thought,
a newline, the action); ``labels`` = one label per completion, from the preferred label of that step mapped by
``--label-map``. Extra columns: ``episode_id``, ``steps`` (the step index of each completion), ``label_judges`` (who
labeled each step; null for a step filled by the ``false``/``neutral`` policies), ``env_id``, ``task_id``,
``outcome``.

PRMTrainer casts each label with ``int()``: use ``strict`` or ``lenient`` (booleans) for it; ``float``/``unit``
are for regression-style reward models.
"""

from __future__ import annotations

from typing import Any, Iterable

from .base import EpisodeView, JsonlFormat, Skip
from .choice import fill_value, map_label
from .encode import text_of


class TrlStepwiseFormat(JsonlFormat):
    name = "trl-stepwise"

    def rows(self, view: EpisodeView) -> tuple[Iterable[dict[str, Any]], int]:
        opts = self.options
        policy, label_map = opts.unlabeled, opts.label_map
        fill = fill_value(policy, label_map)
        completions: list[str] = []
        labels: list[Any] = []
        steps: list[int] = []
        judges: list[str | None] = []
        for rec in view.steps():
            i = rec["i"]
            chosen = view.choose(i, mapped=True)
            if chosen is None:
                if policy == "skip-episode":
                    raise Skip("an unlabeled step (--unlabeled skip-episode)")
                if policy == "truncate":
                    break
                if policy == "drop-step":
                    continue
                value, judge = fill, None
            else:
                value, judge = map_label(chosen.value, label_map), chosen.judge
            thought = view.thought(rec)
            text = text_of(rec.get("action"))
            if thought:
                text = f"{thought}\n{text}"
            if opts.observations:
                text = f"{text}\nObservation: {text_of(rec.get('observation'))}"
            completions.append(text)
            labels.append(value)
            steps.append(i)
            judges.append(judge)
        if not completions:
            raise Skip("no labeled step to export")
        task = view.task
        row = {
            "prompt": view.prompt(),
            "completions": completions,
            "labels": labels,
            "episode_id": view.episode_id,
            "steps": steps,
            "label_judges": judges,
            "env_id": task.get("env_id"),
            "task_id": task.get("id"),
            "outcome": view.ep.summary.get("outcome"),
        }
        return [row], len(steps)
