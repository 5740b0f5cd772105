"""``records``: one JSON line per episode holding the whole evidence record, in one stable shape.

Every field whose type the env, the agent or a judge decides (observations, actions, rewards, infos, states,
notes, diffs, the task, provenance, summary and checks) is written as JSON text (the export encoding of
:mod:`~trajrec.replay.exports.encode`): ``json.loads`` gives it back exactly, and the row's own shape never varies,
so ``datasets``, ``pyarrow.json``, Polars and DuckDB all read the file unchanged with every number exact. Fields
trajrec types itself (ids, flags, times, step indexes) are plain JSON. ``docs/EXPORT.md`` lists them.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from .base import EpisodeView, JsonlFormat
from .encode import dumps, dumps_unchecked, needs_exact

#: Value of the ``format`` field of each row.
RECORDS_FORMAT = "trajrec-records@2"


def _time(x: Any) -> float | None:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        f = float(x)
        return f if math.isfinite(f) else None
    return None


def _index(x: Any) -> int | None:
    return x if type(x) is int else None


def _str(x: Any) -> str | None:
    return x if x is None or isinstance(x, str) else dumps(x)


def _step(rec: dict[str, Any]) -> dict[str, Any]:
    get = rec.get
    # One walk over the record decides for all its fields whether the exact pass is needed (the common record
    # needs none): a walk per field cost more than encoding it.
    enc = dumps if needs_exact(rec) else dumps_unchecked
    diff = get("diff")
    recovers = get("recovers")
    return {
        "i": rec["i"],
        "action": enc(get("action")),
        "observation": enc(get("observation")),
        "reward": enc(get("reward")),
        "terminated": bool(get("terminated")),
        "truncated": bool(get("truncated")),
        "info": enc(get("info")),
        "time": _time(get("time")),
        "duration": _time(get("duration")),
        "note": enc(get("note")),
        "failure": enc(get("failure")),
        "retry_of": _index(get("retry_of")),
        "recovers": [k for k in recovers if type(k) is int] if recovers else [],
        "diff": enc([{"path": r[0], "action": r[1], "value": r[2], "old_value": r[3]} for r in diff])
        if diff else "[]",
    }


class RecordsFormat(JsonlFormat):
    name = "records"
    built_rows = True

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
        task, summary = ep.task, ep.summary
        row = {
            "format": RECORDS_FORMAT,
            "episode_id": ep.episode_id,
            "file": view.ref.rel_path,
            "env_id": _str(task.get("env_id")),
            "task_id": _str(task.get("id")),
            "split": _str(task.get("split")),
            "outcome": _str(summary.get("outcome")),
            "task": dumps(task),
            "provenance": dumps(ep.provenance),
            "summary": dumps(summary),
            "reset": {"seed": dumps(reset.seed), "options": dumps(reset.options),
                      "observation": dumps(reset.observation), "info": dumps(reset.info),
                      "state": dumps(reset.state),
                      "failure": dumps(reset.failure._asdict() if reset.failure else None),
                      "time": _time(reset.time), "duration": _time(reset.duration)},
            "steps": steps,
            "checks": dumps(checks),
            "complete": bool(ep.complete),
            "damage": [d if isinstance(d, str) else dumps(d) for d in ep.damage],
        }
        return [row], len(steps)
