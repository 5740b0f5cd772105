"""The viewer's undo takes back its own version of a label only while that version is the live one: an edit of
the same label written meanwhile by another process (the same annotator, ``trajrec label edit`` in a terminal
beside the viewer) is never tombstoned or overwritten by the undo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trajrec.recorder import TrajrecUsageError
from trajrec.replay.labels import LabelStore
from trajrec.tui.label_session import LabelSession


def _edit_elsewhere(run: Path, label_id: str, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "trajrec", "label", "edit", str(run), "--id", label_id, *args],
                          capture_output=True, text=True, timeout=60, env={"TRAJREC_ANNOTATOR": "ana",
                                                                            "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("first", ["rate", "edit"])
def test_undo_leaves_a_newer_edit_from_another_process(tmp_path: Path, first: str) -> None:
    store = LabelStore(tmp_path)
    session = LabelSession(store, "ep", 4, "ana")
    if first == "edit":  # undo would restore the version before the session's edit
        session.rate(0, 0)
    change = session.rate(0, 1)
    assert change is not None
    _edit_elsewhere(tmp_path, change.after.id or "", "--value", "-1", "--rationale", "re-checked: wrong")
    with pytest.raises(TrajrecUsageError, match=r"step 0's label was changed since this session's rated \+1 "
                                                r"\(ana made it -1: 're-checked: wrong', version .*\): not undone"):
        session.undo()
    [live] = LabelStore(tmp_path).current("ep")
    assert (live.value, live.rationale) == (-1, "re-checked: wrong")
    # Its own label, not changed elsewhere, still undoes.
    other = session.rate(2, -1)
    assert other is not None and session.undo() is other
    assert [lab.target for lab in LabelStore(tmp_path).current("ep")] == [0]
