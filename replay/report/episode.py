"""What the report reads of one episode, in one pass over its step records: :class:`EpisodeFacts`.

Each section of the report (:mod:`.tasks`, :mod:`.failures`, :mod:`.judging`, :mod:`.behaviour`,
:mod:`.lineage`) takes these facts, one episode at a time, and keeps only running totals, so the report's memory
does not grow with the number of steps and grows by a few numbers per episode.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from trajrec.recorder.classify import default_action_key
from trajrec.recorder.format import packb
from trajrec.recorder.model_call import amount, model_usage_totals, token_count

from ..labels import Label

__all__ = ["MALFORMED", "EpisodeFacts", "StepFailure", "read_steps", "usage_from_summary", "usage_of"]

#: The tool name given to actions that look like a tool call but do not parse as one.
MALFORMED = "(malformed call)"


@dataclass(slots=True)
class StepFailure:
    """One failed step: its index, kind, tool (operation) and message."""

    step: int
    kind: str
    tool: str
    message: str


@dataclass(slots=True)
class EpisodeFacts:
    """One episode as the report sees it.

    ``solved`` is the terminal verdict (True passed, False failed) or None when nothing judged the episode.
    ``retries`` maps a failed step to the steps that retried it; ``recovered`` maps a failed step to the step
    that recovered it. Token counts and cost are summed over the steps whose note carried them.
    """

    ordinal: int
    path: str
    episode_id: str
    env: str
    task: str
    split: str
    outcome: str
    #: readable steps: what ``ls`` and the exports count (numbered steps lost to damage are not in it)
    steps: int
    header: Mapping[str, Any]
    summary: Mapping[str, Any]
    complete: bool = True
    #: it lost steps: to damage, or env steps to a failed write while recording (trajrec.recorder.model.gaps)
    lost_steps: bool = False
    #: numbered steps lost to damage (``fsck --repair``'s ``damaged`` rows): recorded once, now unreadable
    damaged_steps: int = 0
    #: env steps a failed write kept out of the file while recording (never numbered)
    unwritten_steps: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    failures: list[StepFailure] = field(default_factory=list)
    retries: dict[int, list[int]] = field(default_factory=dict)
    recovered: dict[int, int] = field(default_factory=dict)
    thought_chars: int = 0
    thought_steps: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_total: int = 0
    cost: float | None = None  # USD; None when no call or note of the episode carried a cost (unknown, not 0)
    usage_steps: int = 0
    model_calls: int = 0
    failed_attempts: int = 0
    calls_without_usage: int = 0  # answered calls whose server reported no usage: their tokens are unknown
    latency: float = 0.0
    actions_digest: bytes = b""
    ops_digest: bytes = b""

    @property
    def solved(self) -> bool | None:
        return True if self.outcome == "passed" else False if self.outcome == "failed" else None

    @property
    def provenance(self) -> Mapping[str, Any]:
        p = self.header.get("provenance")
        return p if type(p) is dict else {}


_IN_KEYS = ("prompt_tokens", "input_tokens")
_OUT_KEYS = ("completion_tokens", "output_tokens")
_TOTAL_KEYS = ("total_tokens",)
_COST_KEYS = ("cost", "cost_usd", "total_cost")
_ANY_KEY = frozenset({"usage", "model_call", *_IN_KEYS, *_OUT_KEYS, *_TOTAL_KEYS, *_COST_KEYS})


def usage_of(note: Mapping[str, Any]) -> tuple[int, int, int, float | None] | None:
    """``(input tokens, output tokens, total tokens, cost)`` a step's note records, or None when it records none;
    the cost is None when the note carries tokens but no cost (unknown, not 0).

    Looked for in ``note["usage"]``, ``note["model_call"]`` (and its ``usage``) and the note itself, under the
    names the common model APIs use (``prompt_tokens``/``completion_tokens``/``total_tokens``,
    ``input_tokens``/``output_tokens``; ``cost``, ``cost_usd`` or ``total_cost``). A total missing from the
    record is the sum of input and output.

    >>> usage_of({"usage": {"prompt_tokens": 12, "completion_tokens": 3}, "cost": 0.001})
    (12, 3, 15, 0.001)
    >>> usage_of({"model_call": {"usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 9}}})
    (5, 2, 9, None)
    >>> usage_of({"thought": "hm"}) is None
    True
    """
    if note.keys().isdisjoint(_ANY_KEY):
        return None  # most notes (a thought, messages) carry no usage: one set test instead of a dozen lookups
    # Plain dict checks, not typing.Mapping: this runs on every step, and an ABC isinstance costs ~2 µs.
    places = []
    for key in ("usage", "model_call"):
        where = note.get(key)
        if type(where) is dict:
            places.append(where)
            if key == "model_call" and type(where.get("usage")) is dict:
                places.append(where["usage"])
    places.append(note)
    tin = tout = total = 0
    cost: float | None = None
    found = False
    for where in places:
        for keys in (_IN_KEYS, _OUT_KEYS, _TOTAL_KEYS):
            for k in keys:
                v = where.get(k)
                n = None if v is None else token_count(v)  # a note is data from anyone: NaN, -5, 10**400 are none
                if n is not None:
                    found = True
                    if keys is _IN_KEYS:
                        tin += n
                    elif keys is _OUT_KEYS:
                        tout += n
                    else:
                        total += n
                    break
        for k in _COST_KEYS:
            v = where.get(k)
            usd = None if v is None else amount(v)
            if usd is not None:
                found = True
                cost = (cost or 0.0) + usd
                break
    if not found:
        return None
    return tin, tout, total or tin + tout, cost


def _op(info: Any, action: Any) -> str:
    tool = info.get("tool") if type(info) is dict else None
    if isinstance(tool, str) and tool:
        return tool
    key = default_action_key(action)
    if isinstance(key, str):
        if key is action and key.lstrip().startswith("{"):
            return MALFORMED  # JSON that is no tool call: naming it by its whole text would make one tool per typo
        return key[:60]
    return repr(key)[:60]


def _action_bytes(action: Any) -> bytes:
    if isinstance(action, str):
        return action.encode("utf-8", "surrogatepass")
    try:
        return packb(action)
    except (TypeError, ValueError):
        return repr(action).encode("utf-8", "replace")


def usage_from_summary(facts: EpisodeFacts) -> bool:
    """Take the model-call totals the recorder summed into the summary (``summary["model"]``, from
    ``note["model_call"]`` / ``note["model_calls"]``: :class:`trajrec.recorder.model_call.ModelUsage`);
    False when the episode has none, and its notes are to be scanned instead (:func:`usage_of`)."""
    model = facts.summary.get("model")
    if type(model) is not dict or not model.get("calls"):
        return False
    model = model_usage_totals({"model": model})  # what is no count or number (NaN, a negative...) becomes None
    facts.tokens_in = model["prompt_tokens"] or 0
    facts.tokens_out = model["completion_tokens"] or 0
    facts.tokens_total = model["total_tokens"] or facts.tokens_in + facts.tokens_out
    facts.cost = model["cost"]  # None: no call carried a cost
    facts.model_calls = model["calls"]
    facts.failed_attempts = model["failed_attempts"]
    facts.calls_without_usage = token_count(model.get("calls_without_usage")) or 0
    facts.latency = model["latency"] or 0.0
    # usage_steps stays the count of steps whose notes were scanned for usage: model calls are no steps (a call
    # that failed for good belongs to none), and `report` said "over 2 steps" of a 1-step episode (FINDINGS24 #1).
    return True


def read_steps(facts: EpisodeFacts, records: Iterable[Mapping[str, Any]], *, scan_usage: bool = True) -> None:
    """Fill ``facts`` from an episode's step records (one pass; no record is kept); with ``scan_usage``, sum the
    token usage the notes record (for episodes whose summary has no model-call totals)."""
    # The sequences are hashed once at the end: an episode's actions are few and short next to its records.
    actions: list[bytes] = []
    ops: list[str] = []
    failures = facts.failures
    for rec in records:
        i = rec.get("i", 0)
        action = rec.get("action")
        op = _op(rec.get("info"), action)
        actions.append(_action_bytes(action))
        ops.append(op)
        fail = rec.get("failure")
        if fail:
            fail = fail if type(fail) is dict else {}
            failures.append(StepFailure(i, str(fail.get("kind") or "unknown"), op, str(fail.get("message") or "")))
        retry_of = rec.get("retry_of")
        if type(retry_of) is int:
            facts.retries.setdefault(retry_of, []).append(i)
        recovers = rec.get("recovers")
        if recovers:
            for j in recovers:
                if type(j) is int:
                    facts.recovered.setdefault(j, i)
        note = rec.get("note")
        if type(note) is dict and note:
            thought = note.get("thought")
            if type(thought) is str:
                facts.thought_chars += len(thought)
                facts.thought_steps += 1
            use = usage_of(note) if scan_usage else None
            if use is not None:
                facts.tokens_in += use[0]
                facts.tokens_out += use[1]
                facts.tokens_total += use[2]
                if use[3] is not None:
                    facts.cost = (facts.cost or 0.0) + use[3]
                facts.usage_steps += 1
    # A length prefix per item, so no action's bytes can imitate a separator.
    facts.actions_digest = hashlib.blake2b(b"".join(len(a).to_bytes(8, "little") + a for a in actions),
                                           digest_size=16).digest()
    facts.ops_digest = hashlib.blake2b("\x1f".join(ops).encode("utf-8", "replace"), digest_size=16).digest()
