"""Labels joined to episodes one at a time, for exports over runs with more labels than fit comfortably in memory.

:class:`EpisodeLabelIndex` reads a run folder's labels files as :class:`~.label_store.LabelStore` does (torn
last lines, lines that are not JSON objects: the same warnings) but keeps only where each label's line is, per
episode id: 24 bytes a label instead of a few hundred. A line that is JSON with an episode id but not a valid
label is warned about when its episode is read. :meth:`EpisodeLabelIndex.current` reads one episode's lines again and resolves its
edit chains with a :class:`LabelStore` of just those versions. Edits keep a label's episode (``LabelStore.update``
cannot change it), so each chain usually lies within one episode and the answer is the full store's. Lines other
tools write need not keep to that: an edit or tombstone written with another episode's id, or one id given in two
episodes (the first copy read wins, whatever its episode). While reading, the index keeps a 64-bit hash of each
line's id and the ids that lines supersede (with the superseding line's episode); an episode such a case touches
is answered by a :class:`LabelStore` of the whole folder, read once when first needed, so every answer is the one
``LabelStore(run).current(episode_id)`` gives (EXPORT.md: the exports give what ``open_run().to_arrow()`` gives).
A line's episode id is read as text from its head only when the line cannot give the key twice (one
``"episode_id"`` text, no escaped key); other lines are decoded, so ``json.loads`` (the last key wins) decides.

>>> import tempfile
>>> run = tempfile.mkdtemp()
>>> store = LabelStore(run)
>>> first = store.add("ep-1", 0, 1, judge="human:ana")
>>> _ = store.update(first.id, value=-1)
>>> _ = store.add("ep-2", "episode", True, judge="human:bo")
>>> store.close()
>>> index = EpisodeLabelIndex(run)
>>> [lab.value for lab in index.current("ep-1")], [lab.value for lab in index.current("ep-2")]
([-1], [True])
"""

from __future__ import annotations

import json
import math
import mmap
import os
import re
import sys
from array import array
from collections import Counter
from itertools import compress, islice, repeat
from operator import is_ as _is, itemgetter, le as _le, lt as _lt
from pathlib import Path
from typing import Any, Iterator

from trajrec.recorder.errors import TrajrecIOError, TrajrecUsageError

from .label_model import _KNOWN, Label, LabelRow, _new_row, usual_rows
from .label_store import LabelStore, _order, decode_lines, newest_per_person

__all__ = ["EpisodeLabelIndex", "EpisodeLabelWriter", "EpisodeLabels", "LabelLines", "read_lines"]

#: The start of a line as :class:`LabelStore` writes it: ``{"v":1,"id":"...","episode_id":"...`` (group 1: the
#: episode id's bytes, when they hold no escape).
_HEAD = re.compile(rb'\{"v":1,"id":"[^"\\]*","episode_id":"([^"\\]*)"')
#: A run of whole lines of one episode in a chunk, each starting as :data:`_HEAD` reads a line (an episode id of one
#: byte or more, no newline in the id) and ending with ``}`` (group 1: the episode id's bytes; the lines after the
#: first must name the same id). Searched for from a literal, so a chunk is scanned by the regex engine without an
#: object per line.
_RUN = re.compile(rb'\{"v":1,"id":"[^"\\\n]*","episode_id":"([^"\\\n]+)"[^\n]*\}\n'
                  rb'(?:\{"v":1,"id":"[^"\\\n]*","episode_id":"\1"[^\n]*\}\n)*')
_isfinite = math.isfinite
#: A key text that may decode to another key (an escape in it, e.g. ``"episode\u005fid"``): a line holding one is
#: decoded, not read as text. Also matches some lines without such a key (sent to ``json.loads`` too: still right).
_ESCAPED_KEY = re.compile(rb'\\u00[0-9a-fA-F]{2}[^"\n]*"\s*:')
_EPISODE_KEY = b'"episode_id"'
#: A usual line's id (group 1: its bytes, which hold no escape, so they are the id's UTF-8 text).
_ID = re.compile(rb'\{"v":1,"id":"([^"\\\n]*)"')
_SUPERSEDES_KEY = b'"supersedes"'
_ID_START = b'{"v":1,"id":"'
_g0b = itemgetter(0)


def _one_episode_key(text: bytes, lines: int) -> bool:
    """Whether the ``lines`` lines of ``text`` can hold no second top-level ``episode_id`` key: one
    ``"episode_id"`` text a line and no escaped key. A key given twice is read by ``json.loads`` (and so by
    :class:`LabelStore`) as its last value, by the text paths as the first: such lines are decoded."""
    return text.count(_EPISODE_KEY) == lines and (b"\\" not in text or _ESCAPED_KEY.search(text) is None)


class _Hashes:
    """64-bit hashes, appended a chunk at a time, kept in an anonymous memory map (outside the heap: a long-lived
    array growing on the heap after the reader's 1 MB chunks were freed would keep that freed memory mapped, which
    raised an export's peak RSS by several times the array's own size)."""

    __slots__ = ("_map", "_view", "n")

    def __init__(self) -> None:
        self._map: mmap.mmap | None = None
        self._view: memoryview | None = None
        self.n = 0

    def extend(self, hashes: array) -> None:
        k = len(hashes)
        if not k:
            return
        need = (self.n + k) * 8
        if self._map is None or need > len(self._map):
            new = mmap.mmap(-1, max(1 << 16, 1 << (need - 1).bit_length()))
            view = memoryview(new).cast("q")
            if self._view is not None and self._map is not None:
                view[:self.n] = self._view[:self.n]
                self._view.release()
                self._map.close()
            self._map, self._view = new, view
        assert self._view is not None
        self._view[self.n:self.n + k] = hashes
        self.n += k

    def values(self) -> Any:
        """The hashes (a memoryview of ints)."""
        return self._view[:self.n] if self._view is not None else ()

    def __len__(self) -> int:
        return self.n

    def __contains__(self, h: int) -> bool:
        return h in self.values()

    def __del__(self) -> None:
        if self._view is not None and self._map is not None:
            self._view.release()
            self._map.close()


