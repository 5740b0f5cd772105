"""``trajrec view``: browse and replay episodes in the terminal (the Textual app in :mod:`trajrec.tui`)."""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import Iterator

NAME = "view"
ORDER = 25
HELP = "Browse a folder of episodes and replay one step by step in the terminal (press ? inside for keys)."
EXAMPLES = """  trajrec view runs/                           the library: filter, sort, enter opens an episode
  trajrec view runs/a.msgpack.zst --step 40    open one episode at step 40 (-1: the last step)
  trajrec view runs/ --annotator ana           label as "ana": + - 0 rate a step, c note, t tag, u undo
  trajrec view runs/ --tags lucky-guess,wrong-tool      the tags t offers (or $TRAJREC_TAGS)
  trajrec view runs/ --theme light             for a light terminal (or $TRAJREC_THEME; NO_COLOR=1: no colors)
  (in the library, r opens the report screen: `trajrec report`'s tables for the episodes shown)"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="an episode file, or folders searched recursively")
    p.add_argument("--step", type=int, metavar="N",
                   help="with one episode file: open at step N (negative counts from the end)")
    p.add_argument("--annotator", metavar="NAME",
                   help="who labels in this session (default: $TRAJREC_ANNOTATOR, else your login name)")
    p.add_argument("--tags", metavar="A,B,C",
                   help="the tags the t key offers (default: $TRAJREC_TAGS, else "
                        "useful-recovery,repeated-mistake,fake-reasoning,lucky-guess)")
    p.add_argument("--theme", metavar="NAME",
                   help="dark (default), light, or any Textual theme name (default: $TRAJREC_THEME); ctrl+t "
                        "switches between light and dark inside; NO_COLOR in the environment turns colors off")
    p.add_argument("--no-cache", action="store_true",
                   help="neither read nor write the summary cache <folder>/.trajrec/catalog/: read every file "
                        "(after files were rewritten in place by another tool)")


def need_terminal() -> None:
    """Raise unless stdin and stdout are a terminal: the viewer would wait for keys that never come and write
    escape codes into a pipe. (Stderr may be a file or a pipe: the viewer then draws on stdout's terminal,
    :func:`drawn_on_stdout`.)"""
    import sys

    from trajrec.recorder import TrajrecUsageError

    missing = [name for name, stream in (("stdin", sys.stdin), ("stdout", sys.stdout))
               if stream is None or not stream.isatty()]
    if missing:
        raise TrajrecUsageError(f"the viewer needs a terminal, and {' and '.join(missing)} "
                                f"{'is' if len(missing) == 1 else 'are'} not one; in scripts use `trajrec ls PATH` "
                                "or `trajrec show FILE` (both take --json)")


@contextlib.contextmanager
def drawn_on_stdout() -> Iterator[None]:
    """While the app runs, make file descriptor 2 the terminal of stdout when stderr is not a terminal.

    Textual draws on stderr. ``trajrec view PATH 2>log`` (to keep warnings, e.g. a bad ``$TRAJREC_THEME``) would
    put the whole screen into the log and leave the terminal blank: the screen goes to the terminal instead, and
    descriptor 2 is given back to the log when the app ends, so what is written before and after it (warnings,
    errors) still goes there. (While the app runs, Textual takes over Python's stderr itself.)"""
    import sys

    try:
        redirect = not os.isatty(2) and os.isatty(1)
    except OSError:
        redirect = False
    if not redirect:
        yield
        return
    for stream in (sys.stderr, sys.__stderr__):
        if stream is not None:
            stream.flush()
    saved = os.dup(2)
    try:
        os.dup2(1, 2)
        try:
            yield
        finally:
            if sys.__stderr__ is not None:
                with contextlib.suppress(OSError, ValueError):
                    sys.__stderr__.flush()
            os.dup2(saved, 2)
    finally:
        os.close(saved)


def run(args: argparse.Namespace) -> int:
    from trajrec.recorder import SUFFIX, TrajrecUsageError
    from trajrec.recorder.storage import is_url

    for path in args.paths:
        if not is_url(path) and not os.path.exists(path):
            raise TrajrecUsageError(f"{path}: no such file or folder; pass an episode file (*{SUFFIX}) or a folder "
                                    "of them")
    if args.step is not None and not (len(args.paths) == 1 and os.path.isfile(args.paths[0])):
        raise TrajrecUsageError("--step needs exactly one episode file, e.g. "
                                f"`trajrec view runs/x{SUFFIX} --step {args.step}`")
    if len(args.paths) == 1 and os.path.isfile(args.paths[0]):
        from trajrec.recorder import open_episode

        with open_episode(args.paths[0]) as ep:  # fail here, with a plain error, on a file that is no episode
            n = len(ep)
        if args.step is not None and not -n <= args.step < n:
            raise TrajrecUsageError(f"--step {args.step} is out of range: {args.paths[0]} has "
                                    + (f"steps 0..{n - 1} (or -{n}..-1 from the end)" if n else "no steps"))

    # No textual in these modules: argument errors come before the UI library loads.
    from trajrec.replay.label_store import check_annotator
    from trajrec.replay.labels import default_annotator
    from trajrec.tui.label_session import DEFAULT_TAGS, parse_tags
    from trajrec.tui.label_source import LabelSource

    if args.annotator is not None:
        annotator, source = args.annotator, "--annotator"  # "" is refused below
    else:
        annotator = default_annotator()
        source = "$TRAJREC_ANNOTATOR" if os.environ.get("TRAJREC_ANNOTATOR") else "the login name"
    check_annotator(annotator, source)
    tags_env = os.environ.get("TRAJREC_TAGS")
    if args.tags is not None:
        tags = parse_tags(args.tags)
    else:
        tags = parse_tags(tags_env, source="$TRAJREC_TAGS") if tags_env else DEFAULT_TAGS

    need_terminal()
    from trajrec.envs.banks import task_bank
    from trajrec.tui.app import create_app, theme_name  # textual loads only for this command

    theme = getattr(args, "theme", None)
    if theme is not None:
        theme_name(theme)  # an unknown name: a usage error before the screen switches
    elif os.environ.get("TRAJREC_THEME"):
        theme = os.environ["TRAJREC_THEME"]
        try:
            theme_name(theme)
        except TrajrecUsageError as exc:
            # A setting in the environment (a shell profile) must not stop the viewer: warn, use the default.
            import sys

            print(f"trajrec view: warning: $TRAJREC_THEME: {exc}; using the default theme (dark)", file=sys.stderr)
            theme = None

    labels = LabelSource(args.paths)  # read in the library's scan thread, on first use
    app = create_app(args.paths, annotator=annotator, tags=tags, step=args.step, labels=labels,
                     labeled_fraction=labels.labeled_fraction, use_catalog=not args.no_cache, theme=theme,
                     task_bank=task_bank)
    with drawn_on_stdout():
        app.run()
    return int(app.return_code or 0)
