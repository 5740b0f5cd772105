"""Automatic labelers: rules trajrec-rules@2 on the fixture run, idempotent reruns, the judge runner."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from trajrec.recorder import TrajrecUsageError, open_episode
from trajrec.replay.autolabel import (RULES_JUDGE, JudgeError, Proposal, StepContext, apply_proposals, judge_id_of,
                              label_with_judge, label_with_rules, load_judge, rule_proposals)
from trajrec.replay.labels import LabelStore


def path_of(run: Path, eid: str) -> Path:
    return run / f"{eid}.msgpack.zst"


def summary(proposals: list[Proposal]) -> list[tuple]:
    return [(p.target, p.value, p.tags) for p in proposals]


def test_rules_on_the_fixture_episodes(run_dir: Path, ids: dict[int, str]) -> None:
    with open_episode(path_of(run_dir, ids[0])) as ep:
        passed = rule_proposals(ep)
    assert summary(passed) == [
        (0, 1, ("on-passing-path",)),
        (1, -1, ("failed",)),
        (2, -1, ("failed", "repeated-mistake")),
        (3, 1, ("useful-recovery", "on-passing-path")),
        (4, 1, ("on-passing-path",)),
        (5, 1, ("on-passing-path",)),
        ("episode", 1, ()),
    ]
    by = {p.target: p.rationale for p in passed}
    assert by[1] == "failed: tool_error: no such file"
    assert by[2] == "failed: tool_error: no such file; repeats the failed action of step 1 unchanged"
    assert by[3] == "recovers failed steps 1, 2 of the same operation"
    assert by["episode"] == "terminal check answer-match@1 passed: answer matches"
    with open_episode(path_of(run_dir, ids[1])) as ep:
        failed = rule_proposals(ep)
    assert summary(failed) == [
        (0, 0, ("in-failed-episode",)),  # every step of a failed episode is labeled: neutral, with its reason
        (1, -1, ("failed",)),
        (2, -1, ("failed", "repeated-mistake")),
        (3, -1, ("terminal-failure",)),
        ("episode", -1, ()),
    ]
    assert failed[-1].rationale == "terminal check answer-match@1 failed: expected 'milk', got 'eggs'"
    assert failed[0].rationale == ("a step of an episode whose terminal check failed; the rules cannot tell whether "
                                   "it helped")
    with open_episode(path_of(run_dir, ids[2])) as ep:
        # A changed retry that fails again is a failure, not a repeated mistake; no verdict, no outcome labels.
        assert summary(rule_proposals(ep)) == [(0, -1, ("failed",)), (1, -1, ("failed",))]


class Counter:
    def __init__(self) -> None:
        self.done = 0

    def advance(self, n: int = 1) -> None:
        self.done += n


def test_rerunning_the_rules_adds_nothing(run_dir: Path) -> None:
    bar = Counter()
    first = label_with_rules([run_dir], progress=bar)
    assert (first.episodes, first.added, first.updated, first.deleted) == (3, 14, 0, 0)
    assert bar.done == 13  # steps of the three episodes
    store = LabelStore(run_dir)
    size = sum(f.stat().st_size for f in store.dir.glob("*.jsonl"))
    again = label_with_rules([run_dir])
    assert (again.added, again.updated, again.unchanged, again.deleted) == (0, 0, 14, 0)
    assert sum(f.stat().st_size for f in store.dir.glob("*.jsonl")) == size  # not a byte appended
    labs = LabelStore(run_dir).current(judge=RULES_JUDGE)
    assert len(labs) == 14 and {lab.kind for lab in labs} == {"rule"}


def test_changed_proposals_update_and_withdrawn_ones_are_deleted(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    r1 = apply_proposals(store, "ep", [Proposal(0, 1, "a"), Proposal(1, -1, "b")], judge="x@1", kind="rule")
    assert (r1.added, r1.updated) == (2, 0)
    old = store.current("ep", target=0)[0]
    r2 = apply_proposals(store, "ep", [Proposal(0, -1, "a2"), Proposal(1, -1, "b")], judge="x@1", kind="rule")
    assert (r2.added, r2.updated, r2.unchanged) == (0, 1, 1)
    new = store.current("ep", target=0)[0]
    assert new.supersedes == old.id and new.value == -1 and new.rationale == "a2"
    # A rating +1 and a verdict True are different values (1 == True in Python).
    r3 = apply_proposals(store, "ep", [Proposal(0, -1, "a2"), Proposal(1, True, "b")], judge="x@1", kind="rule")
    assert r3.updated == 1
    r4 = apply_proposals(store, "ep", [Proposal(1, True, "b")], judge="x@1", kind="rule")
    assert r4.deleted == 1 and store.labeled_steps("ep") == {1}
    # Labels outside the scope of a run are left alone.
    r5 = apply_proposals(store, "ep", [], judge="x@1", kind="rule", scope=[0])
    assert r5.deleted == 0 and store.labeled_steps("ep") == {1}


def test_duplicates_from_two_concurrent_labelers_collapse(tmp_path: Path) -> None:
    a, b = LabelStore(tmp_path), LabelStore(tmp_path)
    apply_proposals(a, "ep", [Proposal(0, 1, "x")], judge="x@1", kind="rule")
    apply_proposals(b, "ep", [Proposal(0, 1, "x")], judge="x@1", kind="rule")  # b could not see a's label
    merged = LabelStore(tmp_path)
    assert len(merged.current("ep")) == 2
    res = apply_proposals(merged, "ep", [Proposal(0, 1, "x")], judge="x@1", kind="rule")
    assert (res.unchanged, res.deleted) == (1, 1) and len(merged.current("ep")) == 1


JUDGE_MODULE = '''
    calls = []

    def rubric(ctx):
        calls.append(ctx.index)
        assert ctx["task"]["text"] == "Find what to buy and submit it."
        assert ctx.tools[0]["function"]["name"] == "cat"
        assert len(ctx.previous) == ctx.index and ctx.n_steps >= 1
        if ctx.step.failure is not None:
            return {"value": -1, "rationale": "the tool failed", "tags": ["judged-failure"]}
        if ctx.index == 0:
            return None  # nothing to say
        return (1, f"fine after {len(ctx.previous)} steps")

    rubric.judge_id = "model:fixture-rubric@1"

    def plain(ctx):
        return 0

    def broken(ctx):
        if ctx.index == 2:
            raise ValueError("model timed out")
        return 1

    def bad_value(ctx):
        return {"rationale": "forgot the value"}

    def episode_judge(ctx):
        return {"value": "pass" if ctx.summary["outcome"] == "passed" else "fail", "rationale": ctx.summary["outcome"]}

    episode_judge.targets = "episode"
'''


@pytest.fixture
def judges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    mod = tmp_path / "fixture_judges.py"
    mod.write_text(textwrap.dedent(JUDGE_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fixture_judges", raising=False)  # each test imports its own copy
    yield mod
    sys.modules.pop("fixture_judges", None)


def test_a_judge_callable_labels_steps(run_dir: Path, ids: dict[int, str], judges: Path) -> None:
    fn = load_judge("fixture_judges:rubric")
    res = label_with_judge([run_dir], fn)
    assert res.judge == "model:fixture-rubric@1" and res.episodes == 3
    store = LabelStore(run_dir)
    labs = {lab.target: lab for lab in store.current(ids[0], judge="model:fixture-rubric@1")}
    assert sorted(labs) == [1, 2, 3, 4, 5]  # step 0: the judge said nothing
    assert (labs[1].value, labs[1].kind, labs[1].tags, labs[1].rationale) == (-1, "judge", ("judged-failure",),
                                                                             "the tool failed")
    assert (labs[3].value, labs[3].rationale) == (1, "fine after 3 steps")
    # Rerun: steps already judged are skipped (model calls cost money) and nothing is appended.
    import fixture_judges  # type: ignore[import-not-found]

    fixture_judges.calls.clear()
    again = label_with_judge([run_dir], fn)
    # Step 0 of the passed and the failed episode got no label (step 0 of the third one failed): 13 - 2 judged.
    assert (again.added, again.skipped) == (0, 11)
    assert sorted(fixture_judges.calls) == [0, 0]  # only the steps it said nothing about
    # --rejudge asks again; a changed answer updates the label.
    fixture_judges.rubric.judge_id = "model:fixture-rubric@1"
    rejudged = label_with_judge([run_dir], fixture_judges.rubric, rejudge=True)
    assert (rejudged.added, rejudged.updated, rejudged.skipped) == (0, 0, 0) and rejudged.unchanged == 11


def test_judge_ids_and_file_specs(run_dir: Path, judges: Path) -> None:
    plain = load_judge(f"{judges}:plain")
    assert judge_id_of(plain) == "model:fixture_judges.plain"
    assert judge_id_of(load_judge("fixture_judges:plain")) == "model:fixture_judges.plain"
    res = label_with_judge([run_dir], plain)
    assert res.added == 13
    ep = label_with_judge([run_dir], load_judge("fixture_judges:episode_judge"))
    assert ep.added == 3
    verdicts = {lab.value for lab in LabelStore(run_dir).current(judge="model:fixture_judges.episode_judge")}
    assert verdicts == {"pass", "fail"}


def test_a_failing_judge_says_where_and_keeps_earlier_labels(run_dir: Path, ids: dict[int, str], judges: Path) -> None:
    with pytest.raises(JudgeError, match=r"judge model:fixture_judges\.broken raised ValueError: model timed out "
                                         r"\(at fixture_judges\.py:\d+\) on episode .* step 2; the labels it gave "
                                         r"before are saved, rerun to resume"):
        label_with_judge([run_dir], load_judge("fixture_judges:broken"))
    kept = LabelStore(run_dir).current(judge="model:fixture_judges.broken")
    assert {lab.target for lab in kept} == {0, 1}
    with pytest.raises(JudgeError, match=r"returned a dict without 'value' \(keys: rationale\)"):
        label_with_judge([run_dir], load_judge("fixture_judges:bad_value"))


def test_load_judge_errors(judges: Path) -> None:
    with pytest.raises(TrajrecUsageError, match=r"--judge expects MODULE:FUNCTION \(e\.g\. myjudges:rubric\) or "
                                                r"FILE\.py:FUNCTION, got 'fixture_judges'"):
        load_judge("fixture_judges")
    with pytest.raises(TrajrecUsageError,
                       match=r"fixture_judges has no attribute 'rubrik' \(did you mean 'rubric'\?\)"):
        load_judge("fixture_judges:rubrik")
    with pytest.raises(TrajrecUsageError, match="cannot import judge module 'no_such_judges'"):
        load_judge("no_such_judges:x")
    with pytest.raises(TrajrecUsageError, match="is a list, not a callable judge"):
        load_judge("fixture_judges:calls")


def test_step_context_reads_like_a_dict(run_dir: Path, ids: dict[int, str]) -> None:
    seen: list[StepContext] = []
    label_with_judge([path_of(run_dir, ids[0])], lambda ctx: seen.append(ctx))
    ctx = seen[3]
    assert ctx["index"] == 3 == ctx.step.index and ctx.get("nope", 7) == 7
    assert [p["index"] for p in ctx.previous] == [0, 1, 2]
    assert ctx.previous[1]["failed"] and ctx.previous[1]["failure"]["kind"] == "tool_error"
    assert ctx.previous[0]["thought"] == "Look at the notes first."
    with pytest.raises(KeyError):
        ctx["_history"]
