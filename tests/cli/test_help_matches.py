"""Help texts and the README name what the commands do: every export format and query field, every command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from trajrec.cli import build_parser, main
from trajrec.replay.exports.pipeline import FORMATS
from trajrec.replay.query import FIELDS

ROOT = Path(__file__).resolve().parents[2]


def _help(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


def test_top_level_help_names_every_export_format(capsys: pytest.CaptureFixture) -> None:
    text = " ".join(_help([], capsys).split())  # argparse wraps lines
    missing = [f for f in FORMATS if not re.search(rf"\b{re.escape(f)}\b", text)]
    assert not missing, missing


def test_export_help_lists_every_query_field(capsys: pytest.CaptureFixture) -> None:
    text = _help(["export"], capsys)
    listed = " ".join(line for line in text.split("fields:", 1)[1].splitlines() if not line.startswith("("))
    assert set(listed.split()) == set(FIELDS) and "model" in listed.split()


def test_readme_command_table_has_every_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    missing = [name for name in sub.choices if f"| `trajrec {name}" not in readme]
    assert not missing, missing


def test_envs_prints_plain_text(capsys: pytest.CaptureFixture) -> None:
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "``" not in out and ":class:" not in out and "compute with calc" in out
    assert main(["envs", "--json"]) == 0
    docs = [json.loads(x)["doc"] for x in capsys.readouterr().out.splitlines()]
    assert docs and not any("``" in d for d in docs)
