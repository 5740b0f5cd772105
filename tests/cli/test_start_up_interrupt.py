"""A Ctrl-C in the first tenth of a second of a command (while its modules load) ends it with the one line a later
Ctrl-C gives, ``trajrec COMMAND: interrupted``, and status 130: never Python's traceback of the interrupted
import (trajrec/_launch.py)."""

from __future__ import annotations

import importlib.abc
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import trajrec
from trajrec import _launch

SAMPLE_RUNS = Path(__file__).resolve().parents[2] / "sample_runs"


class _InterruptedImport(importlib.abc.MetaPathFinder):
    """Raises what a Ctrl-C raises while ``name`` is being imported (``wrap``: inside a class body's
    ``__set_name__``, which Python 3.11 reports as a RuntimeError caused by it)."""

    def __init__(self, name: str, wrap: bool = False) -> None:
        self.name, self.wrap = name, wrap

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname == self.name:
            if self.wrap:
                try:
                    raise KeyboardInterrupt
                except KeyboardInterrupt as exc:
                    raise RuntimeError("Error calling __set_name__ on 'Field' instance") from exc
            raise KeyboardInterrupt
        return None


@pytest.mark.parametrize("wrap", [False, True], ids=["KeyboardInterrupt", "in __set_name__"])
def test_ctrl_c_while_the_command_loads_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str], wrap: bool) -> None:
    for name in [m for m in sys.modules if m == "trajrec.cli" or m.startswith("trajrec.cli.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_InterruptedImport("trajrec.cli", wrap), *sys.meta_path])
    monkeypatch.setattr(sys, "argv", ["trajrec", "export", "runs", "--format", "records"])
    with pytest.raises(SystemExit) as stop:
        _launch.console_main()
    assert stop.value.code == 130
    assert capsys.readouterr().err == "trajrec export: interrupted\n"


def test_other_errors_while_loading_are_not_taken_for_a_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname: str, path: object, target: object = None) -> None:
            if fullname == "trajrec.cli":
                raise ImportError("a broken install")
            return None

    monkeypatch.delitem(sys.modules, "trajrec.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Broken(), *sys.meta_path])
    with pytest.raises(ImportError, match="a broken install"):
        _launch.console_main()


def test_ctrl_c_at_random_moments_of_the_start_never_shows_a_traceback_of_ours() -> None:
    # The command as installed: `python -m trajrec` goes through the same entry point as the `trajrec` script.
    # SIGINT must reach the child as in a terminal (a suite run as a background job inherits it ignored).
    import importlib.util

    # The package's folders (its layers install from the repository's top-level folders: recorder/, replay/...).
    folders = [os.path.dirname(trajrec.__file__)] + [
        os.path.join(list(importlib.util.find_spec(f"trajrec.{layer}").submodule_search_locations)[0], "")
        for layer in ("recorder", "replay", "envs", "tui")]
    rng = random.Random(0)
    outcomes = []
    for _ in range(16):
        proc = subprocess.Popen([sys.executable, "-m", "trajrec", "ls", str(SAMPLE_RUNS)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            proc.wait(timeout=rng.uniform(0.0, 0.12))  # (returns at once if it finished: then nothing to do)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
        outcomes.append(proc.returncode)
        # Before the interpreter runs any of trajrec's code, a Ctrl-C is Python's own to report (site, runpy);
        # from then on no frame of the package may appear.
        ours = [line for line in err.splitlines()
                if line.strip().startswith("File") and any(folder in line for folder in folders)]
        assert not ours, textwrap.indent(err, "  ")
        if proc.returncode == 130:
            assert err.endswith("trajrec ls: interrupted\n"), err
    assert 130 in outcomes, outcomes  # some Ctrl-C did land while trajrec loaded or ran


def test_ctrl_c_just_after_the_command_is_done_keeps_its_status(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # Between the command's return and the SIGINT handler that ignores later Ctrl-Cs: the success stands (no
    # traceback, no "interrupted" line after "exported ...", status 0).
    from trajrec import cli

    class Interrupting:
        def __init__(self, stream: object) -> None:
            self.stream, self.fired = stream, False

        def flush(self) -> None:
            if not self.fired:
                self.fired = True
                raise KeyboardInterrupt

        def __getattr__(self, name: str) -> object:
            return getattr(self.stream, name)

    def done(argv: object = None) -> int:
        print("exported 3 episodes")
        monkeypatch.setattr(sys, "stdout", Interrupting(sys.stdout))
        return 0

    monkeypatch.setattr(cli, "main", done)
    monkeypatch.setattr(sys, "argv", ["trajrec", "export", "runs"])
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as stop:
            _launch.console_main()
    finally:
        signal.signal(signal.SIGINT, handler)
    assert stop.value.code == 0
    captured = capsys.readouterr()
    assert captured.out == "exported 3 episodes\n" and captured.err == ""
