"""Exports of step-labeled trajectories for training: ``records``, ``trl-stepwise``, ``chat``, ``parquet``,
``dpo`` and ``kto``.

>>> from trajrec.replay.exports import export, ExportOptions
>>> sorted(FORMATS)
['atif', 'chat', 'dpo', 'kto', 'parquet', 'records', 'trl-stepwise']

See ``docs/EXPORT.md`` for each format, the label policies and the ``--where`` grammar.
"""

from __future__ import annotations

from .base import EpisodeView, ExportOptions, Skip
from .choice import DEFAULT_PREFER, LABEL_MAPS, UNLABELED, Preference, map_label
from .pipeline import FORMATS, ExportReport, export, filters_for, select
from .source import EpisodeRef, Source, episode_files
from ..query import FIELDS, parse_query

__all__ = [
    "DEFAULT_PREFER",
    "FIELDS",
    "FORMATS",
    "LABEL_MAPS",
    "UNLABELED",
    "EpisodeRef",
    "EpisodeView",
    "ExportOptions",
    "ExportReport",
    "Preference",
    "Skip",
    "Source",
    "episode_files",
    "export",
    "filters_for",
    "map_label",
    "parse_query",
    "select",
]
