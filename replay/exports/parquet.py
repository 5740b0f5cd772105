"""``parquet``: one row per step through pyarrow (the optional extra ``pip install 'trajrec[parquet]'``).

One typed schema for every run, env and label map (:data:`COLUMNS`, :func:`schema`; the table in
``docs/EXPORT.md``), so shards of different runs union with no type error: env-typed values (actions, observations,
label values, tool arguments) are text (JSON for non-text values) beside typed views (``tool_call`` struct,
``observation_values`` list of numbers, ``label_rating`` int8, ``label_score`` double, ``label_category``
string); ``label`` is always a double whatever ``--label-map`` (which the key-value metadata names). Times are
``timestamp[us, UTC]``.

``--out FILE.parquet`` writes one file; ``--out DIR`` writes ``DIR/part-NNNNN.parquet`` shards of ``--shard-rows``
rows (``--partition-by split|env``: ``DIR/split=train/part-00000.parquet``) and a dataset card ``DIR/README.md``.
The same rows feed :meth:`trajrec.Run.to_arrow` (:func:`step_rows`), so Python users get what the CLI writes.
"""

from __future__ import annotations

import json
import math
import operator
import os
import shutil
import sys
import unicodedata
from contextlib import contextmanager, suppress
from itertools import chain, compress, islice, repeat
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from trajrec.recorder.errors import MissingDependencyError  # noqa: F401 (re-exported: callers catch it here)
from trajrec.recorder.errors import TrajrecIOError, TrajrecUsageError, require

from .base import (NO_STEP, EpisodeView, ExportOptions, Format, Skip, check_output_folder, new_temp_folder,
                   open_new_binary, open_output)
from ..label_join import LabelLines
from ..label_model import LabelRow
from ..labels import rating
from .choice import map_label, origin
from .arrow_build import build, coded, float_lists, kind_of, row_bytes, value_bytes
from .encode import dumps, text_of, tool_call, tool_names

PIP_HINT = "pip install 'trajrec[parquet]'"
#: The ``format`` key-value metadata of every file; bumped when a column changes.
PARQUET_FORMAT = "trajrec-parquet@4"
#: The most rows in a row group (held as Arrow arrays until it is written): bounds the memory an export holds
#: (65,536 rows of a tool env's steps held ~100 MB more at the peak).
_BATCH = 8192
#: A row group also ends with the row that brings its values to this many bytes (:func:`.arrow_build.value_bytes`:
#: text as UTF-8, numbers at their width): wide rows (84x84x3 images: ~260 KB a row) made row groups of 8,192 rows
#: that held 1.45 GB for 3,000 image steps (64 MB groups: ~230 MB, 32 MB: ~175 MB). A tool env's 8,192 rows are
#: ~6 MB, so its row groups (and files) are the ones cut by rows alone. The rows where a group ends depend on the
#: rows only, never on how they were batched, so ``--workers`` write the same groups.
_GROUP_BYTES = 32 << 20
#: Rows kept as Python values before they become Arrow arrays (a record batch of the row group being filled): a
#: row held ~1.3 KB as Python values, ~0.75 KB as Arrow's. The parquet writer takes a column 1,024 values at a
#: time, so batches of 1,024 rows from the row group's start give the same pages as one array of the whole group.
_CHUNK = 1024
#: A record batch of a row group also ends with the row that brings its values to this many bytes, so that rows
#: from several batches are joined (copied) a few MB at a time, never a whole wide row group. A tool env's 1,024
#: rows are ~0.75 MB: files are the same bytes as when batches were cut by rows alone unless 1,024 rows of a row
#: group (from its start, or from a multiple of 1,024) hold 8 MB of values.
_CHUNK_BYTES = 8 << 20
#: Rows made Arrow arrays at once, cut into :data:`_CHUNK`-row batches afterwards (slices: the same batches, so the
#: same pages). Each column's array has a cost of its own (type checks, buffers, the batch's cuts) whatever its rows:
#: 44 columns x 40 batches of 1,024 rows were ~8% of a tool env's export of 40,000 steps. More rows at once hold
#: more as Python values: peak RSS of 10,000 x 20 steps 91 MB (1,024 rows), 93 (2,048), 95 (4,096), 99 (8,192)
#: (session 9). Since label columns are held as :class:`Coded` (no Python value a row), 4,096 rows: 92-93 MB
#: (2,048: 91-92), and ~4% less CPU than 2,048 on 40 x 1,000 steps (session 10).
_CONVERT = 4096
#: Python values held (text characters, numeric observations' bytes) past which rows become Arrow arrays before
#: they make a whole chunk: wide rows are not held as Python values 1,024 at a time.
_HELD_BYTES = 16 << 20


