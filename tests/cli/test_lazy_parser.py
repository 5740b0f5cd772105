"""The command line adds only its command's options (``build_parser(command)``): what it prints — every
command's ``--help``, the top-level help, ``--version``, usage errors — is what the parser of every command prints,
and ``trajrec --version`` loads none of the commands' modules."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from trajrec import cli


def _names() -> list[str]:
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    return list(sub.choices)


def _outcome(parse, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[object, str, str]:
    try:
        parse(argv)
        code: object = None
    except SystemExit as exc:
        code = exc.code
    got = capsys.readouterr()
    return code, got.out, got.err


ARGVS = [
    ["--help"], ["--version"], [], ["bogus"], ["exprt", "runs"], ["--bogus"], ["-h", "export"],
    ["ls", "--bogus"], ["export", "runs"], ["export", "runs", "--format", "nope", "--out", "x"],
    ["label", "add"], ["--", "ls"], ["show"],
]


@pytest.mark.parametrize("argv", ARGVS + [[name, "--help"] for name in
                                          ["export", "ls", "show", "record", "label", "view", "completion"]])
def test_lazy_parser_prints_what_the_whole_parser_prints(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    whole = _outcome(lambda a: cli.build_parser().parse_args(cli.glue_option_values(a)), argv, capsys)
    lazy = _outcome(lambda a: cli.build_parser(cli.command_of(cli.glue_option_values(a))).parse_args(
        cli.glue_option_values(a)), argv, capsys)
    assert lazy == whole


def test_every_command_help_is_the_same(capsys: pytest.CaptureFixture[str]) -> None:
    names = _names()
    assert len(names) > 10
    for name in names:
        whole = _outcome(lambda a: cli.build_parser().parse_args(a), [name, "--help"], capsys)
        lazy = _outcome(lambda a: cli.build_parser(name).parse_args(a), [name, "--help"], capsys)
        assert lazy == whole and whole[1].startswith(f"usage: trajrec {name}"), name


def test_version_and_help_load_no_command_modules() -> None:
    code = ("import sys, json, io, contextlib\n"
            "import trajrec.cli\n"
            "for argv in (['--version'], ['--help']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        try:\n            trajrec.cli.main(argv)\n        except SystemExit:\n            pass\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('trajrec.replay'))))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []
