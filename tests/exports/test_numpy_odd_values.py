"""numpy values JSON has no form for (datetime64, timedelta64, complex, long double) export in every format as
docs/EXPORT.md says, never a traceback (a long double made the encoder recurse forever) nor a repr string."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trajrec import Recorder
from trajrec.cli import main

OBS = {"day": np.datetime64("2020-01-01"), "days": np.array(["2020-01-01", "NaT"], dtype="datetime64[D]"),
       "wait": np.timedelta64(5, "s"), "z": np.array([1 + 2j, 3j]), "zs": np.complex64(1 + 1j),
       "long": np.longdouble("1.5"), "third": np.longdouble(1) / 3, "longs": np.array([1.5, 2], dtype=np.longdouble)}
WANT = {"day": "2020-01-01", "days": ["2020-01-01", "NaT"], "wait": "5 seconds",
        "z": {"$complex": [[1.0, 0.0], [2.0, 3.0]]}, "zs": {"$complex": [1.0, 1.0]}, "long": 1.5,
        "third": {"$longdouble": str(np.longdouble(1) / 3)}, "longs": [1.5, 2.0]}


class _Env:
    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        return "start", {}

    def step(self, action):  # type: ignore[no-untyped-def]
        return OBS, np.longdouble(0.5), True, False, {"when": np.datetime64("2021-02-03T04:05")}


@pytest.mark.parametrize("fmt", ["records", "chat", "trl-stepwise", "atif", "parquet"])
def test_odd_numpy_values_export_as_documented(fmt: str, tmp_path: Path) -> None:
    env = Recorder(_Env(), tmp_path / "run")
    env.reset(seed=0)
    env.step("go")
    env.close()
    out = tmp_path / ("x.parquet" if fmt == "parquet" else "x.jsonl")
    extra = ["--unlabeled", "neutral", "--observations"] if fmt == "trl-stepwise" else []
    assert main(["export", str(tmp_path / "run"), "--format", fmt, "--out", str(out), *extra]) == 0
    if fmt == "parquet":
        import pyarrow.parquet as pq

        [obs] = pq.read_table(out).column("observation").to_pylist()
        assert json.loads(obs) == WANT
        return
    text = out.read_text()
    assert "datetime.date" not in text and "(1+2j)" not in text
    if fmt == "records":
        [row] = [json.loads(line) for line in text.splitlines()]
        assert json.loads(row["steps"][0]["observation"]) == WANT
        assert json.loads(row["steps"][0]["info"]) == {"when": "2021-02-03T04:05"}
        assert json.loads(row["steps"][0]["reward"]) == 0.5
    else:
        assert '"2020-01-01"' in text.replace('\\"', '"') and "$complex" in text


class _TextRewardEnv:
    REWARDS = ["1", b"2", "3e2", 4, np.float32(0.5)]

    def __init__(self) -> None:
        self.t = 0

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        self.t = 0
        return 0, {}

    def step(self, action):  # type: ignore[no-untyped-def]
        self.t += 1
        return 0, self.REWARDS[self.t - 1], self.t == len(self.REWARDS), False, {}


def test_text_rewards_are_not_numbers_in_the_return_or_parquet(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from trajrec.recorder import open_episode

    env = Recorder(_TextRewardEnv(), tmp_path / "run")
    env.reset(seed=0)
    for _ in _TextRewardEnv.REWARDS:
        env.step(0)
    env.close()
    with open_episode(env.episode_path) as ep:
        assert ep.summary["return"] == 4.5
        assert [s.reward for s in ep][:3] == ["1", b"2", "3e2"]  # recorded as given
    out = tmp_path / "x.parquet"
    assert main(["export", str(tmp_path / "run"), "--format", "parquet", "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.column("reward").to_pylist() == [None, None, None, 4.0, 0.5]
    assert table.column("episode_return").to_pylist()[0] == 4.5