def pyarrow_modules() -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, imported on first use (pyarrow as :func:`pyarrow_module` imports it)."""
    pa = pyarrow_module()
    pq = require("pyarrow.parquet", PIP_HINT, "the parquet export")
    return pa, pq


def pyarrow_module() -> Any:
    """``pyarrow``, imported on first use.

    When this import is pyarrow's first and nobody chose its allocator (``ARROW_DEFAULT_MEMORY_POOL``), pyarrow's
    default pool is made the system allocator: the parquet writer takes some of its buffers from the default pool
    whatever pool it is given, and mimalloc's first use held ~15 MB more at the export's peak (measured on a
    40 x 1,000-step run: 128 -> 109 MB). Set ``ARROW_DEFAULT_MEMORY_POOL=mimalloc`` to keep pyarrow's choice.
    """
    if "pyarrow" not in sys.modules and "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        # Read once, when pyarrow loads; the variable is removed again so that no child process inherits it.
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
        try:
            require("pyarrow", PIP_HINT, "the parquet export")
        finally:
            os.environ.pop("ARROW_DEFAULT_MEMORY_POOL", None)
    return require("pyarrow", PIP_HINT, "the parquet export")


#: glibc's ``M_MMAP_THRESHOLD`` (mallopt parameter -3) as the parquet export fixes it: see :func:`steady_allocator`.
_MMAP_THRESHOLD = 1 << 20
_STEADY: list[bool] = []


def steady_allocator() -> None:
    """Fix glibc's mmap threshold at 1 MiB for this process (once; nothing elsewhere, or when the user set
    ``MALLOC_MMAP_THRESHOLD_``).

    glibc serves a block of 128 KiB or more with its own mmap and gives it back when freed, but then raises that
    threshold to the freed block's size (up to 32 MiB), so later blocks of that size come from the heap, where the
    freed ones between live ones stay with the process. Wide rows (images: MBs of text and numbers per episode,
    arrays of MBs per column) made that ~60 MB of the parquet export's peak (3,000 image steps: 230 -> 174 MB with
    32 MB row groups; a tool env's export: no change). A fixed threshold keeps blocks of 1 MiB and more mmapped.
    """
    if _STEADY or "MALLOC_MMAP_THRESHOLD_" in os.environ or not sys.platform.startswith("linux"):
        return
    _STEADY.append(True)
    import ctypes

    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded: the C library's among them (no search, no ldconfig)
    except OSError:  # no dynamic loading here: nothing to tune
        return
    if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt"):  # the parameter numbers are glibc's
        libc.mallopt(-3, _MMAP_THRESHOLD)  # M_MMAP_THRESHOLD


#: What ``pyarrow.parquet.ParquetWriter(path, schema, compression="zstd", use_dictionary=False)`` hands its writer
#: class: the export's settings, spelled out for :func:`open_writer`. No dictionary pages: zstd already folds the
#: values that repeat (episode fields, label text) and the writer's dictionary work was ~30% of its time; files of
#: the export's bench runs are ~10% smaller without (40 x 1,000 steps: 1.02 -> 0.91 MB, 10,000 x 21: 5.08 -> 4.57),
#: and read back as the same table.
_WRITER_SETTINGS = {"version": "2.6", "compression": "zstd", "use_dictionary": False, "write_statistics": True,
                    "use_deprecated_int96_timestamps": False, "writer_engine_version": "V2",
                    "data_page_version": "1.0", "use_compliant_nested_type": True, "store_schema": True}


def open_writer(path: str, schema: Any, pool: Any) -> Any:
    """A parquet writer of ``path`` (``write_table``, ``close``) with the export's settings (zstd, pyarrow's
    defaults otherwise): the same file as ``pyarrow.parquet.ParquetWriter(path, schema, compression="zstd",
    use_dictionary=False)``.

    It is pyarrow's own writer class (``pyarrow._parquet.ParquetWriter``) when that takes these arguments:
    importing ``pyarrow.parquet`` loads pyarrow's file systems too (S3, GCS, HDFS, Azure: ~5 MB more at the
    export's peak) for a local file; else ``pyarrow.parquet``'s writer. ``tests/exports/test_arrow_build.py``
    checks that both write the same bytes.

    Raises:
        OSError: the file cannot be created.
    """
    try:
        from pyarrow._parquet import ParquetWriter

        return ParquetWriter(path, schema, memory_pool=pool, **_WRITER_SETTINGS)
    except (ImportError, TypeError):  # another pyarrow: its public writer
        pq = require("pyarrow.parquet", PIP_HINT, "the parquet export")
        return pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=False, memory_pool=pool)


@contextmanager
def _writing(path: Any) -> Iterator[None]:
    """pyarrow's ``OSError`` of a failed write (a full disk, a file-size limit) as the export's one-line error
    naming the file (``path()``)."""
    try:
        yield
    except OSError as exc:
        raise TrajrecIOError(f"cannot write {path()}: {exc.strerror or exc}") from exc


def _float(x: Any) -> float | None:
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, (int, float)):
        try:
            f = float(x)
        except OverflowError:  # an int beyond a float's range
            return None
        return f if math.isfinite(f) else None
    if isinstance(x, (str, bytes, bytearray)):
        return None  # text is not a number here, whatever it spells ("1", "3e2"): the records export keeps it as text
    try:
        f = float(x)  # numpy numbers, 0-d arrays
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


#: Seconds past which a time is no ``timestamp[us]`` (int64 microseconds: ~292,000 years either side of 1970).
_TIME_MAX = 9.2e12


def _micros(t: Any) -> int | None:
    """A recorded time (Unix seconds) as microseconds, None when it is no time a timestamp column holds (not a
    number, not finite, or out of int64 microseconds' range: a repaired file's salvaged step can hold 1e172)."""
    f = _float(t)
    return None if f is None or not -_TIME_MAX < f < _TIME_MAX else round(f * 1_000_000)


def _int(x: Any, lo: int = -(2**31), hi: int = 2**31 - 1) -> int | None:
    return x if type(x) is int and lo <= x <= hi else None


def numeric_values(value: Any) -> list[float] | None:
    """A numeric observation (a number, or a list/array of numbers nested to any depth) flattened to floats in
    row-major order; None for anything else (text, dicts, ragged or mixed lists).

    >>> numeric_values([[1, 2], [3, 4.5]]), numeric_values("1.5"), numeric_values([1, "a"])
    ([1.0, 2.0, 3.0, 4.5], None, None)
    """
    arr = _numeric_array(value)
    return None if arr is None else arr.tolist()


def _numeric_array(value: Any, *, raw: bool = False) -> Any:
    """:func:`numeric_values` as a 1-D float64 numpy array (8 bytes a number, where a list of Python floats holds
    32; an 84x84x3 image is 0.17 MB a row instead of 0.68). ``raw``: the same numbers in the array's own dtype
    (an int, unsigned or float kind; what the export holds until the column is made: a uint8 image is 21 KB a row),
    which ``astype(np.float64)`` makes the float64 array."""
    if value is None or isinstance(value, (str, bool, dict)):
        return None
    if isinstance(value, float):
        return np.array([value])  # a number whatever its size (1e20, inf, nan), as the same value in an array is
    if isinstance(value, int):
        return np.array([float(value)]) if -(2**63) <= value < 2**64 else None  # beyond 64 bits: not one number
    if not isinstance(value, (list, tuple, np.ndarray, np.generic)):
        return None
    if isinstance(value, np.ma.MaskedArray) and np.ma.is_masked(value):
        return None  # the data under the mask is no value: the observation's text has null there
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):  # ragged
        return None
    if arr.dtype.kind not in "iuf" or arr.size == 0 and arr.ndim > 1 or arr.size > 1_000_000:
        return None
    if raw and arr.dtype != np.float64:
        return arr.flatten()  # a copy: never a view of the recorded array
    return arr.astype(np.float64).ravel()  # a copy: never a view of the recorded array


#: The column names of the parquet export, in order.
COLUMNS = (
    # the episode
    "episode_id", "run_id", "file", "env_id", "task_id", "task_text", "split", "agent", "model", "outcome",
    "episode_return", "episode_steps", "check_passed", "check_judge",
    # the step
    "step", "thought", "action", "tool_call", "observation", "observation_values", "reward", "terminated",
    "truncated", "time", "duration", "failure", "retry_of", "recovers",
    # its preferred label
    "label", "label_rating", "label_score", "label_category", "label_value", "label_judge", "label_kind",
    "label_origin", "label_rationale", "label_tags", "label_author", "label_id", "n_labels", "label_judges",
    # damage: the episode is whole (writer finished, no lost step); the step was salvaged by fsck --repair; env
    # steps a failed write kept out of the file right before the step
    "complete", "unverified", "lost_before",
)


def schema(label_map: str | None = None) -> Any:
    """The Arrow schema of the parquet export: the same for every run, env and label map (``label_map`` is
    accepted for callers of the first version; it changes nothing)."""
    pa = pyarrow_module()
    s, i32, f64, b = pa.string(), pa.int32(), pa.float64(), pa.bool_()
    types = {
        "episode_id": s, "run_id": s, "file": s, "env_id": s, "task_id": s, "task_text": s, "split": s, "agent": s,
        "model": s, "outcome": s, "episode_return": f64, "episode_steps": i32, "check_passed": b, "check_judge": s,
        "step": i32, "thought": s, "action": s,
        "tool_call": pa.struct([("name", s), ("arguments", s)]),
        "observation": s, "observation_values": pa.list_(f64), "reward": f64, "terminated": b, "truncated": b,
        "time": pa.timestamp("us", tz="UTC"), "duration": f64,
        "failure": pa.struct([("kind", s), ("message", s)]),
        "retry_of": i32, "recovers": pa.list_(i32),
        "label": f64, "label_rating": pa.int8(), "label_score": f64, "label_category": s, "label_value": s,
        "label_judge": s, "label_kind": s, "label_origin": s, "label_rationale": s, "label_tags": pa.list_(s),
        "label_author": s, "label_id": s, "n_labels": i32, "label_judges": pa.list_(s),
        "complete": b, "unverified": b, "lost_before": i32,
    }
    return pa.schema([(name, types[name]) for name in COLUMNS])


def metadata(options: ExportOptions, *, where: Any = (), sources: Any = ()) -> dict[str, str]:
    """The key-value metadata of a file: trajrec and format version, label map, preference, filters, sources."""
    from trajrec._version import __version__

    return {
        "trajrec.version": __version__, "trajrec.format": PARQUET_FORMAT, "trajrec.label_map": options.label_map,
        "trajrec.prefer": str(options.preference),
        "trajrec.where": json.dumps([str(w) for w in where]),
        "trajrec.sources": json.dumps([os.fspath(p) for p in sources]),
    }


def _check(view: EpisodeView) -> tuple[bool | None, str | None]:
    judge = (view.ep.summary.get("checks") or {}).get("terminal_judge")
    found = None
    for c in view.ep.checks:
        if (c.target == "episode" and c.passed is not None and (judge is None or c.judge == judge)
                and "label_id" not in c.extra):  # (a label brought back as a check by import atif: not terminal)
            found = c
    return (found.passed, found.judge) if found is not None else (None, judge if isinstance(judge, str) else None)


def _category(value: Any) -> str | None:
    return value if isinstance(value, str) and rating(value) is None else None


#: The first columns of :data:`COLUMNS` hold the episode's own fields: the same on each of its rows.
HEAD = COLUMNS.index("step")


def episode_columns(view: EpisodeView, *, few: bool = False) -> tuple[tuple[Any, ...], list[Any]]:
    """``(head, columns)`` of ``view``'s rows: ``head`` the values of ``COLUMNS[:HEAD]`` (the episode's, the same
    on each row), ``columns`` one list per column of ``COLUMNS[HEAD:]`` with a value per step. Reads every step
    (a damaged frame raises before anything is returned).

    ``few``: columns of few distinct values may come as :class:`Coded` (the distinct values and each row's index
    among them) instead of lists: the label columns made from label lines, and ``complete``/``unverified`` when
    every row has the same; :class:`ParquetFormat` makes their arrays from the distinct values
    (:func:`.arrow_build.coded`)."""
    from .chat import episode_complete, episode_meta, unverified_of  # one definition of the episode fields

    meta = episode_meta(view)
    passed, judge = _check(view)
    steps = view.ep.summary.get("steps")
    head = (meta["episode_id"], meta["run_id"], view.ref.rel_path, meta["env_id"], meta["task_id"],
            _text(view.task.get("text")), meta["split"], meta["agent"], meta["model"], meta["outcome"],
            meta["return"], _int(steps) if steps is not None else len(view.ep), passed, judge)
    label_map = view.options.label_map
    names = tool_names(view.tools())
    text_tool = view.text_tool()
    complete = episode_complete(view.ep)
    doubt = unverified_of(view.ep)
    # Env steps a failed write kept out of the file: counted on the step written right after them (those lost
    # after the last step have no row to mark: ``complete`` is false on every row).
    gaps = {g.first: g.n for g in getattr(view.ep, "gaps", ()) if not g.numbered}
    steps_cols: list[list[Any]] = [[] for _ in COLUMNS[HEAD:COLUMNS.index("label")]]
    picked: list[Any] = []  # each step's preferred label (or None)
    found: list[Any] = []  # each step's candidates (or None)
    thought = view.thought
    prefer = view.options.preference.choose  # what view.choose(i, mapped=False) calls
    lines = _usual_lines(view)
    # Labels read as text, a step each: their columns are made from the lines below, not from candidates.
    candidates = view.candidates if lines is None else {}
    names = names or None
    calls = _calls_of(names, text_tool)
    wins: dict[tuple[Any, Any], bool] = {}
    steps_it = view.steps()
    while True:
        chunk = list(islice(steps_it, _STEPS_AT_ONCE))
        if not chunk:
            break
        if _FAST[0] and _usual_steps(chunk, steps_cols, picked, found, candidates, calls, names, text_tool, wins,
                                     prefer):
            continue
        _general_steps(chunk, steps_cols, picked, found, thought, candidates, calls, names, text_tool, wins, prefer)
    n = len(picked)
    steps_i = steps_cols[0]
    labels = (_label_columns(picked, found, label_map, n) if lines is None else
              _line_label_columns(lines, steps_i, label_map, wins, prefer, few=few))
    lost_before = [gaps.get(i, 0) for i in steps_i] if gaps else None
    if few and _FEW[0]:
        same = np.zeros(n, dtype=np.int64)
        return head, [*steps_cols, *labels, Coded([complete], same),
                      [i in doubt for i in steps_i] if doubt else Coded([False], same),
                      lost_before if lost_before is not None else Coded([0], same)]
    return head, [*steps_cols, *labels, [complete] * n, [i in doubt for i in steps_i] if doubt else [False] * n,
                  lost_before if lost_before is not None else [0] * n]


#: Whether :class:`ParquetFormat` takes columns of few distinct values as :class:`Coded` (tests turn it off to
#: compare with the lists' path).
_FEW = [True]


#: Distinct values a :class:`Coded` column keeps after a cut before those of the rows cut off are dropped.
_KEEP_VALUES = 256


class Coded:
    """A column of few distinct values: ``values`` (a list) and each row's index among them (``codes``, an int64
    numpy array), what :func:`.arrow_build.coded` makes an array of. Sliced (``[:k]``) and cut (``del [:k]``) as
    :class:`_Rows` cuts its lists; the values are shared, never changed (:meth:`join` copies them)."""

    __slots__ = ("values", "codes")

    def __init__(self, values: list[Any], codes: Any) -> None:
        self.values = values
        self.codes = codes

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, cut: slice) -> Coded:
        return Coded(self.values, self.codes[cut])

    def __delitem__(self, cut: slice) -> None:
        assert cut.start is None and cut.step is None  # (only del [:k])
        rest = self.codes[cut.stop:]
        if len(self.values) > _KEEP_VALUES:  # values no row left here takes: dropped (they add up over episodes)
            keep, rest = np.unique(rest, return_inverse=True)
            self.values = list(map(self.values.__getitem__, keep.tolist()))
        self.codes = rest.astype(np.int64, copy=False).reshape(-1)

    def tolist(self) -> list[Any]:
        """The rows' values."""
        return list(map(self.values.__getitem__, self.codes.tolist()))

    def join(self, more: Coded) -> Coded:
        """These rows, then ``more``'s (a new column)."""
        return Coded([*self.values, *more.values], np.concatenate((self.codes, more.codes + len(self.values))))


