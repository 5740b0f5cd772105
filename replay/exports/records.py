"""``records``: one JSON line per episode holding the whole evidence record.

task, provenance and summary as recorded; ``behavior`` = the reset (seed, options, observation, info, state,
failure) and every step (action, observation, reward, terminated, truncated, info, time, duration, note, failure,
retry_of, recovers, diff); ``checks`` = the checks recorded in the file (``origin: "recorded"``) and the live labels
(``origin: "label"``, with ``episode_id``), each naming its judge and kind.
"""

from __future__ import annotations

from typing import Any, Iterable

from .base import EpisodeView, JsonlFormat

#: Value of the ``format`` field of each row.
RECORDS_FORMAT = "trajrec-records@1"


_STEP_DEFAULTS: dict[str, Any] = {
    "i": None, "action": None, "observation": None, "reward": None, "terminated": False, "truncated": False,
    "info": None, "time": None, "duration": None, "note": None, "failure": None, "retry_of": None, "recovers": [],
    "diff": [],
}


def _step(rec: dict[str, Any]) -> dict[str, Any]:
    # One C-level merge instead of a lookup per field (this runs for every step of every episode).
    out = {**_STEP_DEFAULTS, **rec}
    out.pop("checks", None)  # listed once, under the row's "checks"
    out.pop("snapshot", None)  # a reader's shortcut (full state every few steps), not evidence
    diff = rec.get("diff")
    if diff:
        out["diff"] = [{"path": r[0], "action": r[1], "value": r[2], "old_value": r[3]} for r in diff]
    return out


class RecordsFormat(JsonlFormat):
    name = "records"

    def rows(self, view: EpisodeView) -> tuple[Iterable[dict[str, Any]], int]:
        ep = view.ep
        reset = ep.reset
        steps = [_step(rec) for rec in view.steps()]
        checks: list[dict[str, Any]] = []
        for c in ep.checks:
            rec = c.to_record()
            rec.pop("step", None)  # the index's copy of the target
            checks.append({"origin": "recorded", **rec})
        for lab in view.labels:
            rec = lab.to_record()
            rec.pop("v", None)
            rec.pop("deleted", None)
            checks.append({"origin": "label", **rec})
        row = {
            "format": RECORDS_FORMAT,
            "episode_id": ep.episode_id,
            "file": view.ref.rel_path,
            "task": ep.task,
            "provenance": ep.provenance,
            "summary": ep.summary,
            "behavior": {
                "reset": {"seed": reset.seed, "options": reset.options, "observation": reset.observation,
                          "info": reset.info, "state": reset.state, "failure": reset.failure._asdict()
                          if reset.failure else None, "time": reset.time, "duration": reset.duration},
                "steps": steps,
            },
            "checks": checks,
            "complete": ep.complete,
            "damage": list(ep.damage),
        }
        return [row], len(steps)
