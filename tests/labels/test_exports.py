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


JSON_STEP_FIELDS = ("action", "observation", "reward", "info", "note", "failure", "diff")


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_episode(path: Path) -> dict[str, dict[str, Any]]:
    return {r["episode_id"] if "episode_id" in r else r["trajrec"]["episode_id"]: r for r in rows(path)}


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
    for fmt, id_column in (("records", "episode_id"), ("trl-stepwise", "episode_id"), ("chat", "trajrec"),
                           ("kto", "trajrec")):
        rep = export([labeled], fmt, out / f"{fmt}.jsonl", options=opts)
        assert (rep.written, rep.steps) == ((3, 13) if fmt != "kto" else (2, 10))  # kto: the truncated one has no verdict
        ds = datasets.load_dataset("json", data_files=str(out / f"{fmt}.jsonl"), split="train",
                                   cache_dir=str(tmp_path / "hf"))
        assert ds.num_rows == rep.written and id_column in ds.column_names
    trl = datasets.load_dataset("json", data_files=str(out / "trl-stepwise.jsonl"), split="train",
                                cache_dir=str(tmp_path / "hf"))
    assert {"prompt", "completions", "labels", "steps", "label_judges"} <= set(trl.column_names)
    assert str(trl.features["labels"].feature.dtype) == "bool"  # what PRMTrainer reads
    rep = export([labeled], "parquet", out / "steps.parquet")
    assert (rep.rows, rep.steps) == (13, 13)
    table = pq.read_table(out / "steps.parquet")
    assert table.num_rows == 13
    assert str(table.schema.field("label").type) == "double" and str(table.schema.field("step").type) == "int32"
    ds = datasets.load_dataset("parquet", data_files=str(out / "steps.parquet"), split="train",
                               cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == 13 and {"episode_id", "step", "label_judge", "label_rationale"} <= set(ds.column_names)


def test_records_hold_the_whole_evidence(labeled: Path, ids: dict[int, str], tmp_path: Path) -> None:
    export([labeled], "records", tmp_path / "r.jsonl")
    r = by_episode(tmp_path / "r.jsonl")[ids[0]]
    assert r["format"] == "trajrec-records@3" and r["file"] == f"{ids[0]}.msgpack.zst"
    # Env-typed fields are JSON text (one stable row shape); json.loads gives them back exactly.
    r = {**r, **{k: json.loads(r[k]) for k in ("task", "provenance", "summary", "checks")},
         "reset": {k: json.loads(v) if isinstance(v, str) else v for k, v in r["reset"].items()},
         "steps": [{k: json.loads(v) if k in JSON_STEP_FIELDS else v for k, v in st.items()} for st in r["steps"]]}
    assert r["task"]["id"] == "fixture-0" and r["provenance"]["agent"] == {"name": "scripted", "version": "1"}
    steps = r["steps"]
    assert [s["i"] for s in steps] == list(range(6))
    assert steps[1]["failure"] == {"kind": "tool_error", "message": "no such file"}
    assert steps[2]["retry_of"] == 1 and steps[3]["recovers"] == [1, 2]
    assert steps[0]["note"] == {"thought": "Look at the notes first."}
    assert steps[4]["info"]["sizes"] == [8, 4, 4]  # a numpy array, as a list
    assert steps[5]["reward"] == 1.0  # a numpy float32
    assert any(d["path"] == ["files", "done.txt"] and d["value"] == "milk" for d in steps[4]["diff"])
    assert r["reset"]["state"] == {"files": {"notes.txt": "buy milk", "todo.txt": "milk"}, "t": 0}
    origins = {(c["origin"], c["kind"], c["judge"]) for c in r["checks"]}
    assert ("recorded", "rule", "answer-match@1") in origins
    assert ("label", "rule", "trajrec-rules@2") in origins and ("label", "judge", "human:ana") in origins
    nan = by_episode(tmp_path / "r.jsonl")[ids[2]]
    assert nan["steps"][2]["reward"] == "null"  # NaN: strict JSON has no NaN
    assert json.loads(nan["summary"])["return"] is None


def test_trl_rows_follow_the_stepwise_format(labeled: Path, ids: dict[int, str], tmp_path: Path) -> None:
    export([labeled], "trl-stepwise", tmp_path / "t.jsonl", options=ExportOptions(unlabeled="false"))
    r = by_episode(tmp_path / "t.jsonl")[ids[0]]
    assert r["prompt"] == "Task fixture-0:\nFind what to buy and submit it.\nfiles: notes.txt todo.txt"
    assert r["completions"][0] == 'Look at the notes first. {"tool": "cat", "args": {"path": "notes.txt"}}'
    assert r["completions"][2] == '{"tool": "cat", "args": {"path": "todo.md"}}'  # no thought on that step
    assert len(r["completions"]) == len(r["labels"]) == len(r["steps"]) == len(r["label_judges"]) == 6
    # human beats rule (default --prefer human,judge,rule): step 0 is ana's 0 -> false under strict
    assert r["label_judges"] == ["human:ana", "trajrec-rules@2", "human:ana", "trajrec-rules@2",
                                 "trajrec-rules@2", "trajrec-rules@2"]
    assert r["labels"] == [False, False, False, True, True, True]
    export([labeled], "trl-stepwise", tmp_path / "o.jsonl", options=ExportOptions(unlabeled="false",
                                                                                   observations=True))
    with_obs = by_episode(tmp_path / "o.jsonl")[ids[0]]["completions"][1]
    assert with_obs.endswith(" Observation: cat: todo.md: No such file")
    # Completions never hold the step separator, whatever it is; labels stay bools; scores beside them.
    export([labeled], "trl-stepwise", tmp_path / "s.jsonl", options=ExportOptions(unlabeled="false",
                                                                                   step_separator="milk"))
    sep = by_episode(tmp_path / "s.jsonl")[ids[0]]
    assert not any("milk" in c for c in sep["completions"]) and len(sep["completions"]) == 6
    assert r["scores"] == [0.0, -1.0, -1.0, 1.0, 1.0, 1.0]


def test_label_maps(labeled: Path, ids: dict[int, str], tmp_path: Path) -> None:
    got = {}
    for m in ("strict", "lenient"):
        export([labeled], "trl-stepwise", tmp_path / f"{m}.jsonl", options=ExportOptions(label_map=m,
                                                                                          unlabeled="false"))
        got[m] = by_episode(tmp_path / f"{m}.jsonl")[ids[0]]["labels"][:4]  # ratings 0, -1, -1, +1
    import pyarrow.parquet as pq

    for m in ("float", "unit"):
        with pytest.raises(TrajrecUsageError, match=f"trl-stepwise labels are booleans .*--label-map {m} gives "
                                                    "numbers. Use --label-map strict or lenient"):
            export([labeled], "trl-stepwise", tmp_path / f"{m}.jsonl", options=ExportOptions(label_map=m))
        export([labeled], "parquet", tmp_path / f"{m}.parquet", options=ExportOptions(label_map=m))
        t = pq.read_table(tmp_path / f"{m}.parquet").to_pylist()
        got[m] = [r["label"] for r in t if r["episode_id"] == ids[0]][:4]
    assert got == {"strict": [False, False, False, True], "lenient": [True, False, False, True],
                   "float": [0.0, -1.0, -1.0, 1.0], "unit": [0.5, 0.0, 0.0, 1.0]}
    # Every kind of value: ratings, verdicts, scores, categories.
    cases = [(1, "strict", True), (0, "strict", False), (True, "lenient", True), ("fail", "float", -1.0),
             (0.7, "strict", True), (-0.2, "lenient", False), (0.7, "unit", 0.7), ("typo", "strict", None)]
    assert [map_label(v, m) for v, m, _ in cases] == [want for _, _, want in cases]


def test_prefer_chooses_whose_label_wins(labeled: Path, ids: dict[int, str], tmp_path: Path) -> None:
    def judges(prefer: str, **kw: Any) -> list[Any]:
        export([labeled], "trl-stepwise", tmp_path / "p.jsonl", options=ExportOptions(prefer=prefer, **kw),
               overwrite=True)
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
    with pytest.raises(TrajrecUsageError, match=r"prefer=: unknown source 'humans' \(did you mean 'human'\?\)"):
        ExportOptions(prefer="humans")


def test_unlabeled_policies(labeled: Path, ids: dict[int, str], tmp_path: Path) -> None:
    # Failed episode (ids[1]): step 0 has bo's +1, steps 1-3 rule -1. Truncated episode (ids[2]): steps 0-1 rule -1,
    # step 2 unlabeled. Passed episode: every step labeled.
    def run(policy: str, label_map: str = "strict") -> dict[str, dict[str, Any]]:
        rep = export([labeled], "trl-stepwise", tmp_path / f"{policy}.jsonl",
                     options=ExportOptions(unlabeled=policy, label_map=label_map), overwrite=True)
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
    assert run("neutral", "lenient")[ids[2]]["labels"] == [False, False, True]
    # A category cannot become a label: the preferred (human) label of step 1 is one, so the step is unlabeled
    # (the rules' label of it does not take its place) and drop-step leaves it out.
    LabelStore(labeled).add(ids[2], 1, "typo", judge="human:ana")
    dropped = run("drop-step")[ids[2]]
    assert (dropped["steps"], dropped["label_judges"]) == ([0], ["trajrec-rules@2"])
    with pytest.warns(UserWarning, match="prefer entry 'human:zed' matched no label or recorded check"):
        rep = export([labeled], "trl-stepwise", tmp_path / "x.jsonl", options=ExportOptions(prefer="human:zed"))
    # (the steps are labeled, by judges --prefer does not list: the reason says so, not "unlabeled")
    assert rep.written == 0 and rep.skipped == {
        "a step labeled only by sources --prefer does not list (--unlabeled skip-episode)": 3}


def test_chat_messages_and_tools(labeled: Path, ids: dict[int, str], tmp_path: Path) -> None:
    export([labeled], "chat", tmp_path / "c.jsonl", options=ExportOptions(system="You are careful."))
    rows_ = by_episode(tmp_path / "c.jsonl")
    r = rows_[ids[0]]
    assert set(r) == {"messages", "tools", "trajrec"}  # no top-level labels: trainers own that name
    msgs = r["messages"]
    assert [m["role"] for m in msgs[:4]] == ["system", "user", "assistant", "tool"]
    assert msgs[1]["content"].startswith("Task fixture-0:")
    a, t = msgs[2], msgs[3]
    assert a == {"role": "assistant", "content": "Look at the notes first.", "weight": 1,
                 "tool_calls": [{"id": "call_0", "type": "function",
                                 "function": {"name": "cat", "arguments": {"path": "notes.txt"}}}]}
    assert t == {"role": "tool", "tool_call_id": "call_0", "name": "cat", "content": "buy milk"}
    assert msgs[5]["content"] == "cat: todo.md: No such file" and msgs[4]["weight"] == 0  # a failed step
    assert [tl["function"]["name"] for tl in r["tools"]] == ["cat", "write", "submit"]
    first = r["trajrec"]["steps"][0]
    assert first == {"step": 0, "message": 2, "weight": 1, "failed": False, "tool": "cat", "judge": "human:ana",
                     "kind": "judge", "origin": "label", "value": "0", "rating": 0, "label": False,
                     "rationale": "fine but slow", "tags": []}
    assert r["trajrec"]["outcome"] == "passed" and r["trajrec"]["task_id"] == "fixture-0"
    # A command line in an env that declares no text tool: assistant text and a user turn, never an invented tool.
    other = rows_[ids[1]]
    assert other["messages"][2] == {"role": "assistant", "content": "List the files.\n\nls /", "weight": 1}
    assert other["messages"][3]["role"] == "user"
    assert [tl["function"]["name"] for tl in other["tools"]] == ["cat", "write", "submit"]
    assert sum(len(row["trajrec"]["steps"]) for row in rows_.values()) == 13
    # --tool-arguments string: OpenAI fine-tuning files; --weights all.
    export([labeled], "chat", tmp_path / "s.jsonl", options=ExportOptions(tool_arguments="string", weights="all"))
    s = by_episode(tmp_path / "s.jsonl")[ids[0]]["messages"]
    assert s[1]["tool_calls"][0]["function"]["arguments"] == '{"path":"notes.txt"}'
    assert {m["weight"] for m in s if m["role"] == "assistant"} == {1}
    export([labeled], "chat", tmp_path / "p.jsonl", options=ExportOptions(weights="positive"))
    pos = by_episode(tmp_path / "p.jsonl")[ids[0]]
    assert [st["weight"] for st in pos["trajrec"]["steps"]] == [int(st["rating"] == 1) for st in pos["trajrec"]["steps"]]


def test_parquet_rows(labeled: Path, ids: dict[int, str], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    export([labeled], "parquet", tmp_path / "s.parquet", options=ExportOptions(label_map="float"))
    table = pq.read_table(tmp_path / "s.parquet")
    assert str(table.schema.field("label").type) == "double"
    assert str(table.schema.field("time").type) == "timestamp[us, tz=UTC]"
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert meta["trajrec.format"] == "trajrec-parquet@4" and meta["trajrec.label_map"] == "float"
    rows_ = [r for r in table.to_pylist() if r["episode_id"] == ids[0]]
    r2 = rows_[2]
    assert (r2["step"], r2["tool_call"], r2["failure"], r2["retry_of"]) == (
        2, {"name": "cat", "arguments": '{"path":"todo.md"}'}, {"kind": "tool_error", "message": "no such file"}, 1)
    assert (r2["label"], r2["label_rating"], r2["label_value"], r2["label_judge"]) == (-1.0, -1, "-1", "human:ana")
    assert r2["n_labels"] == 2 and r2["label_judges"] == ["human:ana", "trajrec-rules@2"]
    assert rows_[3]["recovers"] == [1, 2] and rows_[0]["thought"] == "Look at the notes first."
    first = rows_[0]
    assert (first["env_id"], first["task_id"], first["outcome"], first["split"], first["agent"]) == (
        "trajrec-tests/Fixture-v0", "fixture-0", "passed", "train", "scripted")
    assert (first["check_passed"], first["check_judge"], first["episode_steps"]) == (True, "answer-match@1", 6)
    assert first["time"].tzinfo is not None


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
        export([labeled], "chat", tmp_path / "w.jsonl", where=where, overwrite=True, **kw)
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


FIELD_LIST = "episode, env, task, split, agent, model, run, outcome, steps, return, failures, retries, recoveries, checks, tokens, cost, complete, ended, labels, labeled, labeled_fraction, judge, agreement"


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
    with pytest.raises(TrajrecUsageError, match=r"label_map=: unknown map 'strikt' \(did you mean 'strict'\?\)"):
        ExportOptions(label_map="strikt")
    with pytest.raises(TrajrecUsageError, match="min_agreement= is a share of agreeing steps from 0 to 1, got 2"):
        export([labeled], "chat", tmp_path / "x", min_agreement=2)
    with pytest.raises(TrajrecUsageError, match="weights='some' is not one of label, positive"):
        ExportOptions(weights="some")
    rep = export([labeled], "chat", tmp_path / "folder", options=ExportOptions())  # an existing folder? no: a file
    assert (tmp_path / "folder").is_file() and rep.written == 3


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