#: Steps read and made columns at a time (bounded: an episode's records are not all held at once).
_STEPS_AT_ONCE = 1024
#: Whether :func:`_usual_steps` is tried (tests turn it off to compare it with the general loop).
_FAST = [True]
_get = dict.get
_getitem = dict.__getitem__
_MICRO = 1_000_000


def _floats_ok(xs: list[Any]) -> bool:
    """Every value a finite float: their sum is finite (a NaN or an infinity makes it NaN or infinite; finite
    values whose sum overflows are refused too, and take the step loop)."""
    return set(map(type, xs)) == _FLOAT and math.isfinite(sum(xs))


_FLOAT = {float}


def _usual_steps(chunk: list[dict[str, Any]], cols: list[list[Any]], picked: list[Any], found: list[Any],
                 candidates: dict[int, Any], calls: dict[str, Any], names: Any, text_tool: Any,
                 wins: dict[tuple[Any, Any], bool], prefer: Any) -> bool:
    """The columns of ``chunk``'s steps a field at a time, in C loops, when they are usual ones (text action and
    observation, a note map whose thought is text, finite float reward, time and duration; at most one candidate
    label a step; failures, retries and recoveries made as the general loop makes them): what :func:`_general_steps` appends, appended; False (nothing
    appended) otherwise. ``tests/exports/test_parquet_steps_fast_path.py`` holds them to the same columns."""
    n = len(chunk)
    try:  # the fields every such step has, a pass each (dict.get's None for a missing one: the passes below)
        # (A pass a field: ~40% less than one itemgetter pass of them all, whose tuples are then transposed.)
        steps, actions, obs, notes, rewards, times, durations, terms, truncs = [
            list(map(_getitem, chunk, repeat(name, n))) for name in _FIELD_NAMES]
    except KeyError:
        steps, actions, obs, notes, rewards, times, durations, terms, truncs = [
            list(map(_get, chunk, repeat(name, n))) for name in _FIELD_NAMES]
    if set(map(type, actions)) != _STR or set(map(type, obs)) != _STR or set(map(type, notes)) != _DICT:
        return False
    thoughts = list(map(_get, notes, repeat("thought", n)))
    if set(map(type, thoughts)) != _STR:
        return False  # (no thought noted: the model call's reply text; other values: their text)
    if not (_floats_ok(rewards) and _floats_ok(times) and _floats_ok(durations)
            and -_TIME_MAX < min(times) and max(times) < _TIME_MAX):
        return False
    if None in steps:
        return False  # (the general loop's KeyError)
    if candidates:
        cands = list(map(candidates.get, steps))
        if any(c is not None and len(c) > 1 for c in cands):
            return False
    else:
        cands = [None] * n
    structs = list(map(calls.get, actions, repeat(calls)))
    if calls in structs:  # actions not met before: parse them (once each), as the general loop does
        for k, struct in enumerate(structs):
            if struct is calls:
                action = actions[k]
                struct = calls.get(action, calls)
                if struct is calls:
                    struct = _call_struct(calls, action, names, text_tool)
                structs[k] = struct
    # Failures, retries and recoveries (a few steps): each as the general loop makes it.
    # (Each made for the steps that have one, a step in ten or so: the others' values are None or one empty list.)
    got = list(map(_get, chunk, repeat("failure", n)))
    failures = [None] * n
    for k in compress(range(n), got):
        f = got[k]
        failures[k] = {"kind": _text(f.get("kind")), "message": _text(f.get("message"))}
    retries = list(map(_get, chunk, repeat("retry_of", n)))
    if retries.count(None) != n:
        for k in compress(range(n), map(operator.is_not, retries, repeat(None))):
            retries[k] = _int(retries[k])
    got = list(map(_get, chunk, repeat("recovers", n)))
    recovers = [[]] * n  # one empty list for every row without (the export only reads them; step_rows copies)
    for k in compress(range(n), got):
        recovers[k] = [i for i in got[k] if _int(i) is not None]
    (c_step, c_thought, c_action, c_call, c_obs, c_values, c_reward, c_term, c_trunc, c_time, c_dur, c_failure,
     c_retry, c_recovers) = [c.extend for c in cols]
    c_step(steps)
    c_thought(thoughts)
    c_action(actions)
    c_call(structs)
    c_obs(obs)
    c_values(repeat(None, n))
    c_reward(rewards)
    c_term(map(bool, terms))
    c_trunc(map(bool, truncs))
    # round(t * 1_000_000) of each (finite, within _TIME_MAX): numpy's product and round-half-to-even are the same
    # double operations, and the microseconds fit an int64.
    c_time(np.rint(np.array(times, dtype=np.float64) * _MICRO).astype(np.int64).tolist())
    c_dur(durations)
    c_failure(failures)
    c_retry(retries)
    c_recovers(recovers)
    found.extend(cands)
    if not candidates:  # no label or check on any step
        picked.extend(cands)
        return True
    for c in cands:
        if not c:
            picked.append(None)
            continue
        c = c[0]
        key = (c.judge, c.kind)
        won = wins.get(key)
        if won is None:
            won = wins[key] = prefer([c], None) is not None
        picked.append(c if won else None)
    return True


