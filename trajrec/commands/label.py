"""``trajrec label``: add, list, edit and delete labels; run the automatic labelers."""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator

NAME = "label"
ORDER = 60
HELP = "Label steps and episodes: by hand (add/edit/rm), list them (ls), or run rules and judges (auto)."
EXAMPLES = """  trajrec label auto runs/shell --rules                   rules trajrec-rules@2 (failed -1, recovery +1)
  trajrec label auto runs/shell --judge myjudges:rubric   any callable: ctx -> {"value": ..., "rationale": ...}
  trajrec label auto runs/shell --judge myjudges:rubric -c 8      8 judge calls at once (default 4)
  trajrec label add runs/shell --episode 1a2b3c4d --step 3 --value -1 --rationale "wrong file" --annotator ana
  trajrec label add ep.msgpack.zst --step episode --value pass
  trajrec label ls runs/shell                             live labels, one per line
  trajrec label ls runs/shell --json | jq .               one JSON object per label
  trajrec label edit runs/shell --id 3f2a9c --value 0     a new version superseding the old
  trajrec label rm runs/shell --id 3f2a9c                 a tombstone; `ls --history` still shows it"""


ADD_HELP = """Add one label to a step (or to the whole episode) of an episode in a run folder.

Labels are appended to <run folder>/.trajrec/labels/*.jsonl; the episode file never changes (so labels stay
with the run folder: copy the folder, not one episode file, to take them along).
The value: +1 / 0 / -1 (or good / neutral / bad), pass / fail, a score like 0.75, or a category name (one
that looks like a misspelling of a rating or verdict word is refused)."""
ADD_EXAMPLES = """examples:
  trajrec label add runs/shell --episode 1a2b3c4d --step 3 --value -1 --rationale "wrong file"
  trajrec label add ep.msgpack.zst --step episode --value pass --annotator ana
  trajrec label add runs/shell --episode 1a2b3c4d --step 0 --value shortcut --tag lucky-guess

--episode takes the episode id or any unique part of it, e.g. its last 8 characters as `trajrec ls` shows."""
LS_HELP = """List labels: one line per live label (the newest version of each, deleted ones left out), or every
version with --history. The summary line goes to stderr."""
LS_EXAMPLES = """examples:
  trajrec label ls runs/shell
  trajrec label ls runs/shell --episode 1a2b3c4d --step 3
  trajrec label ls runs/shell --judge human:ana --history
  trajrec label ls runs/shell --json | jq -r .id"""
