"""The dataset card an export to a folder writes beside its data: ``README.md`` in the Hugging Face dataset-card
convention (a YAML block naming the data files, then prose), so the folder loads with
``datasets.load_dataset(folder)`` and says what it holds: counts, passed/failed balance, what was left out and why,
labels by judge, label map, filters and lineage (sources, runs, agents, models)."""

from __future__ import annotations

import json
import os
import re
import zlib
from pathlib import Path
from typing import Any

from .base import ExportOptions

try:  # what hashlib.blake2b is, without hashlib's loading OpenSSL's hashes (~17 ms of an export's CPU, ~3.5 MB)
    from _blake2 import blake2b
except ImportError:  # another Python
    from hashlib import blake2b

__all__ = ["write_card"]


def _yaml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid YAML scalar


def _yaml_key(name: str) -> str:
    """A split name as YAML reads it back as that text: plain when it is an identifier YAML takes for a string
    (``train``), else quoted (``"2024"``, ``"no"``, non-ASCII letters)."""
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and name.lower() not in ("true", "false", "yes", "no",
                                                                                   "on", "off", "null")
    return name if plain else _yaml_str(name)


def _folder_of(pattern: str) -> str:
    """The folder a ``data_files`` pattern ``FOLDER/*.parquet`` names, its glob escapes (``[*]``) undone."""
    return re.sub(r"\[(.)\]", r"\1", pattern.rsplit("/", 1)[0])


def data_fingerprint(folder: str | os.PathLike[str]) -> str:
    """16 hex digits that change with the folder's data: a hash of each data file's path, size and CRC-32 (the
    same data gives the same card, with any ``--workers``; reading the files just written back costs a few percent
    of the export, the CRC running at GB/s).

    Why: ``datasets.load_dataset(folder)`` keys its cache on the card's ``configs`` and ``dataset_info`` only, not
    on the data files, so a folder exported again would load the rows of the first export; the fingerprint goes into
    the card's ``dataset_info`` and so into that key."""
    digest = blake2b(digest_size=8)
    root = Path(folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "README.md"):
        crc, size = 0, 0
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                crc, size = zlib.crc32(chunk, crc), size + len(chunk)
        digest.update(f"{path.relative_to(root).as_posix()}\0{size}\0{crc}\n".encode())
    return digest.hexdigest()


def card_text(report: Any, options: ExportOptions, data_files: str | dict[str, str], lineage: dict[str, Any],
              fingerprint: str | None = None) -> str:
    """The card's text; ``data_files``: one pattern (all of it the ``train`` split) or split name -> pattern;
    ``fingerprint``: :func:`data_fingerprint` of the data (in ``dataset_info``, so ``datasets`` caches anew)."""
    from trajrec._version import __version__

    bal = report.balance
    splits = data_files if isinstance(data_files, dict) else {"train": data_files}
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for name, pattern in splits.items():
        lines += [f"  - split: {_yaml_key(name)}", f"    path: {_yaml_str(pattern)}"]
    if fingerprint:
        lines += ["dataset_info:", "  config_name: default",
                  f"  description: {_yaml_str(f'trajrec export; data fingerprint {fingerprint}')}"]
    lines += [
        "tags:",
        "- trajrec",
        "- agent-trajectories",
        "---",
        "",
        f"# {lineage['name']}",
        "",
        f"Step-labeled agent trajectories exported by trajrec {__version__} in the `{report.format}` format "
        "(see trajrec's docs/EXPORT.md for the columns).",
        "",
        "## Counts",
        "",
        "| | episodes | passed / failed |",
        "|---|---|---|",
        f"| written | {report.written} | {bal(report.written_outcomes)} |",
    ]
    for reason, outcomes in report.left_out.items():
        files = reason == "not episode files"  # :data:`~.pipeline.NOT_EPISODES`: files, no outcome
        lines.append(f"| left out: {reason} | {sum(outcomes.values())} | {'-' if files else bal(outcomes)} |")
    lines += ["", f"Rows: {report.rows}; steps: {report.steps}; episodes found: {report.episodes}, matched by the "
              f"filters: {report.matched}."]
    written_splits = getattr(report, "written_splits", {})
    if written_splits:
        lines += ["", "Episodes by the env's task split: " + ", ".join(f"{k} {n}" for k, n in
                                                                     sorted(written_splits.items())) + "."]
    test = written_splits.get("test", 0)
    if test and "test" not in splits:
        lines += ["", f"**Warning:** {test} of the episodes written are from the env's held-out `test` tasks, and "
                  "this card loads everything as one `train` split: training on them leaks the test set. Export "
                  "with `--where 'split=train'` to leave them out, or `--format parquet --partition-by split` to "
                  "get separate `train` and `test` splits."]
    elif isinstance(data_files, dict):
        lines += ["", "Splits: " + ", ".join(f"`{k}` = the env's `{_folder_of(v)}` episodes"
                                              for k, v in splits.items()) + "."]
    lines += ["", "## Labels by judge", "",
              "Labels and recorded checks on the written episodes (the preferred one per step is exported):", "",
              "| judge | labels |", "|---|---|"]
    for judge, n in sorted(lineage["judges"].items()):
        lines.append(f"| `{judge}` | {n} |")
    if not lineage["judges"]:
        lines.append("| (none) | 0 |")
    lines += ["", "## How labels were chosen", "",
              f"- label map: `{options.label_map}`", f"- preferred sources: `{options.preference}`"]
    if report.format == "trl-stepwise":
        lines += [f"- unlabeled steps: `{options.unlabeled}`",
                  f"- step separator (replaced in completions): `{options.step_separator!r}`"]
    if report.format in ("chat", "dpo", "kto"):
        lines += [f"- tool-call arguments: `{options.tool_arguments}`"]
    if report.format == "chat":
        lines += [f"- assistant message weights: `{options.weights}`"]
    lines += [f"- filters: {', '.join(f'`{w}`' for w in lineage['where']) or 'none'}", "", "## Lineage", ""]
    for key in ("sources", "runs", "envs", "agents", "models"):
        vals = lineage[key]
        lines.append(f"- {key}: {', '.join(f'`{v}`' for v in sorted(vals)) or 'none recorded'}")
    return "\n".join(lines) + "\n"


def write_card(folder: str | os.PathLike[str], report: Any, options: ExportOptions, data_files: str | dict[str, str],
               lineage: dict[str, Any]) -> Path:
    """Write ``folder/README.md``; returns its path."""
    path = Path(folder) / "README.md"
    lineage = {"name": Path(folder).name, **lineage}
    path.write_text(card_text(report, options, data_files, lineage, data_fingerprint(folder)), encoding="utf-8",
                    errors="backslashreplace")
    return path