_STR = {str}
#: The fields every usual step has, in the order :func:`_usual_steps` unpacks them.
_FIELD_NAMES = ("i", "action", "observation", "note", "reward", "time", "duration", "terminated", "truncated")
_DICT = {dict}


def _general_steps(chunk: list[dict[str, Any]], steps_cols: list[list[Any]], picked: list[Any], found: list[Any],
                   thought: Any, candidates: dict[int, Any], calls: dict[str, Any], names: Any, text_tool: Any,
                   wins: dict[tuple[Any, Any], bool], prefer: Any) -> None:
    """The columns of ``chunk``'s steps, a step at a time: any step."""
    (c_step, c_thought, c_action, c_call, c_obs, c_values, c_reward, c_term, c_trunc, c_time, c_dur, c_failure,
     c_retry, c_recovers) = [c.append for c in steps_cols]
    c_picked, c_found = picked.append, found.append
    for rec in chunk:
        i = rec["i"]
        c_step(i)
        note = rec.get("note")
        t = note.get("thought") if type(note) is dict else None
        if t is None and note is not None:
            t = thought(rec)  # no thought noted: the model call's reply text, if any
        c_thought(t if t is None or type(t) is str else text_of(t))  # what view.thought(rec) gives
        action = rec.get("action")
        # None is null, not "": an empty action and no action stay two values (as in `records`).
        if type(action) is str:
            c_action(action)
            # A text action's call depends on its text only (names and text tool are the episode's): agents
            # repeat actions, and parsing the call and encoding its arguments was ~1 us a step.
            struct = calls.get(action, calls)
            if struct is calls:
                struct = _call_struct(calls, action, names, text_tool)
            c_call(struct)
        else:
            c_action(None if action is None else text_of(action))
            call = tool_call(action, names, text_tool)
            c_call({"name": call.name, "arguments": dumps(call.arguments)} if call is not None else None)
        obs = rec.get("observation")
        if type(obs) is str:
            c_obs(obs)
            c_values(None)
        else:
            c_obs(None if obs is None else text_of(obs))
            c_values(_numeric_array(obs, raw=True))
        x = rec.get("reward")
        c_reward(x if type(x) is float and x - x == 0.0 else _float(x))  # x - x: 0.0 when finite
        c_term(bool(rec.get("terminated")))
        c_trunc(bool(rec.get("truncated")))
        x = rec.get("time")
        c_time(round(x * 1_000_000) if type(x) is float and -_TIME_MAX < x < _TIME_MAX else _micros(x))
        x = rec.get("duration")
        c_dur(x if type(x) is float and x - x == 0.0 else _float(x))
        failure = rec.get("failure")
        c_failure({"kind": _text(failure.get("kind")), "message": _text(failure.get("message"))}
                  if failure else None)
        x = rec.get("retry_of")
        c_retry(None if x is None else _int(x))
        x = rec.get("recovers")
        c_recovers([k for k in x if _int(k) is not None] if x else [])
        cands = candidates.get(i)
        c_found(cands)
        if cands and len(cands) == 1:
            # Whether a step's only candidate wins depends on its judge and kind alone (no label map here).
            c = cands[0]
            key = (c.judge, c.kind)
            won = wins.get(key)
            if won is None:
                won = wins[key] = prefer(cands, None) is not None
            c_picked(c if won else None)
        else:
            c_picked(prefer(cands, None) if cands else None)


#: Text action -> its ``tool_call`` column value, per (tool names, text tool) of the episodes (read-only values,
#: shared by the rows that repeat an action); each map is emptied when it holds :data:`_CALLS_MAX` actions, so
#: actions of 1 KB hold ~2 MB at most (beside encode's own cache of parsed calls).
_CALLS: dict[tuple[Any, Any], dict[str, Any]] = {}
_CALLS_MAX = 1024


def _call_struct(calls: dict[Any, Any], action: Any, names: Any, text_tool: Any) -> dict[str, str] | None:
    """The ``tool_call`` column's value for a text action not in ``calls`` yet, remembered there (the cache is
    emptied when it holds :data:`_CALLS_MAX` actions): ``{"name", "arguments"}`` with the arguments as JSON text,
    or None when the action is no tool call."""
    if len(calls) >= _CALLS_MAX:
        calls.clear()
    call = tool_call(action, names, text_tool)
    struct = calls[action] = None if call is None else {"name": call.name, "arguments": dumps(call.arguments)}
    return struct


def _calls_of(names: frozenset[str] | None, text_tool: tuple[str, str] | None) -> dict[str, Any]:
    calls = _CALLS.get((names, text_tool))
    if calls is None:
        if len(_CALLS) >= 4:  # runs of envs with other tools: emptied now and then
            _CALLS.clear()
        calls = _CALLS[(names, text_tool)] = {}
    return calls


def _label_columns(picked: list[Any], found: list[Any], label_map: str, n: int) -> list[list[Any]]:
    """The columns ``label`` .. ``label_judges`` of an episode's steps, from each step's preferred label
    (``picked``, None where it has none) and candidates (``found``, None or empty where it has none)."""
    values: dict[tuple[type, Any], tuple[Any, ...]] = {}  # label value -> its columns (ratings repeat)
    if picked.count(None) == n:
        labels: list[list[Any]] = [[None] * n for _ in range(9)]
        labels += [[[] for _ in range(n)], [None] * n, [None] * n]
    elif set(map(type, picked)) == _ROW_TYPE:
        # Every step labeled, by labels (no recorded check): the columns a field at a time, in C loops where a
        # field is copied as it is; the same values as the loop below (tests/exports/test_parquet_label_columns.py).
        vals = list(map(_VALUE, picked))
        keys = list(zip(map(type, vals), vals))
        if _KEPT_TYPES.issuperset(map(_first, keys)):  # each distinct value's columns made once (ratings repeat)
            made = {key: _value_columns(key[1], label_map, values) for key in set(keys)}
            label, rated, category, value = map(list, zip(*map(made.__getitem__, keys)))
        else:
            label, rated, category, value = map(list, zip(*[_value_columns(v, label_map, values) for v in vals]))
        scores = list(map(_SCORE, picked))
        if scores.count(None) == n and not any(map(isinstance, vals, repeat(float))):
            score: list[Any] = [None] * n
        else:
            score = [_float(s) if s is not None else _float(v) if isinstance(v, float) else None
                     for s, v in zip(scores, vals)]
        tag_lists = list(map(_TAGS, picked))
        if set(map(type, tag_lists)) == {tuple} and set(map(type, chain.from_iterable(tag_lists))) <= {str}:
            # Tag tuples of text (equal ones give equal lists), each row its own list.
            tags = list(map(list, tag_lists))
        else:
            tags = [[str(t) for t in tg] if tg else [] for tg in tag_lists]
        labels = [label, rated, score, category, value, list(map(_JUDGE, picked)), list(map(_KIND, picked)),
                  ["label"] * n, list(map(_RATIONALE, picked)), tags, list(map(_AUTHOR, picked)),
                  list(map(_ID, picked))]
    else:
        labels = [[] for _ in range(12)]
        (c_label, c_rating, c_score, c_category, c_value, c_judge, c_kind, c_origin, c_rationale, c_tags, c_author,
         c_id) = [c.append for c in labels]
        for chosen in picked:
            if chosen is None:
                for add in (c_label, c_rating, c_score, c_category, c_value, c_judge, c_kind, c_origin,
                            c_rationale, c_author, c_id):
                    add(None)
                c_tags([])
                continue
            value = chosen.value
            got = _value_columns(value, label_map, values)
            score = chosen.score if chosen.score is not None else (value if isinstance(value, float) else None)
            c_label(got[0])
            c_rating(got[1])
            c_score(None if score is None else _float(score))
            c_category(got[2])
            c_value(got[3])
            c_judge(chosen.judge)
            c_kind(chosen.kind)
            c_origin(origin(chosen))
            # A recorded check's rationale, author and id are whatever the env gave (a label's are text): as text,
            # as the string columns need (a numpy array there stopped the export with pyarrow's ArrowTypeError).
            c_rationale(_text(chosen.rationale))
            tags = chosen.tags
            c_tags([str(t) for t in tags] if tags else [])
            c_author(_text(chosen.author))
            c_id(_text(chosen.id))
    counts: list[int] = []
    judges: list[list[str]] = []
    c_n, c_judges = counts.append, judges.append
    if picked.count(None) == 0 and set(map(len, found)) == {1}:  # every step one candidate (and it won)
        return [*labels, [1] * n, [[c.judge] for c, in found]]
    for cands in found:
        if not cands:
            c_n(0)
            c_judges([])
        elif len(cands) == 1:
            c_n(1)
            c_judges([cands[0].judge])
        else:
            c_n(len(cands))
            c_judges(sorted({c.judge for c in cands}))
    return [*labels, counts, judges]