EDIT_HELP = """Change a label: appends a new version that supersedes it (`label ls --history` shows both).

Only people's labels (judge human:NAME) are edited: a rule or model judge's label is rewritten by the next
`label auto` run, so disagree with it by adding your own label (`label add`), or pass --force.

The edit is the editor's (--annotator, else $TRAJREC_ANNOTATOR, else the label's author): editing another
person's label adds the editor's own label on that step (the edit applied to theirs) beside it, so agreement
and exports attribute it to the editor; `label ls --history` shows the author of every version.

An annotator's older label on a step where they have a newer one (label files merged from copies of a run; `label
ls` notes it) is not edited without --force: the edit would make it count over the newer one."""
EDIT_EXAMPLES = """examples:
  trajrec label edit runs/shell --id 3f2a9c --value 0
  trajrec label edit runs/shell --id 3f2a9c --rationale "the second read was needed" --tag useful-recovery
  trajrec label edit runs/shell --id 3f2a --value +1 --annotator bo    bo's own label beside ana's

--id takes the label id or any unique prefix of it; an ambiguous prefix lists the labels it matches."""
RM_HELP = """Delete a label: appends a tombstone, so the label stops counting (exports, the viewer) but stays in
the history (`label ls --history`).

Another person's label (judge human:NAME, NAME not the deleter) is deleted only with --force: to disagree with
it, give your own label (`label edit --id ID --annotator YOU`, `label add`)."""
RM_EXAMPLES = """examples:
  trajrec label rm runs/shell --id 3f2a9c
  trajrec label rm runs/shell --id 3f2a9c --annotator ana"""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.set_defaults(_label_parser=p)
    sub = p.add_subparsers(dest="label_command", metavar="ACTION")
    fmt = argparse.RawDescriptionHelpFormatter

    a = sub.add_parser("auto", help="label with rules or a judge callable (idempotent: reruns add nothing new)",
                       formatter_class=fmt, epilog="examples:\n" + "\n".join(
                           ln for ln in EXAMPLES.splitlines() if "auto" in ln))
    a.add_argument("paths", nargs="+", metavar="PATH", help="run folders or episode files")
    how = a.add_mutually_exclusive_group(required=True)
    how.add_argument("--rules", action="store_true", help="apply trajrec's rules (judge trajrec-rules@2, kind rule)")
    how.add_argument("--judge", metavar="MODULE:FUNCTION",
                     help="a callable receiving a step context and returning {'value', 'rationale'} or a tuple")
    a.add_argument("--rejudge", action="store_true",
                   help="with --judge: also call it on steps it already labeled (default: skip them)")
    a.add_argument("--concurrency", "-c", type=_positive, default=4, metavar="N",
                   help="with --judge: judge calls at once, on threads (labels written in step order, the same as "
                        "with 1; a judge that is not thread-safe sets its attribute concurrency = 1; rules run in "
                        "one thread) (default: %(default)s)")
    a.add_argument("--keep-going", action="store_true",
                   help="with --judge: a call that raises (a model server's error) or returns an unusable value "
                        "is counted and its step keeps whatever label it had (none, or with --rejudge the earlier one), and the run goes on (default: stop at the first, "
                        "keeping the labels before it); exit 1 if any failed, and a rerun retries them")
    _add_common(a)
    a.set_defaults(_label_run=_auto)

    d = sub.add_parser("add", help="add one label", formatter_class=fmt, description=ADD_HELP, epilog=ADD_EXAMPLES)
    d.add_argument("path", metavar="PATH", help="a run folder or an episode file")
    d.add_argument("--episode", metavar="ID",
                   help="episode id (or a unique part of it); optional when PATH is one file")
    d.add_argument("--step", required=True, metavar="N|episode", help="step index, or 'episode' for the whole episode")
    d.add_argument("--value", required=True, help="+1, 0, -1, good, bad, neutral, pass, fail, a score, or a category")
    d.add_argument("--rationale", help="why")
    d.add_argument("--tag", action="append", default=[], metavar="TAG", help="a tag (repeatable)")
    d.add_argument("--annotator", metavar="NAME", help="who labels (default: $TRAJREC_ANNOTATOR or your login); "
                                                        "the judge is human:NAME")
    d.add_argument("--judge", help="judge id instead of human:NAME (e.g. model:rubric@2)")
    d.add_argument("--kind", default="judge", help="judge (default), rule or environment")
    d.add_argument("--score", type=float, help="an optional numeric score kept beside the value")
    _add_common(d)
    d.set_defaults(_label_run=_add)

    ls = sub.add_parser("ls", help="list live labels (or every version with --history)", formatter_class=fmt,
                        description=LS_HELP, epilog=LS_EXAMPLES)
    ls.add_argument("paths", nargs="+", metavar="PATH", help="run folders or episode files")
    ls.add_argument("--episode", metavar="ID", help="only this episode (id or a unique part of it)")
    ls.add_argument("--judge", help="only labels of this judge (wildcards as in --prefer: 'human:*')")
    ls.add_argument("--step", metavar="N|episode", help="only labels on this target")
    ls.add_argument("--history", action="store_true", help="every version, tombstones and superseded ones included")
    ls.add_argument("--orphans", action="store_true",
                    help="list instead the labels of episodes no episode file of their folder holds now (their "
                         "file was deleted, replaced by import --overwrite or renamed by record --resume); "
                         "--episode then matches any part of their episode id")
    _add_common(ls)
    ls.set_defaults(_label_run=_ls)

    e = sub.add_parser("edit", help="change a label (appends a new version)", formatter_class=fmt,
                       description=EDIT_HELP, epilog=EDIT_EXAMPLES)
    e.add_argument("path", metavar="PATH", help="the run folder (or an episode file in it)")
    e.add_argument("--id", required=True, help="label id (or a unique prefix, as `label ls` shows)")
    e.add_argument("--value", help="the new value (as for `label add`)")
    e.add_argument("--rationale", help="the new rationale")
    e.add_argument("--tag", action="append", metavar="TAG", help="replace the tags (repeatable)")
    e.add_argument("--score", type=float, help="the new score")
    e.add_argument("--force", action="store_true",
                   help="edit a label of an automatic judge (a rule, a model) anyway (its next `label auto` run "
                        "changes it back), or a person's older label that their newer one on the step outranks "
                        "(label files merged from copies of a run: the edit makes the older one count)")
    e.add_argument("--annotator", metavar="NAME",
                   help="who edits (default: $TRAJREC_ANNOTATOR, else the label's author). Your own label: a new "
                        "version of it; another person's: a label of yours beside theirs, with the edit applied")
    _add_common(e)
    e.set_defaults(_label_run=_edit)

    r = sub.add_parser("rm", help="delete a label (appends a tombstone)", formatter_class=fmt,
                       description=RM_HELP, epilog=RM_EXAMPLES)
    r.add_argument("path", metavar="PATH", help="the run folder (or an episode file in it)")
    r.add_argument("--id", required=True, help="label id (or a unique prefix)")
    r.add_argument("--annotator", metavar="NAME", help="who deletes (recorded on the tombstone; default: "
                                                        "$TRAJREC_ANNOTATOR, else the label's author)")
    r.add_argument("--force", action="store_true",
                   help="delete another person's label (refused by default: it takes their opinion out of "
                        "agreement and exports)")
    _add_common(r)
    r.set_defaults(_label_run=_rm)


