"""Ctrl-C that lands inside a finalizer is not lost: Python drops an exception raised in ``__del__`` (printing
"Exception ignored ... KeyboardInterrupt") and goes on; a trajrec command raises it again in its main thread."""

from __future__ import annotations

import signal
import sys
import time

import pytest

from trajrec.cli import interrupt_again


class _ClosesOnDel:
    def __del__(self) -> None:
        raise KeyboardInterrupt  # as when SIGINT's handler runs while an episode file is being closed


def test_a_ctrl_c_dropped_in_a_finalizer_is_raised_again(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[object] = []
    hook = sys.unraisablehook
    sys.unraisablehook = interrupt_again(seen.append)
    # As in a command run from a terminal: a suite started as a background job inherits SIGINT ignored, and then
    # no Ctrl-C reaches Python at all (nor is one raised again).
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            obj = _ClosesOnDel()
            del obj  # the finalizer's KeyboardInterrupt is dropped here by Python ...
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # ... and arrives again in this thread, at once
                time.sleep(0.01)
    finally:
        signal.signal(signal.SIGINT, handler)
        sys.unraisablehook = hook
    assert seen == []  # not passed on to the default hook (which prints "Exception ignored")
    assert "Exception ignored" not in capsys.readouterr().err


def test_other_unraisable_errors_still_reach_the_default_hook() -> None:
    seen: list[object] = []
    hook = sys.unraisablehook
    sys.unraisablehook = interrupt_again(seen.append)

    class Fails:
        def __del__(self) -> None:
            raise ValueError("in a finalizer")

    try:
        obj = Fails()
        del obj
    finally:
        sys.unraisablehook = hook
    assert len(seen) == 1 and isinstance(seen[0].exc_value, ValueError)  # type: ignore[attr-defined]


def test_ctrl_c_while_the_options_are_built_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from trajrec import cli

    def interrupted(command: object) -> object:
        raise KeyboardInterrupt  # as a Ctrl-C in the first tenth of a second, while the command's modules import

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["export", "runs", "--format", "records"]) == 130
    assert capsys.readouterr().err == "trajrec export: interrupted\n"


def test_ctrl_c_while_the_interpreter_shuts_down_keeps_the_commands_exit_status(tmp_path) -> None:
    # After the command said it was done: a Ctrl-C while Python waits for a thread at exit (a worker pool's) ended
    # the process by SIGINT with no line, after a report of success (FINDINGS11 #3).
    import subprocess
    import textwrap

    code = textwrap.dedent("""
        import os, signal, sys, threading, time
        signal.signal(signal.SIGINT, signal.default_int_handler)  # (a suite run as a background job ignores it)
        from trajrec import cli

        def late():
            time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the interpreter waits for this thread at exit
            time.sleep(0.5)

        threading.Thread(target=late).start()
        sys.argv = ["trajrec", "--version"]
        cli.console_main()
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr, (done.returncode, done.stderr)
    assert done.stdout.startswith("trajrec ")
