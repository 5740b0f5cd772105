"""`trajrec report`'s lineage groups imported (and replayed) episodes by how they were made — the generator and the
source's format — not one group per source file (each import's lineage names its own path and SHA-256)."""

from __future__ import annotations

import json
from pathlib import Path

from trajrec.cli import main
from trajrec.replay.report.lineage import lineage_group

DATA = Path(__file__).resolve().parents[1] / "data" / "mini-swe-agent" / "test_output.traj.json"


def test_imported_episodes_form_one_lineage_group(tmp_path, capsys) -> None:
    doc = json.loads(DATA.read_text())
    files = []
    for k in range(20):
        doc.setdefault("info", {})["copy"] = k
        files.append(tmp_path / f"{k:02d}.traj.json")
        files[-1].write_text(json.dumps(doc))
    out = tmp_path / "run"
    assert main(["import", "mini-swe-agent", *map(str, files), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--json"]) == 0
    groups = json.loads(capsys.readouterr().out)["lineage"]["lineage"]
    assert groups == [{"lineage": {"generator": "trajrec import mini-swe-agent",
                                   "imported_from": {"format": "mini-swe-agent"}}, "episodes": 20}]
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    (line,) = [line for line in text.splitlines() if line.startswith("  lineage ")]
    assert "trajrec import mini-swe-agent" in line and line.endswith(": 20") and "more lineage" not in text


def test_groups_keep_scalar_fields_and_the_kind_of_each_nested_part() -> None:
    lin = {"generator": "trajrec replay", "replay_of": {"episode_id": "e1", "path": "/x", "run_id": "r"}, "n": 2,
           "odd": [1, 2]}
    assert lineage_group(lin) == {"generator": "trajrec replay", "replay_of": {}, "n": 2}
    assert lineage_group("from somewhere") == "from somewhere"
