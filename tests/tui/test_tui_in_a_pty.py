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


def _settle(fd: int, quiet: float = 0.3, limit: float = 3.0) -> bytes:
    """Read until the app has drawn nothing for ``quiet`` seconds (it is waiting for keys), ``limit`` at most."""
    out = b""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        chunk = _read(fd, quiet)
        if not chunk:
            break
        out += chunk
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
        _settle(master)
        os.write(master, b"o")
        for _ in range(100):
            if copy.exists():
                break
            _read(master, 0.1)
        _settle(master)
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


@pytest.mark.parametrize("kind", ["missing", "unstartable"])
def test_an_editor_that_cannot_start_is_told_and_the_viewer_stays(main_episode: Path, tmp_path: Path,
                                                                  kind: str) -> None:
    """A tester's ``EDITOR=/nonexistent/editor``: ``o`` left a blank screen echoing keys until Ctrl-C. An editor
    that is missing is told before the screen is given up; one found on disk that fails to start (a script with a
    bad interpreter line) is told after the screen comes back; either way ``q`` still quits."""
    if kind == "missing":
        editor = str(tmp_path / "no-such-editor")
    else:
        script = tmp_path / "broken-editor"
        script.write_text("#!/nonexistent/interpreter\n")
        script.chmod(0o755)
        editor = str(script)
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "EDITOR": editor}
    proc = subprocess.Popen([sys.executable, "-m", "trajrec", "view", str(main_episode), "--step", "1"],
                            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    try:
        _read(master, 20, until=b"step 1")
        _settle(master)
        os.write(master, b"o")
        seen = _read(master, 10, until=b"cannot run")
        assert b"cannot run" in seen
        _settle(master)
        os.write(master, b"q")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_stderr_to_a_file_keeps_the_screen_on_the_terminal_and_warnings_in_the_file(main_episode: Path,
                                                                                     tmp_path: Path) -> None:
    """``trajrec view PATH 2>log``: Textual draws on stderr, so the whole screen went into the log and the terminal
    stayed blank. The screen must be on the terminal; the log gets the warnings (a bad $TRAJREC_THEME), no escape
    codes."""
    log = tmp_path / "view.err"
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "TRAJREC_THEME": "no-such-theme"}
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "trajrec", "view", str(main_episode), "--step", "2"],
                                stdin=slave, stdout=slave, stderr=err, env=env, close_fds=True)
    os.close(slave)
    try:
        seen = _read(master, 20, until=b"step 2")
        assert b"step 2" in seen  # drawn on the terminal
        _settle(master)
        os.write(master, b"q")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = log.read_bytes()
    assert b"\x1b" not in text, text[:200]
    assert text.decode().startswith("trajrec view: warning: $TRAJREC_THEME: "), text[:300]
