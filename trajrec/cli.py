"""The ``trajrec`` command line: one command group; each command lives in ``trajrec/commands/<name>.py``.

A command module defines ``NAME``, ``HELP``, ``EXAMPLES``, ``add_arguments(parser)`` and ``run(args) -> int``.
Modules import what they need inside ``run``, so ``trajrec --help`` stays fast and only ``view`` loads the TUI.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import re
import sys
import warnings
from typing import Any, Callable, Sequence

from trajrec.recorder.errors import TrajrecError
from trajrec.recorder.spelling import cli_spelling
from trajrec.recorder.version import __version__

from . import commands

_SGR = re.compile(r"\x1b\[[0-9;]*m")  # terminal colour codes (ECMA-48 SGR)

EPILOG = """examples:
  trajrec demo                                   record a small run of every built-in env and open it
  trajrec record trajrec/Shell-v0 --episodes 50 --out runs/shell
  trajrec ls runs/shell --where failed           one line per episode, filtered like the viewer
  trajrec show runs/shell/<episode>.msgpack.zst --step 3
  trajrec view runs/shell                        browse, replay and label in the terminal
  trajrec replay runs/shell/<episode>.msgpack.zst    re-run an episode and report where it diverges
  trajrec diff A.msgpack.zst B.msgpack.zst       two episodes compared step by step
  trajrec export runs/shell --format chat --out sft/    training data; formats: records, chat, trl-stepwise,
                                                 dpo, kto, parquet, atif
  trajrec fsck runs/shell --repair               check files, rebuild missing indexes
  eval "$(trajrec completion bash)"              tab completion (bash or zsh)

Run `trajrec COMMAND --help` for a command's options and examples."""


def _command_modules() -> list:
    mods = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mods.append(importlib.import_module(f"{commands.__name__}.{info.name}"))
    return sorted(mods, key=lambda m: getattr(m, "ORDER", 50))


class CommandParser(argparse.ArgumentParser):
    """The parser of one command (and of its actions): arguments it does not know are an error with *its* usage.

    argparse hands a subcommand's unknown arguments back to the top-level parser, whose error then shows the
    ``trajrec [-h] [--version] COMMAND`` usage instead of the command's own (``trajrec ls runs --bogus``). Nested
    subparsers (``label add``) are of the parent's class, so the deepest parser reports them.
    """

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


_ALL = object()


