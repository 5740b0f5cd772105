"""Token counts, seconds and costs in a note's ``model_call.usage`` are data from anyone: the recorder sums only
counts (whole numbers >= 0, as ints) and finite amounts >= 0 into the summary and names what it left out
(``summary.model.left_out``); ``ls``, ``show`` and ``report`` show files already written with NaN, infinite, huge
or negative totals (``?``), never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym

from trajrec import Recorder, open_episode
from trajrec.recorder.model_call import model_usage_totals

#: ``(usage, latency, cost)`` per step: every kind of value no count or amount is.
HOSTILE = [
    ({"prompt_tokens": 10, "completion_tokens": float("nan")}, 0.5, 0.01),
    ({"prompt_tokens": True, "completion_tokens": 4}, -1.0, float("nan")),
    ({"prompt_tokens": 2**70, "completion_tokens": -5}, float("inf"), -0.5),
    ({"prompt_tokens": 1.5, "completion_tokens": 10**400, "total_tokens": float("inf")}, True, 10**400),
    ({"input_tokens": 7.0, "output_tokens": 3}, 0.25, 0.02),
]


class _Env(gym.Env):
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        return "task", {}

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self._t += 1
        return "o", 0.0, self._t == len(HOSTILE), False, {}


def _record(folder: Path, *, hostile_summary: bool = False) -> Path:
    env = Recorder(_Env(), folder)
    env.reset(seed=0)
    for usage, latency, cost in HOSTILE:
        env.note(model_call={"model": "m", "usage": usage, "latency": latency, "cost": cost})
        env.step("a")
    if hostile_summary:  # a file written before the recorder left such values out: its totals set in the writer
        totals = env._writer.summary.model  # type: ignore[union-attr]
        totals.prompt_tokens, totals.completion_tokens = 10**400, float("-inf")
        totals.total_tokens, totals.latency, totals.cost = float("nan"), -4.0, float("nan")
    env.close()
    (path,) = folder.glob("*.msgpack.zst")
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "trajrec", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_the_summary_sums_only_counts_and_names_the_rest(tmp_path: Path) -> None:
    path = _record(tmp_path / "run")
    model = open_episode(path).summary["model"]
    # Counted: 10 + 4 + 7 prompt (True, 2**70 and 1.5 are no counts), 4 + 3 completion; totals filled in per call
    # from the counts given (10, 4, 7 + 3).
    assert (model["prompt_tokens"], model["completion_tokens"], model["total_tokens"]) == (17, 7, 24)
    assert all(type(model[k]) is int for k in ("prompt_tokens", "completion_tokens", "total_tokens"))
    assert model["latency"] == 0.75 and abs(model["cost"] - 0.03) < 1e-12
    assert model["calls"] == 5
    left = model["left_out"]
    assert model["left_out_count"] == len(left) == 13, left
    for where in ("step 0 note.model_call.usage.completion_tokens: nan",
                  "step 1 note.model_call.usage.prompt_tokens: True", "step 1 note.model_call.latency: -1.0",
                  "step 2 note.model_call.usage.prompt_tokens: 1180591620717411303424",
                  "step 3 note.model_call.usage.total_tokens: inf", "step 3 note.model_call.latency: True"):
        assert where in left, left
    # The note itself is kept as the agent wrote it.
    assert open_episode(path)[0].note["model_call"]["usage"]["completion_tokens"] != 0


def test_ls_show_and_report_show_a_file_with_hostile_totals(tmp_path: Path) -> None:
    good = _record(tmp_path / "run" / "good")
    bad = _record(tmp_path / "run" / "bad", hostile_summary=True)
    written = open_episode(bad).summary["model"]
    assert written["total_tokens"] != written["total_tokens"]  # NaN in the file, as old recorders wrote it
    totals = model_usage_totals({"model": written})
    assert totals["total_tokens"] is None and totals["prompt_tokens"] is None and totals["latency"] is None
    assert "summary.model.total_tokens: nan" in totals["left_out"]

    listing = _cli("ls", str(tmp_path / "run")).stdout
    rows = {line.split()[0]: line for line in listing.splitlines() if line.startswith(("_Env", "Env"))}
    assert len(rows) == 2, listing  # one such episode no longer stops the listing of the rest
    bad_row = next(r for r in rows.values() if bad.name.startswith(r.split()[0]))
    good_row = next(r for r in rows.values() if good.name.startswith(r.split()[0]))
    assert " ? " in bad_row and "24" in good_row, listing
    lines = [json.loads(line) for line in _cli("ls", str(tmp_path / "run"), "--json").stdout.splitlines()]
    by_path = {Path(r["path"]).name: r["model"] for r in lines}
    assert by_path[bad.name]["total_tokens"] is None and by_path[good.name]["total_tokens"] == 24

    shown = _cli("show", str(bad)).stdout
    assert "5 calls, ? tokens (? in / ? out), ? s" in shown, shown
    assert "5 calls, 24 tokens (17 in / 7 out), 0.75 s" in _cli("show", str(good)).stdout
    report = json.loads(_cli("report", str(tmp_path / "run"), "--json").stdout)
    assert report  # the report reads both episodes' totals
    _cli("report", str(tmp_path / "run"))


def test_the_atif_export_counts_the_usage_as_the_summary_does(tmp_path: Path) -> None:
    path = _record(tmp_path / "run")
    out = tmp_path / "atif"
    _cli("export", str(tmp_path / "run"), "--format", "atif", "--out", f"{out}/")
    (doc,) = [json.loads(p.read_text()) for p in out.iterdir()]
    model = open_episode(path).summary["model"]
    final = doc["final_metrics"]
    assert (final["total_prompt_tokens"], final["total_completion_tokens"]) == (model["prompt_tokens"],
                                                                                 model["completion_tokens"])
    assert abs(final["total_cost_usd"] - model["cost"]) < 1e-12
    left = [w for s in doc["steps"] for w in s.get("extra", {}).get("trajrec", {}).get("metrics_left_out", [])]
    assert any(w.startswith("note.model_call.usage.completion_tokens: 1000") for w in left), left  # 10**400