#: Whether :func:`_line_label_columns` is tried (tests turn it off to compare it with the candidates' path).
_FAST_LABELS = [True]


def _usual_lines(view: EpisodeView) -> LabelLines | None:
    """The episode's label lines read as text (:class:`~trajrec.replay.label_join.LabelLines`) when its label
    columns can be made from them (:func:`_line_label_columns`): no two labels on one step and no recorded check on
    a step (each step then has at most one candidate, a label); else None (the candidates' path)."""
    lines = view.joined.lines
    if lines is None or not _FAST_LABELS[0]:
        return None
    targets = lines.targets
    steps = [t for t in targets if type(t) is int] if "episode" in targets else targets
    if set(map(type, steps)) - _INT or len(set(steps)) != len(steps):
        return None
    if any(type(c.target) is int for c in view.ep.checks):  # (candidates_by_step's test)
        return None
    return lines


_INT = {int}


#: (label map, preference tokens) -> middle text -> its columns (:func:`_line_label_columns`).
_MADE: dict[tuple[Any, Any], dict[str, tuple[Any, ...]]] = {}
_NO_LABEL = (None, None, None, None, None, None, None, None, None, [], None)


def _line_label_columns(lines: LabelLines, steps: list[int], label_map: str, wins: dict[tuple[Any, Any], bool],
                        prefer: Any, *, few: bool = False) -> list[Any]:
    """The columns ``label`` .. ``label_judges`` of an episode's steps (``steps``: their indexes) from its label
    lines (:func:`_usual_lines`: a label a step at most, no check on a step): each distinct middle text's columns
    made once (the same values :func:`_label_columns` makes from the steps' candidates, its only candidate each:
    ``tests/exports/test_parquet_line_labels.py``), then spread over the steps in C loops; ``few``: the columns
    but ``label_id`` as :class:`Coded` (each distinct text's values and each step's index among them)."""
    fields = lines.fields
    values: dict[tuple[type, Any], tuple[Any, ...]] = {}
    made: dict[str, tuple[Any, ...]] = {}  # middle text -> (label columns but the id, won, [judge])
    # The list values (tags, judges) are shared by the rows of one middle text: the export only reads them, and
    # step_rows gives each row its own.
    no_label = _NO_LABEL
    # A middle text's columns depend on the text, the label map and the preference alone: kept across episodes
    # (a run's labels repeat a few texts), for texts of at most 1,024 characters, 4,096 texts at most.
    # (prefer: a Preference's bound choose, whose answers its tokens decide; another callable: nothing kept.)
    tokens = getattr(getattr(prefer, "__self__", None), "tokens", None)
    known = _MADE.get((label_map, tokens)) if tokens is not None else {}
    if known is None:
        if len(_MADE) >= 4:
            _MADE.clear()
        known = _MADE[(label_map, tokens)] = {}
    elif len(known) >= 4096:
        known.clear()
    for mid, (kind, judge, value, score, rationale, tags, author, deleted) in fields.items():
        got = known.get(mid)
        if got is not None:
            made[mid] = got
            continue
        key = (judge, kind)
        won = wins.get(key)
        if won is None:
            row = LabelRow(lines.episode_id, 0, kind, judge, value, score, rationale, tags, author, None, None, "",
                           deleted)
            won = wins[key] = prefer([row], None) is not None
        if won:
            label, rated, category, text = _value_columns(value, label_map, values)
            if score is not None:
                score = _float(score)
            elif isinstance(value, float):
                score = _float(value)
            cols = (label, rated, score, category, text, judge, kind, "label", _text(rationale),
                    [str(t) for t in tags] if tags else [], _text(author))
        else:
            cols = no_label
        made[mid] = got = (cols, won, [judge])
        if len(mid) <= 1024:
            known[mid] = got
    n_lines = len(lines.ids)
    if few and _FEW[0]:
        # Each distinct text's values once, the steps' indexes among them (the last entry: no label).
        texts = list(made)
        index = dict(zip(texts, range(len(texts))))
        distinct = [*map(made.__getitem__, texts)]
        n = len(steps)
        first = n_lines - n  # (the episode's own labels come first)
        if first >= 0 and lines.targets[first:] == steps:  # a label a step, in the steps' order (a labeler's)
            mids = lines.mids[first:]
            codes = np.fromiter(map(index.__getitem__, mids), dtype=np.int64, count=n)
            ids = list(lines.ids[first:]) if all(map(_second, distinct)) else [
                *map(_id_if_won, lines.ids[first:], map(made.__getitem__, mids))]
        else:  # each step's line (or the entry past the lines: no label)
            per_line = list(map(made.__getitem__, lines.mids))
            at = dict(zip(lines.targets, range(n_lines)))
            place = list(map(at.get, steps, repeat(n_lines)))
            codes = np.array([*map(index.__getitem__, lines.mids), len(texts)], dtype=np.int64)[
                np.array(place, dtype=np.int64)]
            every = [*map(_id_if_won, lines.ids, per_line), None]
            ids = list(map(every.__getitem__, place))
        cols = _coded_labels(texts, distinct, codes, (label_map, tokens) if tokens is not None else None)
        return [*cols[:11], ids, *cols[11:]]
    per_line = list(map(made.__getitem__, lines.mids))
    # Each step's line (or the entry past the lines: no label), then its columns.
    at = dict(zip(lines.targets, range(n_lines)))
    place = list(map(at.get, steps, repeat(n_lines)))
    cols = [*map(_first, per_line), no_label]
    ids = [*map(_id_if_won, lines.ids, per_line), None]
    judges = [*map(_third, per_line), []]
    labels = [list(col) for col in zip(*map(cols.__getitem__, place))] if steps else [[] for _ in range(11)]
    counts = [*repeat(1, n_lines), 0]
    return [*labels, list(map(ids.__getitem__, place)), list(map(counts.__getitem__, place)),
            list(map(judges.__getitem__, place))]


def _distinct(values: list[Any]) -> tuple[list[Any], Any]:
    """``(entries, remap)``: ``values`` with equal text values (or equal lists of text) made one entry, and each
    value's entry (an int64 array; None: each value its own): rows of one value then come in runs, which
    :func:`.arrow_build.coded` copies a run at a time. Other values (numbers: taken by numpy whatever their
    count) are kept as they are."""
    last = len(values) - 1
    one = values[0] if last > 1 else None
    if ((type(one) is str or type(one) is list and set(map(type, one)) <= _STR) and values.count(one) == last
            and values[last] != one):
        # One text (or list of text) for every label text (a judge, a kind), then the no-label entry (None or an
        # empty list) that differs: two entries. (Only text equals text, so equal values are the same value.)
        remap = np.zeros(last + 1, dtype=np.int64)
        remap[last] = 1
        return [one, values[last]], remap
    types = set(map(type, values))
    if types <= _TEXT_OR_NONE:
        keys: list[Any] = values  # (text and None: equal only when the same value)
    elif types <= _LIST_OR_NONE and set(map(type, chain.from_iterable(filter(None, values)))) <= _STR:
        keys = [None if v is None else tuple(v) for v in values]
    else:
        return values, None
    index = dict.fromkeys(keys)
    if len(index) == len(keys):
        return values, None
    firsts = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1)))  # each key -> the first row holding it
    for k, key in enumerate(index):
        index[key] = k
    remap = np.fromiter(map(index.__getitem__, keys), dtype=np.int64, count=len(keys))
    return list(map(values.__getitem__, map(firsts.__getitem__, index))), remap


