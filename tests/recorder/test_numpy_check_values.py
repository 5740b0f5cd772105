"""A check whose value is a numpy scalar (``np.all(...)``, ``np.True_``, ``np.int64(1)``) gives the verdict its Python
value gives, in every place that decides "passed": the recorded summary's outcome and counts, ``--where``, the
report, the rules of ``label auto``, the parquet ``check_passed`` column and the kto ``label``. The recorder used
to decide on the raw numpy value (no verdict) while the readers saw the stored Python value (a verdict)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trajrec import Recorder, open_episode, open_run
from trajrec.recorder.model import verdict
from trajrec.replay.autolabel import rule_proposals
from trajrec.replay.exports import export
from trajrec.replay.report import build_report

# (value, the verdict it must give: True passed, False failed, None no verdict)
CASES = [(np.True_, True), (np.bool_(False), False), (np.int64(1), True), (np.float32(0.0), None)]
IDS = ["np.True_", "np.bool_(False)", "np.int64(1)", "np.float32(0.0)"]


class _Env:
    """Reports its action as an episode check with the step (``info["checks"]``), as an env computing success does."""

    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[str, dict[str, Any]]:
        return "start", {}

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        checks = [] if action is None else [{"target": "episode", "kind": "environment", "judge": "env@1", "value": action}]
        return "done", 0.0, True, False, {"checks": checks}


def _record(run: Path, value: Any) -> list[str]:
    """Two episodes judged ``value``: one by the env's ``info["checks"]``, one by ``env.check``."""
    paths = []
    env = Recorder(_Env(), run)
    env.reset(seed=0)
    env.step(value)
    env.close()
    paths.append(env.episode_path)
    env = Recorder(_Env(), run)
    env.reset(seed=1)
    env.step(None)
    env.check(value, kind="rule", judge="api@1", target="episode")
    env.close()
    paths.append(env.episode_path)
    return paths


@pytest.mark.parametrize(("value", "want"), CASES, ids=IDS)
def test_verdict_reads_numpy_scalars_as_their_python_value(value: Any, want: bool | None) -> None:
    assert verdict(value) is want
    assert verdict(value) is verdict(value.item())


@pytest.mark.parametrize(("value", "want"), CASES, ids=IDS)
def test_every_consumer_gives_the_same_verdict(tmp_path: Path, value: Any, want: bool | None) -> None:
    run = tmp_path / "run"
    paths = _record(run, value)
    outcome = {True: "passed", False: "failed", None: "terminated"}[want]

    # The recorded summary: outcome and counts, and the stored value as Python's.
    for path in paths:
        with open_episode(path) as ep:
            assert ep.summary["outcome"] == outcome, path
            counts = ep.summary["checks"]
            assert (counts["passed"], counts["failed"]) == ((1, 0) if want else (0, 1) if want is False else (0, 0))
            [check] = [c for c in ep.checks if c.target == "episode"]
            assert check.passed is want
            # The rules of `label auto --rules`: an episode-verdict label exactly when there is a verdict.
            episode_labels = [p.value for p in rule_proposals(ep) if p.target == "episode"]
            assert episode_labels == ([] if want is None else [1 if want else -1])

    # --where
    assert len(open_run(run).where("passed")) == (2 if want else 0)
    assert len(open_run(run).where("failed")) == (2 if want is False else 0)

    # The report: solve rate and verdict counts.
    report = build_report([run])
    [task] = report["difficulty"]["tasks"]
    assert (task["judged"], task["solved"]) == ((0, 0) if want is None else (2, 2 if want else 0))
    [by_kind] = [r for r in report["checks"]["verdicts_by_kind"] if r["kind"] == "environment"]
    assert (by_kind["passed"], by_kind["failed"], by_kind["other"]) == (
        (1, 0, 0) if want else (0, 1, 0) if want is False else (0, 0, 1))

    # parquet's check_passed and kto's label.
    import pyarrow.parquet as pq

    export([run], "parquet", tmp_path / "x.parquet")
    table = pq.read_table(tmp_path / "x.parquet").to_pydict()
    assert table["check_passed"] == [want, want]
    assert table["outcome"] == [outcome, outcome]
    # kto: labels as for the same checks given as Python values (a score, such as 0.0, ranks by its sign).
    plain = tmp_path / "plain"
    _record(plain, value.item())
    labels = {}
    for name, source in (("numpy", run), ("python", plain)):
        export([source], "kto", tmp_path / f"{name}.jsonl")
        rows = [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
        labels[name] = sorted((r["trajrec"]["outcome"], r["label"]) for r in rows)
    assert labels["numpy"] == labels["python"]
    if want is not None:
        assert labels["numpy"] == [(outcome, want), (outcome, want)]