class EpisodeLabels:
    """One episode's live labels as an export joins them, in :meth:`LabelStore.current` order.

    ``rows`` are :class:`~.label_model.LabelRow` s when every line was a usual one (no extra fields, no edits:
    see :func:`~.label_model.usual_rows`), else the :class:`Label` s themselves; both have the attributes formats
    read (``target``, ``value``, ``judge``, ``kind``...). :meth:`labels` gives :class:`Label` s, built on first use.
    ``lines``: the same usual labels read from their lines as text (:class:`LabelLines`), when they were; then
    ``rows`` are built from them on first use.
    """

    __slots__ = ("episode_id", "_rows", "_labels", "lines")

    def __init__(self, episode_id: str, rows: list[Any] | None, lines: LabelLines | None = None) -> None:
        self.episode_id = episode_id
        self._rows = rows
        self._labels: list[Label] | None = None
        self.lines = lines

    @property
    def rows(self) -> list[Any]:
        if self._rows is None:
            self._rows = self.lines.rows() if self.lines is not None else []
        return self._rows

    @property
    def usual(self) -> bool:
        """Whether ``rows`` are :class:`LabelRow` s (no extra fields, no tombstones, no edits)."""
        return self.lines is not None or (bool(self.rows) and type(self.rows[0]) is LabelRow)

    def labels(self) -> list[Label]:
        """The live labels as :class:`Label` s."""
        if self._labels is None:
            self._labels = [r.label() for r in self.rows] if self.usual else self.rows
        return self._labels

    def judges(self) -> dict[str, int]:
        """How many live labels each judge gave, judges in the order they first come in ``rows``."""
        if self._rows is None and self.lines is not None:
            return self.lines.judges()
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.judge] = out.get(r.judge, 0) + 1
        return out

    def sources(self) -> set[tuple[str, str]]:
        """The ``(judge, kind)`` of the live labels (read once per distinct line text when read as text)."""
        if self._rows is None and self.lines is not None:
            return {(f[1], f[0]) for f in self.lines.fields.values()}
        return {(str(r.judge), str(r.kind)) for r in self.rows}

    def __len__(self) -> int:
        return len(self.lines) if self._rows is None and self.lines is not None else len(self.rows)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"<EpisodeLabels {self.episode_id!r} labels={len(self)}>"


#: A usual label line as :class:`LabelStore` writes it, after a newline: the id and the episode id (text with
#: nothing to escape), the target (a step index of up to 18 digits, or "episode"), the text of the fields from
#: ``kind`` to the last before ``time`` (decoded once per distinct text) and the time's text (a float's own repr,
#: or null: checked after). The lookahead ends a match at its line's end.
_LINE = re.compile(r'\n\{"v":1,"id":"([^"\\\x00-\x1f]+)","episode_id":"([^"\\\x00-\x1f]+)",'
                   r'"target":(0|[1-9][0-9]{0,17}|"episode"),"kind":([^\n]*),"time":([^\n,]*)\}(?=\n|\Z)')
#: The fields a line's middle text may hold (the head's and the time are matched as text).
_MIDDLE_KEYS = _KNOWN - {"v", "id", "episode_id", "target", "time"}
#: Middle text -> its fields ``(kind, judge, value, score, rationale, tags, author, deleted)``, as
#: :func:`usual_rows` reads them; only texts it accepts, of at most :data:`_MIDDLE_KEPT` characters (bounded:
#: cleared at 4,096 distinct texts, so at most ~4 MB).
_MIDDLES: dict[str, tuple[Any, ...]] = {}
_MIDDLE_KEPT = 1024
_float_repr = float.__repr__
_EPISODE_TEXT = '"episode"'


def _middle_fields(mid: str) -> tuple[Any, ...] | None:
    """The fields of a line's middle text (``kind`` on), checked as :func:`usual_rows` checks a line; None when
    it refuses them (or the text is no JSON object body of those fields alone)."""
    try:
        d = json.loads('{"kind":' + mid + "}")
    except (ValueError, RecursionError):
        return None
    if type(d) is not dict or not _MIDDLE_KEYS.issuperset(d):
        return None
    rec = {"v": 1, "id": "x", "episode_id": "x", "target": 0, **d, "time": None}
    rows = usual_rows([rec], "x")
    if not rows:
        # A judge or a tag list not checked yet (a run's first labels): checked as reading the line as a Label
        # checks it (which keeps them as checked), then read again; a field it refuses refuses the text.
        try:
            Label.from_record(rec)
        except (ValueError, AttributeError, TypeError, RecursionError):
            return None
        rows = usual_rows([rec], "x")
        if not rows:
            return None
    r = rows[0]
    return r.kind, r.judge, r.value, r.score, r.rationale, r.tags, r.author, r.deleted


