"""The viewer in a real terminal (a pty): opening a step in $EDITOR suspends the app, runs the editor on a JSON
copy of the step and comes back."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

pty = pytest.importorskip("pty")


def _read(fd: int, seconds: float, until: bytes | None = None) -> bytes:
    out = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if until is not None and until in out:
                break
    return out


def _open_in_editor(args: list[str], until: bytes, tmp_path: Path) -> tuple[int, str]:
    """Run ``trajrec view ARGS`` in a pty with an $EDITOR that copies the file it is given, press ``o`` once the
    screen shows ``until``, then ``q``; returns the exit code and the text the editor was given."""
    copy = tmp_path / "seen.json"
    editor = tmp_path / "editor.sh"
    editor.write_text(f"#!/bin/sh\ncp \"$1\" {copy}\n")
    editor.chmod(0o755)
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "EDITOR": str(editor)}
    proc = subprocess.Popen([sys.executable, "-m", "trajrec", "view", *args],
                            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    try:
        _read(master, 20, until=until)
        _read(master, 1.0)
        os.write(master, b"o")
        for _ in range(100):
            if copy.exists():
                break
            _read(master, 0.1)
        _read(master, 1.0)
        os.write(master, b"q")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return proc.returncode, copy.read_text(encoding="utf-8")


def test_open_step_in_editor(main_episode: Path, tmp_path: Path) -> None:
    code, text = _open_in_editor([str(main_episode), "--step", "3"], b"step 3", tmp_path)
    assert code == 0
    record = json.loads(text)
    assert record["index"] == 3 and record["action"] == "cat todo.txt" and record["path"] == str(main_episode)


def test_step_opened_in_editor_has_control_characters_escaped(tmp_path: Path) -> None:
    """``o`` writes the same JSON as ``y``: C1 controls and bidi overrides of recorded text as \\u escapes."""
    from tui_helpers import record

    hostile = "write a \x9b31m\u202eevil"
    episode = record(tmp_path / "run", [hostile, "submit"])
    _code, text = _open_in_editor([str(episode)], b"step 0", tmp_path)
    assert "\x9b" not in text and "\u202e" not in text and "\\u009b" in text and "\\u202e" in text


def _press_o_then_q(args: list[str], editor: str, tmp_path: Path) -> tuple[int | None, bytes]:
    """``trajrec view ARGS`` in a pty with ``$EDITOR=editor``: press ``o``, then ``q``; the exit code (None: still
    running after 20 s, killed) and the screen bytes seen after ``o``."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "EDITOR": editor}
    proc = subprocess.Popen([sys.executable, "-m", "trajrec", "view", *args],
                            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    try:
        _read(master, 20, until=b"step 0")
        _read(master, 1.0)
        os.write(master, b"o")
        seen = _read(master, 3.0, until=b"cannot run")
        seen += _read(master, 1.0)
        os.write(master, b"q")
        try:
            code: int | None = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            code = None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, seen


@pytest.mark.parametrize("kind", ["missing", "bad interpreter"])
def test_an_editor_that_cannot_start_leaves_the_viewer_working(kind: str, tmp_path: Path) -> None:
    from tui_helpers import record

    episode = record(tmp_path / "run", ["ls", "submit"])
    if kind == "missing":
        editor = "/nonexistent/editor --wait"
    else:  # on PATH and executable, but exec fails: the error comes from inside the suspended app
        script = tmp_path / "ed"
        script.write_text("#!/nonexistent/interpreter\n")
        script.chmod(0o755)
        editor = str(script)
    code, seen = _press_o_then_q([str(episode)], editor, tmp_path)
    assert code == 0, "the viewer did not come back from the failed editor (q did nothing)"
    assert b"cannot run" in seen
