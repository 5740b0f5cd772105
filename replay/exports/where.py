"""Which episodes an export takes: the facts of an episode and its labels, matched by a query of the one filter
grammar (:mod:`trajrec.replay.query`, shared with the viewer, ``ls`` and :meth:`trajrec.Run.where`).

>>> from trajrec.replay.query import parse_query
>>> parse_query("failures>0").matches({"failures": 2})
True
"""

from __future__ import annotations

from typing import Any

from ..query import index_facts

__all__ = ["episode_facts"]


def episode_facts(ref: Any, labels: list[Any] | None, agreement: float | None) -> dict[str, Any]:
    """The filterable facts of an episode (an :class:`~trajrec.replay.exports.source.EpisodeRef`) and its live
    labels (None: not read, so the label fields are unknown)."""
    facts = index_facts(ref.path, ref.index)
    if labels is not None:
        n = ref.n_steps
        labeled_steps = {lab.target for lab in labels if isinstance(lab.target, int) and lab.target < n}
        facts.update({
            "labels": len(labels),
            "labeled": bool(labels),
            "labeled_fraction": len(labeled_steps) / n if n else 0.0,
            "judge": {lab.judge for lab in labels},
            "agreement": agreement,
        })
    return facts