class LabelLines:
    """One episode's usual label lines read as text, in :meth:`LabelStore.current` order: each label's id,
    target and time, and the text of its other fields (``mids``; their values in :attr:`fields`). What
    :func:`read_lines` accepts gives the rows :func:`usual_rows` gives for the decoded lines (a test compares
    them); formats that write labels as text (``records``) splice the pieces instead of encoding rows."""

    __slots__ = ("episode_id", "ids", "targets", "target_texts", "mids", "times", "time_texts", "fields", "_reprs")

    def __init__(self, episode_id: str, ids: tuple[str, ...], targets: list[Any], target_texts: tuple[str, ...],
                 mids: tuple[str, ...], times: list[Any], time_texts: tuple[str, ...],
                 fields: dict[str, tuple[Any, ...]], *, reprs: bool | None = True) -> None:
        self.episode_id = episode_id
        self.ids = ids
        self.targets = targets
        self.target_texts = target_texts
        self.mids = mids
        self.times = times
        self.time_texts = time_texts
        #: middle text -> ``(kind, judge, value, score, rationale, tags, author, deleted)``
        self.fields = fields
        self._reprs = reprs

    def times_are_reprs(self) -> bool:
        """Whether each time text is its time's own repr (or ``null``): what encoding the time gives, so a format
        may splice the texts (``records``). Lines read with ``exact_times=False`` (:func:`read_lines`) are
        checked on first call."""
        if self._reprs is None:
            self._reprs = _reprs(self.times, self.time_texts)
        return self._reprs

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self) -> list[LabelRow]:
        """The :class:`LabelRow` s (what :func:`usual_rows` gives for the decoded lines)."""
        n = len(self.ids)
        kind, judge, value, score, rationale, tags, author, deleted = zip(*map(self.fields.__getitem__, self.mids))
        return list(map(_new_row, zip(repeat(self.episode_id, n), self.targets, kind, judge, value, score,
                                      rationale, tags, author, self.times, repeat(None, n), self.ids, deleted)))

    def last_step(self) -> int:
        """The highest step index a label names (-1: none names a step)."""
        targets = self.targets
        return max(compress(targets, map(_is, map(type, targets), repeat(int))), default=-1)

    def judges(self) -> dict[str, int]:
        """How many labels each judge gave, in the order judges first come."""
        # Counted per distinct middle text (a C loop over the labels), in the order each first comes: so the
        # judges come in the order they first do.
        fields = self.fields
        one = {f[1] for f in fields.values()}
        if len(one) == 1:  # one judge gave every label (a labeler's run): no count per text
            return {one.pop(): len(self.mids)}
        out: dict[str, int] = {}
        for mid, n in Counter(self.mids).items():
            judge = fields[mid][1]
            out[judge] = out.get(judge, 0) + n
        return out


_g0, _g1, _g2 = itemgetter(0), itemgetter(1), itemgetter(2)
#: What an id or an episode id read as text may not hold (:data:`_LINE`: quotes, backslashes, control characters).
_NOT_IN_IDS = str.maketrans("", "", "".join(map(chr, range(32))) + '"\\')
_LINE_START = '{"v":1,"id":"'
_LINE_BREAK = '}\n{"v":1,"id":"'


def _split_lines(text: str, episode_id: str, n: int) -> tuple[tuple[str, ...], ...] | None:
    """The ids, target texts, middle texts and time texts of ``n`` lines (``text``: ASCII, lines joined by
    newlines) that :data:`_LINE` would read, found by cutting the text at the fields' separators with C string
    methods (a few passes over the lines, ~0.3 µs a line less than the regex's matching); None when a line is
    not cut cleanly (the caller then takes the regex). Whatever is returned is what :data:`_LINE` reads: each
    line is ``{"v":1,"id":"ID","episode_id":"E","target":T,"kind":MID,"time":TM}``, with the episode id and
    each id free of quotes, backslashes and control characters, T a step index of up to 18 digits or
    ``"episode"``, no newline in MID and neither newline nor comma in TM (so the last ``,"time":`` of the line
    is the regex's, as its greedy MID finds it)."""
    if not episode_id or len(episode_id.translate(_NOT_IN_IDS)) != len(episode_id):
        return None
    parts = text.split('","episode_id":"' + episode_id + '","target":')
    if len(parts) != n + 1 or not parts[0].startswith(_LINE_START):
        return None
    # Each part after the first: T,"kind":MID,"time":TM}\n{"v":1,"id":"ID (the last: ...TM}).
    heads = list(map(str.partition, parts[1:], repeat(',"kind":')))
    rests = list(map(str.rpartition, map(_g2, heads), repeat(',"time":')))
    tails = list(map(str.partition, map(_g2, rests), repeat(_LINE_BREAK)))
    if ("" in map(_g1, heads) or "" in map(_g1, rests) or "" in map(_g1, islice(tails, n - 1))
            or tails[-1][1] or not tails[-1][0].endswith("}")):
        return None
    ids = (parts[0][len(_LINE_START):], *map(_g2, islice(tails, n - 1)))
    targets = tuple(map(_g0, heads))
    mids = tuple(map(_g0, rests))
    times = (*map(_g0, islice(tails, n - 1)), tails[-1][0][:-1])
    every_id = "".join(ids)
    if not all(ids) or len(every_id.translate(_NOT_IN_IDS)) != len(every_id):
        return None
    if "\n" in "".join(mids):
        return None
    every_time = "".join(times)
    if "\n" in every_time or "," in every_time:
        return None
    steps = targets if _EPISODE_TEXT not in targets else [t for t in targets if t != _EPISODE_TEXT]
    if steps:
        # Digits only (no "," in them: the joined text's commas are the separators, so each ",0" starts one), none
        # empty, at most 18 of them, and only "0" itself starts with a zero.
        joined = "," + ",".join(steps)
        if not (joined.count(",") == len(steps) and joined.replace(",", "").isdigit() and "" not in steps
                and max(map(len, steps)) <= 18 and joined.count(",0") == steps.count("0")):
            return None  # not the regex's (0|[1-9][0-9]{0,17}) (an empty target, a sign, a leading zero...)
    return ids, targets, mids, times


