"""``trl-stepwise``: the stepwise-supervision schema (math_shepherd / prm800k style), one row per episode.

``prompt`` = the episode's system prompt when it has one (:meth:`~.base.EpisodeView.system`, then a blank line),
the task text and the reset observation; ``completions`` = one text per step (the agent's thought, a space, the
action; a message action ``{"message": text}`` is its text, and text the thought already says is not said twice);
``labels`` = one bool per completion, from the preferred label of that step mapped by ``--label-map strict`` or
``lenient``. TRL's ``PRMTrainer`` (trl <= 1.13; removed in 1.14) and other PRM trainers
join completions with a step separator (PRMConfig's default ``"\n"``) and put one label on each: so a completion
never contains ``--step-separator`` (each occurrence is replaced with a space), or the trainer would see more steps
than labels. Extra columns: ``scores`` (the number each label is made from: the rating -1.0/0.0/1.0 of a rating or
verdict, a pure score as it is, of any range; never a score kept beside a rating; null for a filled step),
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

#: Reasons an episode is left out (``--unlabeled skip-episode``): a step no preferred source labeled, ...
UNLABELED_STEP = "an unlabeled step (--unlabeled skip-episode)"
#: ... a step labeled only by sources ``--prefer`` does not list (what labeling would not change; the example names
#: them).
UNLISTED_STEP = "a step labeled only by sources --prefer does not list (--unlabeled skip-episode)"
#: ... a step whose preferred label is a category, which no label map turns into a label (it counts as unlabeled).
CATEGORY_STEP = "a step whose preferred label is a category (no rating; --unlabeled skip-episode)"
#: Other policies: no step was left to write.
NO_LABELED_STEP = "no labeled step to export"
NO_RATED_STEP = "no step with a rating to export (unlabeled, or a category as the preferred label)"


def score_of(value: Any) -> float | None:
    """The ``scores`` entry of a step whose preferred label has ``value``: the number its label is made from, so
    the two never disagree. A rating, verdict or rating word as -1.0/0.0/1.0; a pure score (a float value) as it
    is, whatever its range (``--value 5.0`` is 5.0). A score kept *beside* a value (``--value fail --score 0.9``)
    is not the label's and is not used: ``scores`` showed 0.9 beside ``labels`` False, and a trainer reading
    ``scores`` as soft targets learned the opposite of the annotator (parquet's ``label_score`` keeps it).

    >>> [score_of(v) for v in (1, 0, -1, True, False, "pass", 0.25, 5.0, "typo")]
    [1.0, 0.0, -1.0, 1.0, -1.0, 1.0, 0.25, 5.0, None]
    """
    if isinstance(value, float):
        return value if value == value and value not in (_INF, -_INF) else None
    r = rating(value)
    return None if r is None else float(r)


_INF = float("inf")


def category_example(view: EpisodeView, i: int, chosen: Any) -> str:
    """``"episode 1a2b...: step 6, human:ana 'wrong-tool' (rated by trajrec-rules@2)"``: where a step's preferred
    label is a category, and which other judges rated that step (what ``--prefer`` could list first)."""
    value = chosen.value
    shown = repr(value) if isinstance(value, str) else text_of(value)
    shown = shown if len(shown) <= 42 else shown[:38] + "...'"
    others = sorted({str(c.judge) for c in view.candidates.get(i, ())
                     if c is not chosen and rating(c.value) is not None})
    rated = f" (rated by {', '.join(others)})" if others else ""
    return f"episode {view.episode_id}: step {i}, {chosen.judge} {shown}{rated}"


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
        category: str | None = None  # where a step's preferred label was a category (the first), for the report
        read = False  # a step was read (none: recorded none, or none readable: "no step", not a labeling matter)
        for rec in view.steps():
            read = True
            i = rec["i"]
            chosen = view.choose(i, mapped=True)
            if chosen is None:
                if policy == "skip-episode":
                    shown = view.choose(i, mapped=False)
                    if shown is not None:  # labeled, but its preferred label is a category: say so
                        raise Skip(CATEGORY_STEP, unlabeled=True, category=True,
                                   example=category_example(view, i, shown))
                    unlisted = view.candidates.get(i)
                    if unlisted:  # labeled, by judges --prefer does not list: `label auto` would not help
                        raise Skip(UNLISTED_STEP, unlabeled=True,
                                   example=f"episode {view.episode_id}: step {i}, labeled by "
                                           f"{', '.join(sorted({str(c.judge) for c in unlisted}))}")
                    raise Skip(UNLABELED_STEP, unlabeled=True)
                if category is None:
                    shown = view.choose(i, mapped=False)
                    if shown is not None:
                        category = category_example(view, i, shown)
                if policy == "truncate":
                    break
                if policy == "drop-step":
                    continue
                value, judge, score = fill, None, None
            else:
                value, judge = map_label(chosen.value, label_map), chosen.judge
                score = score_of(chosen.value)
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
            if category is not None:
                raise Skip(NO_RATED_STEP, unlabeled=True, category=True, example=category)
            raise Skip(NO_LABELED_STEP, unlabeled=True)
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
