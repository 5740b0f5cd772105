"""How an imported ATIF trajectory ends: its outcome is the source's end, never ``stopped`` (Ctrl-C); model time
that no source recorded shows as unknown, not 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from import_helpers import ATIF, atif_harbor, import_one

from trajrec.cli import main


def _variant(tmp_path: Path, name: str, **root: object) -> Path:
    doc = json.loads(ATIF.read_text())
    for key, value in root.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    out = tmp_path / f"{name}.trajectory.json"
    out.write_text(json.dumps(doc))
    return out


def test_a_finished_atif_trajectory_is_terminated_not_stopped(tmp_path: Path) -> None:
    # Tester: imported ATIF episodes got outcome "stopped", the outcome of a recording cut short by Ctrl-C.
    for src in (ATIF, atif_harbor(tmp_path / "h")):
        _, [ep] = import_one("atif", src, tmp_path / f"run-{src.stem}")
        assert ep.summary["outcome"] == "terminated"
        assert ep[len(ep) - 1].terminated and not ep[len(ep) - 1].truncated
        assert not any(ep[i].terminated for i in range(len(ep) - 1))


@pytest.mark.parametrize(("where", "status", "outcome"), [
    ("extra", "LimitsExceeded", "truncated"),
    ("final_metrics", "max_steps_reached", "truncated"),
    ("extra", "Submitted", "terminated"),
])
def test_an_exit_status_naming_a_limit_truncates(tmp_path: Path, where: str, status: str, outcome: str) -> None:
    key = "exit_status" if where == "extra" else "stop_reason"
    fields = {"extra": {key: status}} if where == "extra" else {"final_metrics": {"extra": {key: status}}}
    src = _variant(tmp_path, status, **fields)
    _, [ep] = import_one("atif", src, tmp_path / "run")
    last = ep[len(ep) - 1]
    assert ep.summary["outcome"] == outcome
    assert last.info["exit_status"] == status


def test_a_reward_verdict_still_decides(tmp_path: Path) -> None:
    src = _variant(tmp_path, "fail", final_metrics={"extra": {"reward": -1}})
    _, [ep] = import_one("atif", src, tmp_path / "run")
    assert ep.summary["outcome"] == "failed"


def test_ls_shows_unknown_model_time_as_a_dash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Tester: imported episodes with tokens showed "model s 0.00"; ATIF keeps tokens and cost but no timings.
    import_one("atif", ATIF, tmp_path / "run")
    capsys.readouterr()
    assert main(["ls", str(tmp_path / "run")]) == 0
    header, row = capsys.readouterr().out.splitlines()
    cols = header.split()
    tokens_at = cols.index("tokens")
    assert cols[tokens_at + 1: tokens_at + 3] == ["model", "s"]
    cells = row.split()
    # The row ends with tokens, model s, cost; the tokens are known, the seconds are not.
    assert cells[-3] != "-" and cells[-2] == "-" and cells[-1].startswith("$")
    assert main(["show", str(next((tmp_path / "run").glob("*.msgpack.zst")))]) == 0
    out = capsys.readouterr().out
    assert " tokens (" in out and "0.00 s" not in out