def run(args: argparse.Namespace) -> int:
    from trajrec.recorder.errors import TrajrecUsageError

    annotator = getattr(args, "annotator", None)
    if annotator is not None and not annotator.strip():
        raise TrajrecUsageError(f"--annotator is empty ({annotator!r}); give a name, e.g. --annotator ana, or "
                                "leave it out for $TRAJREC_ANNOTATOR, else your login name")
    fn = getattr(args, "_label_run", None)
    if fn is None:
        args._label_parser.print_help(sys.stderr)
        return 2
    with warnings_to_stderr("label"):
        return int(fn(args) or 0)


@contextlib.contextmanager
def warnings_to_stderr(command: str) -> Iterator[None]:
    """Show warnings (a torn labels line, a near-miss tag) as one plain line each, not with a source line.

    After a Ctrl-C, the ``ResourceWarning`` of a file the interrupt caught as it was opened (``open()`` returned,
    its result not yet stored: nothing in Python can close it) is left out: the one "interrupted" line stays one.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        interrupted = False
        try:
            yield
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            for w in caught:
                if not (interrupted and issubclass(w.category, ResourceWarning)):
                    print(f"trajrec {command}: warning: {w.message}", file=sys.stderr)


# -- actions ------------------------------------------------------------------------------------------------------


def _target(text: str) -> int | str:
    from trajrec.recorder.errors import TrajrecUsageError

    if text == "episode":
        return "episode"
    try:
        n = int(text)
    except ValueError:
        raise TrajrecUsageError(f"--step {text!r}: expected a step index (0, 1, ...) or 'episode'") from None
    if n < 0:
        raise TrajrecUsageError(f"--step {text}: step indexes start at 0 (use 'episode' for the whole episode)")
    return n


def _label_row(lab: Any, run_dir: Any = None) -> dict[str, Any]:
    rec = lab.to_record()
    rec.pop("v", None)
    if run_dir is not None:
        rec["run"] = str(run_dir)
    return rec


def _auto(args: argparse.Namespace) -> int:
    from trajrec.replay.autolabel import label_with_judge, label_with_rules, load_judge
    from trajrec.replay.exports.source import Source
    from trajrec.replay.render import one_line
    from trajrec.progress import Progress

    src = Source(args.paths, write_labels=True)  # each episode's labels read and written in its turn
    # Episodes are streamed (one index in memory at a time), so the bars count steps without a total.
    if args.rules:
        with Progress(None, "label rules", unit=" steps") as bar:
            res = label_with_rules(src, progress=bar)
    else:
        judge = load_judge(args.judge)
        with Progress(None, f"judge {args.judge}", unit=" steps") as bar:
            res = label_with_judge(src, judge, rejudge=args.rejudge, progress=bar, concurrency=args.concurrency,
                                   keep_going=args.keep_going)
    for problem in res.unreadable:  # files whose index is unreadable too (src.errors)
        print(f"trajrec label: skipped {problem}", file=sys.stderr)
    for problem in res.judge_errors[:20]:
        print(f"trajrec label: judge call failed: {one_line(problem, 300)}", file=sys.stderr)
    if len(res.judge_errors) > 20:
        print(f"trajrec label: … and {len(res.judge_errors) - 20} more judge calls failed", file=sys.stderr)
    if args.json:
        print(json.dumps(res.to_dict()))
    else:
        print(res)
    return 1 if src.errors or res.unreadable or res.judge_errors else 0


def _add(args: argparse.Namespace) -> int:
    from trajrec.recorder import read_index
    from trajrec.recorder.errors import TrajrecUsageError
    from ._common import plural
    from trajrec.replay.exports.source import Source
    from trajrec.replay.labels import parse_value

    src = Source([args.path])
    if not len(src):  # nothing readable: say why (the file and byte), as ls and show do; --episode cannot help
        from trajrec.recorder.errors import TrajrecError
        from ._common import no_episode_files

        if not src.errors:
            raise no_episode_files([args.path])
        if len(src.errors) == 1:
            raise TrajrecError(src.errors[0][1])
        raise TrajrecError(f"{args.path} holds no readable episode: {len(src.errors)} files cannot be read, e.g. "
                           f"{src.errors[0][1]}; `trajrec fsck {args.path}` checks them")
    if args.episode:
        ref = src.find(args.episode)
    elif len(src) == 1:
        ref = src.episodes[0]
    else:
        raise TrajrecUsageError(f"{args.path} holds {len(src)} episodes; pass --episode ID "
                                f"(`trajrec ls {args.path}` lists them)")
    target = _target(args.step)
    n = ref.n_steps
    if isinstance(target, int) and target >= n:
        if not ref.index.get("complete", True):
            n = int(read_index(ref.path).get("steps") or n)  # a file still being written may have grown
        if target >= n:
            raise TrajrecUsageError(f"--step {target} is out of range: episode {ref.episode_id} has {plural(n, 'step')} "
                                    + (f"(0..{n - 1})" if n else "(none to label)"))
    # A person's older labels on the step beside the newest (label files merged from copies of the run): the new
    # label replaces them all.
    older = [x for x in ref.store.shadowed(ref.episode_id) if x.target == target]
    lab = ref.store.add(ref.episode_id, target, parse_value(args.value), kind=args.kind, judge=args.judge,
                        rationale=args.rationale, tags=args.tag, author=args.annotator, score=args.score)
    older = [x for x in older if x.judge == lab.judge] if lab.supersedes is not None else []
    if args.json:
        print(json.dumps(_label_row(lab, ref.store.run_dir)))
    else:
        where = "the episode" if target == "episode" else f"step {target}"
        print(f"labeled {where} of {ref.episode_id}: {_value_text(lab.value)} by {lab.judge}  (id {lab.id})")
        if lab.supersedes is not None:
            print(f"replaced label {lab.supersedes} (one label per step and annotator: `label ls --history` "
                  "shows both)")
        if older:
            print(f"also replaced {len(older)} older label{'' if len(older) == 1 else 's'} of {lab.judge} on that {where.split()[0]} "
                  f"({', '.join(str(x.id)[:12] for x in older)}: two live labels of one annotator, from merged "
                  "label files; deleted, `label ls --history` keeps them)")
    return 0


def _value_text(v: Any) -> str:
    if isinstance(v, bool):
        return "pass" if v else "fail"
    if isinstance(v, int):
        return f"{v:+d}" if v else "0"
    return str(v)


def _ls(args: argparse.Namespace) -> int:
    from trajrec.replay.exports.source import Source
    from trajrec.replay.render import one_line

    src = Source(args.paths)
    stores = _folder_stores(args.paths, src)  # the stores of the folders named (or under them): orphans
    if not src.files and not (args.orphans and stores):  # the rule of ls, report and export: no episode files
        from ._common import no_episode_files

        raise no_episode_files(args.paths)
    target = _target(args.step) if args.step is not None else None
    if args.orphans:
        refs: list[Any] = []
        orphans = [(store, lab) for store in stores for lab in store.orphans(versions=args.history)
                   if (not args.episode or args.episode in lab.episode_id)
                   and (target is None or lab.target == target)
                   and (args.judge is None or fnmatch.fnmatchcase(str(lab.judge), args.judge))]
    else:
        refs = [src.find(args.episode)] if args.episode else list(src)
    rows: list[tuple[Any, Any]] = []
    judges: set[str] = set()  # of the labels listed before --judge chose among them
    doubled: list[Any] = []  # live labels left out: a person's older label on a target beside their newer one
    for ref in refs:
        doubled.extend(x for x in ref.store.shadowed(ref.episode_id)
                       if (target is None or x.target == target)
                       and (args.judge is None or fnmatch.fnmatchcase(str(x.judge), args.judge)))
        # Labels on steps the episode does not have are left out (with a warning), as everywhere else.
        if args.history:
            labs = ref.store.on_steps(ref.store.versions(ref.episode_id), ref.episode_id, ref.n_steps)
        else:
            labs = ref.store.labels_of(ref.episode_id, ref.n_steps)
        labs = [lab for lab in labs if target is None or lab.target == target]
        judges.update(str(lab.judge) for lab in labs)
        rows.extend((ref.store, lab) for lab in labs
                    if args.judge is None or fnmatch.fnmatchcase(str(lab.judge), args.judge))
    if args.orphans:
        rows = orphans
    elif args.judge is not None and not rows:
        # A judge id with a typo (`human:Ana`) listed nothing, exit 0, like a judge with no labels: say which
        # judges there are (as `export --prefer` does).
        from trajrec.replay.exports.choice import unmatched_message

        print(f"trajrec label: warning: {unmatched_message([args.judge], sorted(judges), 'judge', 'label')}",
              file=sys.stderr)
    for x in doubled[:20]:
        where = "the episode" if x.target == "episode" else f"step {x.target}"
        print(f"trajrec label: note: {x.judge} has two live labels on {where} of {x.episode_id} (label files merged "
              f"from copies of the run?): the newer counts everywhere (ls, agreement, exports, the viewer); "
              f"the older, {str(x.id)[:12]} ({_label_text(x)}), does not count"
              f"{'' if args.history else ' and is not listed (--history lists it)'}; `trajrec label add` on the "
              "step replaces both", file=sys.stderr)
    if len(doubled) > 20:
        print(f"trajrec label: note: … and {len(doubled) - 20} more older labels left out the same way",
              file=sys.stderr)
    for path, err in src.errors:  # files that are not readable episodes: named (their labels cannot be listed)
        print(f"trajrec label: skipped {one_line(str(path), 1000)}: {one_line(err, 1000)}", file=sys.stderr)
    bad = 1 if src.errors else 0
    unlisted = [] if args.orphans else [(store, n) for store in stores if (n := len(store.orphans()))]
    for store, n in unlisted:  # labels no reader shows: said, never silently gone (FINDINGS32 #6)
        print(f"trajrec label: note: {n} label{'s' if n != 1 else ''} in {store.run_dir} belong{'s' if n == 1 else ''} "
              f"to no episode file there now (its file deleted, replaced or renamed); `trajrec label ls "
              f"{store.run_dir} --orphans` lists them", file=sys.stderr)
    if args.json:
        for store, lab in rows:
            print(json.dumps(_label_row(lab, store.run_dir), ensure_ascii=False))
        return bad
    print(f"{'episode':<36} {'target':>7} {'value':>10} {'score':>11} {'judge':<20} {'author':<12} {'kind':<6} "
          f"{'id':<12} {'tags':<22} rationale")
    for _ref, lab in rows:
        value = "deleted" if lab.deleted else _value_text(lab.value)
        tags = ",".join(lab.tags)
        version = ""
        if args.history and lab.supersedes is not None:
            version = f"  (replaces {str(lab.supersedes)[:12]})"
        edit_of = lab.extra.get("edit_of")
        if args.history and isinstance(edit_of, str):
            version += f"  (edit of {edit_of[:12]})"
        # Six significant digits, never cut (1.23457e+08, -1e+308): --json has the exact value.
        score = ("-" if lab.score is None else f"{lab.score:g}" if isinstance(lab.score, (int, float))
                 else one_line(str(lab.score), 11))
        print(f"{_keep_end(one_line(lab.episode_id, 200), 36):<36} {str(lab.target):>7} {one_line(value, 10):>10} "
              f"{score:>11} {one_line(lab.judge, 20):<20} {one_line(lab.author or '-', 12):<12} {lab.kind:<6} "
              f"{str(lab.id)[:12]:<12} {one_line(tags, 22):<22} {one_line(lab.rationale or '', 60)}{version}")
    n_eps = len({lab.episode_id for _, lab in rows})
    print(f"{_count(len(rows), 'label')} on {_count(n_eps, 'episode')}"
          + (" no episode file holds" if args.orphans else "") + (" (all versions)" if args.history else "")
          + (f"; {_count(len(src.errors), 'file')} unreadable (above; `trajrec fsck PATH` checks them)"
             if src.errors else ""), file=sys.stderr)
    return bad


def _folder_stores(paths: list[str], src: Any) -> list[Any]:
    """The label stores of the folders ``paths`` name, and of the folders under them that hold labels (not those of
    single episode files: a file names its episode, not its folder), reusing the stores ``src`` read."""
    from trajrec.recorder.storage import is_url
    from trajrec.replay.labels import LABELS_DIR, LabelStore

    read = {os.path.abspath(ref.store.run_dir): ref.store for ref in src if not ref.store.remote}
    out: dict[str, Any] = {}
    for raw in paths:
        if is_url(raw) or not os.path.isdir(raw):
            continue
        for root, dirs, _files in os.walk(raw):
            dirs[:] = sorted(d for d in dirs if d != LABELS_DIR.parts[0])
            if os.path.isdir(os.path.join(root, LABELS_DIR)):
                key = os.path.abspath(root)
                if key not in out:
                    out[key] = read.get(key) or LabelStore(root)
    return list(out.values())


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _keep_end(text: str, width: int) -> str:
    """``text`` cut in the middle to ``width``: episode ids differ at their end, which must stay."""
    if len(text) <= width:
        return text
    head = (width - 1) // 3
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def _store_for(path: str, label_id: str) -> Any:
    """The store holding ``label_id``: the run of PATH, or any run folder under PATH."""
    from trajrec.recorder.errors import TrajrecUsageError
    from trajrec.replay.label_stores import LabelStores
    from trajrec.replay.labels import LabelStore

    first = LabelStore.for_path(path)
    stores = [first]
    if Path(path).is_dir():  # every run folder under PATH that has labels (no episode file is opened)
        stores += [s for s in LabelStores([path]) if s.run_dir != first.run_dir]
    found = [(store, ids) for store in stores if (ids := store.matching_ids(label_id))]
    if len(found) == 1:
        return found[0][0]  # one match, or several in one run (its error lists them)
    if found:
        listed = "; ".join(f"{store.run_dir}: {store.describe_ids(ids, limit=3)}" for store, ids in found)
        raise TrajrecUsageError(f"label id {label_id!r} matches labels in {len(found)} runs under {path}: {listed}; "
                                "give more of the id or the run folder")
    return first  # its error names the closest id


def _edit(args: argparse.Namespace) -> int:
    from trajrec.recorder.errors import TrajrecUsageError
    from trajrec.replay.labels import parse_value

    store = _store_for(args.path, args.id)
    head = store.get(args.id)
    if not str(head.judge).startswith("human:") and not args.force:
        raise TrajrecUsageError(
            f"label {args.id} is {head.judge}'s ({head.kind}): the next `trajrec label auto` would change it back. "
            f"Add your own label instead (trajrec label add {args.path} --episode {head.episode_id} "
            f"--step {head.target} --value ...), or pass --force")
    changes: dict[str, Any] = {}
    if args.value is not None:
        changes["value"] = parse_value(args.value)
    if args.rationale is not None:
        changes["rationale"] = args.rationale
    if args.tag is not None:
        changes["tags"] = args.tag
    if args.score is not None:
        changes["score"] = args.score
    if not changes:
        raise TrajrecUsageError("nothing to change: pass --value, --rationale, --tag or --score")
    # Who edits: --annotator, else $TRAJREC_ANNOTATOR; with neither, the edit is the label's own author's.
    editor = args.annotator or os.environ.get("TRAJREC_ANNOTATOR") or None
    # A person's older label on a step where they have a newer live one (label files merged from copies of the run)
    # does not count; an edit's new version of it would be the newest, and would silently override the label that
    # counts (FINDINGS34 B3). Refused unless --force; another person's edit goes to their own label, not to it.
    live = store.live(args.id)
    newer = None
    if live is not None:
        counts = store.current(live.episode_id, live.target, judge=live.judge)
        newer = counts[-1] if counts and counts[-1].id != live.id else None
    # Whether the edit is a new version of that label itself (not another person's own label beside it).
    revives = newer is not None and (not editor or live.judge == f"human:{editor}"
                                     or not live.judge.startswith("human:"))
    if newer is not None and not args.force:
        where = "the episode" if live.target == "episode" else f"step {live.target}"
        said = (f"label {args.id} is {live.judge}'s older label on {where} of {live.episode_id} ({_label_text(live)}), "
                f"which does not count: {live.judge}'s newer label {str(newer.id)[:12]} ({_label_text(newer)}) on "
                f"that {where.split()[0]} does (two live labels of one annotator, from merged label files). ")
        if revives:
            raise TrajrecUsageError(
                said + f"An edit would make the older one the newer, and it would override {_label_text(newer)} "
                f"everywhere (ls, agreement, exports). Edit the one that counts (trajrec label edit {args.path} --id "
                f"{str(newer.id)[:12]} ...), or give the {where.split()[0]} one label that replaces both (trajrec label "
                f"add {args.path} --episode {live.episode_id} --step {live.target} --value ...); --force edits the "
                "older one anyway")
        raise TrajrecUsageError(
            said + f"Edit the one that counts (trajrec label edit {args.path} --id {str(newer.id)[:12]} "
            f"--annotator {editor} ...), so that your label is made from it; --force edits from the older one anyway")
    # The editor's own label on the step, when the label edited is another person's: the edit goes to it.
    own = (store.current(head.episode_id, head.target, judge=f"human:{editor}")
           if editor and head.judge.startswith("human:") and head.judge != f"human:{editor}" else [])
    lab = store.edit_as(args.id, editor, **changes) if editor else store.update(args.id, **changes)
    if args.json:
        print(json.dumps(_label_row(lab, store.run_dir)))
    elif lab.deleted:  # the edit emptied a carrier (a neutral 0 given only to carry a note, tags or a score)
        print(f"withdrew label {args.id}: its 0 was no rating, only the carrier of what the edit took off, and it "
              f"carries nothing now (tombstone {lab.id}; `trajrec label ls --history` still shows it)")
    elif own and lab.judge != head.judge:
        where = "the episode" if lab.target == "episode" else f"step {lab.target}"
        mine = own[-1]
        print(f"label {args.id} is {head.judge}'s, and {editor} already has a label on {where} of "
              f"{lab.episode_id} ({str(mine.id)[:12]}: {_label_text(mine)}): the edit applies to {editor}'s own "
              f"label only: {_changed(mine, lab, changes)}. New version {lab.id} by {lab.judge}; {head.judge}'s "
              "label stays as it was (agreement counts both, exports take the newer)")
        print(f"replaced label {mine.id} (one label per step and annotator: `label ls --history` shows both)")
    elif lab.judge != head.judge:
        where = "the episode" if lab.target == "episode" else f"step {lab.target}"
        # What of the other person's label the new one carries (all the edit did not name): said, so that their
        # rationale or tags do not pass for the editor's unnoticed (FINDINGS34 B7).
        fields = [f for f in ("value", "rationale", "tags", "score")
                  if f not in changes and live is not None and _field_text(f, live) != "none"]
        copied = [f"{f} {_field_text(f, live)}" for f in fields]
        copied_text = ", ".join(copied[:-1]) + " and " + copied[-1] if len(copied) > 1 else "".join(copied)
        options = " ".join(f"--{'tag' if f == 'tags' else f} ..." for f in fields)
        print(f"label {args.id} is {head.judge}'s, so {editor}'s edit is {editor}'s own label {lab.id} on {where} "
              f"of {lab.episode_id}: {_value_text(lab.value)} by {lab.judge}"
              + (f", with {copied_text} taken from {head.judge}'s label (`trajrec label edit {args.path} --id "
                 f"{str(lab.id)[:12]} {options}` changes {'them' if len(fields) > 1 else 'it'})" if copied else "")
              + f"; {head.judge}'s label stays beside it (agreement counts both, exports take the newer)")
        if lab.supersedes is not None:
            print(f"replaced label {lab.supersedes} (one label per step and annotator: `label ls --history` "
                  "shows both)")
    else:
        print(f"updated label {args.id}: new version {lab.id} ({_value_text(lab.value)} by {lab.judge}"
              f"{'' if lab.author in (None, lab.judge[6:]) else ', edited by ' + str(lab.author)})")
    if revives and not lab.deleted:  # --force: said, as the refusal would have said it
        print(f"it now counts over {lab.judge}'s label {str(newer.id)[:12]} ({_label_text(newer)}), which was "
              "the newer and counts no more (`trajrec label ls` notes it)")
    return 0


def _label_text(lab: Any) -> str:
    """A label's value, score, tags and rationale in a few words: ``+1 score 0.5 [loop] "why"``."""
    from trajrec.replay.render import one_line

    parts = [_value_text(lab.value)]
    if lab.score is not None:
        parts.append(f"score {lab.score:g}")
    if lab.tags:
        parts.append("[" + ",".join(lab.tags) + "]")
    if lab.rationale:
        parts.append(json.dumps(one_line(lab.rationale, 60), ensure_ascii=False))
    return " ".join(parts)


