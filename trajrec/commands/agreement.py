"""``trajrec agreement``: label distribution per judge and pairwise Cohen's kappa on steps both labeled."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "agreement"
ORDER = 65
HELP = "How often annotators and judges agree: label counts per judge and Cohen's kappa per pair."
EXAMPLES = """  trajrec agreement runs/shell                 distribution per judge, kappa per pair of judges
  trajrec agreement runs/ --json | jq .pairs   for scripts
  trajrec agreement runs/ --with-recorded      also count the checks the env recorded on steps"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="run folders or episode files")
    p.add_argument("--with-recorded", action="store_true",
                   help="also use checks recorded in the episode files (env/rule checks on steps) as labels")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from .label import warnings_to_stderr

    with warnings_to_stderr(NAME):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from trajrec.replay.agreement import agreement, category_name
    from trajrec.replay.exports.source import Source
    from trajrec.replay.labels import Label
    from trajrec.replay.render import one_line

    src = Source(args.paths)
    for path, err in src.errors:
        print(f"trajrec agreement: skipped {path}: {err}", file=sys.stderr)
    labels = []
    for ref in src:
        labels.extend(ref.labels())
        if args.with_recorded:
            with ref.open() as ep:
                for c in ep.checks:
                    labels.append(Label(ep.episode_id, c.target, c.kind, c.judge, c.value, c.score, c.rationale,
                                        tuple(c.tags), c.author, c.time, None, c.id))
    report = agreement(labels)
    if args.json:
        out = report.to_dict()
        out["episodes"] = len(src)
        print(json.dumps(out))
        return 1 if src.errors else 0
    if not report.judges:
        print(f"no labels in {len(src)} episodes; add some with `trajrec label auto PATH --rules` or "
              "`trajrec label add`", file=sys.stderr)
        return 1 if src.errors else 0
    cats: list[str] = []
    for j in report.judges:
        for c in j.distribution:
            if c not in cats:
                cats.append(c)
    order = {"-1": 0, "0": 1, "+1": 2}
    cats.sort(key=lambda c: (order.get(c, 3), c))
    print(f"labels per judge ({len(src)} episodes)")
    print(f"  {'judge':<28} {'kind':<11} {'episodes':>8} {'steps':>6} {'episode':>7}  " +
          "  ".join(f"{one_line(c, 8):>8}" for c in cats))
    for j in report.judges:
        print(f"  {one_line(j.judge, 28):<28} {j.kind:<11} {j.episodes:>8} {j.steps:>6} {j.episode_labels:>7}  " +
              "  ".join(f"{j.distribution.get(c, 0):>8}" for c in cats))
    print()
    print("pairwise agreement on steps both labeled (Cohen's kappa; observed = share of steps with the same value)")
    if not report.pairs:
        print("  only one judge: nothing to compare")
    apart = [p for p in report.pairs if p.kappa.n == 0]
    for p in report.pairs:
        k = p.kappa
        if k.n == 0:
            continue
        obs = f"{k.observed:.3f}" if k.observed is not None else "-"
        kap = f"{k.kappa:.3f}" if k.kappa is not None else (k.note or "undefined")
        print(f"  {one_line(p.a, 24):<24} vs {one_line(p.b, 24):<24} n={k.n:<6} observed={obs:<6} kappa={kap}")
        if k.confusion and k.kappa is not None and len(k.confusion) <= 9:
            cells = ", ".join(f"{category_name(x)}/{category_name(y)}: {c}" for (x, y), c in sorted(
                k.confusion.items(), key=lambda kv: (category_name(kv[0][0]), category_name(kv[0][1]))))
            print(f"      {p.a} / {p.b}: {cells}")
    if apart:
        names = ", ".join(f"{p.a} / {p.b}" for p in apart[:3]) + (", ..." if len(apart) > 3 else "")
        print(f"  {len(apart)} pair{'s' if len(apart) != 1 else ''} of judges share no labeled step, kappa undefined "
              f"({names}; --json lists them)")
    return 1 if src.errors else 0
