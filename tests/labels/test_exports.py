"""Exports: each format loads with `datasets`/pyarrow, label maps, preferences, unlabeled policies, filters."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from trajrec.recorder import TrajrecUsageError
from trajrec.replay.autolabel import label_with_rules
from trajrec.replay.exports import ExportOptions, export, map_label, parse_query
from trajrec.replay.labels import LabelStore


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_episode(path: Path) -> dict[str, dict[str, Any]]:
    return {r["episode_id"]: r for r in rows(path)}


@pytest.fixture
def labeled(run_dir: Path, ids: dict[int, str]) -> Path:
    """The fixture run with the rules' labels and a few human ones."""
    label_with_rules([run_dir])
    store = LabelStore(run_dir)
    store.add(ids[0], 0, 0, judge="human:ana", rationale="fine but slow")
    store.add(ids[0], 2, -1, judge="human:ana", tags=["repeated-mistake"])
    store.add(ids[1], 0, 1, judge="human:bo", rationale="good first look")
    return run_dir


def test_every_format_loads_with_datasets_and_pyarrow(labeled: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    opts = ExportOptions(unlabeled="false")
    for fmt in ("records", "trl-stepwise", "chat"):
        rep = export([labeled], fmt, out / f"{fmt}.jsonl", options=opts)
        assert (rep.written, rep.steps) == (3, 13)
        ds = datasets.load_dataset("json", data_files=str(out / f"{fmt}.jsonl"), split="train",
                                   cache_dir=str(tmp_path / "hf"))
        assert ds.num_rows == 3 and "episode_id" in ds.column_names
    trl = datasets.load_dataset("json", data_files=str(out / "trl-stepwise.jsonl"), split="train",
                                cache_dir=str(tmp_path / "hf"))
    assert {"prompt", "completions", "labels", "steps", "label_judges"} <= set(trl.column_names)
    assert str(trl.features["labels"].feature.dtype) == "bool"  # what PRMTrainer reads
    rep = export([labeled], "parquet", out / "steps.parquet")
    assert (rep.rows, rep.steps) == (13, 13)
    table = pq.read_table(out / "steps.parquet")
    assert table.num_rows == 13
    assert str(table.schema.field("label").type) == "bool" and str(table.schema.field("step").type) == "int64"
    ds = datasets.load_dataset("parquet", data_files=str(out / "steps.parquet"), split="train",
                               cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == 13 and {"episode_id", "step", "label_judge", "label_rationale"} <= set(ds.column_names)


def test_records_hold_the_whole_evidence(labeled: Path, ids: dict[int, str], tmp_path: Path) -> None:
    export([labeled], "records", tmp_path / "r.jsonl")
    r = by_episode(tmp_path / "r.jsonl")[ids[0]]
    assert r["format"] == "trajrec-records@1" and r["file"] == f"{ids[0]}.msgpack.zst"
    assert r["task"]["id"] == "fixture-0" and r["provenance"]["agent"] == {"name": "scripted", "version": "1"}
    steps = r["behavior"]["steps"]
    assert [s["i"] for s in steps] == list(range(6))
    assert steps[1]["failure"] == {"kind": "tool_error", "message": "no such file"}
    assert steps[2]["retry_of"] == 1 and steps[3]["recovers"] == [1, 2]
    assert steps[0]["note"] == {"thought": "Look at the notes first."}
    assert steps[4]["info"]["sizes"] == [8, 4, 4]  # a numpy array, as a list
    assert steps[5]["reward"] == 1.0  # a numpy float32
    assert any(d["path"] == ["files", "done.txt"] and d["value"] == "milk" for d in steps[4]["diff"])
    assert r["behavior"]["reset"]["state"] == {"files": {"notes.txt": "buy milk", "todo.txt": "milk"}, "t": 0}
    origins = {(c["origin"], c["kind"], c["judge"]) for c in r["checks"]}
    assert ("recorded", "rule", "answer-match@1") in origins
    assert ("label", "rule", "trajrec-rules@2") in origins and ("label", "judge", "human:ana") in origins
    nan = by_episode(tmp_path / "r.jsonl")[ids[2]]
    assert nan["behavior"]["steps"][2]["reward"] is None  # NaN: strict JSON has no NaN
    assert nan["summary"]["return"] is None


def test_trl_rows_follow_the_stepwise_format(labeled: Path, ids: dict[int, str], tmp_path: Path) -> None:
    export([labeled], "trl-stepwise", tmp_path / "t.jsonl", options=ExportOptions(unlabeled="false"))
    r = by_episode(tmp_path / "t.jsonl")[ids[0]]
    assert r["prompt"] == "Task fixture-0:\nFind what to buy and submit it.\nfiles: notes.txt todo.txt"
    assert r["completions"][0] == 'Look at the notes first.\n{"tool": "cat", "args": {"path": "notes.txt"}}'
    assert r["completions"][2] == '{"tool": "cat", "args": {"path": "todo.md"}}'  # no thought on that step
    assert len(r["completions"]) == len(r["labels"]) == len(r["steps"]) == len(r["label_judges"]) == 6
    # human beats rule (default --prefer human,judge,rule): step 0 is ana's 0 -> false under strict
    assert r["label_judges"] == ["human:ana", "trajrec-rules@2", "human:ana", "trajrec-rules@2",
                                 "trajrec-rules@2", "trajrec-rules@2"]
    assert r["labels"] == [False, False, False, True, True, True]
    export([labeled], "trl-stepwise", tmp_path / "o.jsonl", options=ExportOptions(unlabeled="false",
                                                                                   observations=True))
    with_obs = by_episode(tmp_path / "o.jsonl")[ids[0]]["completions"][1]
    assert with_obs.endswith("\nObservation: cat: todo.md: No such file")


def test_label_maps(labeled: Path, ids: dict[int, str], tmp_path: Path) -> None:
    got = {}
    for m in ("strict", "lenient", "float", "unit"):
        export([labeled], "trl-stepwise", tmp_path / f"{m}.jsonl", options=ExportOptions(label_map=m,
                                                                                          unlabeled="false"))
        got[m] = by_episode(tmp_path / f"{m}.jsonl")[ids[0]]["labels"][:4]  # ratings 0, -1, -1, +1
    assert got == {"strict": [False, False, False, True], "lenient": [True, False, False, True],
                   "float": [0.0, -1.0, -1.0, 1.0], "unit": [0.5, 0.0, 0.0, 1.0]}
    # Every kind of value: ratings, verdicts, scores, categories.
    cases = [(1, "strict", True), (0, "strict", False), (True, "lenient", True), ("fail", "float", -1.0),
             (0.7, "strict", True), (-0.2, "lenient", False), (0.7, "unit", 0.7), ("typo", "strict", None)]
    assert [map_label(v, m) for v, m, _ in cases] == [want for _, _, want in cases]


def test_prefer_chooses_whose_label_wins(labeled: Path, ids: dict[int, str], tmp_path: Path) -> None:
    def judges(prefer: str, **kw: Any) -> list[Any]:
        export([labeled], "trl-stepwise", tmp_path / "p.jsonl", options=ExportOptions(prefer=prefer, **kw))
        return by_episode(tmp_path / "p.jsonl").get(ids[0], {}).get("label_judges")

    assert judges("rule,human")[:3] == ["trajrec-rules@2"] * 3  # rules first now
    assert judges("human:*,trajrec-rules@*")[:3] == ["human:ana", "trajrec-rules@2", "human:ana"]
    # Unlisted sources are not used: only ana's two labels remain, so the episode has unlabeled steps.
    assert judges("human", unlabeled="drop-step") == ["human:ana", "human:ana"]
    assert judges("human", unlabeled="skip-episode") is None
    # Within one source the newest label wins.
    store = LabelStore(labeled)
    store.add(ids[0], 0, 1, judge="human:bo")
    export([labeled], "trl-stepwise", tmp_path / "n.jsonl", options=ExportOptions(unlabeled="false"))
    r = by_episode(tmp_path / "n.jsonl")[ids[0]]
    assert (r["label_judges"][0], r["labels"][0]) == ("human:bo", True)
    with pytest.raises(TrajrecUsageError, match=r"--prefer: unknown source 'humans' \(did you mean 'human'\?\)"):
        ExportOptions(prefer="humans")


def test_unlabeled_policies(labeled: Path, ids: dict[int, str], tmp_path: Path) -> None:
    # Failed episode (ids[1]): step 0 has bo's +1, steps 1-3 rule -1. Truncated episode (ids[2]): steps 0-1 rule -1,
    # step 2 unlabeled. Passed episode: every step labeled.
    def run(policy: str, label_map: str = "strict") -> dict[str, dict[str, Any]]:
        rep = export([labeled], "trl-stepwise", tmp_path / f"{policy}.jsonl",
                     options=ExportOptions(unlabeled=policy, label_map=label_map))
        out = by_episode(tmp_path / f"{policy}.jsonl")
        assert rep.written == len(out)
        return out

    skip = run("skip-episode")
    assert set(skip) == {ids[0], ids[1]}
    assert run("truncate")[ids[2]]["steps"] == [0, 1]
    assert run("drop-step")[ids[2]]["steps"] == [0, 1]
    false = run("false")[ids[2]]
    assert (false["steps"], false["labels"], false["label_judges"]) == ([0, 1, 2], [False, False, False],
                                                                         ["trajrec-rules@2", "trajrec-rules@2", None])
    assert run("neutral", "unit")[ids[2]]["labels"] == [0.0, 0.0, 0.5]
    LabelStore(labeled).add(ids[2], 1, "typo", judge="human:ana")  # a category cannot become a label
    assert run("drop-step")[ids[2]]["label_judges"] == ["trajrec-rules@2", "trajrec-rules@2"]
    rep = export([labeled], "trl-stepwise", tmp_path / "x.jsonl", options=ExportOptions(prefer="human:zed"))
    assert rep.written == 0 and rep.skipped == {"an unlabeled step (--unlabeled skip-episode)": 3}


def test_chat_messages_and_tools(labeled: Path, ids: dict[int, str], tmp_path: Path) -> None:
    export([labeled], "chat", tmp_path / "c.jsonl", options=ExportOptions(system="You are careful."))
    rows_ = by_episode(tmp_path / "c.jsonl")
    r = rows_[ids[0]]
    msgs = r["messages"]
    assert [m["role"] for m in msgs[:4]] == ["system", "user", "assistant", "tool"]
    assert msgs[1]["content"].startswith("Task fixture-0:")
    a, t = msgs[2], msgs[3]
    assert a["content"] == "Look at the notes first."
    assert a["tool_calls"] == [{"id": "call_0", "type": "function",
                                "function": {"name": "cat", "arguments": '{"path":"notes.txt"}'}}]
    assert t == {"role": "tool", "tool_call_id": "call_0", "name": "cat", "content": "buy milk", "error": False}
    assert msgs[5]["error"] is True and msgs[5]["content"] == "cat: todo.md: No such file"
    assert [tl["function"]["name"] for tl in r["tools"]] == ["cat", "write", "submit"]
    first = r["labels"][0]
    assert first == {"step": 0, "message": 2, "judge": "human:ana", "kind": "judge", "origin": "label", "value": 0,
                     "rating": 0, "label": False, "rationale": "fine but slow", "tags": []}
    shell = rows_[ids[1]]
    assert shell["messages"][2]["tool_calls"][0]["function"] == {"name": "shell", "arguments": '{"command":"ls /"}'}
    assert [tl["function"]["name"] for tl in shell["tools"]] == ["cat", "write", "submit", "shell"]
    every = [lab["step"] for row in rows_.values() for lab in row["labels"]]
    assert len(every) == 12  # every labeled step, each naming its judge (one step has no label)


def test_parquet_rows(labeled: Path, ids: dict[int, str], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    export([labeled], "parquet", tmp_path / "s.parquet", options=ExportOptions(label_map="float"))
    table = pq.read_table(tmp_path / "s.parquet")
    assert str(table.schema.field("label").type) == "double"
    rows_ = [r for r in table.to_pylist() if r["episode_id"] == ids[0]]
    r2 = rows_[2]
    assert (r2["step"], r2["tool"], r2["failure_kind"], r2["failure_message"], r2["retry_of"]) == (
        2, "cat", "tool_error", "no such file", 1)
    assert (r2["label"], r2["label_rating"], r2["label_value"], r2["label_judge"]) == (-1.0, -1, "-1", "human:ana")
    assert r2["n_labels"] == 2 and r2["label_judges"] == ["human:ana", "trajrec-rules@2"]
    assert rows_[3]["recovers"] == [1, 2] and rows_[0]["thought"] == "Look at the notes first."
    first = rows_[0]
    assert (first["env_id"], first["task_id"], first["outcome"]) == ("trajrec-tests/Fixture-v0", "fixture-0", "passed")


def test_missing_pyarrow_names_the_pip_command(labeled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    from trajrec.replay.exports.parquet import MissingDependencyError

    with pytest.raises(MissingDependencyError) as err:
        export([labeled], "parquet", tmp_path / "s.parquet")
    assert str(err.value) == ("the parquet export needs pyarrow, which is not installed: "
                              "pip install 'trajrec[parquet]'")
    assert not (tmp_path / "s.parquet").exists()


def test_where_filters(labeled: Path, ids: dict[int, str], tmp_path: Path) -> None:
    def chosen(*where: str, **kw: Any) -> set[str]:
        export([labeled], "chat", tmp_path / "w.jsonl", where=where, **kw)
        return set(by_episode(tmp_path / "w.jsonl"))

    assert chosen("outcome=failed") == {ids[1]}
    assert chosen("outcome!=failed") == {ids[0], ids[2]}
    assert chosen("failures>0", "recoveries>=1") == {ids[0]}
    assert chosen("task=fixture-*", "steps<5") == {ids[1], ids[2]}
    assert chosen("judge=human:*") == {ids[0], ids[1]}
    assert chosen("labeled_fraction>=1") == {ids[0], ids[1]}
    assert chosen("labeled=true") == {ids[0], ids[1], ids[2]}
    assert chosen("agent=scripted", "split=train", "complete=true", "return>0.5") == {ids[0]}
    assert chosen("env=trajrec-tests/*", "episode!=" + ids[0]) == {ids[1], ids[2]}
    # agreement: only ids[0] and ids[1] have steps labeled by two judges.
    # ids[0]: step 0 ana 0 vs rules +1 (disagree), step 2 both -1 (agree) -> 0.5; ids[1]: step 0 only bo -> None
    assert chosen(min_agreement=0.5) == {ids[0]}
    assert chosen(min_agreement=0.6) == set()


FIELD_LIST = "episode, env, task, split, agent, model, run, outcome, steps, return, failures, retries, recoveries, checks, complete, labels, labeled, labeled_fraction, judge, agreement"


@pytest.mark.parametrize(("expr", "message"), [
    ("outcom=failed", "in 'outcom=failed': unknown field 'outcom' (did you mean 'outcome'?); fields: " + FIELD_LIST),
    ("failures>many", "in 'failures>many': failures is a number; 'many' is not a number (e.g. failures>1)"),
    ("env>3", "in 'env>3': env is text; compare it with = or != (wildcards * ? allowed) or use env:VALUE for "
              "'contains'"),
    ("outcome=pased", "in 'outcome=pased': outcome is never 'pased' (did you mean 'passed'?); outcomes: passed, "
                      "failed, error, terminated, truncated, stopped, incomplete, unreadable"),
    ("labeled=maybe", "in 'labeled=maybe': labeled is true or false, got 'maybe'"),
    ("steps>=", "in 'steps>=': no value after '>='; e.g. steps>=1"),
    ("steps >=", "in 'steps>=': no value after '>='; e.g. steps>=1"),
])
def test_bad_where_expressions_name_the_field_and_the_allowed_ones(expr: str, message: str) -> None:
    with pytest.raises(TrajrecUsageError) as err:
        parse_query(expr)
    assert str(err.value) == message


def test_bad_options(labeled: Path, tmp_path: Path) -> None:
    with pytest.raises(TrajrecUsageError, match=r"unknown export format 'trl' \(did you mean 'trl-stepwise'\?\)"):
        export([labeled], "trl", tmp_path / "x")
    with pytest.raises(TrajrecUsageError, match=r"--label-map: unknown map 'strikt' \(did you mean 'strict'\?\)"):
        ExportOptions(label_map="strikt")
    with pytest.raises(TrajrecUsageError, match="--min-agreement is a share of agreeing steps from 0 to 1, got 2"):
        export([labeled], "chat", tmp_path / "x", min_agreement=2)
    with pytest.raises(TrajrecUsageError, match="is a folder; pass a file name"):
        export([labeled], "chat", tmp_path)


def test_an_interrupted_export_leaves_no_file(labeled: Path, tmp_path: Path) -> None:
    class Boom:
        total = 1

        def advance(self, n: int = 1) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export([labeled], "records", tmp_path / "r.jsonl", progress=Boom())
    assert list(tmp_path.glob("*r.jsonl*")) == []


def test_parquet_batches_keep_every_row(labeled: Path, ids: dict[int, str], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    from trajrec.replay.exports import parquet

    monkeypatch.setattr(parquet, "_BATCH", 4)  # row groups end in the middle of episodes
    export([labeled], "parquet", tmp_path / "s.parquet")
    f = pq.ParquetFile(tmp_path / "s.parquet")
    assert f.metadata.num_row_groups > 1
    cols = f.read().to_pydict()
    steps: dict[str, list[int]] = {}
    for eid, step in zip(cols["episode_id"], cols["step"], strict=True):
        steps.setdefault(eid, []).append(step)
    assert steps == {ids[0]: list(range(6)), ids[1]: list(range(4)), ids[2]: list(range(3))}
