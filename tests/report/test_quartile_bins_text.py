"""The text report prints quartile bins as what they are, half-open ``[lo, hi)`` and the last closed, with the
episodes in each: a tie on a bin edge (many 4-step episodes) is in exactly one bin a reader can tell."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trajrec.cli import main


def test_quartile_bins_are_half_open_and_count_their_episodes(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    assert main(["record", "trajrec/Shell-v0", "--episodes", "24", "--out", str(tmp_path), "--json",
                 "--skill", "0.5"]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "solve rate by steps quartile" in x)
    bins = re.findall(r"\[([\d.]+), ([\d.]+)([)\]]) [\d.]+% \((\d+)\)", line)
    assert bins, line
    assert [b[2] for b in bins] == [")"] * (len(bins) - 1) + ["]"], line
    assert sum(int(b[3]) for b in bins) == 24, line
    assert main(["report", str(tmp_path), "--json"]) == 0
    import json
    qs = json.loads(capsys.readouterr().out)["behaviour"]["steps"]["solve_rate_by_quartile"]
    assert [int(b[3]) for b in bins] == [q["episodes"] for q in qs]
