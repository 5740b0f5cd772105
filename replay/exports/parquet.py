"""``parquet``: one row per step through pyarrow (the optional extra ``pip install 'trajrec[parquet]'``).

Columns (see ``docs/EXPORT.md``): episode_id, step, env_id, task_id, outcome, thought, action, tool, observation,
reward, terminated, truncated, time, duration, failure_kind, failure_message, retry_of, recovers, label (mapped by
``--label-map``: bool for strict/lenient, double for float/unit), label_rating, label_value (the value as JSON
text), label_score, label_judge, label_kind, label_origin, label_rationale, label_tags, label_author, label_id,
n_labels, label_judges (every judge that labeled the step).
"""

from __future__ import annotations

import math
import os
from typing import Any, Iterator

from trajrec.recorder.errors import MissingDependencyError, TrajrecIOError, TrajrecUsageError, require

from .base import EpisodeView, ExportOptions, Format, open_output
from ..labels import rating
from .choice import map_label, origin
from .encode import dumps, text_of, tool_call

PIP_HINT = "pip install 'trajrec[parquet]'"
_BATCH = 65_536


def pyarrow_modules() -> tuple[Any, Any]:
    pa = require("pyarrow", PIP_HINT, "the parquet export")
    pq = require("pyarrow.parquet", PIP_HINT, "the parquet export")
    return pa, pq


def _float(x: Any) -> float | None:
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, (int, float)):
        f = float(x)
        return f if math.isfinite(f) else None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


#: The column names of the parquet export, in order.
COLUMNS = ("episode_id", "step", "env_id", "task_id", "outcome", "thought", "action", "tool", "observation",
            "reward", "terminated", "truncated", "time", "duration", "failure_kind", "failure_message", "retry_of",
            "recovers", "label", "label_rating", "label_value", "label_score", "label_judge", "label_kind",
            "label_origin", "label_rationale", "label_tags", "label_author", "label_id", "n_labels", "label_judges")


def schema(label_map: str) -> Any:
    """The Arrow schema of the parquet export under a label map."""
    pa, _ = pyarrow_modules()
    s, i64, f64, b = pa.string(), pa.int64(), pa.float64(), pa.bool_()
    types = {
        "episode_id": s, "step": i64, "env_id": s, "task_id": s, "outcome": s, "thought": s, "action": s, "tool": s,
        "observation": s, "reward": f64, "terminated": b, "truncated": b, "time": f64, "duration": f64,
        "failure_kind": s, "failure_message": s, "retry_of": i64, "recovers": pa.list_(i64),
        "label": b if label_map in ("strict", "lenient") else f64, "label_rating": pa.int8(), "label_value": s,
        "label_score": f64, "label_judge": s, "label_kind": s, "label_origin": s, "label_rationale": s,
        "label_tags": pa.list_(s), "label_author": s, "label_id": s, "n_labels": pa.int32(),
        "label_judges": pa.list_(s),
    }
    return pa.schema([(name, types[name]) for name in COLUMNS])


def step_rows(view: EpisodeView) -> Iterator[tuple[Any, ...]]:
    """One tuple per step of ``view``, in :data:`COLUMNS` order: the rows of the parquet export and of
    :meth:`trajrec.Run.to_arrow`."""
    task = view.task
    eid, env_id, task_id = view.episode_id, task.get("env_id"), task.get("id")
    outcome = view.ep.summary.get("outcome")
    label_map = view.options.label_map
    for rec in view.steps():
        i = rec["i"]
        failure = rec.get("failure") or {}
        chosen = view.choose(i, mapped=False)
        cands = view.candidates.get(i) or ()
        action = rec.get("action")
        row: tuple[Any, ...] = (
            eid, i, env_id, task_id, outcome, view.thought(rec), text_of(action), tool_call(action).name,
            text_of(rec.get("observation")), _float(rec.get("reward")), bool(rec.get("terminated")),
            bool(rec.get("truncated")), _float(rec.get("time")), _float(rec.get("duration")),
            failure.get("kind"), failure.get("message"), rec.get("retry_of"), list(rec.get("recovers") or ()),
        )
        if chosen is not None:
            row += (map_label(chosen.value, label_map), rating(chosen.value), dumps(chosen.value),
                    _float(chosen.score), chosen.judge, chosen.kind, origin(chosen), chosen.rationale,
                    list(chosen.tags), chosen.author, chosen.id)
        else:
            row += (None, None, None, None, None, None, None, None, [], None, None)
        row += (len(cands), sorted({x.judge for x in cands}))
        yield row


class ParquetFormat(Format):
    name = "parquet"
    binary = True

    def __init__(self, out: str | os.PathLike[str], options: ExportOptions) -> None:
        super().__init__(out, options)
        self._pa, pq = pyarrow_modules()
        self._path, self._tmp = open_output(out)
        if self._tmp is None:
            raise TrajrecUsageError("parquet is a binary file format; pass --out FILE.parquet, not -")
        self._schema = schema(options.label_map)
        try:
            self._writer = pq.ParquetWriter(str(self._tmp), self._schema, compression="zstd")
        except OSError as exc:
            raise TrajrecIOError(f"cannot write {self._tmp}: {exc}") from exc
        self._cols: dict[str, list[Any]] = {name: [] for name in COLUMNS}

    def write(self, view: EpisodeView) -> tuple[int, int]:
        cols = self._cols
        c = [cols[name] for name in COLUMNS]
        n = 0
        for row in step_rows(view):
            for col, v in zip(c, row, strict=True):
                col.append(v)
            n += 1
            if len(cols["step"]) >= _BATCH:
                self._flush()
        return n, n

    def _flush(self) -> None:
        if not self._cols["step"]:
            return
        table = self._pa.table(self._cols, schema=self._schema)  # copies the values into Arrow buffers
        self._writer.write_table(table)
        for col in self._cols.values():
            col.clear()  # in place: write() holds references to these lists

    def close(self) -> None:
        self._flush()
        self._writer.close()
        assert self._tmp is not None and self._path is not None
        try:
            os.replace(self._tmp, self._path)
        except OSError as exc:
            raise TrajrecIOError(f"cannot finish {self._path}: {exc.strerror}") from exc

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            if self._tmp is not None and self._tmp.exists():
                os.unlink(self._tmp)
