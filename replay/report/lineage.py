"""Lineage: where a run's episodes came from, read from each header's ``provenance`` (``docs/FORMAT.md``):
agents, models, sampling settings, recorder and env package versions, code revisions, runs and lineage fields.

Sampling settings are ``provenance.agent.sampling`` when the agent gave a dict of them, else the usual sampling
keys found directly on the agent (``temperature``, ``top_p``, ...).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from .episode import EpisodeFacts

__all__ = ["Lineage", "SAMPLING_KEYS"]

#: Agent fields read as sampling settings when the agent has no ``sampling`` dict.
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "max_tokens", "max_new_tokens", "n", "presence_penalty",
                 "frequency_penalty", "repetition_penalty", "stop", "reasoning_effort")


def _text(x: Any) -> str:
    return "" if x is None else str(x)


# Fields of a lineage's nested parts that say what kind of source it was (the rest name one source: a path, a
# SHA-256, an episode id), so episodes group by how they were made, not one group each.
_KIND_FIELDS = ("format", "generator", "kind")


def lineage_group(lineage: Any) -> Any:
    """What episodes with this provenance ``lineage`` are grouped under: its text and number fields (e.g.
    ``generator``) and, of each nested part (``imported_from``, ``replay_of``), only the fields that name a kind
    of source (``format``...), not the one source (path, SHA-256, episode id).

    >>> lineage_group({"generator": "trajrec import mini-swe-agent",
    ...                "imported_from": {"format": "mini-swe-agent", "path": "/a/1.traj.json", "sha256": "ab"}})
    {'generator': 'trajrec import mini-swe-agent', 'imported_from': {'format': 'mini-swe-agent'}}
    """
    if not isinstance(lineage, dict):
        return lineage
    out: dict[str, Any] = {}
    for k, v in lineage.items():
        if isinstance(v, dict):
            out[str(k)] = {kk: vv for kk, vv in v.items() if kk in _KIND_FIELDS}
        elif v is None or isinstance(v, (str, int, float, bool)):
            out[str(k)] = v
    return out


_KEYS: dict[Any, str] = {}


def _key(value: Any) -> str:
    """A canonical text key for a settings dict; memoized on its items, as runs repeat a few settings."""
    try:
        items = tuple(sorted(value.items())) if isinstance(value, dict) else value
        hit = _KEYS.get(items)
    except TypeError:  # unhashable or unorderable values: no memo
        return json.dumps(value, sort_keys=True, default=repr, ensure_ascii=False)
    if hit is None:
        hit = json.dumps(value, sort_keys=True, default=repr, ensure_ascii=False)
        if len(_KEYS) < 1024:
            _KEYS[items] = hit
    return hit


class Lineage:
    """Running provenance counts; see the module docstring."""

    def __init__(self) -> None:
        self.agents: Counter[tuple[str, str, str]] = Counter()
        self.models: Counter[str] = Counter()
        self.sampling: Counter[str] = Counter()
        self.recorders: Counter[tuple[str, str, str]] = Counter()
        self.env_packages: Counter[tuple[str, str]] = Counter()
        self.revisions: Counter[tuple[str, bool]] = Counter()
        self.lineage: Counter[str] = Counter()
        self.runs: dict[str, list[Any]] = {}  # run id -> [episodes, first start, last start, hosts]

    def add(self, ep: EpisodeFacts) -> None:
        prov = ep.provenance
        agent = prov.get("agent")
        if type(agent) is dict:
            self.agents[(_text(agent.get("name")), _text(agent.get("version")), _text(agent.get("class")))] += 1
            self.models[_text(agent.get("model"))] += 1
            sampling = agent.get("sampling")
            if not type(sampling) is dict:
                sampling = {k: agent[k] for k in SAMPLING_KEYS if k in agent}
            self.sampling[_key(dict(sampling)) if sampling else ""] += 1
        else:
            self.agents[(_text(agent), "", "")] += 1
            self.models[""] += 1
            self.sampling[""] += 1
        rec = prov.get("recorder")
        rec = rec if type(rec) is dict else {}
        self.recorders[(_text(rec.get("name")), _text(rec.get("version")), _text(rec.get("format_version")))] += 1
        pkg = prov.get("env_package")
        pkg = pkg if type(pkg) is dict else {}
        self.env_packages[(_text(pkg.get("package") or pkg.get("module")), _text(pkg.get("version")))] += 1
        rev = prov.get("code_revision")
        if type(rev) is dict:
            self.revisions[(_text(rev.get("commit"))[:12], bool(rev.get("dirty")))] += 1
        lin = prov.get("lineage")
        if lin:
            self.lineage[_key(lineage_group(lin))] += 1
        run_id = _text(prov.get("run_id"))
        start = _text(prov.get("start_time"))
        row = self.runs.get(run_id)
        if row is None:
            row = self.runs[run_id] = [0, start, start, set()]
        row[0] += 1
        if start:
            row[1] = min(row[1], start) if row[1] else start
            row[2] = max(row[2], start)
        if len(row[3]) < 5:
            row[3].add(_text(prov.get("host")))

    def result(self) -> dict[str, Any]:
        def counted(counter: Counter[Any], names: tuple[str, ...]) -> list[dict[str, Any]]:
            out = []
            for key, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])):
                key = key if isinstance(key, tuple) else (key,)
                out.append({**dict(zip(names, key)), "episodes": n})
            return out

        sampling = []
        for key, n in sorted(self.sampling.items(), key=lambda kv: (-kv[1], kv[0])):
            sampling.append({"settings": json.loads(key) if key else None, "episodes": n})
        return {
            "agents": counted(self.agents, ("name", "version", "class")),
            "models": counted(self.models, ("model",)),
            "sampling": sampling,
            "recorders": counted(self.recorders, ("name", "version", "format_version")),
            "env_packages": counted(self.env_packages, ("package", "version")),
            "code_revisions": counted(self.revisions, ("commit", "dirty")),
            "lineage": [{"lineage": json.loads(k), "episodes": n} for k, n in self.lineage.most_common()],
            "runs": [{"run_id": k, "episodes": v[0], "first_start": v[1] or None, "last_start": v[2] or None,
                      "hosts": sorted(h for h in v[3] if h)} for k, v in sorted(self.runs.items())],
        }
