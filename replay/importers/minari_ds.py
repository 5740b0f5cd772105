"""Minari datasets, read through the ``minari`` package's own loading API (``pip install 'trajrec[minari]'``).

A source is a dataset id known to Minari's local store (``D4RL/door/human-v2``, under ``MINARI_DATASETS_PATH``)
or a dataset folder (the one holding ``metadata.json`` and ``data/``). ``minari.load_dataset`` /
``minari.MinariDataset`` open it; ``iterate_episodes()`` yields ``EpisodeData`` one episode at a time
(``observations`` has one more entry than ``actions``: the reset observation first).

Mapping: one episode per Minari episode; task env id = the dataset's ``env_spec`` id (with its kwargs), task id =
``<dataset id>/<episode id>``; reset observation = ``observations[0]``; step t: action ``actions[t]``,
observation ``observations[t+1]``, ``rewards[t]``, ``terminations[t]``, ``truncations[t]`` and the ``infos``
entries at t+1. Provenance: the dataset's metadata (author, algorithm, code permalink, minari version).
Minari keeps no times, thoughts or checks: step times are 0 (unknown).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

from trajrec.recorder.errors import require

from .base import ImportedEpisode, ImportedStep, Importer, SourceFile
from .jsonstream import ImportFormatError


class MinariImporter(Importer):
    name = "minari"
    description = "Minari datasets (by dataset id or folder), via the minari package"
    accepts_ids = True
    reads_folders = True

    @classmethod
    def detect(cls, path: Path, head: bytes) -> str | None:
        return None  # a dataset is a folder or an id: detect() in the package looks at folders

    def read(self, source: SourceFile) -> Iterator[ImportedEpisode]:
        minari = require("minari", "pip install 'trajrec[minari]'", "importing Minari datasets")
        path = source.path
        try:
            if path.is_dir():
                data = path / "data" if (path / "data").is_dir() else path
                dataset = minari.MinariDataset(os.fspath(data))
            else:
                dataset = minari.load_dataset(os.fspath(path))
        except (FileNotFoundError, ValueError, KeyError) as exc:
            raise ImportFormatError(path, None, f"Minari cannot open this dataset ({exc}); pass a dataset id from "
                                    "`minari list local` or a dataset folder") from exc
        f = self.fields
        spec = dataset.spec
        env_spec = getattr(spec, "env_spec", None)
        meta = dict(getattr(dataset.storage, "metadata", {}) or {})
        dataset_id = getattr(spec, "dataset_id", None) or meta.get("dataset_id") or path.name
        f.mapped("dataset.spec.env_spec", "task.env_id/env_kwargs")
        f.mapped("metadata (author, algorithm, code permalink, versions)", "provenance.minari")
        agent = {"name": meta.get("algorithm_name") or "minari-dataset", "version": None, "model": None}
        prov = {"minari": {k: _plain(v) for k, v in meta.items() if k not in ("env_spec", "eval_env_spec")}}
        for episode in dataset.iterate_episodes():
            task = {"env_id": getattr(env_spec, "id", None) or f"imported/{self.name}",
                    "env_kwargs": _plain(getattr(env_spec, "kwargs", {}) or {}),
                    "max_episode_steps": getattr(env_spec, "max_episode_steps", None),
                    "id": f"{dataset_id}/{episode.id}", "text": None, "verification": ["environment"]}
            yield ImportedEpisode(task=task, agent=agent, reset_observation=_at(episode.observations, 0),
                                  reset_info=_info_at(episode.infos, 0), steps=self._steps(episode),
                                  where=f"episode {episode.id}", name=f"{str(dataset_id).replace('/', '_')}-{episode.id}",
                                  provenance=prov)

    def _steps(self, episode: Any) -> Iterator[ImportedStep]:
        f = self.fields
        f.mapped("episode.actions/observations/rewards/terminations/truncations/infos", "steps")
        n = len(episode.rewards)
        for t in range(n):
            yield ImportedStep(action=_at(episode.actions, t), observation=_at(episode.observations, t + 1),
                               reward=float(episode.rewards[t]), terminated=bool(episode.terminations[t]),
                               truncated=bool(episode.truncations[t]), info=_info_at(episode.infos, t + 1))


def _at(values: Any, i: int) -> Any:
    """Entry ``i`` of a Minari field: an array, or a dict (Dict spaces) / tuple of arrays."""
    if isinstance(values, dict):
        return {k: _at(v, i) for k, v in values.items()}
    if isinstance(values, tuple):
        return [_at(v, i) for v in values]
    if isinstance(values, list):
        return values[i] if i < len(values) else None
    return values[i] if i < len(values) else None


def _info_at(infos: Any, i: int) -> dict[str, Any]:
    if not isinstance(infos, dict):
        return {}
    out = {}
    for k, v in infos.items():
        try:
            out[k] = _at(v, i)
        except (IndexError, TypeError):
            continue
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):  # Minari keeps authors and emails as sets
        return sorted((_plain(v) for v in value), key=repr)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)
