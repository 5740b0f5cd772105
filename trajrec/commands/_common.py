"""Helpers shared by commands: finding episode files, formatting values for a terminal."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable


def find_episodes(paths: Iterable[str], skipped: list[str] | None = None) -> list[Any]:
    """Episode files named directly or found recursively under folders (see ``trajrec.replay.library``):
    ``Path`` objects, and ``str`` for fsspec URLs (``s3://...``), which ``Path`` would mangle. Symbolic links
    not followed are noted in ``skipped`` when a list is given."""
    from trajrec.recorder.storage import is_url
    from trajrec.replay.library import find_episode_files

    return [p if is_url(p) else Path(p) for p in find_episode_files(paths, skipped)]


def no_episode_files(paths: Iterable[Any]) -> Exception:
    """The error of a command given paths that hold no episode file at all (an empty folder, a wrong folder).

    One rule for ``ls``, ``report`` and ``export``: no episode files under the paths is an error (exit 1, nothing
    written); episode files that a ``--where`` filter or the format leaves out give an empty result with a message
    (exit 0).
    """
    from trajrec.recorder import SUFFIX
    from trajrec.recorder.errors import TrajrecUsageError

    return TrajrecUsageError(f"no episode files (*{SUFFIX}) found under {', '.join(str(p) for p in paths)}; "
                             "record some with `trajrec record` or `trajrec demo`, or import some with "
                             "`trajrec import`")


def to_jsonable(value: Any) -> Any:
    """Recorded values as strict JSON data in which no two recorded values look the same: the export encoding
    (:func:`trajrec.replay.exports.encode.jsonable`: arrays as lists, bytes ``{"$bytes": hex}``, a recorded
    ``"$"`` key escaped as ``"$$"``...) with NaN and the infinities marked ``{"$float": "nan"}`` instead of null
    (:func:`~trajrec.replay.exports.encode.jsonable_marked`; docs/EXPORT.md, "JSON: exact or explicit")."""
    from trajrec.replay.exports.encode import jsonable_marked

    return jsonable_marked(value)


def dumps(value: Any) -> str:
    """One JSON object as text, with every control character escaped (valid JSON, safe to print)."""
    from trajrec.replay.render import json_safe

    return json_safe(json.dumps(to_jsonable(value), ensure_ascii=False))


def isatty() -> bool:
    return os.isatty(1)


def plural(n: Any, word: str, many: str | None = None) -> str:
    """``n`` and ``word``, pluralised for the count: ``plural(1, "step")`` is ``"1 step"``, ``plural(2, "retry")``
    ``"2 retries"``. ``many`` gives an irregular plural. A count that is not a number (a damaged summary's
    ``None``) is printed as given with the plural.

    >>> plural(1, "episode"), plural(0, "episode"), plural(3, "recovery"), plural(2, "index", "indexes")
    ('1 episode', '0 episodes', '3 recoveries', '2 indexes')
    """
    if n == 1 and not isinstance(n, bool):
        return f"{n} {word}"
    if many is None:
        many = word[:-1] + "ies" if word.endswith("y") and word[-2:-1] not in "aeiou" else word + "s"
    return f"{n} {many}"


def orphaned_labels_note(folder: Any) -> str | None:
    """A line saying how many labels in ``folder`` belong to no episode file there now (after ``import
    --overwrite`` or ``record --resume`` deleted or renamed files), on which episodes, and how to list them; None
    when there are none (or the folder has no labels). The labels themselves are never deleted."""
    import os

    from trajrec.recorder.storage import is_url
    from trajrec.replay.labels import LABELS_DIR, LabelStore

    if is_url(os.fspath(folder)) or not os.path.isdir(os.path.join(folder, LABELS_DIR)):
        return None
    orphans = LabelStore(folder).orphans()
    if not orphans:
        return None
    eps = sorted({lab.episode_id for lab in orphans})
    shown = ", ".join(eps[:3]) + (f" and {len(eps) - 3} more" if len(eps) > 3 else "")
    return (f"{plural(len(orphans), 'label')} in {folder} belong{'s' if len(orphans) == 1 else ''} to no episode "
            f"file now (on {plural(len(eps), 'episode')} no file here holds: {shown}); "
            f"{'they stay' if len(orphans) != 1 else 'it stays'} in "
            f"{os.path.join(folder, LABELS_DIR)} and count{'s' if len(orphans) == 1 else ''} again if such a file comes back; `trajrec label ls "
            f"{folder} --orphans` lists them")


def unfinished_files(paths: Iterable[Any]) -> list[str]:
    """The ``*.msgpack.zst.unfinished`` files under ``paths`` (folders searched recursively, links not followed;
    URLs skipped): episodes ``trajrec record --resume`` found cut short and recorded again, kept beside the run.
    Commands read only ``*.msgpack.zst`` files, so these count in nothing."""
    from trajrec.recorder import SUFFIX
    from trajrec.recorder.storage import is_url
    from trajrec.recording import UNFINISHED_SUFFIX

    end = SUFFIX + UNFINISHED_SUFFIX
    found: list[str] = []
    for raw in paths:
        p = os.fspath(raw)
        if is_url(p) or not os.path.isdir(p):
            continue
        stack = [p]
        while stack:
            try:
                with os.scandir(stack.pop()) as it:
                    for e in it:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                        elif e.name.endswith(end) and e.is_file(follow_symlinks=False):
                            found.append(e.path)
            except OSError:
                continue  # unreadable folder: the listing itself says what it can
    return sorted(found)


def unfinished_spend(paths: Iterable[Any]) -> dict[str, Any] | None:
    """What the ``.unfinished`` files under ``paths`` (:func:`unfinished_files`) hold that no total counts: their
    number, paths, steps and summed model totals (calls, failed attempts, tokens, seconds, cost; a total that is
    unknown in one file is None). None when there are none."""
    from trajrec.recorder import read_index
    from trajrec.recorder.errors import TrajrecError
    from trajrec.recorder.model_call import model_usage_totals

    files = unfinished_files(paths)
    if not files:
        return None
    model: dict[str, Any] = {"calls": 0, "failed_attempts": 0, "failed_calls": 0, "prompt_tokens": 0,
                             "completion_tokens": 0, "total_tokens": 0, "latency": 0.0, "cost": 0.0}
    steps, unreadable = 0, 0
    for path in files:
        try:
            summary = read_index(path).get("summary") or {}
        except (TrajrecError, OSError):
            unreadable += 1
            continue
        steps += summary.get("steps") if isinstance(summary.get("steps"), int) else 0
        totals = model_usage_totals(summary)
        for key in model:
            value = totals.get(key)
            if model[key] is None or value is None:
                model[key] = None if totals.get("calls") else model[key]  # unknown in a file with calls
            else:
                model[key] += value
    return {"files": len(files), "paths": files, "steps": steps, "unreadable": unreadable, "model": model}


def unfinished_note(spend: dict[str, Any] | None) -> str | None:
    """The line saying what :func:`unfinished_spend` found, for ``ls`` and ``report``; None when nothing."""
    if not spend:
        return None
    from trajrec.replay.render import usage_text

    n = spend["files"]
    usage = usage_text(spend["model"])
    return (f"{plural(n, 'unfinished file')} (*.unfinished: episodes cut short, recorded again by `record --resume`)"
            f" not counted here: {plural(spend['steps'], 'step')}"
            + (f", {usage}" if usage else ", no model calls")
            + (f" ({spend['unreadable']} unreadable)" if spend["unreadable"] else ""))
