"""The episodes most worth a look: a few per reason, best first, each with the commands that open it at the step
that matters (``trajrec view FILE --step N``, ``trajrec show FILE --step N``).

Sections offer candidates as they stream (:meth:`Notable.offer`); only the ``per_reason`` best of each reason are
kept, so memory stays bounded whatever the run's size.
"""

from __future__ import annotations

import heapq
import shlex
from typing import Any

__all__ = ["REASONS", "Notable", "commands"]

#: Why an episode is worth a look, in the order the report lists them.
REASONS: dict[str, str] = {
    "recovered": "passed after recovering from failures: a recovery worth learning from",
    "unrecovered": "failures never recovered",
    "exception": "the environment raised an exception",
    "disagreement": "judges disagree on its steps",
    "long": "far longer than the median episode of its task (padding?)",
}


def commands(path: str, step: int | None) -> dict[str, str]:
    """The commands that open an episode at ``step`` in the viewer and in the terminal.

    >>> commands("runs/a b.msgpack.zst", 3)["view"]
    "trajrec view 'runs/a b.msgpack.zst' --step 3"
    """
    at = f" --step {step}" if step is not None else ""
    return {"view": f"trajrec view {shlex.quote(path)}{at}", "show": f"trajrec show {shlex.quote(path)}{at}"}


class Notable:
    """Keeps the ``per_reason`` highest-scored candidates of each reason."""

    def __init__(self, per_reason: int = 5) -> None:
        self.per_reason = per_reason
        self._heaps: dict[str, list[tuple[float, int, dict[str, Any]]]] = {r: [] for r in REASONS}

    def offer(self, reason: str, score: float, ordinal: int, item: dict[str, Any]) -> None:
        """A candidate: ``item`` holds ``episode``, ``path``, ``step`` and ``detail``; ties go to earlier episodes."""
        heap = self._heaps[reason]
        entry = (score, -ordinal, item)
        if len(heap) < self.per_reason:
            heapq.heappush(heap, entry)
        elif entry[:2] > heap[0][:2]:
            heapq.heapreplace(heap, entry)

    def result(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` episodes, taking the best of each reason in turn so every reason shows; an episode
        appears once (under its first reason)."""
        ranked = {r: [e[2] for e in sorted(h, key=lambda e: e[:2], reverse=True)] for r, h in self._heaps.items()}
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        depth = 0
        while len(out) < limit and any(len(v) > depth for v in ranked.values()):
            for reason, items in ranked.items():
                if depth < len(items) and len(out) < limit:
                    item = items[depth]
                    if item["path"] in seen:
                        continue
                    seen.add(item["path"])
                    out.append({"reason": reason, "why": REASONS[reason], **item,
                                **commands(item["path"], item.get("step"))})
            depth += 1
        return out
