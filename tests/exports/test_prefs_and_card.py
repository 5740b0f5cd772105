"""``dpo`` / ``kto`` rows, failed episodes kept by default, the passed/failed balance and the dataset card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from trajrec.cli import main
from trajrec.recorder import open_episode
from trajrec.replay.exports import ExportOptions, episode_files, export
from trajrec.replay.exports.pipeline import UNPAIRED_REASONS


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def outcomes(run: Path) -> dict[str, str]:
    out = {}
    for f in episode_files([run]):
        with open_episode(f) as ep:
            out[ep.episode_id] = ep.summary.get("outcome")
    return out


def test_dpo_pairs_passed_against_failed_attempts_at_one_task(builtin_run: Path, tmp_path: Path) -> None:
    rep = export([builtin_run], "dpo", tmp_path / "dpo.jsonl")
    pairs = rows(tmp_path / "dpo.jsonl")
    assert pairs and rep.rows == len(pairs)
    outcome = outcomes(builtin_run)
    used: list[str] = []
    for p in pairs:
        assert set(p) == {"prompt", "chosen", "rejected", "tools", "trajrec"}
        good, bad = p["trajrec"]["chosen"], p["trajrec"]["rejected"]
        assert (good["env_id"], good["task_id"]) == (bad["env_id"], bad["task_id"])
        assert (outcome[good["episode_id"]], outcome[bad["episode_id"]]) == ("passed", "failed")
        assert [m["role"] for m in p["prompt"]] == ["user"] and p["chosen"][0]["role"] == "assistant"
        assert all("weight" not in m for m in p["chosen"] + p["rejected"])
        used += [good["episode_id"], bad["episode_id"]]
    assert len(used) == len(set(used))  # each attempt used once
    # Everything is accounted for: written (paired) plus left out (unpaired), by outcome.
    # (alone at the task, tied, or left between pairs: FINDINGS34 B6 split the one reason by why)
    assert set(rep.left_out) <= set(UNPAIRED_REASONS)
    left = sum(n for why in UNPAIRED_REASONS for n in rep.left_out.get(why, {}).values())
    assert rep.written == len(used) and rep.written + left == len(outcome)


def test_kto_labels_whole_attempts(builtin_run: Path, tmp_path: Path) -> None:
    export([builtin_run], "kto", tmp_path / "kto.jsonl")
    outcome = outcomes(builtin_run)
    got = rows(tmp_path / "kto.jsonl")
    assert len(got) == len(outcome)
    for r in got:
        assert set(r) == {"prompt", "completion", "label", "tools", "trajrec"}
        assert r["label"] is (outcome[r["trajrec"]["episode_id"]] == "passed")
        assert r["completion"][0]["role"] == "assistant"


def test_failed_episodes_are_kept_by_default_and_the_balance_is_printed(builtin_run: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    outcome = outcomes(builtin_run)
    n_failed = sum(1 for o in outcome.values() if o == "failed")
    assert n_failed > 0
    for fmt in ("trl-stepwise", "chat"):
        rep = export([builtin_run], fmt, tmp_path / f"{fmt}.jsonl")  # the rules labeled every step
        assert rep.written_outcomes.get("failed") == n_failed and not rep.left_out
    out = tmp_path / "x.jsonl"
    assert main(["export", str(builtin_run), "-f", "trl-stepwise", "-o", str(out), "--where", "outcome=passed"]) == 0
    err = capsys.readouterr().err
    n_passed = len(outcome) - n_failed
    assert f"exported {n_passed} episodes ({n_passed} passed, 0 failed;" in err
    assert f"    {n_failed} (0 passed, {n_failed} failed): did not match the filters" in err
    assert "hint" not in err  # no command would change what the filter left out


def test_a_folder_export_writes_a_dataset_card(builtin_run: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "sft"
    rep = export([builtin_run], "chat", f"{folder}/", where=["split=train"],
                 options=ExportOptions(label_map="lenient"))
    card = (folder / "README.md").read_text()
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "data.jsonl"]
    assert card.startswith("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
                           '    path: "data.jsonl"\n')
    b = rep.balance
    assert f"| written | {rep.written} | {b(rep.written_outcomes)} |" in card
    assert "| `trajrec-rules@2` |" in card and "- label map: `lenient`" in card and "`split=train`" in card
    assert f"`{builtin_run}`" in card and "`script-mathcalc`" in card  # lineage: sources and models
    ds = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "hf"))  # the card's config
    assert ds.num_rows == rep.written
    # parquet to a folder: shards and a card whose data_files name them
    export([builtin_run], "parquet", tmp_path / "pq", options=ExportOptions(shard_rows=30))
    assert '    path: "part-*.parquet"' in (tmp_path / "pq" / "README.md").read_text()
    ds = datasets.load_dataset(str(tmp_path / "pq"), split="train", cache_dir=str(tmp_path / "hf2"))
    assert ds.num_rows == sum(1 for _ in open_run_steps(builtin_run))


def open_run_steps(run: Path) -> Any:
    from trajrec import open_run

    return open_run(run).steps()