def _coded_labels(texts: list[str], distinct: list[tuple[Any, ...]], codes: Any, key: Any) -> list[Coded]:
    """The label columns but ``label_id`` as :class:`Coded` (the values of each distinct text, made one entry
    where equal: :func:`_distinct`; ``codes``: each step's text). ``key``: what decides the texts' columns (label
    map, preference), or None: the entries of a set of texts are kept for the next episode with the same texts
    (a run's episodes repeat their texts: the same judge, the same rationales)."""
    cache_key = (key, tuple(texts)) if key is not None else None
    made = _ENTRIES.get(cache_key) if cache_key is not None else None
    if made is None:
        columns = [*zip(*map(_first, distinct), _NO_LABEL), (*repeat(1, len(texts)), 0),
                   (*map(_third, distinct), [])]
        made = [_distinct(list(v)) if k in _TEXT_LABELS else (list(v), None) for k, v in enumerate(columns)]
        if cache_key is not None:
            if len(_ENTRIES) >= 64:  # (each holds its texts: ~100 KB for 1,000 distinct texts)
                _ENTRIES.clear()
            _ENTRIES[cache_key] = made
    # (Entries shared by the episodes' columns: Coded never changes its values in place.)
    return [Coded(entries, codes if remap is None else remap[codes]) for entries, remap in made]


#: (label map, preference, the texts of an episode's labels) -> :func:`_coded_labels`' entries of each column.
_ENTRIES: dict[Any, list[tuple[list[Any], Any]]] = {}

_TEXT_OR_NONE = frozenset({str, type(None)})
_LIST_OR_NONE = frozenset({list, type(None)})
#: The columns of :func:`_coded_labels` (``label`` .. ``label_author``, ``n_labels``, ``label_judges``) that hold
#: text or lists of text.
_TEXT_LABELS = frozenset([*(COLUMNS.index(c) - COLUMNS.index("label") for c in (
    "label_category", "label_value", "label_judge", "label_kind", "label_origin", "label_rationale", "label_tags",
    "label_author")), 12])


def _id_if_won(label_id: str, made: tuple[Any, ...]) -> str | None:
    return label_id if made[1] else None


_second = operator.itemgetter(1)
_third = operator.itemgetter(2)


_ROW_TYPE = {LabelRow}
_KEPT_TYPES = frozenset({int, bool, str})  # values whose (type, value) keys tell their columns apart
_first = operator.itemgetter(0)
_VALUE, _SCORE, _TAGS, _JUDGE, _KIND, _RATIONALE, _AUTHOR, _ID = map(
    operator.attrgetter, ("value", "score", "tags", "judge", "kind", "rationale", "author", "id"))


def _value_columns(value: Any, label_map: str, values: dict[tuple[type, Any], tuple[Any, ...]]) -> tuple[Any, ...]:
    """``(label, label_rating, label_category, label_value)`` of a chosen label's value (``values``: those made so
    far, by value)."""
    key = (type(value), value)
    # Only exact ints, bools and text are kept: 0.0 == -0.0 (dumped apart), and other values need not hash.
    got = values.get(key) if key[0] in (int, bool, str) else None
    if got is None:
        mapped = map_label(value, label_map)
        # A NaN or infinite value is no label (map_label), no score (_float), so no rating either: its sign would
        # have rated +inf as +1 beside a null label.
        rated = None if type(value) is float and not math.isfinite(value) else rating(value)
        got = (None if mapped is None else float(mapped), rated, _category(value), dumps(value))
        if key[0] in (int, bool, str):
            values[key] = got
    return got


def step_rows(view: EpisodeView) -> Iterator[tuple[Any, ...]]:
    """One tuple per step of ``view``, in :data:`COLUMNS` order: the rows of the parquet export and of
    :meth:`trajrec.Run.to_arrow` (:func:`episode_columns`, row by row)."""
    head, cols = episode_columns(view)
    cols[_VALUES] = [v if v is None or v.dtype == np.float64 else v.astype(np.float64) for v in cols[_VALUES]]
    # Rows that repeat an action share its tool_call value, and rows share lists (read-only in the export): each
    # row its own here.
    cols[_CALL] = [v if v is None else dict(v) for v in cols[_CALL]]
    for k in _LISTS:
        cols[k] = list(map(list, cols[k]))
    for tail in zip(*cols):
        yield head + tail


def _text(v: Any) -> str | None:
    return v if v is None or isinstance(v, str) else text_of(v)


class _Rows:
    """Rows of one partition not yet in a row group: the episodes' heads with their row counts, and the other
    columns a value a row."""

    __slots__ = ("heads", "counts", "cols", "n", "held")

    def __init__(self) -> None:
        self.heads: list[tuple[Any, ...]] = []
        self.counts: list[int] = []
        self.cols: list[list[Any]] = [[] for _ in COLUMNS[HEAD:]]
        self.n = 0
        #: About how many bytes of values the rows hold (their text and numeric observations): a guide for when to
        #: make them Arrow arrays, no part of where row groups end.
        self.held = 0

    def add(self, head: tuple[Any, ...], cols: list[Any], n: int) -> None:
        self.heads.append(head)
        self.counts.append(n)
        mine_cols = self.cols
        for k, more in enumerate(cols):
            mine = mine_cols[k]
            if type(more) is Coded:
                if type(mine) is Coded:
                    mine_cols[k] = mine.join(more)
                elif not mine:
                    mine_cols[k] = Coded(more.values, more.codes)
                else:
                    mine.extend(more.tolist())
            elif type(mine) is Coded:
                mine_cols[k] = [*mine.tolist(), *more]
            else:
                mine.extend(more)
        self.n += n
        for k in _WIDE_TEXT:
            self.held += sum(map(len, filter(None, cols[k])))
        values = cols[_VALUES]
        if any(map(operator.is_not, values, repeat(None))):  # numpy arrays (list.count(None) would compare them)
            self.held += 8 * sum(v.size for v in values if v is not None)  # float64 in the column

    def take(self, k: int) -> _Rows:
        """The first ``k`` rows, removed from these."""
        out = _Rows()
        if k >= self.n:
            out.heads, out.counts, out.cols, out.n = self.heads, self.counts, self.cols, self.n
            self.heads, self.counts, self.cols, self.n = [], [], [[] for _ in COLUMNS[HEAD:]], 0
            return out
        have = 0
        for e, c in enumerate(self.counts):
            if have + c >= k:
                break
            have += c
        # Episodes 0..e-1 whole, then k - have rows of episode e (which keeps the rest).
        out.heads = self.heads[:e + 1]
        out.counts = self.counts[:e] + [k - have]
        rest = have + c - k
        self.heads = self.heads[e:] if rest else self.heads[e + 1:]
        self.counts = ([rest] if rest else []) + self.counts[e + 1:]
        out.cols = [col[:k] for col in self.cols]
        for col in self.cols:
            del col[:k]
        self.held = self.held * (self.n - k) // self.n
        out.n, self.n = k, self.n - k
        return out


#: The columns (indexes into a :class:`_Rows`' ``cols``) that :attr:`_Rows.held` counts.
_WIDE_TEXT = [COLUMNS.index(c) - HEAD for c in ("thought", "action", "observation")]
_VALUES = COLUMNS.index("observation_values") - HEAD
_CALL = COLUMNS.index("tool_call") - HEAD
_LISTS = [COLUMNS.index(c) - HEAD for c in ("recovers", "label_tags", "label_judges")]


class _Group:
    """The row group being filled in one partition: its record batches so far, each :data:`_CHUNK` rows or
    :data:`_CHUNK_BYTES` of values (the layout that makes the writer's pages: the same rows give the same batches
    however they came), the pieces of the batch being made, and how many rows and bytes of values
    (:func:`.arrow_build.value_bytes`) the group and that batch hold."""

    __slots__ = ("batches", "n", "bytes", "pieces", "piece_rows", "piece_bytes")

    def __init__(self) -> None:
        self.batches: list[Any] = []
        self.n = 0
        self.bytes = 0
        self.pieces: list[Any] = []
        self.piece_rows = 0
        self.piece_bytes = 0


