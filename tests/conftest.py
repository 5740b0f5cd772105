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

# Property tests draw the same examples on every run (CI must give the same verdict twice); set
# TRAJREC_HYPOTHESIS=explore to draw new ones (a search for new failures, not a gate).
try:
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # pragma: no cover  (hypothesis is in the test extra)
    pass
else:
    _hypothesis_settings.register_profile("gate", derandomize=True, database=None)
    _hypothesis_settings.register_profile("explore")
    _hypothesis_settings.load_profile(os.environ.get("TRAJREC_HYPOTHESIS", "gate"))
