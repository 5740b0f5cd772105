"""Harbor ATIF: import (Harbor's published example), export --format atif, the round trip, and validation
against Harbor's own pydantic models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from import_helpers import ATIF, OH_CHAT, SWE, atif_harbor, import_one, mini_big

from trajrec.cli import main
from trajrec.importers import ImportFormatError, detect, import_paths
from trajrec.recorder import open_episode
from trajrec.replay.importers.base import parse_time


def test_import_keeps_parallel_calls_together(tmp_path: Path) -> None:
    src = json.loads(ATIF.read_text())
    _, [ep] = import_one("atif", ATIF, tmp_path / "run")
    agent_steps = [s for s in src["steps"] if s["source"] == "agent"]
    assert len(ep) == len(agent_steps) == 2
    first = agent_steps[0]
    assert ep[0].action == [{"tool": c["function_name"], "args": c["arguments"], "id": c["tool_call_id"]}
                            for c in first["tool_calls"]]
    assert ep[0].observation == [{"tool_call_id": r["source_call_id"], "content": r["content"]}
                                 for r in first["observation"]["results"]]
    assert ep[0].note["reasoning"] == first["reasoning_content"]
    assert ep[0].note["metrics"] == first["metrics"]
    call = ep[0].note["model_call"]
    assert call["model"] == first["model_name"] and call["cost"] == first["metrics"]["cost_usd"]
    assert call["usage"]["prompt_tokens"] == first["metrics"]["prompt_tokens"]
    assert ep.summary["model"]["total_tokens"] == src["final_metrics"]["total_prompt_tokens"] + \
        src["final_metrics"]["total_completion_tokens"]
    assert ep[0].time == parse_time(first["timestamp"])
    assert ep[1].action == {"message": agent_steps[1]["message"]}
    assert ep.task["text"] == ep.reset.observation == src["steps"][0]["message"]
    assert ep.provenance["atif"]["final_metrics"] == src["final_metrics"]
    assert ep.provenance["agent"]["name"] == src["agent"]["name"]


def test_harbor_written_atif_agrees_with_the_mini_swe_agent_source(tmp_path: Path) -> None:
    # The same real run twice: as mini-swe-agent wrote it, and as Harbor's converter turned it into ATIF-v1.7.
    _, [atif] = import_one("auto", atif_harbor(tmp_path), tmp_path / "a")
    _, [mini] = import_one("auto", mini_big(tmp_path), tmp_path / "m")
    assert atif.provenance["atif"]["schema_version"] == "ATIF-v1.7"
    assert len(atif) == len(mini) == 64
    for a, m in zip(atif, mini):
        assert a.action["tool"] == "bash" and a.action["args"] == {"command": m.action}
        assert a.action["id"] == m.note["call_ids"][0]
        assert a.observation == m.observation
        assert a.note["thought"] == m.note["thought"]
        assert abs(a.time - m.time) < 1e-3
    assert atif.task["text"] == mini.task["text"]
    # The system prompt is the reset info's "system", as the mini-swe-agent import keeps it; the prompt is the
    # user's message alone (not "[system] ..." folded into it).
    assert atif.reset.info["system"] == mini.reset.info["system"] and mini.reset.info["system"]
    assert atif.reset.observation == mini.reset.observation and "[system]" not in atif.reset.observation


def roundtrip(tmp_path: Path, source: Path) -> tuple[dict, dict]:
    import_paths("atif", [source], tmp_path / "run")
    out = tmp_path / "atif"
    assert main(["export", str(tmp_path / "run"), "--format", "atif", "--out", f"{out}/"]) == 0
    [written] = list(out.glob("*.trajectory.json"))
    return json.loads(source.read_text()), json.loads(written.read_text())


def comparable(doc: dict) -> list[dict]:
    steps = []
    for st in doc["steps"]:
        st = {k: v for k, v in st.items() if k != "extra"}
        if "timestamp" in st:
            st["timestamp"] = parse_time(st["timestamp"])
        steps.append(st)
    return steps


def test_round_trip_atif_trajrec_atif(tmp_path: Path) -> None:
    src, back = roundtrip(tmp_path, ATIF)
    assert comparable(back) == comparable(src)
    assert back["agent"]["name"] == src["agent"]["name"] and back["agent"]["model_name"] == src["agent"]["model_name"]
    assert back["final_metrics"] == src["final_metrics"]
    assert back["schema_version"] == src["schema_version"] and back["session_id"] == src["session_id"]
    assert back["notes"] == src["notes"]
    assert back["steps"][1]["extra"]["trajrec"]["step"] == 0


def test_round_trip_of_harbor_written_atif(tmp_path: Path) -> None:
    src, back = roundtrip(tmp_path, atif_harbor(tmp_path / "src"))
    assert comparable(back) == comparable(src)
    assert back["final_metrics"] == src["final_metrics"] and back["agent"]["extra"] == src["agent"]["extra"]


def test_round_trip_keeps_user_turns_between_agent_steps(tmp_path: Path) -> None:
    src = json.loads(ATIF.read_text())
    follow = {"step_id": 4, "timestamp": "2025-10-11T10:31:00Z", "source": "user", "message": "And MSFT?"}
    answer = {"step_id": 5, "timestamp": "2025-10-11T10:31:03Z", "source": "agent", "message": "MSFT is up.",
              "tool_calls": [{"tool_call_id": "c9", "function_name": "financial_search", "arguments": {"t": "MSFT"}}],
              "observation": {"results": [{"source_call_id": "c9", "content": "410", "extra": {"is_error": True}}]}}
    bye = {"step_id": 6, "source": "user", "message": "thanks"}
    src["steps"] += [follow, answer, bye]
    path = tmp_path / "trajectory.json"
    path.write_text(json.dumps(src))
    _, [ep] = import_one("atif", path, tmp_path / "one")
    assert ep[2].note["atif_before"] == [follow] and ep[2].note["atif_after"] == [bye]
    assert ep[2].failed and ep[2].failure.kind == "tool_error"  # result extra is_error: the classifier's rule
    orig, back = roundtrip(tmp_path, path)
    assert comparable(back) == comparable(orig)


def _harbor_models(tmp_path: Path) -> list[str]:
    """Command prefix of a Python that imports Harbor's ATIF models, or skip saying why not."""
    pytest.importorskip("pydantic", reason="validating against Harbor's models needs pydantic")
    try:
        import harbor.models.trajectories  # noqa: F401

        return [sys.executable]
    except ImportError:
        pass
    wheel = os.environ.get("TRAJREC_HARBOR_WHEEL")
    if not wheel:
        pytest.skip("harbor (which publishes the ATIF models) needs Python >= 3.12 and is not installed; set "
                    "TRAJREC_HARBOR_WHEEL to a wheel from `pip download harbor --no-deps --python-version 3.12 "
                    "--only-binary=:all:` to validate against its models here (docs/IMPORT.md)")
    root = tmp_path / "harbor-models"
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.startswith("harbor/models/trajectories/") and name.endswith(".py"):
                z.extract(name, root)
    (root / "harbor" / "__init__.py").write_text("")
    (root / "harbor" / "models" / "__init__.py").write_text("")
    return ["env", f"PYTHONPATH={root}", sys.executable]


