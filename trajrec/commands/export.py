"""``trajrec export``: step-labeled trajectories for training, in four formats."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trajrec.replay.exports.pipeline import ExportReport

NAME = "export"
ORDER = 70
HELP = ("Export step-labeled trajectories: records, chat (HF/TRL messages with tools), trl-stepwise (PRM), "
        "dpo, kto, parquet or atif (Harbor trajectories).")
EXAMPLES = """  trajrec export runs/ --format records --out evidence.jsonl
  trajrec export runs/ --format chat --out sft/ --weights positive        (a folder: data.jsonl + README.md card)
  trajrec export runs/ --format chat --out sft.jsonl --tool-arguments string     (OpenAI fine-tuning files)
  trajrec export runs/ --format trl-stepwise --out prm.jsonl --label-map strict --unlabeled truncate
  trajrec export runs/ --format dpo --out pairs.jsonl ; trajrec export runs/ --format kto --out kto.jsonl
  trajrec export runs/ --format parquet --out steps/ --shard-rows 100000 --partition-by split
  trajrec export runs/ --format records --out evidence.jsonl --workers 4    (4 processes; the same file as 1)
  trajrec export runs/ --format trl-stepwise --out prm.jsonl --prefer human,model:* --min-agreement 0.8
      (--min-agreement keeps episodes whose steps two or more judges labeled, e.g. `trajrec label auto runs/
       --rules` and people in the viewer, and agree on; `trajrec agreement runs/` shows where that stands)
  trajrec export runs/ --format atif --out atif/          one Harbor ATIF trajectory.json per episode (or a .jsonl)

