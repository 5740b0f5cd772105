"""``dpo`` and ``kto``: preference formats today's TRL trainers take (``DPOTrainer``, ``KTOTrainer``), built from
whole attempts in the conversational shape of ``chat`` (``docs/EXPORT.md``).

``kto``: one row per episode: ``prompt`` (the system message when there is one, as in ``chat``, and the user
message), ``completion`` (the agent's messages and
the env's answers), ``label`` (bool: the terminal check passed; without a verdict, the preferred episode label's
rating > 0; episodes with neither are left out), ``tools``, ``trajrec``.

``dpo``: ``prompt``, ``chosen``, ``rejected``, ``tools``, ``trajrec`` (both attempts' metadata). Attempts at the same
task (same env, task id and prompt) are ranked by (terminal check verdict: passed above none above failed;
then the preferred episode label's score or rating); the best attempt is paired with the worst, the second best with the second worst, and so on, while the
better one ranks strictly higher; each attempt is used at most once. Attempts nothing ranks (no verdict, no
episode label) and attempts left without a partner are left out, counted by reason.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from ..labels import rating
from .base import EpisodeView, ExportOptions, JsonlFormat, NO_STEP, Skip
from .chat import _strict, _Unusual, conversation, conversation_text, episode_meta, meta_text, system_of
from .encode import dumps, dumps_built, exact


def _split(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    clean = [{k: v for k, v in m.items() if k != "weight"} for m in messages]
    n = next((i for i, m in enumerate(clean) if m["role"] == "assistant"), len(clean))
    return clean[:n], clean[n:]


def _rank(view: EpisodeView) -> tuple[float, float] | None:
    outcome = view.outcome
    verdict = 1.0 if outcome == "passed" else 0.0 if outcome == "failed" else None
    # The rows as read (LabelRows for usual lines: no Label built for each of an episode's labels), same fields.
    # With a verdict, the recorded pass/fail checks already made it: counted again as the tie-break's score, a
    # failed `rule` check (-1) ranked below a failed `environment` one (not preferred: 0), and two failed attempts
    # were paired on check kinds alone. The score reads labels and recorded checks that grade (numbers, ratings).
    checks = [c for c in view.ep.checks if c.target == "episode"
              and not (verdict is not None and type(c.value) is bool)]
    chosen = view.options.preference.choose([*(c for c in view.label_rows if c.target == "episode"), *checks])
    score = None
    if chosen is not None:
        r = rating(chosen.value)
        score = chosen.score if chosen.score is not None else (
            float(chosen.value) if isinstance(chosen.value, float) else (float(r) if r is not None else None))
        if score is not None and score != score:  # NaN ranks nothing (it would read as "not > 0": a negative)
            score = None
    if verdict is None and score is None:
        return None
    return (verdict if verdict is not None else 0.5, score if score is not None else 0.0)



def _ranked(view: EpisodeView, options: ExportOptions) -> tuple[Any, list[Any], list[Any], Any, Any]:
    """``(rank, prompt, completion, steps, final_observation)`` of an episode both preference formats can use.

    Raises:
        Skip: no terminal verdict and no episode label, or no step.
    """
    rank = _rank(view)
    if rank is None:
        raise Skip("no terminal verdict and no episode label")
    messages, steps, final = conversation(view, options)
    prompt, completion = _split(messages)
    if not completion:
        raise Skip(NO_STEP)
    return rank, prompt, completion, steps, final


def _label(rank: tuple[float, float]) -> Any:
    """``kto``'s ``label``: the terminal check passed; without a verdict, the episode label's rating > 0."""
    return rank[0] == 1.0 if rank[0] != 0.5 else rank[1] > 0


class KtoFormat(JsonlFormat):
    name = "kto"
    built_rows = True

    def lines(self, view: EpisodeView) -> tuple[list[str], int]:
        # The row as text piece by piece (what ``chat`` does); anything the strict encoder refuses: the dicts.
        rank = _rank(view)
        if rank is None:
            raise Skip("no terminal verdict and no episode label")
        try:
            messages, steps, final = conversation_text(view, self.options, weights=False)
            if not steps:
                raise Skip(NO_STEP)
            head = 2 if system_of(view, self.options) else 1  # the system and user messages: the prompt
            line = (f'{{"prompt":[{",".join(messages[:head])}],"completion":[{",".join(messages[head:])}],'
                    f'"label":{_strict(_label(rank))},"tools":{_strict(exact(view.tools()))},'
                    f'"trajrec":{meta_text(view, final, steps)}}}')
        except _Unusual:
            return super().lines(view)
        return [line], len(steps)

    def rows(self, view: EpisodeView) -> tuple[Iterable[dict[str, Any]], int]:
        rank, prompt, completion, steps, final = _ranked(view, self.options)
        label = _label(rank)
        return [{"prompt": prompt, "completion": completion, "label": label, "tools": exact(view.tools()),
                 "trajrec": {**episode_meta(view), "final_observation": final, "steps": steps}}], len(steps)


class DpoFormat(JsonlFormat):
    name = "dpo"

    def __init__(self, out: str | os.PathLike[str], options: ExportOptions) -> None:
        super().__init__(out, options)
        self._groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        #: Outcomes of attempts collected but not paired (told to the report by :meth:`finish`).
        self.unpaired: dict[str, int] = {}
        #: Task splits of those attempts.
        self.unpaired_splits: dict[str, int] = {}

    def rows(self, view: EpisodeView) -> tuple[Iterable[dict[str, Any]], int]:
        rank, prompt, completion, steps, final = _ranked(view, self.options)
        meta = {**episode_meta(view), "final_observation": final}
        key = (meta["env_id"], meta["task_id"], dumps(prompt))
        self._groups.setdefault(key, []).append({"rank": rank, "prompt": prompt, "completion": completion,
                                                 "tools": exact(view.tools()), "meta": meta,
                                                 "steps": len(steps)})
        return [], len(steps)

    def close(self) -> None:
        write = self._fh.write
        for attempts in self._groups.values():
            attempts.sort(key=lambda a: a["rank"], reverse=True)
            lo, hi = 0, len(attempts) - 1
            while lo < hi and attempts[lo]["rank"] > attempts[hi]["rank"]:
                good, bad = attempts[lo], attempts[hi]
                write(dumps_built({"prompt": good["prompt"], "chosen": good["completion"],
                                   "rejected": bad["completion"], "tools": good["tools"],
                                   "trajrec": {"chosen": good["meta"], "rejected": bad["meta"]}}))
                write("\n")
                self.rows_written += 1
                self.steps_written += good["steps"] + bad["steps"]
                lo, hi = lo + 1, hi - 1
            for a in attempts[lo:hi + 1]:
                out = a["meta"]["outcome"] or "unknown"
                self.unpaired[out] = self.unpaired.get(out, 0) + 1
                split = a["meta"].get("split")
                if isinstance(split, str):
                    self.unpaired_splits[split] = self.unpaired_splits.get(split, 0) + 1
        super().close()

    rows_written = 0
    #: Steps of the attempts written in pairs (an unpaired attempt's steps are not written).
    steps_written = 0
