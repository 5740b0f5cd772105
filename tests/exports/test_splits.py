"""The env's task split (``task.split``: every 5th built-in task is ``test``) in dataset exports: a parquet export
partitioned by split loads as ``train`` and ``test`` splits with ``datasets``; an export that mixes them warns and
says so in its card."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec.recorder import Recorder
from trajrec.replay.exports import ExportOptions, export
from trajrec.replay.exports import parallel


@pytest.fixture(scope="module")
def split_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MathCalc seeds 0..11: tasks 4 and 9 are in the test split, the others in train."""
    import trajrec.envs  # noqa: F401 - registers the ids
    from trajrec.envs.agents import make_agent
    from trajrec.envs.runner import run_episode

    out = tmp_path_factory.mktemp("splits") / "run"
    env = Recorder(gym.make("trajrec/MathCalc-v0"), out)
    for seed in range(12):
        run_episode(env, make_agent("trajrec/MathCalc-v0", seed=seed, skill=0.7), seed=seed)
    env.close()
    return out


def _episode_splits(run: Path) -> Counter[str]:
    from trajrec.recorder import read_index

    return Counter(read_index(f)["header"]["task"].get("split") for f in run.glob("*.msgpack.zst"))


@pytest.mark.parametrize("workers", [1, 2])
def test_partition_by_split_loads_as_train_and_test_splits(split_run: Path, tmp_path: Path, workers: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    pq = pytest.importorskip("pyarrow.parquet")
    monkeypatch.setattr(parallel, "HEAD_START", False)
    folder = tmp_path / "pq"
    rep = export([split_run], "parquet", folder, options=ExportOptions(partition_by="split"), workers=workers)
    want = Counter(r["split"] for f in folder.rglob("*.parquet") for r in pq.read_table(f).to_pylist())
    assert set(want) == {"train", "test"} and want["test"] > 0  # the fixture has both
    card = (folder / "README.md").read_text()
    assert '  - split: train\n    path: "split=train/*.parquet"\n' in card
    assert '  - split: test\n    path: "split=test/*.parquet"\n' in card
    assert "Warning" not in card
    episodes = _episode_splits(split_run)
    assert rep.written_splits == dict(episodes) and rep.test_episodes == episodes["test"] > 0

    ds = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf"))
    assert sorted(ds) == ["test", "train"]
    assert {name: ds[name].num_rows for name in ds} == dict(want)
    assert set(ds["test"]["split"]) == {"test"} and set(ds["train"]["split"]) == {"train"}


@pytest.mark.parametrize("fmt", ["chat", "parquet"])
def test_an_export_mixing_test_episodes_warns_and_says_so_in_its_card(split_run: Path, tmp_path: Path,
                                                                       fmt: str) -> None:
    n_test = _episode_splits(split_run)["test"]
    folder = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "trajrec", "export", str(split_run), "--format", fmt, "--out",
                           f"{folder}/"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    warning = [line for line in proc.stderr.splitlines() if line.startswith("trajrec export: warning: ")]
    assert len(warning) == 1 and f"{n_test} episodes written are from the env's test split" in warning[0]
    assert "--where 'split=train'" in warning[0] and "--partition-by split" in warning[0]
    card = (folder / "README.md").read_text()
    assert f"**Warning:** {n_test} of the episodes written are from the env's held-out `test` tasks" in card
    assert "  - split: train\n" in card and "  - split: test\n" not in card  # one split, said to mix them

    kept = subprocess.run([sys.executable, "-m", "trajrec", "export", str(split_run), "--format", fmt, "--out",
                           f"{tmp_path / 'train'}/", "--where", "split=train"], capture_output=True, text=True,
                          timeout=120)
    assert kept.returncode == 0 and "warning" not in kept.stderr, kept.stderr
    assert "Warning" not in (tmp_path / "train" / "README.md").read_text()