def read_lines(blocks: list[bytes], episode_id: str, lines: int | None = None, *,
               exact_times: bool = True) -> LabelLines | None:
    """One episode's label lines (given in blocks of lines joined by newlines) read as text, when every line is
    a usual one as :class:`LabelStore` writes it (ASCII, the fields in its order, nothing to escape in the id, a
    time that is a float's own repr or null) and :func:`usual_rows` would accept them all; else None (the caller
    decodes the lines). The lines' JSON is not scanned: only the distinct texts of their fields from ``kind`` on
    are decoded, once each. ``lines``: how many lines the blocks hold, when the caller knows (the index counted
    them as it placed them); else they are counted here.

    ``exact_times=False``: a time may be any JSON text of a finite float (or null), decoded as ``json.loads``
    decodes the line (what the decoding path reads); whether the texts are also the floats' own reprs is told
    later, if a format asks (:meth:`LabelLines.times_are_reprs`). For formats that write no label time text
    (``parquet``): one ``json.loads`` of the times instead of a ``float`` and a ``repr`` of each (~0.28 µs a
    label).
    """
    if not blocks:
        return None
    data = b"\n".join(blocks)
    if not data.isascii():
        return None
    text = data.decode("ascii")
    n = text.count("\n") + 1 if lines is None else lines
    got = _split_lines(text, episode_id, n)
    if got is None:  # some line not in the shape the cuts read: the regex, a line at a time
        text = "\n" + text
        n = text.count("\n")  # (the cuts vouch for their own count; here each line must be seen to match)
        found = _LINE.findall(text)
        if len(found) != n:  # each match is one whole line: every line matched
            return None
        ids, eids, target_texts, mids, time_texts = zip(*found)
        if eids.count(episode_id) != n:
            return None
    else:
        ids, target_texts, mids, time_texts = got
    if len(set(ids)) != n:
        return None
    fields: dict[str, tuple[Any, ...]] = {}
    for mid in set(mids):
        got = _MIDDLES.get(mid)
        if got is None:
            got = _middle_fields(mid)
            if got is None:
                return None
            if len(mid) <= _MIDDLE_KEPT:  # (long texts, e.g. a judge's rationale: not kept)
                if len(_MIDDLES) >= 4096:
                    _MIDDLES.clear()
                _MIDDLES[mid] = got
        fields[mid] = got
    reprs: bool | None = True
    if exact_times:
        try:
            if "null" in time_texts:
                times: list[Any] = [None if t == "null" else float(t) for t in time_texts]
                real = [t for t in times if t is not None]
            else:
                times = real = list(map(float, time_texts))
        except ValueError:
            return None
        if not _reprs(times, time_texts):
            return None
    else:
        # The texts (no comma or newline in any: _split_lines, _LINE) as one JSON array: each must be one JSON
        # value, and a float or null (an int, "true", a list: the decoding path decides).
        try:
            times = json.loads("[" + ",".join(time_texts) + "]")
        except (ValueError, RecursionError):
            return None
        if len(times) != n:
            return None
        kinds = set(map(type, times))
        if not kinds <= _FLOAT_OR_NONE:
            return None
        real = times if type(None) not in kinds else [t for t in times if t is not None]
        reprs = None
    if not all(map(_isfinite, real)):  # "nan", "inf": floats, but no JSON (json.loads reads NaN, Infinity)
        return None
    m = target_texts.count(_EPISODE_TEXT)
    steps = n - m
    last = m and target_texts[steps:].count(_EPISODE_TEXT) == m  # the episode's labels all come last
    if last:
        targets: list[Any] = [*map(int, target_texts[:steps]), *repeat("episode", m)]
        tk = [*targets[:steps], *repeat(-1, m)]
    else:
        targets = (list(map(int, target_texts)) if not m else
                   ["episode" if t == _EPISODE_TEXT else int(t) for t in target_texts])
        tk = targets if not m else [-1 if t == "episode" else t for t in targets]
    # Sorted as usual_rows sorts them: by target (the episode first), time, id. Targets that rise from line to
    # line are in order whatever the times, also when the episode's labels come last (a labeler's usual order).
    if all(map(_lt, tk, islice(tk, 1, None))):
        pass
    elif (last and steps and all(map(_lt, islice(tk, steps - 1), islice(tk, 1, steps)))
          and (m == 1 or _ordered(list(zip(times[steps:], ids[steps:]))))):
        # The episode's labels moved first.
        ids, target_texts, mids, time_texts, targets, times = (
            c[steps:] + c[:steps] for c in (ids, target_texts, mids, time_texts, targets, times))
    else:
        keys = list(zip(tk, times, ids))
        if not _ordered(keys):
            order = sorted(range(n), key=_ordered_keys(keys).__getitem__)
            ids, target_texts, mids, time_texts = (tuple(map(c.__getitem__, order))
                                                   for c in (ids, target_texts, mids, time_texts))
            targets, times = list(map(targets.__getitem__, order)), list(map(times.__getitem__, order))
    return LabelLines(episode_id, ids, targets, target_texts, mids, times, time_texts, fields, reprs=reprs)


