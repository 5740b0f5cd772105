"""`trajrec ls` reads labels when it sorts, filters or prints JSON: `--sort labeled` orders by the labeled share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.replay.labels import LabelStore


@pytest.fixture
def labeled_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> tuple[Path, dict[str, float]]:
    folder = tmp_path / "run"
    assert main(["record", "trajrec/Shell-v0", "--episodes", "3", "--out", str(folder), "--json"]) == 0
    capsys.readouterr()
    assert main(["ls", str(folder), "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    store = LabelStore(folder)
    want = {}
    # the second episode fully labeled, the third one step, the first none: not the path order
    for row, n in zip(rows, (0, rows[1]["steps"], 1)):
        for step in range(n):
            store.add(row["episode_id"], step, 1, judge="human:ana")
        want[row["episode_id"]] = n / row["steps"]
    return folder, want


def test_json_carries_the_labeled_fraction(labeled_run: tuple[Path, dict[str, float]],
                                           capsys: pytest.CaptureFixture) -> None:
    folder, want = labeled_run
    assert main(["ls", str(folder), "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {r["episode_id"]: r["labeled"] for r in rows} == pytest.approx(want)


@pytest.mark.parametrize("sort", ["labeled", "-labeled"])
def test_sort_labeled_orders_by_the_fraction(sort: str, labeled_run: tuple[Path, dict[str, float]],
                                            capsys: pytest.CaptureFixture) -> None:
    folder, want = labeled_run
    expected = sorted(want, key=want.__getitem__, reverse=sort.startswith("-"))
    assert main(["ls", str(folder), f"--sort={sort}", "--json"]) == 0
    assert [json.loads(x)["episode_id"] for x in capsys.readouterr().out.splitlines()] == expected
    assert main(["ls", str(folder), f"--sort={sort}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-1] == "labeled"
    order = [line.split()[0] for line in lines[1:]]
    assert order == expected
    assert lines[1].split()[-1] == (f"{want[expected[0]]:.0%}" if want[expected[0]] else "-")
    # An episode with no label at all shows "-", as in the viewer; one whose only label is on the episode, 0%.
    shown = {line.split()[0]: line.split()[-1] for line in lines[1:]}
    unlabeled = next(e for e, share in want.items() if share == 0)
    assert shown[unlabeled] == "-"
    LabelStore(folder).add(unlabeled, "episode", True, judge="human:ana")
    assert main(["ls", str(folder), f"--sort={sort}"]) == 0
    assert {line.split()[0]: line.split()[-1] for line in capsys.readouterr().out.splitlines()[1:]}[unlabeled] == "0%"
