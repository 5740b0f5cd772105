"""Provenance gathered automatically: versions, host, time, code revision."""

from __future__ import annotations

import functools
import os
import platform
import socket
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from .format import FORMAT_VERSION
from .version import __version__


@functools.lru_cache(maxsize=256)
def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=None)
def _static() -> dict[str, Any]:
    return {
        "recorder": {"name": "trajrec", "version": __version__, "format_version": FORMAT_VERSION},
        "python": platform.python_version(),
        # Not platform.platform(): it runs `uname -p` in a subprocess; recording starts no program.
        "platform": "-".join(p for p in (platform.system(), platform.release(), platform.machine()) if p),
        "host": socket.gethostname(),
        "argv": list(sys.argv),
    }


_HEX = frozenset("0123456789abcdef")


def _read_text(path: Path, limit: int = 4096) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", "replace").strip()
    except OSError:
        return None


def _git_dirs(top: Path) -> tuple[Path, Path] | None:
    """The git directory of the checkout at ``top`` and its common directory (they differ in a worktree)."""
    dot = top / ".git"
    if dot.is_dir():
        gitdir = dot
    else:
        text = _read_text(dot)
        if not text or not text.startswith("gitdir:"):
            return None
        gitdir = (top / text[len("gitdir:"):].strip()).resolve()
    common = _read_text(gitdir / "commondir")
    return gitdir, ((gitdir / common).resolve() if common else gitdir)


def _resolve_ref(common: Path, gitdir: Path, ref: str) -> str | None:
    if ".." in ref or not ref.startswith("refs/"):
        return None  # a ref name is a path under the git folder: never follow one out of it
    for base in (gitdir, common):
        sha = _read_text(base / ref, 128)
        if sha and len(sha) == 40 and set(sha) <= _HEX:
            return sha
    packed = _read_text(common / "packed-refs", 1 << 24)
    for line in (packed or "").splitlines():
        parts = line.split(" ", 1)
        if len(parts) == 2 and parts[1] == ref and len(parts[0]) == 40 and set(parts[0]) <= _HEX:
            return parts[0]
    return None


@functools.lru_cache(maxsize=None)
def code_revision(cwd: str) -> dict[str, Any] | None:
    """The git commit of the checkout holding ``cwd``, read from ``.git`` directly (HEAD, refs, packed-refs).

    No git command runs: a repository's own configuration (``core.fsmonitor``, filters, hooks) can name
    programs that ``git status`` would start, and recording must never run code a folder names. Whether the
    checkout has uncommitted changes is therefore not known (``dirty`` is None). Read once per folder and
    process.
    """
    here = Path(cwd).resolve()
    top = next((p for p in (here, *here.parents) if (p / ".git").exists()), None)
    if top is None:
        return None
    dirs = _git_dirs(top)
    if dirs is None:
        return None
    gitdir, common = dirs
    head = _read_text(gitdir / "HEAD", 1024)
    if not head:
        return None
    if head.startswith("ref:"):
        ref = head[4:].strip()
        sha = _resolve_ref(common, gitdir, ref)
        branch = ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else None
    else:
        sha, branch = (head if len(head) == 40 and set(head) <= _HEX else None), None
    if sha is None:
        return None  # a new repository without commits, or a layout this reader does not know
    return {"commit": sha, "branch": branch, "dirty": None}


def env_package(env: Any) -> dict[str, Any]:
    cls: Any = type(env.unwrapped)  # classes hash by identity: a fine cache key
    return dict(_env_package(cls))


@functools.lru_cache(maxsize=64)
def _env_package(cls: Any) -> dict[str, Any]:
    module = cls.__module__
    top = module.split(".")[0]
    version = package_version(top) or package_version(top.replace("_", "-"))
    if version is None and top == "envs":
        version = __version__  # trajrec's own environments
    return {"module": module, "class": cls.__qualname__, "package": top, "version": version}


@functools.lru_cache(maxsize=1)
def _packages() -> dict[str, str | None]:
    return {name: package_version(name) for name in ("gymnasium", "numpy", "msgpack", "zstandard")}


def gather(env: Any, *, agent: dict[str, Any] | None, extra: dict[str, Any] | None, run_id: str | None) -> dict[str, Any]:
    """Provenance for a new episode: the automatic fields, then what the caller passed (the caller wins).

    What is the same for every episode of a process and env class (versions, host, argv, pid, package) is
    gathered once (:func:`_automatic`); each call copies it and adds the code revision (cached per folder by
    :func:`code_revision`), the start time, run id and agent. The process id is part of the key, so a forked
    worker gets its own.
    """
    prov = _automatic(os.getpid(), type(env.unwrapped)).copy()
    # Fresh nested dicts, as before the cache: a caller that edits one episode's provenance edits no other.
    prov["packages"] = prov["packages"].copy()
    prov["env_package"] = prov["env_package"].copy()
    prov["code_revision"] = code_revision(os.getcwd())
    prov["start_time"] = _utc_text()
    prov["run_id"] = run_id
    prov["agent"] = dict(agent) if agent else None
    prov["lineage"] = None
    if extra:
        prov.update(extra)
    return prov


_utc: tuple[int, str] = (-1, "")


def _utc_text() -> str:
    """``time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())``, formatted once a second."""
    global _utc
    now = int(time.time())
    cached = _utc  # one read: another thread may replace it meanwhile
    if cached[0] != now:
        cached = _utc = (now, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)))
    return cached[1]


@functools.lru_cache(maxsize=64)
def _automatic(pid: int, cls: Any) -> dict[str, Any]:
    """The automatic fields of :func:`gather` for process ``pid`` recording an env of class ``cls``, in the
    order a header holds them (``code_revision`` is a place kept for :func:`gather`; callers copy the result)."""
    prov = dict(_static())
    prov["pid"] = pid
    prov["packages"] = dict(_packages())
    prov["env_package"] = dict(_env_package(cls))
    prov["code_revision"] = None
    return prov
