"""The parquet export's label columns made from an episode's label lines read as text
(``parquet._line_label_columns``: each distinct middle text's columns once, no candidate per step) are the columns
the candidates' path makes (``parquet._label_columns``), on random label sets: ratings, bools, floats, categories,
scores, tags, rationales and authors, several judges of which the preference drops some, episode labels, unlabeled
steps, two labels on a step and recorded checks on steps (which keep the candidates' path), under every label map."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import pytest

pq = pytest.importorskip("pyarrow.parquet")

from trajrec import open_episode  # noqa: E402
from trajrec.replay.exports import ExportOptions, export  # noqa: E402
from trajrec.replay.exports import parquet  # noqa: E402
from trajrec.replay.label_store import LabelStore  # noqa: E402
from trajrec.replay.exports.choice import LABEL_MAPS  # noqa: E402

VALUES: list[Any] = [1, 0, -1, True, False, 0.5, -0.25, 0.0, 1.0, "style", "off-topic"]
JUDGES = [("rule", "trajrec-rules@2"), ("judge", "model:x"), ("judge", "model:y@2"), ("environment", "env:check"),
          ("rule", "my-rules@1")]
PREFER = ["human,judge,rule", "rule", "model:*", "environment,rule", "my-rules@1,model:x"]


def _label(store: LabelStore, rng: random.Random, eid: str, target: Any) -> None:
    kind, judge = rng.choice(JUDGES)
    store.add(eid, target, rng.choice(VALUES), kind=kind, judge=judge,
              score=rng.choice([None, None, 0.25, 1.0, -0.0, 7]),
              rationale=rng.choice([None, "", "because", "x" * 300]) if rng.random() > 0.02 else "é (not ASCII)",
              tags=rng.choice([(), ("a",), ("a", "b"), ("b", "a")]),
              author=rng.choice([None, "ana", "bo"]), time=rng.choice([None, 1.5, 1796039188.25 + rng.random()]))


def _episodes(run: Path) -> list[tuple[str, str, int]]:
    """``(folder name, episode id, steps)`` of each episode of the run (its episodes are in subfolders)."""
    out = []
    for path in sorted(run.rglob("*.msgpack.zst")):
        with open_episode(path) as ep:
            out.append((path.parent.name, ep.episode_id, len(ep)))
    assert len(out) > 20
    return out


def _fresh_stores(run: Path) -> dict[str, LabelStore]:
    """A label store per subfolder of the run, the rules' labels it had removed."""
    stores = {}
    for folder in sorted({p.parent for p in run.rglob("*.msgpack.zst")}):
        shutil.rmtree(folder / ".trajrec" / "labels", ignore_errors=True)
        stores[folder.name] = LabelStore(folder)
    return stores


def test_label_columns_from_lines_are_the_candidates_columns(builtin_run: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    episodes = _episodes(builtin_run)
    calls = []
    real = parquet._line_label_columns

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0].episode_id)
        return real(*args, **kwargs)

    monkeypatch.setattr(parquet, "_line_label_columns", counted)
    rng = random.Random(9)
    took = 0
    for case in range(8):
        run = tmp_path / f"run{case}"
        shutil.copytree(builtin_run, run)
        stores = _fresh_stores(run)
        for folder, eid, n in episodes:
            store = stores[folder]
            style = rng.choice(["every", "some", "none", "twice", "episode"])
            if style == "none":
                continue
            steps = list(range(n))
            if style == "some":
                steps = rng.sample(steps, rng.randint(0, n))
            rng.shuffle(steps)  # lines in no order: read_lines sorts them as the store does
            for i in steps:
                _label(store, rng, eid, i)
            if style == "twice" and n:
                _label(store, rng, eid, rng.randrange(n))  # two labels on a step: the candidates' path
            if style == "episode" or rng.random() < 0.3:
                _label(store, rng, eid, "episode")
        for store in stores.values():
            store.close()
        for label_map in LABEL_MAPS:
            options = ExportOptions(label_map=label_map, prefer=rng.choice(PREFER))
            tables = []
            for fast in (True, False):
                monkeypatch.setattr(parquet, "_FAST_LABELS", [fast])
                calls.clear()
                out = tmp_path / f"{case}-{label_map}-{fast}.parquet"
                export([run], "parquet", out, options=options)
                tables.append(pq.read_table(out))
                if fast:
                    took += len(calls)
                else:
                    assert not calls
            assert tables[0].equals(tables[1]), (case, label_map)
            assert tables[0].schema.metadata == tables[1].schema.metadata
    # Many episodes took the lines' path (the rest: two labels on a step, checks on steps, no lines read as text,
    # columns met before). How many depends on which random label set each episode drew, and the episodes' order
    # follows their random ids: 148-244 of 768 in 7 runs, so the bound is a tenth.
    assert took > 8 * len(LABEL_MAPS) * len(episodes) // 10


def test_column_values_and_types_match_on_a_labeled_episode(builtin_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond the tables: the Python values (and their types) of the label columns are the same on both paths."""
    from trajrec.replay.exports.base import EpisodeView
    from trajrec.replay.exports.source import Source

    stores = _fresh_stores(builtin_run)
    rng = random.Random(3)
    for folder, eid, n in _episodes(builtin_run):
        for i in rng.sample(range(n), n // 2):
            _label(stores[folder], rng, eid, i)
    for store in stores.values():
        store.close()
    options = ExportOptions(prefer="rule,model:*")
    seen = 0
    for ref in Source([builtin_run], join_labels=True):
        cols = []
        for fast in (True, False):
            monkeypatch.setattr(parquet, "_FAST_LABELS", [fast])
            with ref.open() as ep:
                view = EpisodeView(ref, ep, ref.joined_labels(), options)
                seen += fast and parquet._usual_lines(view) is not None
                cols.append(parquet.episode_columns(view))
        assert repr(cols[0]) == repr(cols[1])
        assert [[type(v) for v in c] for c in cols[0][1]] == [[type(v) for v in c] for c in cols[1][1]]
    assert seen


def test_rows_given_to_python_users_own_their_lists(builtin_run: Path) -> None:
    """The export shares list values between rows (a middle text's tags and judges, steps' empty recoveries);
    ``Run.steps()`` rows each hold their own: changing one row's list changes no other row."""
    from trajrec import open_run

    rows = list(open_run(builtin_run).steps())
    assert len(rows) > 20
    for name in ("label_tags", "label_judges", "recovers"):
        before = [list(r[name]) for r in rows]
        rows[0][name].append("changed")
        assert [r[name] for r in rows[1:]] == before[1:], name
        assert len({id(r[name]) for r in rows}) == len(rows), name


def test_coded_label_columns_through_row_groups_and_shards(builtin_run: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The label columns the export holds as distinct values and codes (``parquet.Coded``: joined over episodes,
    cut where row groups and shards end, their unused values dropped) write the tables the plain lists write:
    random labels (a rationale of its own on many steps, so the values add up), a file and folders of small
    shards, with and without partitions."""
    episodes = _episodes(builtin_run)
    stores = _fresh_stores(builtin_run)
    rng = random.Random(21)
    for folder, eid, n in episodes:
        if rng.random() < 0.15:
            continue  # unlabeled episodes between labeled ones
        for i in range(n):
            if rng.random() < 0.9:
                if rng.random() < 0.5:
                    stores[folder].add(eid, i, rng.choice([1, -1, 0]), kind="rule", judge="trajrec-rules@2",
                                       rationale=f"step {i} of {eid}", tags=["t"] if i % 3 else [])
                else:
                    _label(stores[folder], rng, eid, i)
        if rng.random() < 0.5:
            _label(stores[folder], rng, eid, "episode")
    for store in stores.values():
        store.close()
    monkeypatch.setattr(parquet, "_KEEP_VALUES", 4)  # unused values dropped at every cut
    cuts = []
    real = parquet.Coded.__delitem__

    def counted(self: Any, cut: slice) -> None:
        cuts.append(len(self.values))
        real(self, cut)

    monkeypatch.setattr(parquet.Coded, "__delitem__", counted)
    for name, out_name, options in [
            ("file", "all.parquet", ExportOptions()),
            ("shards", "shards", ExportOptions(shard_rows=37, prefer="rule,model:*")),
            ("split", "split", ExportOptions(shard_rows=53, partition_by="split", label_map="float"))]:
        tables = []
        for few in (True, False):
            monkeypatch.setattr(parquet, "_FEW", [few])
            out = tmp_path / f"{name}-{few}" / out_name
            export([builtin_run], "parquet", out, options=options)
            files = [out] if out.is_file() else sorted(out.rglob("*.parquet"))
            tables.append([(f.relative_to(out) if out.is_dir() else f.name, pq.read_table(f)) for f in files])
        assert [f for f, _ in tables[0]] == [f for f, _ in tables[1]], name
        for (_, a), (_, b) in zip(*tables):
            assert a.equals(b), name
            assert a.schema.metadata == b.schema.metadata
    assert max(cuts) > 4  # unused values were dropped
