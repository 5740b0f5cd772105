"""SWE-agent's and mini-swe-agent's episode totals (``info.model_stats``: cost, tokens sent and received, API
calls) are counted by the summary (``ls``, ``report``) when the file has no per-call usage, and not a second time
when it has (mini-swe-agent 1.1 writes each call's cost)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from import_helpers import MINI_V1, SWE, import_one, mini_big

from trajrec.cli import main
from trajrec.recorder.model_call import model_usage_totals


def test_swe_agent_totals_are_counted(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    stats = json.loads(SWE.read_text())["info"]["model_stats"]
    _, [ep] = import_one("swe-agent", SWE, tmp_path / "run")
    usage = model_usage_totals(ep.summary)
    assert usage["prompt_tokens"] == stats["tokens_sent"] and usage["completion_tokens"] == stats["tokens_received"]
    assert math.isclose(usage["cost"], stats["instance_cost"])
    # On the last step, said to be the episode's totals, with the number of API calls.
    (call,) = ep[len(ep) - 1].note["model_calls"]
    assert call["scope"] == "episode" and call["api_calls"] == stats["api_calls"]
    assert main(["ls", str(tmp_path / "run"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert f"{stats['tokens_sent'] + stats['tokens_received']}" in json.dumps(row)


def test_mini_swe_agent_v1_cost_is_counted_tokens_unknown(tmp_path: Path) -> None:
    stats = json.loads(MINI_V1.read_text())["info"]["model_stats"]
    _, [ep] = import_one("mini-swe-agent", MINI_V1, tmp_path / "run")
    usage = model_usage_totals(ep.summary)
    assert math.isclose(usage["cost"], stats["instance_cost"])
    assert usage["total_tokens"] is None  # the file states no tokens: unknown, not 0


def test_per_call_costs_are_not_counted_twice(tmp_path: Path) -> None:
    src = mini_big(tmp_path)
    stats = json.loads(src.read_text())["info"]["model_stats"]
    _, [ep] = import_one("mini-swe-agent", src, tmp_path / "run")
    usage = model_usage_totals(ep.summary)
    assert math.isclose(usage["cost"], stats["instance_cost"], rel_tol=1e-9)  # the calls' costs add up to it
    assert not any("model_calls" in (s.note or {}) for s in ep)