def test_export_validates_against_harbors_models(tmp_path: Path) -> None:
    python = _harbor_models(tmp_path)
    run = tmp_path / "run"
    import_paths("auto", [ATIF, SWE, OH_CHAT, mini_big(tmp_path), atif_harbor(tmp_path / "h")], run)
    out = tmp_path / "atif"
    assert main(["export", str(run), "--format", "atif", "--out", f"{out}/"]) == 0
    files = sorted(out.glob("*.trajectory.json"))
    assert len(files) == 5
    script = ("import json, sys\nfrom harbor.models.trajectories import Trajectory\n"
              "for p in sys.argv[1:]:\n    Trajectory.model_validate(json.load(open(p)))\nprint(len(sys.argv) - 1)\n")
    done = subprocess.run([*python, "-c", script, *map(str, files)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "5"
    # The published example itself passes the same models (the check can fail).
    bad = json.loads(ATIF.read_text())
    bad["steps"][0]["tool_calls"] = []  # tool calls on a user step: the models refuse it
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    done = subprocess.run([*python, "-c", script, str(tmp_path / "bad.json")], capture_output=True, text=True)
    assert done.returncode != 0 and "only applicable when source is 'agent'" in done.stderr


def test_export_atif_jsonl(tmp_path: Path) -> None:
    import_paths("swe-agent", [SWE], tmp_path / "run")
    out = tmp_path / "all.jsonl"
    assert main(["export", str(tmp_path / "run"), "--format", "atif", "--out", str(out)]) == 0
    [doc] = [json.loads(line) for line in out.read_text().splitlines()]
    src = json.loads(SWE.read_text())
    agent = [s for s in doc["steps"] if s["source"] == "agent"]
    # The model's calls as it made them (SWE-agent 1.x keeps them in history), a command line where it made none
    # (the last submit).
    made = [m["tool_calls"][0]["function"] for m in src["history"] if m["role"] == "assistant"]
    assert [(c["function_name"], c["arguments"]) for s in agent for c in s["tool_calls"]] == \
        [(f["name"], json.loads(f["arguments"])) for f in made] + [
            ("bash", {"command": e["action"]}) for e in src["trajectory"][len(made):]]
    assert {t["function"]["name"] for t in doc["agent"]["tool_definitions"]} >= {f["name"] for f in made}
    assert [s["observation"]["results"][0]["content"] for s in agent] == [e["observation"] for e in src["trajectory"]]
    # Original call ids survive (the last submit had none and gets a made-up one).
    calls = [m["tool_calls"][0]["id"] for m in src["history"] if m["role"] == "assistant"]
    assert [s["tool_calls"][0]["tool_call_id"] for s in agent][:len(calls)] == calls
    assert doc["extra"]["trajrec"]["imported_from"]["format"] == "swe-agent"


# -- trajrec's own ATIF exports: a lines file is one episode per line; outcomes and failures come back ----------

def _summaries(run: Path) -> dict[str, tuple]:
    from trajrec.recorder import open_episode

    out = {}
    for path in sorted(run.rglob("*.msgpack.zst")):
        ep = open_episode(path)
        s = ep.summary
        out[ep.task["id"]] = (len(ep), s["outcome"], s["failures"], s["retries"], s["recoveries"], s["return"],
                              s["checks"]["total"], [st.failure.kind if st.failure else None for st in ep])
    return out


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trajrec.cli import main

    run = tmp_path_factory.mktemp("atif-rt") / "demo"
    assert main(["demo", str(run), "--episodes", "3", "--no-view"]) == 0
    return run


@pytest.mark.parametrize("layout", ["lines", "folder"])
def test_round_trip_keeps_outcomes_and_failures(demo_run: Path, tmp_path: Path, layout: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from trajrec.cli import main

    out = tmp_path / ("atif.jsonl" if layout == "lines" else "atif")
    assert main(["export", str(demo_run), "--format", "atif", "--out", str(out) + ("" if layout == "lines" else "/")]) == 0
    sources = [out] if layout == "lines" else sorted(out.glob("*.json"))
    capsys.readouterr()
    assert main(["import", "auto", *map(str, sources), "--out", str(tmp_path / "imp")]) == 0
    assert "imported 12 episodes" in capsys.readouterr().err
    before, after = _summaries(demo_run), _summaries(tmp_path / "imp")
    assert len(before) == 12 and after == before
    # The demo run has both outcomes and failed steps, so the comparison above could fail.
    assert {v[1] for v in before.values()} == {"passed", "failed"} and sum(v[2] for v in before.values()) > 0


def test_lines_file_is_detected_and_streamed_per_line(tmp_path: Path) -> None:
    line = ATIF.read_text().replace("\n", " ")
    path = tmp_path / "three.json"  # not named .jsonl: the first line, one whole object, says it
    path.write_text("\n" + line + "\n\n" + line + "\n" + line + "\n")
    assert detect(path)[0] == "atif"
    report = import_paths("atif", [path], tmp_path / "run")
    assert report.episodes == 3
    wheres = [open_episode(tmp_path / "run" / n).provenance["imported_from"]["where"] for n in report.files[0].episodes]
    assert wheres == ["line 2", "line 4", "line 5"]


def test_bad_line_names_the_line(tmp_path: Path) -> None:
    doc = json.loads(ATIF.read_text())
    bad = json.loads(ATIF.read_text())
    bad["steps"][2]["source"] = "robot"
    path = tmp_path / "two.jsonl"
    path.write_text(json.dumps(doc) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ImportFormatError) as err:
        import_paths("atif", [path], tmp_path / "run")
    assert str(err.value).startswith(f"{path} line 2 field $.steps[2].source: expected one of")