_FLOAT_OR_NONE = frozenset({float, type(None)})


def _reprs(times: list[Any], time_texts: tuple[str, ...]) -> bool:
    """Whether each text is its time's own repr (the text encoding it gives), or ``null`` for None."""
    if "null" in time_texts:
        return tuple(_float_repr(t) if t is not None else "null" for t in times) == time_texts
    # Compared as one text: a list's repr is its items' reprs joined by ", ", and no time text holds a comma.
    return repr(times) == "[" + ", ".join(time_texts) + "]"


def _ordered_keys(keys: list[Any]) -> list[Any]:
    """``keys`` (time, id) or (target, time, id) as usual_rows sorts them: a time of None counted as 0.0."""
    return [(*k[:-2], k[-2] or 0.0, k[-1]) for k in keys] if any(k[-2] is None for k in keys) else keys


def _ordered(keys: list[Any]) -> bool:
    """Whether ``keys`` (time, id) or (target, time, id) never fall (a time of None counted as 0.0)."""
    keys = _ordered_keys(keys)
    return all(map(_le, keys, islice(keys, 1, None)))


def _one_per_person(joined: EpisodeLabels) -> EpisodeLabels:
    """``joined`` with only the newest live label of each person on each target, as :meth:`LabelStore.current`
    gives them (:func:`~.label_store.newest_per_person`: label files merged from two copies of a run). Lines read
    as text are looked at without building rows: only a person's second label on a target builds them."""
    lines = joined.lines
    if lines is not None and joined._rows is None:
        fields = lines.fields
        if not any(f[1].startswith("human:") for f in fields.values()):
            return joined
        judges = list(map(_g1, map(fields.__getitem__, lines.mids)))
        if len(set(zip(lines.targets, judges))) == len(judges):
            return joined
    kept, left_out = newest_per_person(joined.rows)
    return EpisodeLabels(joined.episode_id, kept) if left_out else joined


