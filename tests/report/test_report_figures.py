"""`build_report` on the quiz run, whose figures are worked out by hand in ``report_fixture_run.py``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from report_fixture_run import ENV_ID, episode_id
from trajrec.envs.banks import task_bank
from trajrec.replay.query import QueryError
from trajrec.replay.report import build_report


@pytest.fixture
def rep(quiz):
    run, _paths = quiz
    return build_report([run])


def _by(rows, key):
    return {r[key]: r for r in rows}


def test_totals(rep):
    assert (rep["episodes"], rep["steps"], rep["unreadable"], rep["incomplete"]) == (7, 18, [], 0)


def test_coverage_counts_envs_tasks_and_splits(rep):
    cov = rep["coverage"]
    (env,) = cov["by_env"]
    assert env["env"] == ENV_ID and env["episodes"] == 7 and env["tasks"] == 4
    assert env["splits"] == {"test": 2, "train": 5}
    assert env["bank"] is None and cov["never_attempted"] == []  # no bank known for a test env
    assert {t["task"]: t["episodes"] for t in cov["by_task"]} == {"t1": 3, "t2": 2, "t3": 1, "t4": 1}


def test_difficulty_solve_rates_pass_at_k_and_flags(rep):
    d = rep["difficulty"]
    tasks = _by(d["tasks"], "task")
    t1 = tasks["t1"]
    assert (t1["judged"], t1["solved"]) == (3, 2)
    # n=3, c=2: pass@1 = 2/3; pass@2 = 1 - C(1,2)/C(3,2) = 1; pass@3 = 1.
    assert t1["pass_at_k"] == pytest.approx([2 / 3, 1.0, 1.0], abs=1e-6)
    assert t1["flag"] is None
    assert tasks["t2"]["flag"] == "always-solved" and tasks["t3"]["flag"] == "never-solved"
    assert tasks["t4"]["flag"] == "unverified" and tasks["t4"]["solve_rate"] is None  # E7 raised: no verdict
    assert (d["always_solved"], d["never_solved"], d["unverified"], d["useful_tasks"]) == (1, 1, 1, 1)
    # Mean over the three judged tasks: pass@1 = (2/3 + 1 + 0) / 3; pass@2 only t1 and t2 have 2 attempts.
    assert d["pass_at_k_mean"][0]["mean"] == pytest.approx((2 / 3 + 1 + 0) / 3, abs=1e-6)
    assert d["pass_at_k_mean"][1] == {"k": 2, "mean": 1.0, "tasks": 2, "unsolved": 0}
    # Each mean says over which tasks: pass@1 over all three (t3 never solved), pass@2 leaves t3 (1 attempt) out.
    assert [(p["k"], p["tasks"], p["unsolved"]) for p in d["pass_at_k_mean"]] == [(1, 3, 1), (2, 2, 0), (3, 1, 0)]


def test_failure_taxonomy(rep):
    f = rep["failures"]
    assert (f["failed_steps"], f["recovered"], f["episodes_with_failures"]) == (5, 3, 4)
    assert f["recovery_rate"] == pytest.approx(0.6)
    kinds = _by(f["by_kind"], "kind")
    assert (kinds["tool_error"]["failures"], kinds["tool_error"]["recovered"]) == (4, 3)
    assert (kinds["exception"]["failures"], kinds["exception"]["recovered"]) == (1, 0)
    tools = _by(f["by_tool"], "tool")
    assert {t: (r["failures"], r["recovered"]) for t, r in tools.items()} == {"read": (2, 2), "calc": (2, 1),
                                                                              "boom": (1, 0)}
    # Two different paths and two different expressions each group into one message shape.
    msgs = {m["message"]: m["count"] for m in f["messages"]}
    assert msgs == {"read: no such file <str> (errno <n>)": 2, "calc: bad number <str> at column <n>": 2,
                    "boom at step <n>": 1}
    # E2: failed steps 0 and 1 recovered at step 2 (2 and 1 steps); E3: step 0 recovered at step 1.
    assert f["steps_to_recover"]["histogram"] == {"1": 2, "2": 1}
    # Retries (the recorder's retry_of): E2 step 0 by step 1, E2 step 1 by step 2, E3 step 0 by step 1. Per retry
    # chain: E2's chain 0 <- 1 <- 2 has 2 retries, E3's 1, E6's and E7's failures none (4 chains).
    assert f["retries_per_chain"]["histogram"] == {"0": 2, "1": 1, "2": 1}
    assert (f["retry_chains"], f["chains_retried"], f["retries_per_chain"]["max"]) == (4, 2, 2.0)


def test_worth_a_look_names_episodes_with_commands(rep, quiz):
    _run, paths = quiz
    look = {item["reason"]: item for item in rep["failures"]["worth_a_look"]}
    assert set(look) == {"recovered", "unrecovered", "exception", "disagreement"}
    assert Path(look["recovered"]["path"]).name == paths["E2"].name and look["recovered"]["step"] == 2
    assert Path(look["unrecovered"]["path"]).name == paths["E6"].name  # failed afterwards: ranks above E7
    assert Path(look["exception"]["path"]).name == paths["E7"].name and look["exception"]["step"] == 1
    assert look["exception"]["view"] == f"trajrec view {look['exception']['path']} --step 1"
    assert look["exception"]["show"] == f"trajrec show {look['exception']['path']} --step 1"


def test_checks_verdicts_coverage_and_kappa_matrix(rep, quiz):
    _run, paths = quiz
    c = rep["checks"]
    kinds = {(v["source"], v["kind"]): (v["passed"], v["failed"]) for v in c["verdicts_by_kind"]}
    assert kinds == {("recorded", "rule"): (4, 2), ("label", "judge"): (3, 4)}
    judges = {(v["source"], v["judge"]): v["total"] for v in c["verdicts_by_judge"]}
    assert judges == {("recorded", "answer@1"): 6, ("label", "human:ana"): 3, ("label", "model:j@1"): 3,
                      ("label", "human:bo"): 1}
    cov = c["label_coverage"]
    assert (cov["labeled_steps"], cov["steps"], cov["labeled_episodes"]) == (4, 18, 2)
    assert cov["judges_per_step"] == {"1": 1, "2": 3}
    ag = c["agreement"]
    assert ag["judges"] == ["human:ana", "human:bo", "model:j@1"]
    i, j, b = 0, 2, 1
    # Pairs (+1,+1) (+1,-1) (-1,-1): p_o = 2/3, p_e = 2/3*1/3 + 1/3*2/3 = 4/9, kappa = (2/9)/(5/9) = 0.4.
    assert ag["kappa"][i][j] == ag["kappa"][j][i] == pytest.approx(0.4)
    assert ag["overlap"][i][j] == 3
    assert ag["kappa"][i][b] is None and ag["overlap"][i][b] == 0  # no step labeled by both
    (worst,) = c["disagreements"]
    assert worst["episode"] == episode_id(paths["E1"]) and worst["step"] == 1
    assert worst["values"] == {"human:ana": "+1", "model:j@1": "-1"}


def test_behaviour(rep, quiz):
    _run, paths = quiz
    b = rep["behaviour"]
    assert (b["steps"]["min"], b["steps"]["max"], b["steps"]["n"]) == (2.0, 4.0, 7)
    assert b["outcomes"] == {"passed": 4, "failed": 2, "error": 1}
    # Thoughts: E1 (10+20+30)/3 = 20 chars per step, E2 4: both solved.
    assert b["thought_length"]["episodes_with_thoughts"] == 2
    assert b["thought_length"]["solved"]["mean"] == pytest.approx(12.0)
    dup = b["duplicates"]
    assert (dup["groups"], dup["episodes"], dup["redundant"]) == (1, 2, 1)
    assert {Path(p).name for p in dup["largest"][0]["examples"]} == {paths["E4"].name, paths["E5"].name}
    u = b["usage"]
    # E1: 3 steps of 10 + 5 tokens and 0.001 each; E2: one step of 7 + 3 in note["model_call"]["usage"].
    assert u["tokens"] == {"input": 37, "output": 18, "total": 55}
    # Summed over E1's 3 steps' notes and E2's one model call (from its summary's totals): a call is no step.
    assert (u["steps"], u["model_calls"], u["episodes"]) == (3, 1, 2)
    assert u["cost"] == pytest.approx(0.003)


def test_lineage(rep):
    li = rep["lineage"]
    assert [(a["name"], a["version"], a["episodes"]) for a in li["agents"]] == [("quiz-agent", "2", 7)]
    assert {m["model"]: m["episodes"] for m in li["models"]} == {"m-1": 6, "m-2": 1}
    assert [(s["settings"], s["episodes"]) for s in li["sampling"]] == [({"temperature": 0.5}, 6),
                                                                         ({"temperature": 1.0}, 1)]
    assert {r["run_id"]: r["episodes"] for r in li["runs"]} == {"r1": 6, "r2": 1}
    from trajrec import __version__

    assert li["recorders"][0]["version"] == __version__


def test_where_filters_episodes(quiz):
    run, _paths = quiz
    rep = build_report([run], where="task:t1")
    assert rep["episodes"] == 3 and rep["files"] == 7
    assert build_report([run], where="labeled")["episodes"] == 2  # a label field: read from the label store
    with pytest.raises(QueryError):
        build_report([run], where="tsak:t1")


def test_with_recorded_adds_recorded_step_checks_as_judges(quiz):
    run, _paths = quiz
    assert "answer@1" not in build_report([run])["checks"]["agreement"]["judges"]
    # The answer check targets the episode, not a step: it still stays out of step agreement.
    assert "answer@1" not in build_report([run], with_recorded=True)["checks"]["agreement"]["judges"]


def test_unreadable_file_is_listed_and_the_rest_reported(quiz):
    run, _paths = quiz
    bad = run / "broken.msgpack.zst"
    bad.write_bytes(b"not an episode at all")
    rep = build_report([run])
    assert rep["episodes"] == 7
    assert [u["path"] for u in rep["unreadable"]] == [str(bad)]
    assert "not a trajrec episode" in rep["unreadable"][0]["error"]


def test_a_file_given_twice_counts_once(quiz):
    run, paths = quiz
    assert build_report([run, paths["E1"]])["episodes"] == 7


def test_crashed_episode_without_index_is_read_by_scanning(quiz):
    run, paths = quiz
    from trajrec.recorder import read_index

    # Cut the index frame off E1: the file is what a killed writer leaves.
    data = paths["E1"].read_bytes()
    frames = read_index(paths["E1"])["frames"]
    end = max(f[3] for f in frames)
    paths["E1"].write_bytes(data[:end])
    rep = build_report([run])
    assert rep["episodes"] == 7 and rep["steps"] == 18 and rep["incomplete"] == 1


def test_builtin_task_bank_gives_never_attempted_tasks(tmp_path):
    import gymnasium as gym

    from trajrec import Recorder, envs  # noqa: F401  (registers trajrec/* ids)
    from trajrec.envs.agents import make_agent
    from trajrec.envs.runner import run_episode

    env = Recorder(gym.make("trajrec/MathCalc-v0"), tmp_path)
    for seed in (0, 1, 25):  # seed % 24 picks the task: 0 and 25 -> tasks 0 and 1, seed 1 -> task 1 again
        run_episode(env, make_agent("trajrec/MathCalc-v0", seed=seed, skill=1.0), seed=seed)
    env.close()
    rep = build_report([tmp_path], task_bank=task_bank)
    (row,) = rep["coverage"]["by_env"]
    bank = task_bank("trajrec/MathCalc-v0")
    assert row["bank"] == len(bank) == 24 and row["tasks"] == 2 and row["never_attempted"] == 22
    never = {n["task"] for n in rep["coverage"]["never_attempted"]}
    assert never == set(list(bank)[2:]) and {n["split"] for n in rep["coverage"]["never_attempted"]} == {"train",
                                                                                                        "test"}


def test_task_bank_reads_only_builtin_ids(monkeypatch):
    import gymnasium as gym

    from trajrec import envs
    from trajrec.envs.banks import task_bank

    for env_id in envs.ENV_IDS:
        cls = gym.spec(env_id).entry_point
        module, _, attr = cls.partition(":")
        import importlib

        assert list(task_bank(env_id)) == getattr(importlib.import_module(module), attr).task_ids()
    # An id registered by someone else, or named in a file, is never looked up (nothing is imported for it).
    gym.register("evil/Env-v0", entry_point="no_such_module_anywhere:Env")
    try:
        assert task_bank("evil/Env-v0") is None
    finally:
        del gym.registry["evil/Env-v0"]
    assert task_bank("CartPole-v1") is None


def test_streaming_holds_no_step_records(quiz, monkeypatch):
    """Each episode's records are consumed as they are decoded: the report never asks for a whole list."""
    run, _paths = quiz
    import trajrec.replay.report as report_mod

    seen = []
    real = report_mod.read_records

    def spy(path):
        index, records = real(path)
        assert not isinstance(records, (list, tuple)), "records must be an iterator, read once"
        seen.append(path)
        return index, records

    monkeypatch.setattr(report_mod, "read_records", spy)
    assert report_mod.build_report([run])["episodes"] == 7
    assert len(seen) == 7


