"""``trajrec/SupportTicket-v0``: answer a customer ticket from a small knowledge base.

Tools: ``search {"query"}`` ranks the 26 articles by keyword overlap, ``read {"doc_id"}`` shows one,
``answer {"text"}`` ends the episode. No rule can check free text, so the answer goes to a
pluggable judge (see :mod:`trajrec.envs.judges`); the default is the transparent
:class:`~trajrec.envs.judges.RubricJudge` (``rubric-heuristic@1``). Pass another as
``gym.make("trajrec/SupportTicket-v0", judge=my_judge)``; its verdict becomes a ``judge`` check.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, ClassVar

from trajrec.envs._base import Outcome, ToolEnv, failed
from trajrec.envs._tools import ToolCall, ToolError, ToolSpec, did_you_mean, make_check
from trajrec.envs.judges import RubricJudge, judge_identity, validate_verdict
from trajrec.envs.support_kb import DOCS, TICKETS, Ticket, search

#: How many characters of an article a search result shows.
_SNIPPET = 90


class SupportTicketEnv(ToolEnv):
    """Search and read the knowledge base, then answer the ticket; a judge scores the answer.

    Args:
        max_steps: Steps after which the episode is truncated.
        judge: ``judge(task, answer, transcript) -> {"value", "score", "rationale"}``; default
            :class:`~trajrec.envs.judges.RubricJudge`.
        render_mode: Only None.

    >>> env = SupportTicketEnv(judge=lambda task, answer, transcript: {"value": True, "score": 1.0, "rationale": "ok"})
    >>> obs, info = env.reset(options={"task_id": "support-student"})
    >>> obs, reward, terminated, truncated, info = env.step('{"tool": "answer", "args": {"text": "Yes!"}}')
    >>> info["checks"][0]["kind"], info["checks"][0]["judge"], reward
    ('judge', 'model:<lambda>', 1.0)
    """

    env_id: ClassVar[str] = "trajrec/SupportTicket-v0"
    tasks: ClassVar[tuple[Ticket, ...]] = TICKETS
    verification: ClassVar[str] = "judge"
    tool_specs: ClassVar[tuple[ToolSpec, ...]] = (
        ToolSpec(
            "search",
            "Search the knowledge base; returns up to 5 article ids with titles and snippets.",
            {"query": {"type": "string", "minLength": 1, "maxLength": 500}},
            ("query",),
        ),
        ToolSpec(
            "read",
            "Read a knowledge-base article by id (e.g. KB-101).",
            {"doc_id": {"type": "string", "minLength": 1, "maxLength": 50}},
            ("doc_id",),
        ),
        ToolSpec(
            "answer",
            "Send the final answer to the customer (cite the article ids you used). Ends the episode.",
            {"text": {"type": "string", "minLength": 1, "maxLength": 4000}},
            ("text",),
        ),
    )

    def __init__(
        self,
        *,
        max_steps: int = 30,
        judge: Callable[..., Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(max_steps=max_steps, render_mode=render_mode)
        if judge is not None and not callable(judge):
            raise TypeError(f"judge must be callable as judge(task, answer, transcript), found {type(judge).__name__}")
        self.judge: Callable[..., Any] = judge if judge is not None else RubricJudge()
        self.judge_id = judge_identity(self.judge)
        self._searches: list[dict[str, Any]] = []
        self._read: list[str] = []
        self._answer: str | None = None
        self._verdict: dict[str, Any] | None = None
        self._transcript: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------------- hooks

    def _begin(self, task: Ticket) -> None:
        self._searches = []
        self._read = []
        self._answer = None
        self._verdict = None
        self._transcript = []

    def _state(self) -> dict[str, Any]:
        return {
            "searches": list(self._searches),
            "read": list(self._read),
            "answer": self._answer,
            "verdict": None if self._verdict is None else dict(self._verdict),
        }

    def _after_call(self, action: Any, call: ToolCall | ToolError, outcome: Outcome) -> None:
        self._transcript.append(
            {
                "step": self._steps,
                "tool": call.tool,
                "args": copy.deepcopy(call.args) if isinstance(call, ToolCall) else None,
                "observation": outcome.text,
                "error": outcome.error,
            }
        )

    def _truncation_check(self) -> tuple[dict[str, Any], float]:
        return make_check("environment", "step-limit@1", False, f"no answer sent within {self.max_steps} steps"), 0.0

    # ------------------------------------------------------------------------------- tools

    def _tool_search(self, args: dict[str, Any]) -> Outcome:
        query = args["query"]
        hits = search(query)
        self._searches = [*self._searches, {"query": query, "results": hits}]
        if not hits:
            return Outcome(text="No articles match. Try other words (e.g. refund, shipping, password).")
        rows = []
        for doc_id in hits:
            doc = DOCS[doc_id]
            snippet = doc.body if len(doc.body) <= _SNIPPET else doc.body[: _SNIPPET - 3] + "..."
            rows.append(f"{doc_id}  {doc.title}: {snippet}")
        return Outcome(text="\n".join(rows))

    def _tool_read(self, args: dict[str, Any]) -> Outcome:
        doc_id = args["doc_id"].strip().upper()
        doc = DOCS.get(doc_id)
        if doc is None:
            # Letters typed for look-alike digits (KB-1O4) are the likeliest slip; suggest that first.
            digits = doc_id.translate(str.maketrans("OILS", "0115"))
            hint = f" (did you mean {digits!r}?)" if digits in DOCS else did_you_mean(doc_id, DOCS)
            return failed(f"read: no article {args['doc_id']!r}{hint}; ids look like KB-101, use search to find them")
        if doc_id not in self._read:
            self._read = [*self._read, doc_id]
        return Outcome(text=f"{doc.id}: {doc.title}\n{doc.body}")

    def _tool_answer(self, args: dict[str, Any]) -> Outcome:
        ticket = self._task
        assert isinstance(ticket, Ticket)
        text = args["text"]
        task = {
            **self._public_task(),
            "rubric": ticket.rubric(),
            "reference": [{"id": d, "title": DOCS[d].title, "body": DOCS[d].body} for d in ticket.docs],
        }
        # The judge gets copies: a judge that edits its inputs must not reach the env's state.
        verdict = validate_verdict(self.judge, self.judge(task, text, copy.deepcopy(self._transcript)))
        self._answer = text
        self._verdict = {"value": verdict["value"], "score": verdict["score"]}
        check = make_check("judge", self.judge_id, verdict["value"], verdict["rationale"], score=verdict["score"])
        passed = verdict["value"] is True
        return Outcome(
            text=f"Answer sent. Judge {self.judge_id}: {'pass' if passed else 'fail'}. {verdict['rationale']}",
            checks=[check],
            reward=1.0 if passed else 0.0,
            terminal=True,
        )