class EpisodeLabelIndex(LabelStore):
    """A run folder's labels, read once, kept as the places of their lines per episode; read-only."""

    #: Whether label lines read as text (:func:`read_lines`) must hold their times' own reprs: formats that splice
    #: the time texts need them (``records``; :meth:`LabelLines.times_are_reprs` tells them afterwards too);
    #: ``parquet`` sets it off for its index (:meth:`~.exports.source.Source.set_exact_label_times`).
    exact_times = True

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self._files: list[Path] = []
        self._file_no: dict[Path, int] = {}
        self._places: dict[str, array] = {}  # episode id -> (file number, offset, length) per version
        self._kept: dict[str, list[Label]] = {}  # versions a writer added
        # Folder-wide facts the per-episode join needs (LabelStore resolves chains over the folder): a 64-bit hash
        # of each placed line's id (8 bytes a label: ids given in two episodes are found from them), and the ids
        # that lines supersede, with the episode of the superseding line (None: lines of several episodes).
        self._id_hashes = _Hashes()
        self._superseded: dict[str, str | None] = {}
        self._dups: set[int] | None = None  # hashes of ids placed twice or more (None: not counted yet)
        self._folder: LabelStore | None = None  # the whole folder's store, for episodes the cases above touch
        self._open_fd: int | None = None
        self._open_no: int | None = None
        super().__init__(run_dir)

    def _ingest_chunk(self, path: Path, start: int, body: bytes, line: int) -> int:
        # Only each line's episode id is read here; the label itself is built and checked when its episode is
        # asked for (a label is parsed once, not twice). Lines as LabelStore writes them start with their version,
        # id and episode id: the id is read from those bytes (exact: unescaped text between quotes of the
        # top-level object, when the line gives no second episode_id key: _one_episode_key); other lines are
        # decoded. Lines that are not JSON objects with an episode id are
        # warned about now, as a store warns.
        if not body:
            return 0
        self._dups = None
        if _SUPERSEDES_KEY in body:
            self._note_supersedes(body)
        placed = self._ingest_usual_chunk(path, start, body)
        if placed is not None:
            # Each line's id: the text after its head's `{"v":1,"id":"` up to the next quote (the head's shape is
            # checked: _RUN), cut with C string methods (~25% less than _ID.findall). (Also what follows such a
            # text nested in a line, if one is: a hash too many is harmless.)
            ids = map(_g0b, map(bytes.partition, islice(body.split(_ID_START), 1, None), repeat(b'"')))
            self._id_hashes.extend(array("q", map(hash, ids)))
            return placed
        lines = body[:-1].split(b"\n")
        hashes = array("q")
        n = 0
        offset = start
        head = _HEAD.match
        for raw in lines:
            line += 1
            m = head(raw)
            eid: Any = None
            lid: Any = None
            if m is not None and raw.endswith(b"}") and _one_episode_key(raw, 1):
                try:
                    eid = m.group(1).decode("utf-8")
                except UnicodeDecodeError:
                    eid = None
                else:
                    lid = _ID.match(raw).group(1)  # type: ignore[union-attr]  # (_HEAD matched: so does _ID)
            if eid is None:
                if not raw.strip():
                    offset += len(raw) + 1
                    continue
                try:
                    rec = json.loads(raw)
                except (ValueError, RecursionError):
                    rec = None
                eid = rec.get("episode_id") if type(rec) is dict else None
                lid = rec.get("id") if type(rec) is dict else None
                lid = lid.encode("utf-8", "surrogatepass") if type(lid) is str else None
            if type(eid) is str and eid:
                if lid is not None:
                    hashes.append(hash(lid))
                n += self._place(eid, path, offset, len(raw))
            else:
                self._parse_line(path, offset, raw, torn_ok=False, line=line)  # warns as a store does
            offset += len(raw) + 1
        self._id_hashes.extend(hashes)
        return n

    def _ingest_usual_chunk(self, path: Path, start: int, body: bytes) -> int | None:
        """Place a chunk whose every line starts as LabelStore writes it and ends with ``}`` (what the line loop
        would place, each under the id in its head): each run of lines of one episode is found by one match of
        :data:`_RUN` (its lines' heads checked by the regex engine, no object per line) and placed as one span.
        None: some line is not like that (the caller takes the line loop)."""
        spans: list[tuple[bytes, int, int, int]] = []
        pos = 0
        count = body.count
        for m in _RUN.finditer(body):
            if m.start() != pos:  # a line between two runs that is not in the usual shape
                return None
            end = m.end()
            spans.append((m.group(1), pos, end, count(b"\n", pos, end)))
            pos = end
        if pos != len(body):
            return None
        # (The spans hold every line of the chunk: their lines, counted once, are the chunk's.)
        if not _one_episode_key(body, sum(span[3] for span in spans)):
            return None  # a line that may give its episode id twice (json.loads reads the last): decoded
        try:
            names = {e: e.decode("utf-8") for e in {span[0] for span in spans}}
        except UnicodeDecodeError:
            return None
        n = 0
        for eid, first, end, lines in spans:
            self._place(names[eid], path, start + first, end - 1 - first, lines)
            n += lines
        self._chunk_lines = n  # (every line of the chunk placed: _read_file need not count them again)
        return n

    def _place(self, episode_id: str, path: Path, offset: int, length: int, lines: int = 1) -> int:
        """Keep where ``lines`` lines of one episode are: ``length`` bytes from ``offset`` (the last newline
        left out)."""
        no = self._file_no.get(path)
        if no is None:
            no = self._file_no[path] = len(self._files)
            self._files.append(path)
        places = self._places.get(episode_id)
        if places is None:
            places = self._places[episode_id] = array("q")
        elif places[-4] == no and places[-3] + places[-2] + 1 == offset:
            places[-2] += length + 1  # the next line(s) of the same run
            places[-1] += lines
            return lines
        places.extend((no, offset, length, lines))
        return lines

    def _ingest_last(self, path: Path, offset: int, raw: bytes, lab: Label) -> int:
        # Placed as a line (under the episode id json.loads read): its version then takes its place in file order
        # when the episode's chains are resolved, as in LabelStore (first copy of an id wins).
        self._dups = None
        self._id_hashes.extend(array("q", [hash((lab.id or "").encode("utf-8", "surrogatepass"))]))
        if lab.supersedes is not None:
            self._note(lab.supersedes, lab.episode_id)
        return self._place(lab.episode_id, path, offset, len(raw))

    def _note_supersedes(self, body: bytes) -> None:
        """Note the ids the lines of ``body`` supersede (with their lines' episode ids, as json.loads reads
        them): only lines holding a ``"supersedes"`` key text are decoded (edits and deletions: few)."""
        pos = body.find(_SUPERSEDES_KEY)
        while pos >= 0:
            first = body.rfind(b"\n", 0, pos) + 1
            end = body.find(b"\n", pos)
            end = len(body) if end < 0 else end
            try:
                rec = json.loads(body[first:end])
            except (ValueError, RecursionError):
                rec = None
            if type(rec) is dict and type(rec.get("supersedes")) is str and type(rec.get("episode_id")) is str:
                self._note(rec["supersedes"], rec["episode_id"])
            pos = body.find(_SUPERSEDES_KEY, end)

    def _note(self, superseded: str, episode_id: str) -> None:
        was = self._superseded.get(superseded, episode_id)
        self._superseded[superseded] = episode_id if was == episode_id else None

    def _crosses(self, episode_id: str, ids: Any, supersedes: Any = ()) -> bool:
        """Whether an episode's versions (their ``ids``, and the ids they supersede) are joined to versions of
        other episodes, which LabelStore resolves over the folder: an id of it superseded by a line of another
        episode, an id it supersedes that a line of another episode holds, or an id placed twice or more (the
        first copy read wins, whatever its episode). Each can say yes for an episode no such case touches (a
        64-bit hash collision, an id repeated within the episode): its labels are then resolved over the folder,
        which gives the same answer."""
        sup = self._superseded
        if sup and not sup.keys().isdisjoint(ids):
            if any(sup[i] != episode_id for i in ids if i in sup):
                return True
        if self._dups is None:
            self._count_ids()
        dups = self._dups
        if dups and any(hash(i.encode("utf-8", "surrogatepass")) in dups for i in ids):
            return True
        if supersedes:
            own = set(ids)
            for x in supersedes:
                # An id outside this episode that a line holds (a label of another episode, not a recorded check
                # nor a missing id): one scan of the hashes in C, for the few edits that name such an id.
                if x is not None and x not in own and hash(x.encode("utf-8", "surrogatepass")) in self._id_hashes:
                    return True
        return False

    def _count_ids(self) -> None:
        """Keep the hashes of ids placed twice or more (none, usually). A bitmap of 16 bits a label (2 bytes, not
        the ~80 of a set of the hashes: the peak memory of an export stays flat) gives the few candidates, a hash
        whose bit was set already; those are then counted exactly."""
        hashes = self._id_hashes.values()
        np = sys.modules.get("numpy")
        if np is not None and len(hashes) > 1024:
            # numpy already loaded (parquet exports, array runs): the hashes sorted where they are (their order
            # tells nothing: they are only looked up), then equal neighbours are the ids placed twice or more
            # (a byte a label for the moment, where the bitmap below takes two).
            ordered = np.frombuffer(hashes, dtype=np.int64)
            ordered.sort()
            same = ordered[1:] == ordered[:-1]
            self._dups = set(ordered[1:][same].tolist()) if same.any() else set()
            return
        bits = 1 << max(10, (16 * len(hashes)).bit_length())
        mask = bits - 1
        seen = bytearray(bits >> 3)
        maybe = []
        for h in hashes:
            i = h & mask
            byte, bit = i >> 3, 1 << (i & 7)
            if seen[byte] & bit:
                maybe.append(h)
            else:
                seen[byte] |= bit
        if not maybe:
            self._dups = set()
            return
        counts = Counter(filter(set(maybe).__contains__, hashes))
        self._dups = {h for h, n in counts.items() if n > 1}

    def _folder_store(self) -> LabelStore:
        """The whole folder's labels as LabelStore reads them (built once, when an episode needs it; its line
        warnings were given while this index read the lines)."""
        if self._folder is None:
            self._folder = _QuietStore(self.run_dir)
        return self._folder

    def _ingest(self, lab: Label) -> int:
        # Only labels a writer adds come here (after every line read): kept as they are.
        self._kept.setdefault(lab.episode_id, []).append(lab)
        return 1

    def current(self, episode_id: str | None = None, target: int | str | None = None,  # type: ignore[override]
                judge: str | None = None) -> list[Label]:
        """Live labels of one episode (sorted as :meth:`LabelStore.current` sorts them)."""
        if episode_id is None:
            raise TrajrecUsageError("an EpisodeLabelIndex answers for one episode at a time; use LabelStore for all")
        labels = self.episode_labels(episode_id).labels()
        if target is None and judge is None:
            return list(labels)
        return [lab for lab in labels
                if (target is None or lab.target == target) and (judge is None or lab.judge == judge)]

    def episode_labels(self, episode_id: str) -> EpisodeLabels:
        """Live labels of one episode for an export: :class:`~.label_model.LabelRow` s when its lines are usual
        ones (no :class:`Label` built), else the :class:`Label` s :meth:`current` gives."""
        blocks = self._blocks(episode_id)
        if episode_id not in self._kept:
            lines = read_lines([block for _, _, block in blocks], episode_id,
                               sum(self._places[episode_id][3::4]) if blocks else 0, exact_times=self.exact_times)
            if lines is not None:
                if self._crosses(episode_id, lines.ids):
                    return self._over_folder(episode_id)
                return _one_per_person(EpisodeLabels(episode_id, None, lines))
        recs = decode_lines([block for _, _, block in blocks])
        if recs is not None and episode_id not in self._kept:
            rows = usual_rows(recs, episode_id)
            if rows is not None:
                if self._crosses(episode_id, [r.id for r in rows]):
                    return self._over_folder(episode_id)
                return _one_per_person(EpisodeLabels(episode_id, rows))
        labels = self._versions(episode_id, blocks, recs)
        if self._crosses(episode_id, [lab.id for lab in labels], [lab.supersedes for lab in labels]):
            return self._over_folder(episode_id)
        if not labels:
            return EpisodeLabels(episode_id, [])
        if len({lab.id for lab in labels}) == len(labels) and all(
                lab.supersedes is None and not lab.deleted for lab in labels):
            # No edits or deletions (the common case, e.g. rules' labels): every version is live.
            labels.sort(key=_order)
            return _one_per_person(EpisodeLabels(episode_id, labels))
        return EpisodeLabels(episode_id, self._chains(labels).current(episode_id))

    def _over_folder(self, episode_id: str) -> EpisodeLabels:
        # An edit, a deletion or an id that joins this episode's labels to another's: resolved as LabelStore
        # resolves them (chains over the whole folder, the first copy of an id wins), not episode by episode.
        return EpisodeLabels(episode_id, self._folder_store().current(episode_id))

    def _chains(self, labels: list[Label]) -> LabelStore:
        chains = LabelStore(self.dir / "no-such-folder")  # an empty store: only its chain logic is used
        for lab in labels:
            chains._ingest(lab)
        return chains

    def _blocks(self, episode_id: str) -> list[tuple[int, int, bytes]]:
        """``(file number, offset, bytes)`` of the runs of lines placed under one episode, in the order read; runs
        one after another in a file (a labeler writes an episode's labels together) read with one pread."""
        places = self._places.get(episode_id)
        if places is None:
            return []
        blocks: list[tuple[int, int, bytes]] = []
        try:
            k, end = 0, len(places)
            while k < end:
                no, off, stop = places[k], places[k + 1], places[k + 1] + places[k + 2]
                j = k + 4
                while j < end and places[j] == no and places[j + 1] == stop + 1:
                    stop = places[j + 1] + places[j + 2]
                    j += 4
                blocks.append((no, off, os.pread(self._fd_of(no), stop - off, off)))
                k = j
        except OSError as exc:
            raise TrajrecIOError(f"cannot read labels in {self.dir}: {exc.strerror}") from exc
        return blocks

    def _versions(self, episode_id: str, blocks: list[tuple[int, int, bytes]] | None = None,
                  recs: list[Any] | None = None) -> list[Label]:
        """Every version of one episode's labels, read from their lines (the odd lines warned about, skipped).
        ``blocks`` and ``recs``: the lines (:meth:`_blocks`) and their values (:func:`decode_lines`), when
        already read."""
        if blocks is None:
            blocks = self._blocks(episode_id)
            recs = decode_lines([block for _, _, block in blocks])
        labels: list[Label] | None = None
        if recs is not None:
            try:  # one decode for the episode's lines, as a store reads a chunk
                labels = [Label.from_record(r) for r in recs]
            except (ValueError, AttributeError, TypeError, RecursionError):
                labels = None
        if labels is None:
            # A line that is JSON with an episode id but not a valid label: each line on its own, the odd ones
            # skipped with the store's warning (naming the byte; the line number is not kept).
            labels = []
            for no, off, block in blocks:
                for raw in block.split(b"\n"):
                    lab = self._parse_line(self._files[no], off, raw, torn_ok=False)
                    if isinstance(lab, Label):
                        labels.append(lab)
                    off += len(raw) + 1
        labels.extend(self._kept.get(episode_id, ()))
        return labels

    def _fd_of(self, no: int) -> int:
        # One labels file open at a time (runs have a few files, read mostly in order), closed by close().
        if self._open_no != no:
            self._close_open()
            self._open_fd = os.open(self._files[no], os.O_RDONLY)
            self._open_no = no
        assert self._open_fd is not None
        return self._open_fd

    def _close_open(self) -> None:
        fd, self._open_fd, self._open_no = self._open_fd, None, None
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        self._close_open()
        super().close()

    def __del__(self) -> None:
        if getattr(self, "_open_fd", None) is not None:
            try:
                self._close_open()
            except OSError:
                pass
        super().__del__()

    def add(self, *args: Any, **kwargs: Any) -> Label:  # type: ignore[override]
        raise TrajrecUsageError("EpisodeLabelIndex is read-only; add labels with LabelStore")

    update = delete = add  # type: ignore[assignment]

    def __len__(self) -> int:
        return sum(sum(p[3::4]) for p in self._places.values()) + sum(len(k) for k in self._kept.values())

    def __repr__(self) -> str:
        return f"<EpisodeLabelIndex {os.fspath(self.run_dir)!r} versions={len(self)}>"