def test_report_on_sample_runs_reads_every_file():
    root = Path(__file__).resolve().parents[2] / "sample_runs"
    rep = build_report([root], task_bank=task_bank)
    assert rep["unreadable"] == [] and rep["episodes"] == len(list(root.rglob("*.msgpack.zst")))
    assert all(e["bank"] == 24 for e in rep["coverage"]["by_env"])


def test_model_call_totals_come_from_the_recorder_summary(tmp_path):
    """Notes written the way LLM agents record them (``note["model_call"]``, ModelCall): the report takes the
    totals the recorder summed, failed attempts included, and names the model the calls reported."""
    import gymnasium as gym

    from trajrec import Recorder
    from trajrec.recorder.model_call import ModelCall

    env = Recorder(gym.make("CartPole-v1"), tmp_path)
    env.reset(seed=0)
    env.note(model_call=ModelCall(model="m-x", usage={"prompt_tokens": 100, "completion_tokens": 20}, cost=0.5,
                                  attempts=[{"error": "timeout", "usage": {"prompt_tokens": 100,
                                                                           "completion_tokens": 0}}]).to_dict())
    env.step(0)
    env.note(model_call=ModelCall(model="m-x", usage={"prompt_tokens": 130, "completion_tokens": 10}).to_dict())
    env.step(1)
    env.close()
    u = build_report([tmp_path])["behaviour"]["usage"]
    assert u["tokens"] == {"input": 330, "output": 30, "total": 360}
    assert (u["model_calls"], u["failed_attempts"], u["cost"]) == (2, 1, 0.5)
    assert [(m["model"], m["tokens"]) for m in u["by_model"]] == [("m-x", 360)]


