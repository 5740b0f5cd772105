"""Episode ids and file names made from source text never start with '-' (a command line would take them for an
option) or '.' (hidden), whatever the source names its task or sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from import_helpers import ATIF, INSPECT_JSON

from trajrec.cli import main
from trajrec.importers import import_paths
from trajrec.replay.importers.base import episode_slug


@pytest.mark.parametrize("text", ["-1-epoch4", "--help", ".hidden", "..", "-", "._-x", "!!!-1", " -x"])
def test_slug_never_starts_with_dash_or_dot(text: str) -> None:
    slug = episode_slug(text)
    assert slug and slug[0] not in "-." and slug[-1] not in "._"


def test_inspect_sample_whose_name_starts_with_dash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = json.loads(INSPECT_JSON.read_text())
    log["eval"]["task"] = "!!!"  # slugs to underscores, which used to be stripped, leaving "-<id>-epoch<n>"
    for sample in log["samples"]:
        sample["id"] = -1
    path = tmp_path / "log.json"
    path.write_text(json.dumps(log))
    report = import_paths("inspect", [path], tmp_path / "run")
    names = [n for f in report.files for n in f.episodes]
    assert names and all(n[0] not in "-." for n in names), names
    # The CLI takes the file as an argument.
    capsys.readouterr()
    assert main(["ls", str(tmp_path / "run" / names[0])]) == 0


def test_atif_id_starting_with_dot(tmp_path: Path) -> None:
    doc = json.loads(ATIF.read_text())
    doc["trajectory_id"] = "../.secret"
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc))
    report = import_paths("atif", [path], tmp_path / "run")
    [name] = report.files[0].episodes
    assert name.startswith("secret-") and (tmp_path / "run" / name).is_file()
