"""The two ways a :class:`~trajrec.recorder.diff.StateTracker` can run: the pure-Python walk, and the C first pass
(``recorder/_cdiff.c``) in front of it. Tests that hold for both take ``MODES`` as a parameter."""

from __future__ import annotations

import pytest

from trajrec.recorder import diff

#: True where the C extension was built (a C compiler was present at install) and not switched off.
BUILT = diff._accel is not None
SKIP_REASON = ("the C extension trajrec.recorder._cdiff is not built (installed without a C compiler, or "
               "TRAJREC_PURE_PYTHON is set): reinstall with `pip install -e '.[test]'` where gcc or clang runs")
needs_c = pytest.mark.skipif(not BUILT, reason=SKIP_REASON)

MODES = [pytest.param(False, id="pure"), pytest.param(True, id="c", marks=needs_c)]