def _field_text(field: str, lab: Any) -> str:
    """A label field as edit messages show it: ``+1``, ``"why"`` (cut to 40 characters), ``t1,t2``, ``0.5``;
    ``none`` for no rationale, tags or score."""
    from trajrec.replay.render import one_line

    v = getattr(lab, field)
    if field == "value":
        return _value_text(v)
    if field == "tags":
        return ",".join(v) or "none"
    if v is None or v == "":
        return "none"
    return f"{v:g}" if field == "score" else json.dumps(one_line(str(v), 40), ensure_ascii=False)


def _changed(old: Any, new: Any, changes: dict[str, Any]) -> str:
    """What an edit changed in a label and what it kept: ``value +1 → -1; its rationale and tags stay``."""
    show = _field_text
    names = {"value": "value", "rationale": "rationale", "tags": "tags", "score": "score"}
    done = [f"{names[f]} {show(f, old)} → {show(f, new)}" if show(f, old) != show(f, new)
            else f"{names[f]} unchanged ({show(f, new)})" for f in names if f in changes]
    kept = [f"{names[f]} ({show(f, old)})" for f in names if f not in changes and show(f, old) != "none"]
    kept_text = ", ".join(kept[:-1]) + " and " + kept[-1] if len(kept) > 1 else "".join(kept)
    return "; ".join(done) + (f"; its {kept_text} {'stay' if len(kept) > 1 else 'stays'}" if kept else "")


