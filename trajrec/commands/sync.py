"""``trajrec sync``: upload the episodes a run on object storage left in its local outbox."""

from __future__ import annotations

import argparse

NAME = "sync"
ORDER = 85
HELP = ("Upload episodes left in the local outbox of a run recorded to a URL (--out s3://...): after a crash or a "
        "failed upload.")
EXAMPLES = """  trajrec sync                         every outbox under $TRAJREC_OUTBOX (default ~/.cache/trajrec/outbox)
  trajrec sync s3://bucket/run         the outbox of that run
  trajrec sync ~/.cache/trajrec/outbox/0123abcd --json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("targets", nargs="*", metavar="URL|OUTBOX",
                   help="run URLs or outbox folders (default: every outbox)")
    p.add_argument("--json", action="store_true", help="one JSON line per uploaded or failed file")


def run(args: argparse.Namespace) -> int:
    import os
    import sys
    from pathlib import Path

    from trajrec.recorder import SUFFIX, fsck
    from trajrec.recorder.errors import TrajrecIOError
    from trajrec.recorder.storage import Outbox, is_url, outbox_for

    from ..progress import Progress
    from ._common import dumps

    if args.targets:
        folders = []
        for t in args.targets:
            folder = outbox_for(t) if is_url(t) else Path(t)
            if is_url(t) and not folder.exists():  # every episode recorded to it was uploaded (or none was)
                if not args.json:
                    print(f"nothing to upload for {t}: no episode recorded to it is waiting here", file=sys.stderr)
                continue
            folders.append(folder)
    else:
        root = outbox_for("x").parent
        folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    boxes = [Outbox.open(f) for f in folders]
    pending = [(box, f) for box in boxes for f in box.pending(SUFFIX)]
    if not pending:
        if not args.json and (boxes or not args.targets):
            where = ", ".join(str(b.url) for b in boxes) or f"no outbox under {outbox_for('x').parent}"
            print(f"nothing to upload: every episode recorded to a URL was uploaded ({where})", file=sys.stderr)
        return 0
    failed = 0
    with Progress(len(pending), "sync", unit=" files") as bar:
        for box, f in pending:
            report = fsck(f)
            if not report.closed:
                # A file whose writer died has no index: add it (keeping every step) before it leaves this disk.
                report = fsck(f, repair=True)
            try:
                # A loss already recorded in the file (steps a failed write kept out, or a repair's) is no damage
                # to hold the upload for: nothing more can be done to it, and readers say what is missing.
                if not report.ok and not report.repaired and not (report.recorded and not report.error):
                    raise TrajrecIOError(f"{f} is damaged ({report.error or '; '.join(report.damage)}); "
                                         f"not uploaded, run `trajrec fsck {f}`")
                url = box.upload(f)
            except TrajrecIOError as exc:
                failed += 1
                print(dumps({"path": os.fspath(f), "error": str(exc)}) if args.json else f"trajrec sync: error: {exc}",
                      file=sys.stdout if args.json else sys.stderr)
            else:
                print(dumps({"path": os.fspath(f), "url": url}) if args.json else f"uploaded {f.name} to {url}")
            bar.advance()
    if not args.json:
        from ._common import plural

        print(f"{len(pending) - failed} of {plural(len(pending), 'file')} uploaded from "
              f"{plural(len(boxes), 'outbox', 'outboxes')}", file=sys.stderr)
    return 1 if failed else 0
