"""``dpo`` and ``kto``: preference formats today's TRL trainers take (``DPOTrainer``, ``KTOTrainer``), built from
whole attempts in the conversational shape of ``chat`` (``docs/EXPORT.md``).

``kto``: one row per episode: ``prompt`` (the system message when there is one, as in ``chat``, and the user
message), ``completion`` (the agent's messages and
the env's answers), ``label`` (bool: the terminal check passed; without a verdict, the preferred episode label's
value rates +1, whatever score is kept beside it; episodes with neither are left out, a category being no rating),
``tools``, ``trajrec``.

``dpo``: ``prompt``, ``chosen``, ``rejected``, ``tools``, ``trajrec`` (both attempts' metadata). Attempts at the same
task (same env, task id and prompt) are ranked by (terminal check verdict: passed above none above failed;
then the preferred episode label's value as a rating; then its score, which only breaks ties); the best attempt
is paired with the worst, the second best with the second worst, and so on, while the better one ranks strictly
higher; each attempt is used at most once. Attempts nothing ranks (no verdict, no
episode label) and attempts left without a partner are left out, counted by reason (alone at the task, tied with
the attempts left, or left between attempts paired with each other).
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


#: Why an episode without a terminal verdict has no rank (``kto`` and ``dpo`` leave it out for it).
NO_RANK = "no terminal verdict and no episode label"
#: ... when the episode has labels or graded checks, but no ``--prefer`` source gave one.
NOT_PREFERRED = "no terminal verdict, and no --prefer source labeled the episode"
#: ... when the preferred episode label is a category, which has no rating (as on steps: docs/EXPORT.md).
EPISODE_CATEGORY = "no terminal verdict, and the preferred episode label is a category (no rating)"

#: Why ``dpo`` left an attempt without a partner: the only attempt at its task.
UNPAIRED = "no attempt at the same task to pair it with"
#: ... two or more attempts at its task were left, all ranked the same (same verdict, label value and score): a
#: pair needs one ranking strictly lower. "No attempt at the same task" would send the user to record more.
TIED = "its attempts at the same task tie (none left ranks lower to pair it with)"
#: ... one attempt left between pairs: the attempts ranking above and below it were paired with each other.
LEFT_BETWEEN = "the attempts at the same task ranking above and below it were paired with each other"
#: ... when it is a recorded check's value that is none of a rating, verdict, score or category (NaN, a dict).
EPISODE_NO_RATING = "no terminal verdict, and the preferred episode label is no rating or score"


def _rank(view: EpisodeView) -> tuple[float, int, float] | Skip:
    """``(verdict, rating, score)`` of an episode, which ``dpo`` sorts attempts by and ``kto`` reads its label
    from; a :class:`Skip` saying why when it has none.

    ``verdict``: 1.0 passed, 0.0 failed, 0.5 no verdict. ``rating``: -1/0/+1 of the preferred episode label's
    *value* (a verdict pass/fail, a rating, a pure score by its sign; 0 without such a label). ``score``: the
    label's score, which only breaks ties between equal values (a pure score: the value itself; 0.0 without one).
    A label's value decides, never its score: ``fail`` with score 0.9 is a -1 (an annotator's verdict, with
    the viewer's ``P f`` then ``P s 0.9``, ranked as a pass and made kto ``True``). A category is no rating (as
    on steps): it ranks nothing, and a lower source's label does not take its place.
    """
    outcome = view.outcome
    verdict = 1.0 if outcome == "passed" else 0.0 if outcome == "failed" else None
    # The rows as read (LabelRows for usual lines: no Label built for each of an episode's labels), same fields.
    # With a verdict, the recorded pass/fail checks already made it: counted again as the tie-break, a failed
    # `rule` check (-1) ranked below a failed `environment` one (not preferred: 0), and two failed attempts were
    # paired on check kinds alone. The rest reads labels and recorded checks that grade (numbers, ratings).
    checks = [c for c in view.ep.checks if c.target == "episode"
              and not (verdict is not None and type(c.value) is bool)]
    labels = [c for c in view.label_rows if c.target == "episode"]
    chosen = view.options.preference.choose([*labels, *checks]) if labels or checks else None
    r = score = None
    if chosen is not None:
        value = chosen.value
        r = rating(value)
        if r is not None:
            s = value if isinstance(value, float) else chosen.score
            # NaN breaks no tie (it compares as neither above nor below): none.
            score = float(s) if isinstance(s, (int, float)) and not isinstance(s, bool) and s == s else None
    if verdict is None and r is None:
        if chosen is not None:
            what = EPISODE_CATEGORY if isinstance(chosen.value, str) else EPISODE_NO_RATING
            others = sorted({str(c.judge) for c in (*labels, *checks)
                             if c is not chosen and rating(c.value) is not None})
            rated = f" (rated by {', '.join(others)})" if others else ""
            return Skip(what, example=f"episode {view.episode_id}: {chosen.judge} {_shown(chosen.value)}{rated}")
        if labels or checks:
            return Skip(NOT_PREFERRED, example=f"episode {view.episode_id}: " + ", ".join(
                sorted({str(c.judge) for c in (*labels, *checks)})))
        return Skip(NO_RANK)
    return (verdict if verdict is not None else 0.5, r if r is not None else 0, score if score is not None else 0.0)


def _shown(value: Any) -> str:
    """A category value as the report shows it: quoted, cut short."""
    text = repr(value)
    return text if len(text) <= 42 else text[:38] + "...'"


def _ranked(view: EpisodeView, options: ExportOptions) -> tuple[Any, list[Any], list[Any], Any, Any]:
    """``(rank, prompt, completion, steps, final_observation)`` of an episode both preference formats can use.

    Raises:
        Skip: no terminal verdict and no episode label with a rating (none, none of a ``--prefer`` source, a
            category), or no step.
    """
    rank = _rank(view)
    if isinstance(rank, Skip):
        raise rank
    messages, steps, final = conversation(view, options)
    prompt, completion = _split(messages)
    if not completion:
        raise Skip(NO_STEP)
    return rank, prompt, completion, steps, final


def _label(rank: tuple[float, int, float]) -> Any:
    """``kto``'s ``label``: the terminal check passed; without a verdict, the preferred episode label's value
    rates +1 (pass, +1, a score > 0). Its score does not decide: ``fail`` with score 0.9 is ``False``."""
    return rank[0] == 1.0 if rank[0] != 0.5 else rank[1] > 0


class KtoFormat(JsonlFormat):
    name = "kto"
    built_rows = True

    def lines(self, view: EpisodeView) -> tuple[list[str], int]:
        # The row as text piece by piece (what ``chat`` does); anything the strict encoder refuses: the dicts.
        rank = _rank(view)
        if isinstance(rank, Skip):
            raise rank
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
        #: Outcomes of attempts collected but not paired, by reason (:data:`UNPAIRED`, :data:`TIED`,
        #: :data:`LEFT_BETWEEN`): told to the report once the output is written.
        self.unpaired: dict[str, dict[str, int]] = {}
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
            left = attempts[lo:hi + 1]
            # The true reason: alone at its task; tied with the others left (sorted, so the first and the last left
            # rank the same); or the one in the middle of an odd number, its betters and worses paired.
            why = UNPAIRED if len(attempts) == 1 else TIED if len(left) > 1 else LEFT_BETWEEN
            for a in left:
                out = a["meta"]["outcome"] or "unknown"
                per = self.unpaired.setdefault(why, {})
                per[out] = per.get(out, 0) + 1
                split = a["meta"].get("split")
                if isinstance(split, str):
                    self.unpaired_splits[split] = self.unpaired_splits.get(split, 0) + 1
        super().close()

    rows_written = 0
    #: Steps of the attempts written in pairs (an unpaired attempt's steps are not written).
    steps_written = 0