--where FIELD OP VALUE (repeatable, all must hold); OP: = != > >= < <=; text fields take = != with * ? wildcards.
{fields}
(docs/EXPORT.md has the details)"""


def field_list(width: int = 110) -> str:
    """``fields: episode env ...``: every ``--where`` field of :data:`trajrec.replay.query.FIELDS`, wrapped."""
    import textwrap

    from trajrec.replay.query import FIELDS

    return textwrap.fill(" ".join(FIELDS), width=width, initial_indent="fields: ", subsequent_indent=" " * 8)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from trajrec.replay.exports.choice import DEFAULT_PREFER, LABEL_MAPS, UNLABELED

    if p.epilog:  # the field list comes from the query grammar, so it names every field it knows
        p.epilog = p.epilog.replace("{fields}", field_list())

    p.add_argument("paths", nargs="+", metavar="PATH", help="run folders or episode files")
    from trajrec.replay.exports.base import TOOL_ARGUMENTS, WEIGHT_POLICIES
    from trajrec.replay.exports.pipeline import FORMATS

    p.add_argument("--format", "-f", required=True, choices=list(FORMATS), help="output format")
    p.add_argument("--out", "-o", required=True, metavar="FILE|DIR",
                   help="output file ('-' for stdout, JSONL formats), or a folder (ending in '/'; parquet: any name "
                        "without .parquet) that gets the data and a dataset card README.md; atif: one trajectory file per episode)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out FILE if it exists (never an episode file or an input; a folder must still be "
                        "new or empty)")
    p.add_argument("--where", action="append", default=[], metavar="EXPR",
                   help="keep episodes where EXPR holds, e.g. outcome=failed, failures>0, labeled=true (repeatable)")
    p.add_argument("--min-agreement", type=float, metavar="X",
                   help="keep episodes whose steps labeled by 2+ judges agree at least this often (0..1)")
    p.add_argument("--label-map", default="strict", choices=LABEL_MAPS,
                   help="ratings to labels: strict (+1 true), lenient (0,+1 true), float (-1/0/+1), unit (0/0.5/1)")
    p.add_argument("--prefer", default=",".join(DEFAULT_PREFER), metavar="LIST",
                   help="whose label wins on a step: classes human,judge,rule,environment or judge ids "
                        "(model:*, human:ana); unlisted sources are not used (default: %(default)s)")
    p.add_argument("--unlabeled", default="skip-episode", choices=UNLABELED,
                   help="trl-stepwise: what to do with unlabeled steps (default: %(default)s)")
    p.add_argument("--system", metavar="TEXT",
                   help="chat, kto, dpo: a system message to start each conversation, in place of the episode's "
                        "own system prompt (an imported agent's, from the reset info's `system`); '' leaves it out")
    p.add_argument("--observations", action="store_true",
                   help="trl-stepwise: append each step's observation to its completion")
    p.add_argument("--step-separator", default="\n", metavar="TEXT",
                   help="trl-stepwise: the PRM trainer's step separator, replaced by a space in completions "
                        "(default: a newline; '\\n' and '\\t' are understood)")
    p.add_argument("--tool-arguments", default="object", choices=TOOL_ARGUMENTS,
                   help="chat/dpo/kto: tool-call arguments as an object (HF/TRL) or a JSON string (OpenAI files)")
    p.add_argument("--weights", default="label", choices=WEIGHT_POLICIES,
                   help="chat: weight 0/1 of assistant messages: label (0 for failed or -1-labeled steps), positive "
                        "(1 only for +1), failures (0 for failed steps), all (default: %(default)s)")
    p.add_argument("--shard-rows", type=int, default=1_000_000, metavar="N",
                   help="parquet to a folder: rows per part-NNNNN.parquet (default: %(default)s)")
    p.add_argument("--partition-by", choices=["split", "env"],
                   help="parquet to a folder only: one subfolder per split or env (split=train/part-00000.parquet); "
                        "other formats: --where 'split=train'")
    p.add_argument("--workers", "-j", type=int, default=1, metavar="N",
                   help="processes that read and encode episodes (records, trl-stepwise, chat, kto, parquet, atif to one "
                        "file; dpo and atif to a folder refuse it); the "
                        "output is the same as with one (default: %(default)s)")
    p.add_argument("--keep-partial", action="store_true",
                   help="also export episodes with lost steps (files `fsck --repair` rewrote around damage, and "
                        "files that lost env steps to a failed write while recording): their readable steps, rows "
                        "marked complete: false with where the steps were lost (default: left out whole)")
    p.add_argument("--json", action="store_true", help="print the export report as JSON (on stderr with --out -)")


def run(args: argparse.Namespace) -> int:
    from .label import warnings_to_stderr

    with warnings_to_stderr(NAME):
        return _run(args)


#: Variables that choose OpenBLAS's threads: when the user set one, the export leaves them alone.
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "GOTO_NUM_THREADS")


def one_blas_thread() -> None:
    """Have numpy's OpenBLAS start one thread when numpy loads in this process (unless the user chose a number):
    an export does no linear algebra, and OpenBLAS starting a thread per core cost ~50 ms of CPU, half of what
    importing numpy costs (the parquet export and runs with arrays import it). Only this command's process (and
    its ``--workers``) get it: the library's ``export()`` never changes a caller's environment."""
    if "numpy" not in sys.modules and not any(name in os.environ for name in _BLAS_THREADS):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"


def _run(args: argparse.Namespace) -> int:
    one_blas_thread()
    from trajrec.replay.exports import ExportOptions, Source, export
    from trajrec.replay.exports.pipeline import check_partition, check_workers, filters_for, is_not_episode
    from trajrec.progress import Progress
    from trajrec.recorder.errors import TrajrecUsageError

    options = ExportOptions(label_map=args.label_map, prefer=args.prefer, unlabeled=args.unlabeled,
                            system=args.system, observations=args.observations, tool_arguments=args.tool_arguments,
                            weights=args.weights, step_separator=_unescape(args.step_separator),
                            shard_rows=args.shard_rows, partition_by=args.partition_by,
                            keep_partial=args.keep_partial)
    filters_for(args.where, args.min_agreement)  # bad expressions fail before any file is read
    check_workers(args.format, args.workers, args.out)
    try:
        check_partition(args.format, options)
    except TrajrecUsageError as exc:  # a combination of flags argparse cannot refuse: a usage error (exit 2)
        print(f"trajrec export: error: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    src = Source(args.paths, join_labels=True)  # each episode's labels read when its turn comes
    if not src.files:  # before --out is created: an empty folder is an error, not an empty dataset
        from ._common import no_episode_files

        raise no_episode_files(args.paths)
    from trajrec.replay.exports.base import ESCAPED

    escaped_before = ESCAPED[0]  # lone surrogates written as text (every format counts them there)
    with Progress(None, f"export {args.format}", unit=" steps") as bar:  # streamed: no total known beforehand
        report = export(src, args.format, args.out, where=args.where, min_agreement=args.min_agreement,
                        options=options, progress=bar, workers=args.workers, overwrite=args.overwrite)
    # Known once the stream has passed every file (reading them all up front would hold every index).
    for path, _err in src.empty:
        print(f"trajrec export: skipped {path}: empty episode, nothing recorded (`trajrec fsck --repair {path}` "
              "removes it)", file=sys.stderr)
    for path, err in report.errors:  # damaged files: left out, the rest written
        if is_not_episode(err):  # another file in the run folder: nothing to repair
            fix = ""
        elif "trajrec fsck" in err:
            fix = "; `trajrec ls` may still list it (ls reads only each file's index)"
        else:
            fix = (f"; `trajrec fsck {path}` lists the damage, `--repair` keeps the readable steps (`trajrec ls` "
                   "may still list it: ls reads only each file's index)")
        print(f"trajrec export: skipped {path}: {err}{fix}", file=sys.stderr)
    for path in report.partial:
        print(f"trajrec export: left out {path}: steps were lost to damage (repaired by fsck; `trajrec fsck {path}` "
              "lists them); --keep-partial exports its readable steps, marked complete: false (not when the reset "
              "record was lost with them: there is no first observation to write)", file=sys.stderr)
    for path in report.header_lost:
        print(f"trajrec export: left out {path}: its header record was lost to damage (repaired by fsck: `trajrec fsck "
              f"{path}` says so), so its task and provenance are unknown; --keep-partial exports its readable steps, "
              "marked complete: false", file=sys.stderr)
    for path in report.unverified:
        print(f"trajrec export: left out {path}: its reset record was salvaged from damaged bytes by fsck --repair "
              f"(unverified: `trajrec fsck {path}` says so); --keep-partial exports it (records marks it "
              "reset.unverified)", file=sys.stderr)
    for path in report.unwritten:
        print(f"trajrec export: left out {path}: env steps were lost while recording (a write failed; `trajrec fsck "
              f"{path}` says where); --keep-partial exports the steps written, marked complete: false", file=sys.stderr)
    for path in report.live:
        print(f"trajrec export: {path} is still being written (a live Recorder holds it): exported the steps written "
              "so far, as an incomplete episode; export again once its Recorder has closed it", file=sys.stderr)
    if report.duplicates:
        some = ", ".join(report.duplicates[:3]) + (", ..." if len(report.duplicates) > 3 else "")
        print(f"trajrec export: left out {_n(len(report.duplicates), 'duplicate path')} (a file given twice, or "
              f"inside a folder also given; each file is exported once): {some}", file=sys.stderr)
    for eid, first, other in report.same_ids[:5]:
        if first in report.placed and other in report.placed:  # one file per episode: say which is which
            first, other = f"{first} (to {report.placed[first]})", f"{other} (to {report.placed[other]})"
        print(f"trajrec export: warning: episode {eid} is in two files, both exported: {first} and {other} "
              "(copies of one recording? pass only one of them)", file=sys.stderr)
    if len(report.same_ids) > 5:
        print(f"trajrec export: warning: {len(report.same_ids) - 5} more episode ids are in two files (--json lists "
              "them)", file=sys.stderr)
    report.seconds = time.perf_counter() - t0  # reading the indexes and labels included
    escaped = ESCAPED[0] - escaped_before
    if escaped:
        print(f"trajrec export: warning: {_n(escaped, 'character')} of recorded text {'is' if escaped == 1 else 'are'}"
              " not Unicode (lone surrogates, e.g. tool output decoded with surrogateescape): UTF-8 cannot hold "
              "them, so each is written as the text \\udcXX (6 characters; docs/EXPORT.md, \"Text that is not "
              "Unicode\")", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict()), file=sys.stderr if args.out == "-" else sys.stdout)
    else:
        where = "stdout" if args.out == "-" else args.out
        bal = report.balance
        if report.aborted:
            print(f"nothing written to {where}: no episode exported, and {_n(len(report.errors), 'file')} could not "
                  "be read (named above; `trajrec fsck PATH` checks them)", file=sys.stderr)
        else:
            print(f"exported {_n(report.written, 'episode')} ({bal(report.written_outcomes)}; "
                  f"{_n(report.steps, 'step')}, {_n(report.rows, 'row')}) to {where} in {report.seconds:.2f} s "
                  f"({report.steps_per_second:,.0f} steps/s)", file=sys.stderr)
        if not report.written and report.episodes:
            print("  " + _nothing_written(report, args), file=sys.stderr)
        elif report.written and not report.rows:
            print("  no row written: the episodes exported have no step", file=sys.stderr)
        if report.no_rows_no_folder:
            print(f"  no dataset folder written at {args.out}: `datasets.load_dataset` cannot load one of no rows "
                  "(docs/EXPORT.md)", file=sys.stderr)
        from trajrec.replay.exports.pipeline import NOT_EPISODES

        # Files that are no episode at all are not episodes left out: told apart, without outcomes.
        others = sum(report.left_out.get(NOT_EPISODES, {}).values())
        left = sum(sum(v.values()) for r, v in report.left_out.items() if r != NOT_EPISODES)
        if left:
            print(f"  left out {_n(left, 'episode')}:", file=sys.stderr)
        for reason, outcomes in report.left_out.items():
            if reason != NOT_EPISODES:
                print(f"    {sum(outcomes.values())} ({bal(outcomes)}): {reason}", file=sys.stderr)
                if reason in report.examples:  # the reason names a label: where the first such episode shows it
                    print(f"      e.g. {report.examples[reason]}", file=sys.stderr)
        if others:
            print(f"  left out {_n(others, 'file')} that {'is' if others == 1 else 'are'} not an episode "
                  "(named above)", file=sys.stderr)
        for hint in _hints(args, report):
            print(f"  hint: {hint}", file=sys.stderr)
        if len(report.files) > 1:
            card = [f for f in report.files if f.endswith("README.md")]
            print(f"  wrote {_n(len(report.files), 'file')}" + (f" (dataset card: {card[0]})" if card else ""),
                  file=sys.stderr)
    if report.test_episodes and args.partition_by != "split":
        # Built-in envs hold out every 5th task as `test`; a training set should not hold them.
        verb = "is" if report.test_episodes == 1 else "are"
        print(f"trajrec export: warning: {_n(report.test_episodes, 'episode')} written {verb}"
              f" from the env's test split (task split=test); pass --where 'split=train' to leave them out"
              + (", or --partition-by split for separate train and test splits (with --out DIR/, a folder)"
                 if args.format == "parquet"
                 else " (or --format parquet --out DIR/ --partition-by split for separate splits)"), file=sys.stderr)
    return 1 if report.errors else 0


def _nothing_written(report: object, args: argparse.Namespace) -> str:
    """Why an export wrote nothing, and what would change that."""
    if getattr(report, "matched", 0):
        from trajrec.replay.exports.pipeline import FILTERED

        left = {r: sum(o.values()) for r, o in getattr(report, "left_out", {}).items() if r != FILTERED}
        reason = max(left, key=left.__getitem__) if left else None
        fix = _fixes().get(reason or "")
        unmatched = getattr(report, "prefer_unmatched", [])

        from trajrec.replay.exports.choice import PREFER_CLASSES
        from trajrec.replay.exports.prefs import NO_RANK, NOT_PREFERRED
        from trajrec.replay.exports.trl import NO_LABELED_STEP, UNLABELED_STEP, UNLISTED_STEP

        # Left out for want of labels, with a --prefer judge id that matched nothing, or no entry that matched any
        # label: labeling would not help (the steps may well be labeled, by sources --prefer does not list).
        if unmatched and reason in (UNLABELED_STEP, UNLISTED_STEP, NO_LABELED_STEP, NO_RANK, NOT_PREFERRED):
            fix = f"--prefer {', '.join(unmatched)} matched no label (the warning below names the judges here): "
            fix += ("list the sources that labeled them in --prefer" if any(t in PREFER_CLASSES for t in unmatched)
                    else "correct the judge id")
        elif reason == UNLABELED_STEP and not _takes_rules(args):
            # `label auto --rules` labels the steps, but under a --prefer that leaves the rules' labels out
            fix = ("label the steps with a source --prefer lists (`trajrec label add`, the viewer), add rule to "
                   "--prefer after `trajrec label auto PATH --rules`, or pass --unlabeled truncate, drop-step, false "
                   "or neutral")
        if reason is None:
            return "nothing written: every matching episode was left out (reasons below)"
        return f"nothing written: every matching episode was left out; most for: {reason}" + (f"; {fix}" if fix
                                                                                            else " (reasons below)")
    why = []
    if args.where:
        why.append(f"--where {' '.join(args.where)!r}")
    if args.min_agreement is not None:
        why.append(f"--min-agreement {args.min_agreement:g} (it needs steps labeled by two or more judges that agree; "
                   "`trajrec agreement PATH` shows them)")
    return "nothing written: no episode matched " + " and ".join(why) if why else "nothing written"


def _takes_rules(args: argparse.Namespace) -> bool:
    """Whether ``--prefer`` takes the labels ``trajrec label auto --rules`` gives (so advising it can help)."""
    from trajrec.replay.autolabel import RULES_JUDGE
    from trajrec.replay.exports.choice import Preference

    return Preference(args.prefer).rank_source(RULES_JUDGE, "rule") is not None


#: What to do about steps whose preferred label is a category: told once.
_CATEGORY_FIX = ("a category (`--value wrong-tool`, the viewer's `C`) is no rating, and no --label-map turns it into "
                 "a label: rate those steps (`trajrec label add PATH --episode ID --step N --value -1 --tag "
                 "wrong-tool`: your label becomes the rating, the category kept as a tag), or list a source that "
                 "rated them before the category's in --prefer (the judges shown as 'rated by')")
#: ... and episodes.
_EPISODE_CATEGORY_FIX = ("a category (`--value gave-up`, the viewer's `P c`) is no rating, so it ranks nothing: give "
                         "those episodes a verdict (`trajrec label add PATH --episode ID --step episode --value "
                         "pass|fail --tag gave-up`: your label becomes the verdict, the category kept as a tag), or "
                         "list a source that rated them before the category's in --prefer (the judges shown as "
                         "'rated by')")


def _fixes() -> dict[str, str]:
    """What would let an export write the episodes left out for a reason (the reasons formats give to Skip)."""
    from trajrec.replay.exports.prefs import EPISODE_CATEGORY, LEFT_BETWEEN, NO_RANK, NOT_PREFERRED, TIED, UNPAIRED
    from trajrec.replay.exports.trl import CATEGORY_STEP, NO_LABELED_STEP, NO_RATED_STEP, UNLABELED_STEP, UNLISTED_STEP

    return {
        EPISODE_CATEGORY: _EPISODE_CATEGORY_FIX,
        CATEGORY_STEP: _CATEGORY_FIX + ", or pass --unlabeled truncate, drop-step, false or neutral",
        NO_RATED_STEP: _CATEGORY_FIX,
        NOT_PREFERRED: "their episode labels are by judges --prefer does not list (the example names them): "
                       "add them to --prefer",
        UNPAIRED: "dpo pairs a better and a worse attempt at the same task (env, task id and prompt): record several "
                  "attempts per task, e.g. the same --seed with a high and a low --skill, or use --format kto, which "
                  "takes single attempts",
        # Tied attempts are attempts enough: what they lack is a rank that tells them apart.
        TIED: "dpo pairs an attempt with one at the same task that ranks strictly lower (terminal verdict, then the "
              "episode label's value, then its score): these rank the same; rate the better one higher (`trajrec "
              "label add PATH --episode ID --step episode --value pass`, or the same value with --score 0.9 to "
              "break the tie), or use --format kto, which takes single attempts",
        LEFT_BETWEEN: "each attempt is used in one pair at most, and an odd number of attempts at a task leaves one "
                      "out; record another attempt at that task to pair it",
        NO_RANK: "give them an episode label so they can be ranked: `trajrec label add PATH --episode ID --step "
                 "episode --value pass` (or fail); `trajrec ls PATH --where '-outcome:passed -outcome:failed'` lists "
                 "them",
        UNLABELED_STEP: "label the steps (`trajrec label auto PATH --rules`) or pass --unlabeled truncate, drop-step, "
                        "false or neutral",
        NO_LABELED_STEP: "label the steps (`trajrec label auto PATH --rules`)",
        UNLISTED_STEP: "add the judges that labeled them (the example names them) or their class (human, judge, "
                       "rule, environment) to --prefer, or pass --unlabeled truncate, drop-step, false or neutral",
    }


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _unescape(text: str) -> str:
    r"""``\n`` and ``\t`` typed on a command line as the characters they name."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


def _hints(args: argparse.Namespace, report: ExportReport) -> list[str]:
    """Commands that would change what was left out, and only those."""
    out = []
    if report.rules_would_label:
        paths = " ".join(args.paths)
        out.append(f"`trajrec label auto {paths} --rules` labels every step of the {report.rules_would_label} "
                   "passed or failed episodes left out for an unlabeled step that have no rule labels yet")
    from trajrec.replay.exports.prefs import EPISODE_CATEGORY
    from trajrec.replay.exports.trl import CATEGORY_STEP, NO_RATED_STEP

    if report.unlabeled and args.format == "trl-stepwise" and args.unlabeled == "skip-episode":
        out.append("--unlabeled truncate, drop-step, false or neutral keeps episodes with unlabeled steps"
                   + (" (a step whose preferred label is a category counts as one)"
                      if CATEGORY_STEP in report.left_out else ""))

    if CATEGORY_STEP in report.left_out or NO_RATED_STEP in report.left_out:
        out.append(_CATEGORY_FIX)
    if EPISODE_CATEGORY in report.left_out:
        out.append(_EPISODE_CATEGORY_FIX)
    return out