class EpisodeLabelWriter(EpisodeLabelIndex):
    """An :class:`EpisodeLabelIndex` that also writes, one episode at a time: what automatic labelers use, so
    that labeling a run holds the places of its labels (24 bytes each), not the labels.

    :meth:`current` reads an episode's versions and keeps their chains until another episode is asked for;
    :meth:`update` and :meth:`delete` take the id of a version of that episode (as a labeler does: it reads an
    episode's labels, then writes what changed). :meth:`add` works for any episode. New lines are appended to
    this writer's own file as :class:`LabelStore` appends them, and their places kept, so a later
    :meth:`current` reads them back.
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self._episode: tuple[str, LabelStore] | None = None  # the episode last read, with its chains
        self._appending = False
        self._own_end: dict[str, int] = {}  # own file name -> end of the last line placed
        super().__init__(run_dir)
        self.fsync = fsync

    add = LabelStore.add
    update = LabelStore.update
    delete = LabelStore.delete

    def current(self, episode_id: str | None = None, target: int | str | None = None,  # type: ignore[override]
                judge: str | None = None) -> list[Label]:
        """Live labels of one episode, as :meth:`EpisodeLabelIndex.current`; its chains are kept for writes."""
        if episode_id is None:
            raise TrajrecUsageError("an EpisodeLabelWriter answers for one episode at a time; use LabelStore for all")
        if self._episode is None or self._episode[0] != episode_id:
            self._episode = (episode_id, self._chains(self._versions(episode_id)))
        return self._episode[1].current(episode_id, target=target, judge=judge)

    def _live_head(self, label_id: str, verb: str) -> Label:
        if self._episode is None:
            raise TrajrecUsageError(f"cannot {verb} label {label_id}: an EpisodeLabelWriter edits labels of the "
                                    "episode it last read (call current(episode_id) first)")
        return self._episode[1]._live_head(label_id, verb)

    def _append(self, label: Label) -> Label:
        self._appending = True
        try:
            return super()._append(label)
        finally:
            self._appending = False

    def _ingest(self, lab: Label) -> int:
        if not self._appending:
            return super()._ingest(lab)  # a last line without its newline, read from another writer's file
        own = self._own
        assert own is not None
        end = self._offsets[own]  # LabelStore._append counted the line (and its newline) before this call
        start = self._own_end.get(own, 0)
        self._own_end[own] = end
        self._place(lab.episode_id, self.dir / own, start, end - start - 1)
        if self._episode is not None and self._episode[0] == lab.episode_id:
            self._episode[1]._ingest(lab)
        return 1

    def __repr__(self) -> str:
        return f"<EpisodeLabelWriter {os.fspath(self.run_dir)!r} versions={len(self)}>"


class _QuietStore(LabelStore):
    """A LabelStore that reads without warning about odd lines (for a reader that warned about them already)."""

    def _parse_line(self, path: Path, offset: int, raw: bytes, *, torn_ok: bool,
                    warn: bool = True, line: int | None = None) -> Label | None | object:
        return super()._parse_line(path, offset, raw, torn_ok=torn_ok, warn=False, line=line)
