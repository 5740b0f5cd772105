"""Suite-wide setup: the repository's folders are importable only as ``trajrec.*``.

``python -m pytest`` puts the working folder (the repository root) first on ``sys.path``, where ``recorder/``,
``replay/``, ``envs/`` and ``tui/`` would import as top-level packages: every module then exists twice, under
two names, with two copies of its classes and registries. The installed package maps those folders to
``trajrec.recorder`` and so on; the root is taken off ``sys.path`` so that the installed names are the only ones.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("recorder", "replay", "envs", "tui")


def _is_root(entry: str) -> bool:
    try:
        return Path(entry or os.getcwd()).resolve() == ROOT
    except OSError:
        return False


sys.path[:] = [p for p in sys.path if not _is_root(p)]
_twins = sorted(name for name in sys.modules if name.split(".")[0] in LAYERS)
assert not _twins, f"imported under the folder's own name before the suite started: {_twins}"
