"""numpy is imported on first use: the codec's hook, the exports' JSON encoding, the renderer and the action keys
give the same answers when numpy is imported *after* them (as `trajrec export` of a run with arrays does: the
first array decoded imports it) as when numpy came first.

Each side runs in a fresh interpreter; the late side checks that numpy was not loaded before its values were made.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

_VALUES = r'''
import numpy as np
values = [
    np.arange(6, dtype=np.int16).reshape(2, 3), np.float32(0.5), np.bool_(True), np.str_("x"), np.int64(-3),
    np.array([1.5, np.nan, -0.0]), np.array([], dtype=np.uint8), np.array(["a", None, 3], dtype=object),
    np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8", (2,))]), np.ma.MaskedArray([1, 2], mask=[0, 1]),
    np.array(["2020-01-01"], dtype="datetime64[D]"), np.complex64(1 + 2j), np.uint64(2**64 - 1),
    np.arange(4.0).view(np.recarray), np.matrix([[1, 2]]), (1, np.int8(2)), {"k": np.arange(2)},
]  # (no long double: its stored bytes hold the padding of an 80-bit value, which differs between processes)
'''

_ANSWERS = r'''
from trajrec.recorder import format as fmt
from trajrec.recorder.classify import default_action_key
from trajrec.recorder.codec import sanitize
from trajrec.replay.exports.encode import dumps, jsonable
from trajrec.replay.render import plain_json, type_name, value_text

out = []
for v in values:
    packed = fmt.packb(v)
    back = fmt.unpackb(packed)
    out.append([packed.hex(), repr(type(back)), fmt.packb(back).hex(), fmt.packb(sanitize(v)).hex(),
                dumps(v), json.dumps(jsonable(v)), json.dumps(plain_json(v)), value_text(v), type_name(v),
                # (an object array's key is its raw bytes, pointers that differ between processes)
                "-" if getattr(getattr(v, "dtype", None), "hasobject", False) else repr(default_action_key(v))])
print(json.dumps(out))
'''

_FIRST = "import json, sys\n" + _VALUES + _ANSWERS
_LATE = ("import json, sys\n"
         "from trajrec.recorder import format as fmt\n"
         "from trajrec.replay.exports import encode\n"
         "from trajrec.replay import render\n"
         "from trajrec.recorder import classify\n"
         # the hook, the encoders and the renderer, used before numpy is imported: they must not import it
         "fmt.packb([1, (2,), {3}]); encode.dumps({'a': b'x'}); render.value_text({'a': 1}); "
         "classify.default_action_key('ls')\n"
         "assert 'numpy' not in sys.modules, 'numpy imported before any array'\n"
         + _VALUES + _ANSWERS)


def _answers(code: str) -> list:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_numpy_imported_late_gives_the_same_bytes_text_and_keys() -> None:
    first, late = _answers(_FIRST), _answers(_LATE)
    assert len(first) == len(late) > 10
    for i, (a, b) in enumerate(zip(first, late)):
        assert a == b, (i, a, b)


def test_reading_an_array_imports_numpy_and_decodes_it() -> None:
    code = ("import sys\n"
            "from trajrec.recorder import format as fmt\n"
            "packed = bytes.fromhex(sys.argv[1])\n"
            "assert 'numpy' not in sys.modules\n"
            "v = fmt.unpackb(packed)\n"
            "print(type(v).__module__, v.dtype.str, v.tolist())\n")
    import numpy as np

    from trajrec.recorder import format as fmt

    packed = fmt.packb(np.array([[1, 2]], dtype="<u2"))
    proc = subprocess.run([sys.executable, "-c", code, packed.hex()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split(None, 2) == ["numpy", "<u2", "[[1, 2]]\n"]


def test_numpy_if_loaded_waits_for_an_import_under_way_in_another_thread() -> None:
    # A judge thread met the first array while another thread was importing numpy: sys.modules held the module
    # half made, and `np.generic` raised "partially initialized module 'numpy' has no attribute 'generic'".
    code = textwrap.dedent("""
        import sys, threading
        from trajrec.recorder.codec import numpy_if_loaded, numpy_or_stub
        assert "numpy" not in sys.modules
        t = threading.Thread(target=lambda: __import__("numpy"))
        t.start()
        while "numpy" not in sys.modules:
            pass
        np = numpy_if_loaded()
        stub = numpy_or_stub()
        print(hasattr(np, "generic") and hasattr(np, "ndarray"), stub is np)
        t.join()
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]
