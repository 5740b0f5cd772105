"""``export --format parquet --partition-by split|env``: every split or env id gets its own folder (values that
would share a name, even only on a case-insensitive file system, and values a file name cannot hold), every row
reads back with pyarrow and ``datasets``, the card names the real folders with glob characters escaped, and a
failed export leaves no temporary folder."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec.recorder import Recorder
from trajrec.recorder.errors import TrajrecIOError
from trajrec.replay.exports import ExportOptions, export
from trajrec.replay.exports import parallel
from trajrec.replay.exports.parquet import _fold, folder_name

#: Splits that share a folder name as ``/`` -> ``_`` made them (or on case-insensitive or Windows file systems), a
#: glob character, names ``datasets`` cannot take as split names, a value spelling the "no split" folder.
SPLITS = ["train", "a/b", "a_b", "Train", "test", "test ", "*", "..", "__none__", "val", "2024"]
#: Values a file name cannot hold as they are: NUL, longer than 255 bytes; and the name NUL would become.
ODD = ["a\x00b", "a_b", "x" * 300, "é" * 200]


class _Env(gym.Env):
    observation_space = gym.spaces.Discrete(3)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        super().reset(seed=seed)
        self._t = 0
        return 0, {}

    def step(self, action):  # type: ignore[no-untyped-def]
        self._t += 1
        return self._t, 1.0, self._t >= 2, False, {}


def _record(out: Path, splits: list[str | None], steps: int = 2) -> Path:
    """One episode of ``steps`` steps per split (None: an episode without one), in this order."""
    for k, split in enumerate(splits):
        env = Recorder(_Env(), out, task={"id": f"t{k}", **({"split": split} if split is not None else {})})
        env.reset(seed=k)
        for _ in range(steps):
            env.step(0)
        env.close()
    return out


def _rows_by_folder(folder: Path) -> dict[str, list[dict]]:
    pq = pytest.importorskip("pyarrow.parquet")
    out: dict[str, list[dict]] = {}
    for f in sorted(folder.rglob("*.parquet")):
        out.setdefault(f.parent.name, []).extend(pq.read_table(f).to_pylist())  # each file whole and readable
    return out


@pytest.fixture(scope="module")
def split_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _record(tmp_path_factory.mktemp("names") / "run", [*SPLITS, None])


def test_folder_names_are_distinct_as_file_systems_compare_and_keep_plain_names() -> None:
    taken: set[str] = set()
    names = [folder_name("split", v, taken) for v in [*SPLITS, None, "a\x00b", "x" * 300]]
    assert len({_fold(n) for n in names}) == len(names)  # also on case-insensitive file systems
    assert names[:3] == ["split=train", "split=a_b", f"split=a_b-{names[2][-12:]}"]
    assert names[3].startswith("split=Train-") and names[SPLITS.index("val")] == "split=val"
    assert all("\x00" not in n and len(n.encode()) <= 255 for n in names)
    assert folder_name("env", "trajrec/Shell-v0", set()) == "env=trajrec_Shell-v0"  # as before
    # stable: the same keys in the same order give the same names
    again: set[str] = set()
    assert [folder_name("split", v, again) for v in [*SPLITS, None, "a\x00b", "x" * 300]] == names


@pytest.mark.parametrize("workers", [1, 2])
def test_colliding_splits_get_their_own_folders_and_splits(split_run: Path, tmp_path: Path, workers: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(parallel, "HEAD_START", False)
    folder = tmp_path / "pq"
    rep = export([split_run], "parquet", folder, options=ExportOptions(partition_by="split"), workers=workers)
    values = [*SPLITS, None]
    assert rep.rows == 2 * len(values)
    by_folder = _rows_by_folder(folder)
    assert len(by_folder) == len(values)  # one folder per split value
    assert sorted((r["split"] for rows in by_folder.values() for r in rows), key=str) == sorted(
        [v for v in values for _ in range(2)], key=str)  # every row read back
    for rows in by_folder.values():
        assert len({r["split"] for r in rows}) == 1  # no folder mixes two splits
    assert {"split=val", "split=2024", "split=*", "split=.."} <= set(by_folder)  # plain names kept
    # of values sharing a name (train/Train, a/b/a_b, test/"test ", None/__none__) the first keeps it, the others
    # get a hash: which is first is the order the episodes are listed in
    hashed = [name for name in by_folder if re.search(r"-[0-9a-f]{12}$", name)]
    assert len(hashed) == 4 and len(by_folder) - len(hashed) == 8
    train = next(name for name, rows in by_folder.items() if rows[0]["split"] == "train")

    card = (folder / "README.md").read_text()
    assert f'  - split: train\n    path: "{train}/*.parquet"\n' in card
    assert '    path: "split=[*]/*.parquet"\n' in card  # escaped: matches only the folder `split=*`
    ds = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf"))
    assert len(ds) == len(values)  # no two splits merged
    got = {name: Counter(ds[name]["split"]) for name in ds}
    assert all(len(c) == 1 for c in got.values())
    assert sorted((v for c in got.values() for v in c.elements()), key=str) == sorted(
        [v for v in values for _ in range(2)], key=str)
    assert got["train"] == {"train": 2} and got["test"] == {"test": 2} and got["unassigned"] == {None: 2}
    assert got["a_b"] == {"a_b": 2} and got["val"] == {"val": 2} and got["2024"] == {"2024": 2}


def test_workers_write_the_same_folders_and_bytes(split_run: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "HEAD_START", False)
    run = _record(tmp_path / "run", ["Train", "a/b", "train", "a_b", "*"] * 3)  # several batches
    outs = {}
    for workers in (1, 2):
        folder = tmp_path / str(workers) / "pq"
        export([run], "parquet", folder, options=ExportOptions(partition_by="split", shard_rows=3),
               workers=workers)
        outs[workers] = {str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*") if f.is_file()}
    assert len(outs[1]) > 6 and outs[2] == outs[1]


def test_env_ids_sharing_a_folder_name_get_two_folders(tmp_path: Path) -> None:
    for eid in ("trajrec_test_part/E-v0", "trajrec_test_part_E-v0"):
        if eid not in gym.registry:
            gym.register(eid, entry_point=_Env)
    run = tmp_path / "run"
    for eid in ("trajrec_test_part/E-v0", "trajrec_test_part_E-v0"):
        for k in range(3):
            env = Recorder(gym.make(eid), run)
            env.reset(seed=k)
            env.step(0)
            env.step(0)
            env.close()
    folder = tmp_path / "pq"
    proc = subprocess.run([sys.executable, "-m", "trajrec", "export", str(run), "--format", "parquet",
                           "--partition-by", "env", "--out", f"{folder}/"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    by_folder = _rows_by_folder(folder)
    assert len(by_folder) == 2 and "env=trajrec_test_part_E-v0" in by_folder
    assert sorted(Counter(r["env_id"] for rows in by_folder.values() for r in rows).items()) == [
        ("trajrec_test_part/E-v0", 6), ("trajrec_test_part_E-v0", 6)]


def test_values_no_file_name_holds_export_without_a_traceback(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    run = _record(tmp_path / "run", ODD)
    folder = tmp_path / "pq"
    proc = subprocess.run([sys.executable, "-m", "trajrec", "export", str(run), "--format", "parquet",
                           "--partition-by", "split", "--out", f"{folder}/"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    by_folder = _rows_by_folder(folder)
    assert len(by_folder) == len(ODD)
    assert Counter(r["split"] for rows in by_folder.values() for r in rows) == {v: 2 for v in ODD}
    assert all(len(name.encode()) <= 255 and "\x00" not in name for name in by_folder)
    ds = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf"))
    assert len(ds) == len(ODD) and sum(d.num_rows for d in ds.values()) == 2 * len(ODD)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_an_export_that_fails_at_the_end_leaves_no_temporary_folder(split_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pq"

    class Intruder:
        """Someone writes into the output folder while the export runs: it cannot be replaced at the end."""

        def advance(self, n: int) -> None:
            folder.mkdir(exist_ok=True)
            (folder / "theirs.txt").write_text("not the export's")

    with pytest.raises(TrajrecIOError, match="cannot finish"):
        export([split_run], "parquet", f"{folder}/", options=ExportOptions(partition_by="split"),
               progress=Intruder())
    assert [p.name for p in tmp_path.iterdir()] == ["pq"]  # no .pq.tmp-PID left
    assert [p.name for p in folder.iterdir()] == ["theirs.txt"]