def _rm(args: argparse.Namespace) -> int:
    from trajrec.recorder.errors import TrajrecUsageError

    store = _store_for(args.path, args.id)
    # Who deletes: --annotator, else $TRAJREC_ANNOTATOR; with neither, the label's own author (as for edit).
    deleter = args.annotator or os.environ.get("TRAJREC_ANNOTATOR") or None
    head = store.live(args.id)
    owner = head.judge[6:] if head is not None and head.judge.startswith("human:") else None
    if owner is not None and deleter is not None and deleter != owner and not args.force:
        # Deleting a colleague's label takes their opinion out of agreement and of every export: never silently.
        where = "the episode" if head.target == "episode" else f"step {head.target}"
        raise TrajrecUsageError(
            f"label {args.id} is {head.judge}'s ({_label_text(head)} on {where} of {head.episode_id}), not "
            f"{deleter}'s: deleting it takes {owner}'s opinion out of agreement and exports. To disagree, give "
            f"your own label (trajrec label edit {args.path} --id {args.id} --value ... --annotator {deleter}); "
            f"to delete {owner}'s label anyway, pass --force (the tombstone names {deleter} as who deleted it)")
    tomb = store.delete(args.id, author=deleter)
    if args.json:
        print(json.dumps(_label_row(tomb, store.run_dir)))
    else:
        whose = f" ({head.judge}'s, deleted by {deleter})" if owner is not None and deleter not in (None, owner) else ""
        print(f"deleted label {args.id}{whose} (tombstone {tomb.id}; `trajrec label ls --history` still shows it)")
    return 0


def _positive(text: str) -> int:
    """An ``argparse`` type: an int of 1 or more."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a number of 1 or more, got {text!r}")
    return n
