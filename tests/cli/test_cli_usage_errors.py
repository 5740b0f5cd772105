"""An unknown option shows the usage of the command (or action) it was given to, not the top-level usage."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from trajrec.cli import build_parser, main


def _commands() -> list[list[str]]:
    """Every command, and every action of a command that has actions (``label add``, ...)."""
    out: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    out.append([*prefix, name])
                    walk(sub, [*prefix, name])

    walk(build_parser(), [])
    return out


COMMANDS = _commands()


def test_every_command_and_action_is_listed() -> None:
    assert ["ls"] in COMMANDS and ["label", "add"] in COMMANDS and len(COMMANDS) > 15


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_unknown_option_shows_the_commands_usage(argv: list[str], tmp_path, capsys: pytest.CaptureFixture) -> None:
    # Tester: `trajrec ls runs --bogus` printed `usage: trajrec [-h] [--version] COMMAND ...`.
    with pytest.raises(SystemExit) as done:
        main([*argv, "--zz-bogus"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: trajrec {' '.join(argv)} ")
    assert f"trajrec {' '.join(argv)}: error: " in err


def test_unknown_option_after_the_arguments(tmp_path, capsys: pytest.CaptureFixture) -> None:
    for argv in (["ls", str(tmp_path), "--bogus"], ["label", "ls", str(tmp_path), "--bogus"],
                 ["diff", "a", "b", "--bogus", "x"]):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2
        name = " ".join(argv[:2] if argv[0] == "label" else argv[:1])
        err = capsys.readouterr().err
        assert err.startswith(f"usage: trajrec {name} ")
        assert err.rstrip().splitlines()[-1].startswith(f"trajrec {name}: error: unrecognized arguments: --bogus")
    proc = subprocess.run([sys.executable, "-m", "trajrec", "ls", str(tmp_path), "--bogus"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("usage: trajrec ls ")
    with pytest.raises(SystemExit):  # the top level keeps its own usage for its own unknown options
        main(["--bogus"])
    assert capsys.readouterr().err.startswith("usage: trajrec [-h]")
