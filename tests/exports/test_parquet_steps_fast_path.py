"""The parquet export's step columns a field at a time (``parquet._usual_steps``) are the columns the step loop
(``parquet._general_steps``) makes, on usual steps and on steps mutated one hostile field at a time; when a chunk
is not usual the fast path appends nothing and says so (the loop then makes the whole chunk); and a whole export
writes the same table with the fast path on and off."""

from __future__ import annotations

import copy
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

pq = pytest.importorskip("pyarrow.parquet")

from trajrec.replay.exports import ExportOptions, export  # noqa: E402
from trajrec.replay.exports import parquet  # noqa: E402
from trajrec.replay.exports.base import EpisodeView  # noqa: E402
from trajrec.replay.exports.choice import candidates_by_step  # noqa: E402
from trajrec.replay.label_model import LabelRow  # noqa: E402

# Each field's hostile values: other types, NaN and infinities, subclasses, empty and odd containers.
HOSTILE: dict[str, list[Any]] = {
    "action": [None, "", 3, 1.5, {"tool": "cat", "args": {"path": "a"}}, ["x"], "é\u2028", '{"tool": "submit"}',
               type("S", (str,), {})("sub")],
    "observation": [None, "", 0, [1.0, 2.0], {"a": 1}, math.nan, b"raw", type("S", (str,), {})("sub")],
    "note": [None, {}, {"thought": None}, {"thought": 3}, {"thought": {"a": 1}}, {"model_call": {"content": "m"}},
             "text", {"thought": ""}, {"thought": ["x"]}],
    "reward": [math.nan, math.inf, -math.inf, 1, True, None, -0.0, 2**70, "1"],
    "time": [math.nan, math.inf, 1, None, -0.0, 1e300, True, "t"],
    "duration": [math.nan, -math.inf, 0, None, False, 2**80],
    "failure": [{"kind": "tool_error", "message": "m"}, {"kind": 3}, {}, None, {"kind": "k", "message": None},
                {"kind": "é"}],
    "retry_of": [0, None, -1, 2**40, True, "3", 1.0],
    "recovers": [[0], [], None, [0, "x", 2**40, True], [1, 2]],
    "terminated": [1, 0, None, "yes", 0.0],
    "truncated": [1, None, [], [0]],
}


def _usual(i: int) -> dict[str, Any]:
    return {"t": "step", "i": i, "action": '{"tool": "cat", "args": {"path": "f%d.txt"}}' % (i % 5),
            "observation": f"file {i}", "reward": 0.0, "terminated": False, "truncated": False, "info": {},
            "time": 1796039188.9329534 + i / 7, "duration": 1e-6 * (i + 1), "note": {"thought": f"step {i}"}}


def _candidates(rng: random.Random, n: int) -> dict[int, list[Any]]:
    rows = []
    for i in range(n):
        for _ in range(rng.choice([0, 1, 1, 1, 2])):
            rows.append(LabelRow("ep", i, rng.choice(["rule", "judge", "human", "environment"]),
                                 rng.choice(["trajrec-rules@2", "human:ana", "model:x", "odd"]),
                                 rng.choice([1, 0, -1, True, 0.5, "good"]), None, None, (), None, rng.random(),
                                 None, f"id{i}-{len(rows)}", False))
    return candidates_by_step(rows, [])


def _columns(chunks: list[list[dict[str, Any]]], cands: dict[int, list[Any]], fast: bool) -> tuple[Any, bool]:
    cols: list[list[Any]] = [[] for _ in parquet.COLUMNS[parquet.HEAD:parquet.COLUMNS.index("label")]]
    picked: list[Any] = []
    found: list[Any] = []
    prefer = ExportOptions(prefer="human,rule").preference.choose
    calls: dict[str, Any] = {}
    wins: dict[Any, bool] = {}
    took = False
    for chunk in chunks:
        before = json.dumps([len(c) for c in cols])
        if fast and parquet._usual_steps(chunk, cols, picked, found, cands, calls, None, None, wins, prefer):
            took = True
            continue
        assert json.dumps([len(c) for c in cols]) == before  # refused: nothing appended
        parquet._general_steps(chunk, cols, picked, found, EpisodeView.thought, cands, calls, None, None, wins,
                               prefer)
    return (cols, [id(p) if p is not None else None for p in picked], [id(f) if f else f for f in found]), took


def _text(value: Any) -> str:
    return json.dumps(value, default=repr)  # NaN, -0.0 and odd objects spelled out


def test_usual_steps_give_the_loops_columns_on_hostile_steps() -> None:
    rng = random.Random(7)
    took = 0
    for trial in range(300):
        n = rng.randint(1, 30)
        steps = [_usual(i) for i in range(n)]
        for _ in range(rng.choice([0, 0, 1, 2, 4])):
            field = rng.choice(sorted(HOSTILE))
            value = copy.deepcopy(rng.choice(HOSTILE[field]))
            rec = rng.choice(steps)
            if value is None and rng.random() < 0.5:
                rec.pop(field, None)  # missing, not None
            else:
                rec[field] = value
        cands = _candidates(rng, n)
        cut = rng.randint(1, n)
        chunks = [steps[:cut], steps[cut:]] if cut < n else [steps]
        fast, took_fast = _columns(chunks, cands, fast=True)
        slow, _ = _columns(chunks, cands, fast=False)
        assert _text(fast) == _text(slow), trial
        assert [type(v) for c in fast[0] for v in c] == [type(v) for c in slow[0] for v in c], trial
        took += took_fast
    assert 50 < took < 300  # both paths were taken


def test_export_writes_the_same_table_with_the_fast_path_off(builtin_run: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    on = tmp_path / "on.parquet"
    export([builtin_run], "parquet", on, options=ExportOptions())
    monkeypatch.setattr(parquet, "_FAST", [False])
    off = tmp_path / "off.parquet"
    export([builtin_run], "parquet", off, options=ExportOptions())
    assert pq.read_table(on).num_rows > 0
    assert on.read_bytes() == off.read_bytes()


def test_a_checks_odd_rationale_author_and_id_are_written_as_text(tmp_path: Path) -> None:
    """A recorded check's rationale, author and id are what the env gave: a numpy array or an int there is written
    as its JSON text (it stopped the parquet export with pyarrow's ArrowTypeError)."""
    import gymnasium as gym
    import numpy as np

    from trajrec import Recorder

    odd = np.array(["2024-01-01T00:00", "NaT"], dtype="datetime64[m]")

    class Env(gym.Env):
        observation_space = gym.spaces.Text(64)
        action_space = gym.spaces.Text(64)

        def reset(self, *, seed: Any = None, options: Any = None) -> Any:
            super().reset(seed=seed)
            return "start", {}

        def step(self, action: Any) -> Any:
            check = {"kind": "environment", "judge": "env@1", "value": True, "target": "step", "rationale": odd,
                     "author": 3, "id": ["x"]}
            return "ok", 1.0, True, False, {"checks": [check]}

    rec = Recorder(Env(), tmp_path / "run")
    rec.reset(seed=0)
    rec.step("act")
    rec.close()
    out = tmp_path / "c.parquet"
    export([tmp_path / "run"], "parquet", out, options=ExportOptions(prefer="environment"))
    row = pq.read_table(out).to_pylist()[0]
    assert (row["label_rationale"], row["label_author"], row["label_id"]) == ('["2024-01-01T00:00","NaT"]', "3",
                                                                           '["x"]'), row