def _cut(pa: Any, batch: Any, rows: int, size: int, max_rows: int, max_bytes: int,
         known: int | None = None) -> tuple[int, int, bool]:
    """``(take, bytes, ends)``: how many of ``batch``'s first rows a run holding ``rows`` rows and ``size`` bytes
    of values takes, the bytes of those rows, and whether the run ends with them: at ``max_rows`` rows, or with the
    row that brings it to ``max_bytes``. ``known``: the bytes of the whole batch, when the caller has them."""
    take = min(max_rows - rows, batch.num_rows)
    whole = take == batch.num_rows
    got = known if whole and known is not None else value_bytes(pa, batch if whole else batch.slice(0, take))
    if size + got < max_bytes:
        return take, got, rows + take >= max_rows
    upto = np.cumsum(row_bytes(pa, batch.slice(0, take)))
    last = int(np.searchsorted(upto, max_bytes - size))  # the first row that brings the run to max_bytes
    return last + 1, int(upto[last]), True


#: The longest partition folder name kept as it is, in bytes (NAME_MAX of Linux, macOS and Windows file systems).
_NAME_MAX = 255


def _fold(name: str) -> str:
    """What file systems may take for the same folder name as ``name``: case-insensitive ones (macOS and Windows
    defaults) fold case, macOS normalizes Unicode, Windows drops trailing spaces and dots."""
    return unicodedata.normalize("NFC", name).casefold().rstrip(" .")


def folder_name(col: str, key: str | None, taken: set[str]) -> str:
    """The folder of the partition ``key`` (a split or env id; None: episodes without one) in an export whose
    folders so far fold (:func:`_fold`) to ``taken``, which gets the new one: ``col=value`` with ``/`` (and ``::``,
    which ``datasets`` reads as a URL chain) as ``_``, episodes without a value in ``col=__none__``. A name that
    another key took (compared as file systems do: :func:`_fold`), or that a file name cannot hold (NUL, a lone
    surrogate, longer than 255 bytes), gets ``-`` and 12 hex digits of the SHA-256 of the raw value (its first 64
    characters kept): so two different keys never share a folder, and a key's folder depends only on the keys
    before it.

    >>> taken = set()
    >>> folder_name("split", "a/b", taken), folder_name("split", "a_b", taken), folder_name("split", None, taken)
    ('split=a_b', 'split=a_b-648fa9b31bc7', 'split=__none__')
    """
    raw = b"\xff" if key is None else key.encode("utf-8", "surrogatepass")  # 0xff: never in a value's UTF-8
    value = "__none__" if key is None else key.replace("/", "_").replace("::", "__")
    clean = "".join("_" if c == "\0" or "\ud800" <= c <= "\udfff" else c for c in value)
    name = f"{col}={clean}"
    import hashlib  # here: loading OpenSSL's hashes costs ~3.5 MB, and only partition folders use it

    digest = hashlib.sha256(raw).hexdigest()
    if clean != value or len(name.encode("utf-8")) > _NAME_MAX or _fold(name) in taken:
        for size in (12, 24, 64):
            name = f"{col}={clean[:64]}-{digest[:size]}"
            if _fold(name) not in taken:
                break
        n = 1
        while _fold(name) in taken:  # only a value spelling another's hashed name: a counter makes it unique
            name, n = f"{col}={clean[:64]}-{digest}-{n}", n + 1
    taken.add(_fold(name))
    return name


def is_folder_output(out: str | os.PathLike[str]) -> bool:
    """``--out`` names a folder: an existing one, one ending in ``/``, or a name without ``.parquet``."""
    text = os.fspath(out)
    return text != "-" and (Path(text).is_dir() or text.endswith(("/", os.sep)) or not text.endswith(".parquet"))


