"""Provenance gathered automatically: versions, host, time, code revision."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
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
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "argv": list(sys.argv),
    }


@functools.lru_cache(maxsize=None)
def code_revision(cwd: str) -> dict[str, Any] | None:
    """The git commit of the checkout holding ``cwd``, and whether it has uncommitted changes."""
    here = Path(cwd).resolve()
    if not any((p / ".git").exists() for p in (here, *here.parents)):
        return None  # not a checkout: spare the subprocess
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


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
    """Provenance for a new episode: the automatic fields, then what the caller passed (the caller wins)."""
    prov = dict(_static())
    prov["pid"] = os.getpid()  # not cached: worker processes forked from one parent differ
    prov["packages"] = dict(_packages())
    prov["env_package"] = env_package(env)
    prov["code_revision"] = code_revision(os.getcwd())
    prov["start_time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    prov["run_id"] = run_id
    prov["agent"] = dict(agent) if agent else None
    prov["lineage"] = None
    if extra:
        prov.update(extra)
    return prov
