"""``export --format atif`` then ``import atif`` gives the run's labels back as checks (rules, a person's step
label, an episode label), so the re-imported run exports the same training labels (``trl-stepwise``, ``kto``,
chat ``weight``) as the labeled run; an episode label never replaces the recorded terminal verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trajrec import open_episode
from trajrec.cli import main


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _eid(row: dict[str, Any]) -> str:
    return str(row["episode_id"] if "episode_id" in row else row["trajrec"]["episode_id"])


def _labeled_run(tmp_path: Path) -> tuple[Path, str]:
    run = tmp_path / "run"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "4", "--skill", "0.5", "--out", str(run),
                 "--json"]) == 0
    assert main(["label", "auto", str(run), "--rules"]) == 0
    paths = sorted(run.glob("*.msgpack.zst"))
    passed = [p for p in paths if open_episode(p).summary.get("outcome") == "passed"]
    ep = open_episode((passed or paths)[0])
    eid = ep.episode_id
    # A person disagrees with a step and with the whole episode (the rules said nothing there, or said otherwise).
    assert main(["label", "add", str(run), "--episode", eid, "--step", "0", "--value", "-1",
                 "--annotator", "ana", "--rationale", "wrong tool"]) == 0
    assert main(["label", "add", str(run), "--episode", eid, "--step", "episode", "--value", "fail",
                 "--annotator", "ana"]) == 0
    return run, eid


def _export(run: Path, out: Path, fmt: str) -> list[dict[str, Any]]:
    assert main(["export", str(run), "--format", fmt, "--out", str(out), "--unlabeled", "neutral"]) == 0
    return _rows(out)


def test_labels_survive_export_and_import(tmp_path: Path) -> None:
    run, eid = _labeled_run(tmp_path)
    atif = tmp_path / "atif"
    assert main(["export", str(run), "--format", "atif", "--out", f"{atif}/"]) == 0
    doc = json.loads((atif / f"{eid}.trajectory.json").read_text())
    labels = doc["extra"]["trajrec"]["labels"]
    assert {"judge": "human:ana", "step": None, "value_json": "false"}.items() <= next(
        x for x in labels if x["step"] is None and x["judge"] == "human:ana").items()
    back = tmp_path / "back"
    assert main(["import", "atif", str(atif), "--out", str(back)]) == 0  # the folder the export wrote

    # The labels are checks of the imported episodes: the person's step and episode labels among them.
    (mine,) = [p for p in back.glob("*.msgpack.zst") if open_episode(p).episode_id.startswith(eid)]
    ep = open_episode(mine)
    human = {(c.target, c.value, c.rationale) for c in ep.checks if c.judge == "human:ana"}
    assert human == {(0, -1, "wrong tool"), ("episode", False, None)}
    assert any(c.judge.startswith("trajrec-rules") for c in ep.checks)
    # The recorded verdict stays the outcome: the person's "fail" is a label, not what the env said.
    assert ep.summary["outcome"] == open_episode(next(run.glob(f"{eid}*.msgpack.zst"))).summary["outcome"]

    for fmt, key in (("trl-stepwise", "labels"), ("kto", "label")):
        before = _export(run, tmp_path / f"before.{fmt}.jsonl", fmt)
        after = _export(back, tmp_path / f"after.{fmt}.jsonl", fmt)
        first = {_eid(r): r[key] for r in before}
        again = {_eid(r)[:-9]: r[key] for r in after}  # (the import adds "-<8 hex>" to the id)
        assert again == first, fmt
    # ... and no call id the ATIF export made up is added to the actions (the agent's text calls had none; the
    # text's spacing is ATIF's JSON, not the recorded text, which ATIF has no field for).
    after_text = (tmp_path / "after.trl-stepwise.jsonl").read_text()
    assert '\\"id\\":\\"call_' not in after_text and '\\"id\\": \\"call_' not in after_text
    before = _export(run, tmp_path / "before.chat.jsonl", "chat")
    after = _export(back, tmp_path / "after.chat.jsonl", "chat")
    weights = {r["trajrec"]["episode_id"]: [m.get("weight") for m in r["messages"]] for r in before}
    again_w = {r["trajrec"]["episode_id"][:-9]: [m.get("weight") for m in r["messages"]] for r in after}
    assert again_w == weights
    assert any(w == 0 for ws in weights.values() for w in ws)  # the person's -1 is a weight 0 both times


def test_older_atif_file_with_only_the_chosen_step_label(tmp_path: Path) -> None:
    """A file written before the root ``labels`` list: each step's chosen label (a label, not a recorded check)
    comes back as a check of that step."""
    run, eid = _labeled_run(tmp_path)
    atif = tmp_path / "atif"
    assert main(["export", str(run), "--format", "atif", "--out", f"{atif}/"]) == 0
    path = atif / f"{eid}.trajectory.json"
    doc = json.loads(path.read_text())
    del doc["extra"]["trajrec"]["labels"]
    path.write_text(json.dumps(doc))
    chosen = {s["extra"]["trajrec"]["step"]: s["extra"]["trajrec"]["label"] for s in doc["steps"]
              if s["source"] == "agent" and "label" in s["extra"]["trajrec"]}
    assert chosen[0]["judge"] == "human:ana"
    back = tmp_path / "back"
    assert main(["import", "atif", str(path), "--out", str(back)]) == 0
    ep = open_episode(next(back.glob("*.msgpack.zst")))
    got = {c.target: (c.judge, c.value) for c in ep.checks if isinstance(c.target, int) and c.kind != "environment"}
    assert got == {i: (lab["judge"], lab["value"]) for i, lab in chosen.items() if lab["origin"] == "label"}


def test_atif_lines_with_labels_of_every_value_type_load_in_arrow(tmp_path: Path) -> None:
    """A person's pass/fail (bool) beside the rules' ratings (ints) and a score: the labels' values are written as
    JSON text, so JSON readers that infer one type per column (pyarrow, ``datasets``) load them."""
    import pyarrow.json as pj

    run, eid = _labeled_run(tmp_path)
    assert main(["label", "add", str(run), "--episode", eid, "--step", "1", "--value", "0.25",
                 "--annotator", "bo"]) == 0
    out = tmp_path / "atif.jsonl"
    assert main(["export", str(run), "--format", "atif", "--out", str(out)]) == 0
    # (The labels alone: a whole ATIF line also holds the tool calls' arguments, whose types vary with the agent.)
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"labels": json.loads(line)["extra"]["trajrec"]["labels"]}) + "\n"
                              for line in out.read_text().splitlines()))
    table = pj.read_json(labels)
    assert table.num_rows == len(list(run.glob("*.msgpack.zst")))
    back = tmp_path / "back"
    assert main(["import", "atif", str(out), "--out", str(back)]) == 0
    values = {(c.judge, c.target): c.value for p in back.glob("*.msgpack.zst") for c in open_episode(p).checks
              if c.judge.startswith("human:")}
    assert values == {("human:ana", 0): -1, ("human:ana", "episode"): False, ("human:bo", 1): 0.25}


def test_episode_labels_of_an_unjudged_episode_do_not_become_its_outcome(tmp_path: Path) -> None:
    """FINDINGS32 #7: an episode nothing recorded judged (CartPole: outcome ``terminated``) with a person's episode
    labels. Brought back as checks, the labels' verdicts made the outcome (``passed``/``failed``), so kto took an
    older ``pass`` for an episode whose newest label is a category (left out before the round trip) and the other
    turned ``failed``. A label never decides the outcome in its run; a label brought back as a check does not
    either, so the outcomes and the kto rows (and what is left out) are the same."""
    run = tmp_path / "run"
    assert main(["record", "CartPole-v1", "--agent", "random", "--episodes", "2", "--out", str(run)]) == 0
    first, second = sorted(open_episode(p).episode_id for p in run.glob("*.msgpack.zst"))
    for eid, value, who in ((first, "pass", "ana"), (first, "gave-up", "bo"), (second, "fail", "ana")):
        assert main(["label", "add", str(run), "--episode", eid, "--step", "episode", "--value", value,
                     "--annotator", who]) == 0
    atif, back = tmp_path / "atif", tmp_path / "back"
    assert main(["export", str(run), "--format", "atif", "--out", f"{atif}/"]) == 0
    assert main(["import", "atif", str(atif), "--out", str(back)]) == 0

    def outcomes(folder: Path) -> dict[str, str]:
        return {open_episode(p).episode_id[:len(first)]: open_episode(p).summary["outcome"]
                for p in folder.glob("*.msgpack.zst")}

    assert outcomes(back) == outcomes(run) == {first: "terminated", second: "terminated"}
    before = {_eid(r): (r["label"], r["trajrec"]["outcome"]) for r in _export(run, tmp_path / "b.jsonl", "kto")}
    after = {_eid(r)[:-9]: (r["label"], r["trajrec"]["outcome"])
             for r in _export(back, tmp_path / "a.jsonl", "kto")}
    # The first episode's newest label (bo's category) rates nothing: left out both times; ana's fail: False.
    assert after == before == {second: (False, "terminated")}
    # parquet's episode columns too: no terminal check either time (not the label brought back as a check).
    import pyarrow.parquet as pq

    for folder, name in ((run, "b.parquet"), (back, "a.parquet")):
        assert main(["export", str(folder), "--format", "parquet", "--out", str(tmp_path / name)]) == 0
        table = pq.read_table(tmp_path / name, columns=["check_passed", "check_judge"])
        assert set(table.column("check_passed").to_pylist()) == {None}, name