def build_parser(command: Any = _ALL) -> argparse.ArgumentParser:
    """The ``trajrec`` parser. ``command``: the one command whose options are added (None: no command's), so that
    a command line imports only what its command needs (the options of ``export`` load the export formats,
    ``record`` the recording modules...); by default every command's options, as ``completion`` needs them. The
    command list, ``--help``, ``--version`` and the errors for an unknown command read the same either way."""
    parser = argparse.ArgumentParser(
        prog="trajrec",
        description="Record, browse, replay, label and export agent trajectories in Gymnasium tool environments.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"trajrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for mod in _command_modules():
        p = sub.add_parser(
            mod.NAME,
            help=mod.HELP,
            description=getattr(mod, "DESCRIPTION", mod.HELP),
            epilog=f"examples:\n{mod.EXAMPLES}" if getattr(mod, "EXAMPLES", "") else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if command is _ALL or mod.NAME == command:
            mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


#: Commands whose exit status is a verdict on their input (problems found, diverged, differ, unreadable files):
#: when the reader of their output goes away they finish silently, so the status stays the verdict.
VERDICT_COMMANDS = frozenset({"fsck", "replay", "ls", "diff"})


class EscapingStream:
    """A text stream that shows control characters in everything written through it as visible escapes.

    Commands print recorded text (episode ids, env ids, judges, messages, paths) that may hold terminal escape
    sequences; :func:`main` routes ``sys.stdout`` and ``sys.stderr`` through this stream, so no command can send
    one to the terminal, whatever it prints. Newlines and tabs pass. ``unescaped`` is the underlying stream, for
    the progress bar's own carriage returns. The escaping is :func:`trajrec.replay.render.safe`, the one
    function the viewer uses too.
    """

    def __init__(self, stream: Any, *, drain_on_broken_pipe: bool = False) -> None:
        from trajrec.replay.render import safe

        self.unescaped = stream
        self._safe = safe
        #: A command whose exit status is a verdict (fsck, replay, ls, diff) goes on when its reader closes the
        #: pipe (`trajrec fsck runs/ | head`), writing to /dev/null, so its status is still the verdict.
        self._drain = drain_on_broken_pipe

    def write(self, text: str) -> int:
        try:
            self.unescaped.write(self._safe(text))
        except BrokenPipeError:
            if not self._drain:
                raise
            self._to_devnull()
        return len(text)

    def flush(self) -> None:
        try:
            self.unescaped.flush()
        except BrokenPipeError:
            if not self._drain:
                raise
            self._to_devnull()

    def _to_devnull(self) -> None:
        try:
            fd = self.unescaped.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        except (OSError, AttributeError, ValueError):
            self._drain = False  # no descriptor to redirect: the quiet exit of a closed pipe instead
            raise BrokenPipeError from None

    def isatty(self) -> bool:
        return bool(getattr(self.unescaped, "isatty", lambda: False)())

    def fileno(self) -> int:
        return int(self.unescaped.fileno())

    def close(self) -> None:
        self.unescaped.close()

    @property
    def encoding(self) -> str:
        return str(getattr(self.unescaped, "encoding", "utf-8"))

    def writable(self) -> bool:
        return True


def glue_option_values(argv: Sequence[str], options: Sequence[str] = ("--where",)) -> list[str]:
    """``--where -passed`` as ``--where=-passed``: argparse takes a value starting with ``-`` for an option and
    refuses it ("expected one argument"), but a query's ``-TERM`` negates a term. A value starting with ``--``
    is left alone (more likely a forgotten value before the next option)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":  # everything after is positional
            out.extend(argv[i:])
            break
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if arg in options and nxt is not None and nxt.startswith("-") and not nxt.startswith("--") and nxt != "-":
            out.append(f"{arg}={nxt}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def command_of(argv: Sequence[str]) -> Any:
    """The command ``argv`` names: its first word that is not an option (the top level's options, ``-h`` and
    ``--version``, take no value); None when it names none; :data:`_ALL` (every command's options) after ``--``
    or an option unknown at the top level, where argparse's own handling decides."""
    for arg in argv:
        if arg in ("-h", "--help", "--version"):
            continue
        if arg.startswith("-"):
            return _ALL
        return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    typed = list(sys.argv[1:] if argv is None else argv)
    glued = glue_option_values(typed)
    command = command_of(glued)
    try:
        parser = build_parser(command)  # (imports the command's modules: may take a moment)
        args = parser.parse_args(glued)
    except KeyboardInterrupt:  # Ctrl-C right after start: the one line of a later Ctrl-C, not a traceback
        print(f"trajrec{' ' + command if isinstance(command, str) else ''}: interrupted", file=sys.stderr)
        return 130
    args._argv = typed  # as typed: `record` prints its --resume command
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    for stream in (sys.stdout, sys.stderr):
        # Recorded text may hold lone surrogates (tool output decoded with surrogateescape): printed, they
        # become visible escapes instead of a UnicodeEncodeError.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a stream that cannot change its error handler keeps its own
                pass
    out, err = sys.stdout, sys.stderr
    sys.stdout = EscapingStream(out, drain_on_broken_pipe=args.command in VERDICT_COMMANDS)
    sys.stderr = EscapingStream(err)
    show = warnings.showwarning

    def one_line(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        # Without the colour codes some libraries put in their warnings (gymnasium's), shown escaped otherwise.
        text = " ".join(_SGR.sub("", str(message)).split("\n"))
        print(f"trajrec {args.command}: warning: {text}", file=sys.stderr)

    warnings.showwarning = one_line
    hook = sys.unraisablehook
    sys.unraisablehook = interrupt_again(hook)
    try:
        with cli_spelling():  # the library's messages name flags (--overwrite), not Python keywords
            return _run(args)
    finally:
        sys.unraisablehook = hook
        warnings.showwarning = show
        sys.stdout, sys.stderr = out, err


def console_main() -> None:
    """The ``trajrec`` command (and ``python -m trajrec``): :func:`main`, then exit with its status.

    The command is done, and has said so, when :func:`main` returns; a Ctrl-C while the interpreter then shuts
    down (joining a worker pool's threads, stopping its server) used to end the process by SIGINT, with no line,
    after a report of success. From then on it exits at once with the command's own status instead.
    """
    import atexit
    import signal

    # Registered before any command imports multiprocessing (whose exit hook joins worker processes), so it runs
    # after every other exit hook: from then on only the interpreter's own teardown is left, during which Python
    # sets SIGINT back to its default, and a Ctrl-C there ended a finished command by SIGINT (exit -2 after
    # "exported ..."). Ignored then: the command exits with its status.
    atexit.register(_ignore_ctrl_c)
    try:
        code: Any = main()
    except SystemExit as exc:  # argparse's --help, --version and usage errors
        code = exc.code
    status = code if isinstance(code, int) else (0 if code is None else 1)

    def exit_now(signum: int, frame: Any) -> None:
        os._exit(status)

    try:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more can be said
                pass
        try:
            signal.signal(signal.SIGINT, exit_now)
        except ValueError:  # not the main thread (an embedding caller): leave its signals alone
            pass
    except KeyboardInterrupt:
        pass  # a Ctrl-C before the handler above took over: the command is done, and its status stands
    sys.exit(code)


def _ignore_ctrl_c() -> None:
    import signal

    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        pass


def interrupt_again(default: Callable[[Any], Any]) -> Callable[[Any], None]:
    """An ``sys.unraisablehook`` for a command: Ctrl-C that lands inside a finalizer (the ``__del__`` of an episode
    being garbage-collected) is dropped by Python, which prints "Exception ignored ... KeyboardInterrupt" and goes
    on as if no key was pressed. It is raised again in the main thread 10 ms later, so the command stops as for
    any Ctrl-C, with its one line; other unraisable errors go to ``default``."""
    import _thread
    import threading

    def hook(info: Any) -> None:
        if isinstance(info.exc_value, KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
            threading.Timer(0.01, _thread.interrupt_main).start()
            return
        default(info)

    return hook


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args._run(args) or 0)
    except TrajrecError as exc:
        text = " ".join(str(exc).split("\n"))  # one line, whatever the message quotes
        print(f"trajrec {args.command}: error: {text}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # Ctrl-C; `record` turns SIGTERM into one too (reason, exit code 143)
        print(f"trajrec {args.command}: {getattr(exc, 'reason', 'interrupted')}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 130))
    except BrokenPipeError:
        # `trajrec ls | head`: the reader went away; not an error worth a traceback. What is still buffered for
        # stdout goes to /dev/null, so the interpreter's flush at exit does not fail on the closed pipe either.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.__stdout__.fileno())
        except (OSError, AttributeError, ValueError):
            pass  # no real stdout file descriptor: nothing will be flushed to it
        sys.stderr.close()
        # A command whose exit status is a verdict decided before its output (diff: same or not) keeps it.
        return int(getattr(args, "verdict", 0) or 0)
