"""Golden files for every export format (``tests/labels/golden/<format>.json``).

The source run is :data:`GOLDEN_SOURCE`: ``None`` records the deterministic fixture run of ``conftest.py``; set it
to a folder of recorded runs (e.g. ``"sample_runs"``) to pin exports of real runs instead. The run is copied to a
temporary folder, labeled with the rules and two human labels, then exported in each format. Volatile values
(times, hosts, label ids, generated episode ids, versions) are normalized before comparing.

Update the golden files after an intended change with::

    TRAJREC_UPDATE_GOLDEN=1 python -m pytest tests/labels/test_golden_exports.py
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from labels_fixture_run import record_fixture_run
from trajrec.recorder import read_index
from trajrec.replay.autolabel import label_with_rules
from trajrec.replay.exports import ExportOptions, episode_files, export
from trajrec.replay.labels import LabelStore

#: Folder of runs to pin, relative to the repository root; None: the fixture run recorded by the test.
GOLDEN_SOURCE: str | None = "sample_runs"
#: At most this many episodes go into the golden files: taken in turn from each env (by task id, seed, episode id).
GOLDEN_MAX_EPISODES = 8

GOLDEN_DIR = Path(__file__).parent / "golden"
REPO = Path(__file__).resolve().parents[2]
UPDATE = os.environ.get("TRAJREC_UPDATE_GOLDEN") == "1"

_TIME_KEYS = {"time", "duration", "start_time", "end_time"}
_VOLATILE_PROVENANCE = {"host", "pid", "argv", "platform", "python", "packages", "code_revision", "start_time",
                        "run_id", "env_package", "recorder"}
_HEX32 = re.compile(r"\b[0-9a-f]{32}\b")


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The labeled run, and an alias for each episode id stable across re-recordings."""
    dst = tmp_path_factory.mktemp("golden") / "run"
    if GOLDEN_SOURCE is None:
        record_fixture_run(dst)
    else:
        shutil.copytree(REPO / GOLDEN_SOURCE, dst)  # labels are written into the copy, never into the source
    per_env: dict[str, list[tuple[str, str, str, Path]]] = {}
    for f in episode_files([dst]):
        h = read_index(f)["header"]
        task = h.get("task") or {}
        per_env.setdefault(str(task.get("env_id")), []).append(
            (str(task.get("id")), str(task.get("seed")), h["episode_id"], f))
    queues = [sorted(per_env[env]) for env in sorted(per_env)]
    keyed = []
    while any(queues):
        keyed.extend(q.pop(0) for q in queues if q)
    keyed, dropped = keyed[:GOLDEN_MAX_EPISODES], keyed[GOLDEN_MAX_EPISODES:]
    for *_, f in dropped:
        f.unlink()
    aliases = {}
    for n, (task_id, seed, eid, _f) in enumerate(keyed):
        aliases[eid] = f"<episode {n}: {task_id} seed {seed}>" if GOLDEN_SOURCE is None else eid
    label_with_rules([dst])
    first = keyed[0][2]
    store = LabelStore(keyed[0][3].parent)  # the folder that holds its file, where every reader looks for its labels
    lab = store.add(first, 0, 1, judge="human:ana", rationale="good first look", tags=["careful"])
    store.update(lab.id, value=0, rationale="fine, but slow")
    store.add(first, "episode", "pass", judge="human:bo")
    return dst, aliases


def normalize(value: Any, aliases: dict[str, str], ids: dict[str, str] | None, key: str | None = None) -> Any:
    """Replace volatile values; with ``ids``, number label ids in order of appearance (else keep them)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "provenance" and isinstance(v, dict):
                out[k] = {pk: ("<volatile>" if pk in _VOLATILE_PROVENANCE else normalize(pv, aliases, ids, pk))
                          for pk, pv in v.items()}
            else:
                out[k] = normalize(v, aliases, ids, k)
        return out
    if isinstance(value, list):
        return [normalize(v, aliases, ids) for v in value]
    if key in _TIME_KEYS and isinstance(value, (int, float, datetime.datetime)):
        return "<time>"
    if isinstance(value, str):
        for eid, alias in aliases.items():
            if eid in value:
                value = value.replace(eid, alias)
        if ids is None:
            return value
        return _HEX32.sub(lambda m: ids.setdefault(m.group(), f"<id {len(ids)}>"), value)
    return value


def decode_records_row(r: dict[str, Any]) -> dict[str, Any]:
    """A records row with its JSON-text fields decoded (so volatile values inside them can be normalized)."""
    out = dict(r)
    for k in ("task", "provenance", "summary", "checks"):
        out[k] = json.loads(r[k])
    out["reset"] = {k: json.loads(v) if isinstance(v, str) else v for k, v in r["reset"].items()}
    out["steps"] = [{k: json.loads(v) if isinstance(v, str) else v for k, v in st.items()} for st in r["steps"]]
    return out


def produce(fmt: str, run: Path, aliases: dict[str, str], tmp: Path) -> list[Any]:
    out = tmp / f"golden.{fmt}"
    export([run], fmt, out, options=ExportOptions(unlabeled="truncate", system="You are a careful agent."))
    if fmt == "parquet":
        import pyarrow.parquet as pq

        data = pq.read_table(out).to_pylist()
    else:
        data = [json.loads(line) for line in out.read_text().splitlines()]
    if fmt == "records":
        data = [decode_records_row(r) for r in data]
    # Rows in a stable order first (export order follows file names, which hold random parts), then label ids
    # numbered in that order.
    rows = [normalize(r, aliases, None) for r in data]
    rows.sort(key=lambda r: (r["episode_id"] if "episode_id" in r else r["trajrec"]["episode_id"], r.get("step", -1)))
    ids: dict[str, str] = {}
    return [normalize(r, {}, ids) for r in rows]


@pytest.mark.parametrize("fmt", ["records", "trl-stepwise", "chat", "parquet", "kto"])
def test_golden(fmt: str, golden_run: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    run, aliases = golden_run
    got = produce(fmt, run, aliases, tmp_path)
    path = GOLDEN_DIR / f"{fmt}.json"
    text = json.dumps(got, indent=1, ensure_ascii=False, sort_keys=False) + "\n"
    if UPDATE:
        GOLDEN_DIR.mkdir(exist_ok=True)
        path.write_text(text)
        pytest.skip(f"wrote {path}")
    assert path.exists(), f"no golden file {path}; create it with TRAJREC_UPDATE_GOLDEN=1"
    want = json.loads(path.read_text())
    assert got == want, (f"{fmt} export differs from {path}; if the change is intended, rerun with "
                         "TRAJREC_UPDATE_GOLDEN=1 and review the diff")
