"""``open_run``: lazy listing, the shared query grammar, flat rows, Arrow / pandas / datasets with one schema."""

from __future__ import annotations

import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from trajrec import QueryError, Recorder, TrajrecUsageError, open_run
from trajrec.replay.exports import export
from trajrec.replay.library import parse_filter, scan

SAMPLES = Path(__file__).resolve().parents[2] / "sample_runs"


class MixedObsEnv(gym.Env):
    """Observations that change type from step to step: text, a number, an array, a dict."""

    observation_space = gym.spaces.Text(100)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return "start", {}

    def step(self, action):
        self.t += 1
        obs = ["text", 3.25, np.arange(3, dtype=np.float32), {"k": [1, "a"]}][self.t % 4]
        return obs, float(action), self.t >= 6, False, {}


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("run") / "sample_runs"
    shutil.copytree(SAMPLES, dest, ignore=shutil.ignore_patterns(".trajrec"))
    return dest


def test_len_where_and_iteration(samples: Path) -> None:
    run = open_run(samples)
    assert len(run) == 12 and not run.errors
    shell = run.where("env:shell")
    assert len(shell) == 3
    assert all(ep.task["env_id"] == "trajrec/Shell-v0" for ep in shell)
    # where() composes, and a list of queries is their conjunction.
    assert len(shell.where("outcome=passed")) == len(run.where(["env:shell", "outcome=passed"]))
    assert shell.where("outcome=passed").query.text == "env:shell outcome=passed"


def test_where_agrees_with_the_viewer_and_the_export(samples: Path, tmp_path: Path) -> None:
    run = open_run(samples)
    entries = [e for batch in scan([samples]) for e in batch.entries]
    for query in ("failed", "faulty", "-passed env:math", "failures>=2", "retries>0 recoveries>0", "steps<5",
                  "env=trajrec/S*", "code"):
        by_run = {ep.episode_id for ep in _close_all(run.where(query))}
        by_viewer = {e.episode_id for e in entries if parse_filter(query).matches(e)}
        out = tmp_path / "w.jsonl"
        export([samples], "records", out, where=[query], overwrite=True)
        import json
        by_export = {json.loads(line)["episode_id"] for line in out.read_text().splitlines()}
        assert by_run == by_viewer, query
        assert by_export <= by_run, query  # records export leaves out no episode but those with no steps
        assert by_run - by_export == {e.episode_id for e in entries if e.steps == 0} & by_run, query


def _close_all(episodes):  # type: ignore[no-untyped-def]
    out = []
    for ep in episodes:
        out.append(ep)
        ep.close()
    return out


def test_bad_query_and_missing_path(samples: Path, tmp_path: Path) -> None:
    with pytest.raises(QueryError, match=r"unknown field 'evn' \(did you mean 'env'\?\)"):
        open_run(samples).where("evn:shell")
    with pytest.raises(TrajrecUsageError, match="no such file or folder"):
        open_run(tmp_path / "missing")


def test_rows_arrow_pandas_and_datasets(samples: Path) -> None:
    run = open_run(samples)
    rows = list(run.steps())
    table = run.to_arrow()
    assert table.num_rows == len(rows) == sum(len(_close_all([ep])[0]) for ep in run)
    assert table.column_names == list(rows[0])
    assert table.column("step").to_pylist() == [r["step"] for r in rows]
    from trajrec.replay.exports.parquet import schema

    assert table.schema.equals(schema("strict"))
    df = run.to_pandas()
    assert list(df["episode_id"]) == [r["episode_id"] for r in rows]
    ds = run.to_hf_dataset()
    assert len(ds) == len(rows) and ds[5]["action"] == rows[5]["action"]


def test_mixed_observation_types_build_a_dataset(tmp_path: Path) -> None:
    env = Recorder(MixedObsEnv(), tmp_path / "mixed")
    env.reset(seed=0)
    done = False
    while not done:
        _, _, term, trunc, _ = env.step(1)
        done = term or trunc
    env.close()
    ds = open_run(tmp_path / "mixed").to_hf_dataset()
    assert len(ds) == 6
    assert [row["observation"] for row in ds][:2] == ["3.25", "[0.0,1.0,2.0]"]


def test_missing_optional_library_names_the_pip_command(samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from trajrec.recorder.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MissingDependencyError, match=r"Run.to_hf_dataset needs datasets, which is not installed: "
                                                     r"pip install datasets"):
        open_run(samples).to_hf_dataset()


def test_unreadable_files_are_errors_not_episodes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from trajrec.cli import main
    from trajrec.recorder import SUFFIX

    folder = tmp_path / "h"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "1", "--out", str(folder), "--json"]) == 0
    for name in ("junk1", "junk2"):
        (folder / f"{name}{SUFFIX}").write_bytes(b"not an episode at all" * 8)
    run = open_run(folder)
    assert len(run) == len(list(run)) == len(run.where("steps>=0")) == 1
    assert len(run.entries) == 1 and not any(e.error for e in run.entries)
    assert sorted(Path(p).name for p, _ in run.errors) == [f"junk1{SUFFIX}", f"junk2{SUFFIX}"]
    assert all(reason for _, reason in run.errors)
    assert len(run.where("steps>=0").errors) == 2  # a filtered run still tells which files it could not read
    capsys.readouterr()
    assert main(["ls", str(folder)]) == 1
    err = capsys.readouterr().err
    assert f"junk1{SUFFIX}" in err and f"junk2{SUFFIX}" in err
    assert "1 episode, " in err and "2 unreadable" in err
