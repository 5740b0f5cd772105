"""The ``labeled`` column of ``trajrec ls`` and of the viewer's library counts the labels of the episode file's
own folder, as ``--where labeled`` and export do: a same-id copy in another, labeled folder does not lend its
labels to the unlabeled original."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from tui_helpers import until

from trajrec.cli import main
from trajrec.tui.app import create_app


@pytest.fixture
def two_folders(tmp_path: Path, capsys: pytest.CaptureFixture) -> tuple[Path, Path, list[str]]:
    """``shell``: 4 unlabeled episodes; ``copy``: copies of 2 of them, labeled by the rules."""
    shell, copy = tmp_path / "shell", tmp_path / "copy"
    assert main(["record", "trajrec/Shell-v0", "--episodes", "4", "--out", str(shell)]) == 0
    copy.mkdir()
    copied = sorted(shell.glob("*.msgpack.zst"))[:2]
    for f in copied:
        shutil.copy(f, copy / f.name)
    assert main(["label", "auto", str(copy), "--rules"]) == 0
    capsys.readouterr()
    return shell, copy, [f.name for f in copied]


def _ls_json(capsys: pytest.CaptureFixture, *args: str) -> list[dict]:  # type: ignore[type-arg]
    assert main(["ls", *args, "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_ls_labeled_column_counts_the_own_folder(two_folders: tuple[Path, Path, list[str]],
                                                 capsys: pytest.CaptureFixture) -> None:
    shell, copy, names = two_folders
    rows = _ls_json(capsys, str(shell), str(copy), "--sort=-labeled")
    by_path = {Path(r["path"]).resolve(): r["labeled"] for r in rows}
    assert len(by_path) == 6
    for name in names:
        assert by_path[(copy / name).resolve()] > 0
        assert by_path[(shell / name).resolve()] == 0.0  # the original has no labels of its own
    # the column agrees with the filter on the same folders
    where = {Path(r["path"]).resolve() for r in _ls_json(capsys, str(shell), str(copy), "--where", "labeled")}
    assert where == {p for p, f in by_path.items() if f > 0} == {(copy / n).resolve() for n in names}
    # and the text listing, sorted by the column, puts the copies first and shows "-" for the unlabeled originals
    assert main(["ls", str(shell), str(copy), "--sort=-labeled"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [line.split()[-1] for line in lines] == ["100%", "100%", "-", "-", "-", "-"]


def test_viewer_labeled_column_counts_the_own_folder(two_folders: tuple[Path, Path, list[str]]) -> None:
    shell, copy, names = two_folders
    labeled: dict[Path, float | None] = {}

    async def run() -> None:
        app = create_app([shell, copy])
        async with app.run_test(size=(140, 40)) as pilot:
            await until(pilot, lambda: app.library.scan_done)
            await pilot.pause()
            labeled.update({Path(e.path).resolve(): e.labeled for e in app.library.entries})
    asyncio.run(run())
    assert len(labeled) == 6
    for name in names:
        assert labeled[(copy / name).resolve()] == 1.0
        assert labeled[(shell / name).resolve()] is None  # shown "-": no labels in its folder
