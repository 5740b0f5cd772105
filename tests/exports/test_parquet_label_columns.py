"""The parquet export's fast paths: label columns a field at a time (every step labeled, by labels) give what the
step-by-step path gives, on hostile label values; and files written without dictionary pages read back as the
table written with them; the thought column read inline is what exports read as the thought."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from trajrec.replay.exports import ExportOptions, export  # noqa: E402
from trajrec.replay.exports import parquet  # noqa: E402
from trajrec.replay.label_model import LabelRow  # noqa: E402
from trajrec.replay.exports.choice import LABEL_MAPS  # noqa: E402

VALUES: list[Any] = [1, 0, -1, True, False, 1.0, -0.0, 0.0, 0.5, -0.25, math.nan, math.inf, -math.inf, 2**70, -2**70,
                     "good", "bad", "neutral", "pass", "", "é", [1, 2], {"a": 1}, None, 3, 1e300, np.float64(0.5),
                     np.float64(math.nan)]
SCORES: list[Any] = [None, None, 0.5, 1.0, math.nan, 2**70, True, -0.0]
TAGS: list[Any] = [(), ("a",), ("a", "b"), ("é",), (), (1,), (True,)]
TEXT: list[Any] = [None, "", "ok", "é", "a" * 300]


def _rows(rng: random.Random, n: int) -> list[LabelRow]:
    return [LabelRow("ep", i, rng.choice(["rule", "judge", "human"]), rng.choice(["trajrec-rules@2", "human:ana"]),
                     rng.choice(VALUES), rng.choice(SCORES), rng.choice(TEXT), rng.choice(TAGS), rng.choice(TEXT),
                     rng.random(), None, f"id{i}", False) for i in range(n)]


def _text(cols: list[list[Any]]) -> str:
    return json.dumps(cols, default=repr)  # NaN and -0.0 spelled out


def test_label_columns_a_field_at_a_time_match_the_step_loop() -> None:
    rng = random.Random(15)
    for case in range(260):
        n = rng.randint(1, 12) if case < 200 else 60  # (60 steps: values, scores and tags repeat)
        picked: list[Any] = _rows(rng, n)
        found: list[Any] = [[p] for p in picked]
        for label_map in LABEL_MAPS:
            fast = parquet._label_columns(picked, found, label_map, n)
            # One more step without a label sends the episode down the step-by-step path.
            slow = parquet._label_columns([*picked, None], [*found, None], label_map, n + 1)
            assert _text(fast) == _text([col[:n] for col in slow])
            assert [type(v) for col in fast for v in col] == [type(v) for col in slow for v in col[:n]]


def test_files_without_dictionary_pages_read_back_as_with_them(builtin_run: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "plain.parquet"
    export([builtin_run], "parquet", plain, options=ExportOptions())
    monkeypatch.setitem(parquet._WRITER_SETTINGS, "use_dictionary", True)
    with_dict = tmp_path / "dict.parquet"
    export([builtin_run], "parquet", with_dict, options=ExportOptions())
    meta = pq.ParquetFile(plain).metadata
    assert meta.num_rows > 0
    assert not any("RLE_DICTIONARY" in str(meta.row_group(0).column(k).encodings) for k in range(meta.num_columns))
    assert any("RLE_DICTIONARY" in str(pq.ParquetFile(with_dict).metadata.row_group(0).column(k).encodings)
               for k in range(meta.num_columns))
    a, b = pq.read_table(plain), pq.read_table(with_dict)
    assert a.equals(b) and a.schema.metadata == b.schema.metadata


NOTES: list[dict[str, Any]] = [{"thought": "plain"}, {}, {"thought": {"a": 1}}, {"thought": 3},
                               {"model_call": {"content": "the model's words"}},
                               {"thought": "", "model_call": {"content": "not this"}},
                               {"model_call": {"content": ""}}, {"model_call": "x"}, {"thought": ["x", None]}]


class _NoteEnv:
    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[str, dict[str, Any]]:
        self.t = 0
        return "start", {}

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return f"obs {self.t}", 0.0, self.t == len(NOTES) + 1, False, {}


def test_thought_column_is_what_exports_read_as_the_thought(tmp_path: Path) -> None:
    from trajrec import Recorder, open_episode
    from trajrec.replay.exports.base import EpisodeView

    rec = Recorder(_as_gym(_NoteEnv()), tmp_path / "run")
    rec.reset(seed=0)
    for note in NOTES:
        rec.note(**note)
        rec.step("act")
    rec.step("last")  # a step without a note
    rec.close()
    out = tmp_path / "t.parquet"
    export([tmp_path / "run"], "parquet", out, options=ExportOptions())
    (path,) = sorted((tmp_path / "run").glob("*.msgpack.zst"))
    with open_episode(path) as ep:
        want = [EpisodeView.thought(r) for r in ep.iter_records()]
    assert pq.read_table(out).column("thought").to_pylist() == want
    assert "the model's words" in want and '{"a":1}' in want


def _as_gym(inner: Any) -> Any:
    import gymnasium as gym

    class Env(gym.Env):
        observation_space = gym.spaces.Text(64)
        action_space = gym.spaces.Text(64)

        def reset(self, *, seed: Any = None, options: Any = None) -> Any:
            super().reset(seed=seed)
            return inner.reset(seed=seed, options=options)

        def step(self, action: Any) -> Any:
            return inner.step(action)

    return Env()