class ParquetFormat(Format):
    name = "parquet"
    binary = True
    splices_label_times = False  # (no label time column: the label lines' times need not be their own reprs)

    def __init__(self, out: str | os.PathLike[str] | None, options: ExportOptions, *,
                 meta: dict[str, str] | None = None) -> None:
        super().__init__(out, options)  # type: ignore[arg-type]
        steady_allocator()
        self._pa = pyarrow_module()
        # Arrow's default pool (mimalloc) keeps what a row group freed; the system allocator gives it back.
        self._pool = self._pa.system_memory_pool()
        self._schema = schema().with_metadata(meta or metadata(options))
        self.files: list[Path] = []
        # One open writer per partition; a shard closes after shard_rows rows.
        self._writers: dict[str | None, tuple[Any, int, int]] = {}  # key -> (writer, shard number, rows in shard)
        self._shards: dict[str | None, int] = {}
        self._rows: dict[str | None, _Rows] = {}  # key -> rows not yet Arrow arrays
        self._groups: dict[str | None, _Group] = {}  # key -> the row group being filled
        self._kinds = [kind_of(self._pa, f.type) for f in self._schema]
        self._encoded: dict[str | None, list[Any]] | None = None  # encode-only: key -> record batches made
        #: ``--partition-by``: each key (the split or env id; None: episodes without one) -> its folder name, in
        #: the order the keys came (:func:`folder_name`; the dataset card names these folders).
        self.partitions: dict[str | None, str] = {}
        self._taken: set[str] = set()  # the folder names given, folded as file systems may fold them
        self._part_index = COLUMNS.index({"split": "split", "env": "env_id", None: "split"}[options.partition_by])
        if out is None:  # encode only (a worker of a parallel export): tables, no file
            self.folder = options.partition_by is not None
            self._encoded = {}
            return
        self.folder = is_folder_output(out)
        if self.folder:
            self._final = Path(out)
            check_output_folder(self._final, "part-NNNNN.parquet shards and a dataset card README.md; or pass "
                                             "--out FILE.parquet")
            self._root = new_temp_folder(self._final)
        else:
            if options.partition_by is not None:
                raise TrajrecUsageError(f"--partition-by writes subfolders: pass --out DIR, not the file {out}")
            path, tmp = open_output(out)
            if tmp is None:
                raise TrajrecUsageError("parquet is a binary format; pass --out FILE.parquet or --out DIR, not -")
            self._final, self._root = path, tmp  # type: ignore[assignment]
            # Created now, O_EXCL and O_NOFOLLOW: the writer opens our own new file, never a planted link.
            if tmp != path:  # (a device or pipe is written in place: base.writes_in_place)
                open_new_binary(tmp).close()

    def set_context(self, *, where: Any = (), sources: Any = ()) -> None:
        self._schema = self._schema.with_metadata(metadata(self.options, where=where, sources=sources))

    def _key(self, head: tuple[Any, ...]) -> str | None:
        if not self.folder or self.options.partition_by is None:
            return None
        v = head[self._part_index]  # split and env id are the episode's: one key for all its rows
        return str(v) if v is not None else None

    def write(self, view: EpisodeView) -> tuple[int, int]:
        # The episode's columns first, then the batch: a file found damaged mid-episode adds none of its rows.
        head, cols = episode_columns(view, few=True)
        n = len(cols[0])
        if not n:  # no row: not written, and left out as every format leaves an episode with no step out
            raise Skip(NO_STEP)
        key = self._key(head)
        rows = self._rows.get(key)
        if rows is None:
            rows = self._rows[key] = _Rows()
            self._folder(key)  # named as keys first come, as write_encoded does: the same names with --workers
        rows.add(head, cols, n)
        del cols  # rows holds the values now: each column's go as its Arrow array is made (wide rows: MBs a column)
        self._convert(key, rows)
        return n, n

    def _convert(self, key: str | None, rows: _Rows, *, final: bool = False) -> None:
        """Rows held as Python values made Arrow arrays of the partition's row group: the rows up to the group's end
        (at most :data:`_CONVERT`), sooner when they hold :data:`_HELD_BYTES`, all of them when ``final``. They are
        cut into the group's record batches by :meth:`_add` (slices, no copy)."""
        while rows.n:
            group = self._group(key)
            want = min(_CONVERT - group.piece_rows, self._limit(key) - group.n)
            if rows.n < want and rows.held < _HELD_BYTES and not final:
                return
            self._add(key, self._batch(rows.take(min(rows.n, want))))

    def _room(self, key: str | None) -> int:
        if not self.folder or self._encoded is not None:
            return _BATCH
        w = self._writers.get(key)
        return self.options.shard_rows - (w[2] if w else 0)

    def _limit(self, key: str | None) -> int:
        """The most rows the partition's row group may hold: :data:`_BATCH`, or fewer where its shard ends."""
        return min(_BATCH, self._room(key))

    def _group(self, key: str | None) -> _Group:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        return group

    def _add(self, key: str | None, batch: Any) -> None:
        """Rows (an Arrow record batch of the schema) appended to the partition's row group, which is written
        where it ends, as rows added one at a time would end it: at :data:`_BATCH` rows, where its shard ends,
        or with the row that brings its values to :data:`_GROUP_BYTES` (encode only: kept for
        :meth:`take_encoded`, whose rows the writing process cuts)."""
        if self._encoded is not None:
            if batch.num_rows:
                self._encoded.setdefault(key, []).append(batch)
            return
        pa = self._pa
        while batch.num_rows:
            group = self._group(key)
            take, size, ends = _cut(pa, batch, group.n, group.bytes, self._limit(key), _GROUP_BYTES)
            self._push(group, batch if take == batch.num_rows else batch.slice(0, take), size)
            group.n += take
            group.bytes += size
            batch = batch.slice(take)
            if ends:
                self._end_group(key)

    def _push(self, group: _Group, part: Any, size: int) -> None:
        """``part`` (rows holding ``size`` bytes of values) appended to ``group``'s batches: pieces are joined
        into a batch where it ends (:data:`_CHUNK` rows or :data:`_CHUNK_BYTES`), so no more than a batch of rows
        is held twice."""
        pa = self._pa
        while part.num_rows:
            take, got, ends = _cut(pa, part, group.piece_rows, group.piece_bytes, _CHUNK, _CHUNK_BYTES, size)
            group.pieces.append(part if take == part.num_rows else part.slice(0, take))
            group.piece_rows += take
            group.piece_bytes += got
            part, size = part.slice(take), size - got
            if ends:
                self._end_batch(group)

    def _end_batch(self, group: _Group) -> None:
        pieces = group.pieces
        if len(pieces) > 1:  # copied into one batch, as one process makes it (a single piece: as it is)
            pieces = self._pa.Table.from_batches(pieces, schema=self._schema).combine_chunks(
                memory_pool=self._pool).to_batches()
        group.batches.extend(pieces)
        group.pieces, group.piece_rows, group.piece_bytes = [], 0, 0

    def _end_group(self, key: str | None) -> None:
        """The partition's row group written as it stands (nothing when it holds no row)."""
        group = self._groups.pop(key, None)
        if group is None or not group.n:
            return
        if group.pieces:
            self._end_batch(group)
        table = self._pa.Table.from_batches(group.batches, schema=self._schema)
        del group
        self._emit(key, table)

    def take_encoded(self) -> list[tuple[str | None, bytes]]:
        """Encode-only mode: the rows written since the last call, as ``(partition key, Arrow IPC stream)``
        pairs in the order the keys first came (plain bytes, for the process that writes the files)."""
        assert self._encoded is not None
        for key, rows in self._rows.items():
            self._convert(key, rows, final=True)
        out = []
        # In the order the keys first came in this batch (a key's row group may be made before an earlier key's):
        # the writing process names their folders in that order (write_encoded), as one process would.
        for key in [k for k in self._rows if k in self._encoded]:
            batches = self._encoded[key]
            sink = self._pa.BufferOutputStream()
            # zstd-compressed: the exporting process holds the results that came in until their turn (a
            # tool env's rows shrink ~10x)
            options = self._pa.ipc.IpcWriteOptions(compression="zstd")
            with self._pa.ipc.new_stream(sink, self._schema, options=options) as ipc:
                for batch in batches:
                    ipc.write_batch(batch)
            out.append((key, sink.getvalue().to_pybytes()))
        self._encoded = {}
        self._rows = {}
        return out

    def write_encoded(self, key: str | None, data: bytes) -> int:
        """Write rows :meth:`take_encoded` made (in another process): cut into row groups and shards where the
        same rows written here would be, so the files are the same. Returns the rows."""
        self._folder(key)
        held = self._rows.get(key)
        if held is not None:  # rows this process added before (not done by export): theirs come first
            self._convert(key, held, final=True)
        rows = 0
        # Batch by batch as the stream is read: one batch decoded at a time beside the row group.
        for batch in self._pa.ipc.open_stream(self._pa.py_buffer(data)):
            rows += batch.num_rows
            self._add(key, batch)
        return rows

    def _folder(self, key: str | None) -> str | None:
        """The folder name of partition ``key`` (None when the export is not partitioned), given on first use."""
        if not self.folder or self.options.partition_by is None or self._encoded is not None:
            return None
        name = self.partitions.get(key)
        if name is None:
            name = self.partitions[key] = folder_name(self.options.partition_by, key, self._taken)
        return name

    def _path_for(self, key: str | None, shard: int) -> Path:
        if not self.folder:
            return self._root
        sub = self._root
        name = self._folder(key)
        if name is not None:
            sub = sub / name
            try:
                sub.mkdir(exist_ok=True)
            except (OSError, ValueError) as exc:
                raise TrajrecIOError(f"cannot create the partition folder {sub}: {exc}") from exc
        return sub / f"part-{shard:05d}.parquet"

    def _batch(self, rows: _Rows) -> Any:
        """The rows as an Arrow record batch of the schema (:mod:`.arrow_build`: no ``pa.array``, so no
        pandas)."""
        pa, fields, kinds = self._pa, list(self._schema), self._kinds
        values = [list(col) for col in zip(*rows.heads)] if rows.heads else [[] for _ in range(HEAD)]
        arrays = [build(pa, fields[k].type, values[k], rows.counts, kind=kinds[k]) for k in range(HEAD)]
        cols = rows.cols
        for k in range(len(cols)):
            typ = fields[HEAD + k].type
            if type(cols[k]) is Coded:
                arrays.append(coded(pa, typ, cols[k].values, cols[k].codes, kind=kinds[HEAD + k]))
            elif k == _VALUES and any(map(operator.is_not, cols[k], repeat(None))):
                try:  # numeric observations in their own dtype: each number as astype(np.float64) makes it
                    arrays.append(float_lists(pa, typ, cols[k]))
                except ValueError:
                    arrays.append(build(pa, typ, [v if v is None or v.dtype == np.float64 else v.astype(np.float64)
                                                  for v in cols[k]], kind=kinds[HEAD + k]))
            else:
                arrays.append(build(pa, typ, cols[k], kind=kinds[HEAD + k]))
            cols[k] = []  # the Python values go as their array comes: both whole at once cost ~1.2 KB a row more
        return pa.RecordBatch.from_arrays(arrays, schema=self._schema)

    def _emit(self, key: str | None, table: Any) -> None:
        while table.num_rows:
            w = self._writers.get(key)
            if w is None:
                shard = self._shards.get(key, 0)
                path = self._path_for(key, shard)
                try:
                    writer = open_writer(str(path), self._schema, self._pool)
                except OSError as exc:
                    raise TrajrecIOError(f"cannot write {path}: {exc}") from exc
                self.files.append(path)
                self._shards[key] = shard + 1
                w = (writer, shard, 0)
            writer, shard, have = w
            room = self.options.shard_rows - have if self.folder else table.num_rows
            part, table = table.slice(0, room), table.slice(room)
            with _writing(lambda: self._path_for(key, shard)):
                writer.write_table(part)
            have += part.num_rows
            if self.folder and have >= self.options.shard_rows:
                self._writers.pop(key, None)
                with _writing(lambda: self._path_for(key, shard)):
                    writer.close()
            else:
                self._writers[key] = (writer, shard, have)

    def close(self) -> None:
        if self._encoded is not None:
            return
        for key, rows in self._rows.items():
            self._convert(key, rows, final=True)
        for key in list(self._groups):
            self._end_group(key)
        if not self.files:  # nothing written: still a readable file (or shard) with the schema
            path = self._root / "part-00000.parquet" if self.folder else self._root
            empty = self._pa.Table.from_batches([self._batch(_Rows())], schema=self._schema)
            try:
                writer = open_writer(str(path), self._schema, self._pool)
            except OSError as exc:
                raise TrajrecIOError(f"cannot write {path}: {exc}") from exc
            with _writing(lambda: path):
                writer.write_table(empty)
                writer.close()
            self.files.append(path)
        for key, (writer, shard, _) in list(self._writers.items()):
            del self._writers[key]
            with _writing(lambda: self._path_for(key, shard)):
                writer.close()
        try:
            if self.folder and self._final.exists():
                self._final.rmdir()  # empty (checked at the start)
            if self._root != self._final:
                os.replace(self._root, self._final)
        except OSError as exc:
            raise TrajrecIOError(f"cannot finish {self._final}: {exc.strerror}") from exc
        self.files = [self._final / p.relative_to(self._root) for p in self.files] if self.folder else [self._final]

    def abort(self) -> None:
        if self._encoded is not None:
            return
        for writer, _, _ in self._writers.values():
            with suppress(OSError):  # already failing; the partial output is removed below
                writer.close()
        if self.folder:
            shutil.rmtree(self._root, ignore_errors=True)
        elif self._root != self._final and self._root.exists():
            os.unlink(self._root)