def test_odd_usage_values_are_left_out_and_json_stays_valid(tmp_path):
    import json

    import gymnasium as gym

    from trajrec import Recorder

    env = Recorder(gym.make("CartPole-v1"), tmp_path)
    env.reset(seed=0)
    for note in ({"usage": {"prompt_tokens": float("nan"), "completion_tokens": 4}, "cost": float("inf")},
                 {"usage": {"prompt_tokens": "12", "completion_tokens": True}},
                 {"usage": "lots", "model_call": ["not", "a", "dict"]}):
        env.note(**note)
        env.step(0)
    env.close()
    rep = build_report([tmp_path])
    assert rep["behaviour"]["usage"]["tokens"] == {"input": 0, "output": 4, "total": 4}
    json.dumps(rep, allow_nan=False)  # what `--json` prints


def test_long_episodes_are_flagged_against_their_task_median(tmp_path):
    from report_fixture_run import _env, call

    env = _env(tmp_path, {"name": "a"}, "r")
    paths = []
    for seed, reads in enumerate((1, 1, 1, 1, 14)):
        env.reset(seed=seed, options={"task": "t", "split": "train"})
        for _ in range(reads):
            env.step(call("read", path="notes.txt"))
        env.step(call("answer", value="42"))
        env.end_episode()
        paths.append(str(env.episode_path))
    env.close()
    look = build_report([tmp_path])["failures"]["worth_a_look"]
    assert [(item["reason"], item["path"]) for item in look] == [("long", paths[-1])]
    assert look[0]["detail"] == "15 steps, task median 2"


def test_tokens_are_said_over_model_calls_not_steps(tmp_path):
    """An episode of 1 step whose agent made 2 model calls (the second failed for good, ending the episode): the
    report's tokens line said "over 2 steps" (FINDINGS24 #1); it says the calls."""
    import gymnasium as gym

    from trajrec.recorder import Recorder
    from trajrec.recorder.model_call import ModelCall
    from trajrec.replay.report.text import render_text

    env = Recorder(gym.make("CartPole-v1"), tmp_path)
    env.reset(seed=0)
    env.note(model_call=ModelCall(model="m", usage={"prompt_tokens": 10, "completion_tokens": 5}).to_dict())
    env.step(0)
    env.end_episode_with_error("the model server failed", model_call=ModelCall(
        model="m", error={"error": "http_error", "status": 500, "message": "down"}).to_dict())
    env.close()
    rep = build_report([tmp_path])
    u = rep["behaviour"]["usage"]
    assert (u["model_calls"], u["steps"], u["episodes"]) == (2, 0, 1)
    line = next(x for x in render_text(rep).splitlines() if x.strip().startswith("tokens:"))
    assert "over 2 model calls of 1 episode;" in line and "steps" not in line
