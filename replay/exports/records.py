"""``records``: one JSON line per episode holding the whole evidence record, in one stable shape.

Every field whose type the env, the agent or a judge decides (observations, actions, rewards, infos, states,
notes, diffs, the task, provenance, summary and checks) is written as JSON text (the export encoding of
:mod:`~trajrec.replay.exports.encode`): ``json.loads`` gives it back exactly, and the row's own shape never varies,
so ``datasets``, ``pyarrow.json``, Polars and DuckDB all read the file unchanged with every number exact. Fields
trajrec types itself (ids, flags, times, step indexes) are plain JSON. ``docs/EXPORT.md`` lists them.
"""

from __future__ import annotations

import json
import math
import operator
import re
from itertools import chain, compress, islice, repeat
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator

from .base import EpisodeView, JsonlFormat
from .chat import episode_complete, episode_lost, unverified_of
from .encode import _TEXT, _fast, dumps, dumps_built
from .encode import _encode_str as _S

_float_repr = float.__repr__

#: Value of the ``format`` field of each row.
RECORDS_FORMAT = "trajrec-records@3"


def _time(x: Any) -> float | None:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        f = float(x)
        return f if math.isfinite(f) else None
    return None


def _index(x: Any) -> int | None:
    return x if type(x) is int else None


def _str(x: Any) -> str | None:
    return x if x is None or isinstance(x, str) else dumps(x)


def _step(rec: dict[str, Any]) -> dict[str, Any]:
    """The ``steps`` item of a row as a dict (what :func:`step_json` writes as text)."""
    return json.loads(step_json(rec))


def _text_field(enc: Callable[[Any], str], value: Any) -> str:
    """A recorded value as a row field: its export JSON text, itself written as a JSON string."""
    if type(value) is str:
        return _S(_S(value))
    if value is None:
        return '"null"'
    return _S(enc(value))


def _number(x: Any) -> str:
    """:func:`_time` as JSON text."""
    if type(x) is float:
        return _float_repr(x) if math.isfinite(x) else "null"
    f = _time(x)
    return "null" if f is None else _float_repr(f)


def step_json(rec: dict[str, Any], unverified: bool = False) -> str:
    """One item of a row's ``steps``, as the JSON text that encoding the step's dict would give (same fields, same
    order): built as text, so a step costs one encoding of each recorded value and no second pass over the row."""
    get = rec.get
    # Each recorded value decides for itself whether it needs the exact pass (dumps): text, numbers and maps of
    # them (a step's info, its note) in a few C loops, where a walk over the whole record cost more than
    # encoding it. A plain value gives the same text either way, so this is the text one walk gave.
    enc = dumps
    diff = get("diff")
    recovers = get("recovers")
    retry = get("retry_of")
    i = rec["i"]
    return (f'{{"i":{_fast(i)},"action":{_text_field(enc, get("action"))},'
            f'"observation":{_text_field(enc, get("observation"))},"reward":{_text_field(enc, get("reward"))},'
            f'"terminated":{"true" if get("terminated") else "false"},'
            f'"truncated":{"true" if get("truncated") else "false"},'
            f'"info":{_text_field(enc, get("info"))},"time":{_number(get("time"))},'
            f'"duration":{_number(get("duration"))},"note":{_text_field(enc, get("note"))},'
            f'"failure":{_text_field(enc, get("failure"))},'
            f'"retry_of":{retry if type(retry) is int else "null"},'
            f'"recovers":{_fast([k for k in recovers if type(k) is int]) if recovers else "[]"},'
            f'"diff":' + (_S(enc([{"path": r[0], "action": r[1], "value": r[2], "old_value": r[3]} for r in diff]))
                          if diff else '"[]"') + f',"unverified":{"true" if unverified else "false"}}}')


# -- steps a column at a time ------------------------------------------------------------------------------------
#: A ``steps`` item, field by field as :func:`step_json` writes it.
_STEP = ('{"i":%s,"action":%s,"observation":%s,"reward":%s,"terminated":%s,"truncated":%s,"info":%s,"time":%s,'
         '"duration":%s,"note":%s,"failure":%s,"retry_of":%s,"recovers":%s,"diff":%s,"unverified":%s}')
_NoneType = type(None)
_FLAT = frozenset({str, float, bool, _NoneType})  # values of a map that the strict encoder writes as they are
_TRUTH = ("false", "true")
_is_not = operator.is_not
_not = operator.not_
_is = operator.is_
_dollar = operator.methodcaller("startswith", "$")
_values = dict.values
_get = dict.get
#: Steps encoded a column at a time: a bounded batch, so a long episode's records are not all held at once.
BATCH = 4096
_RUN = 64
#: What JSON escapes in text (``json.encoder.encode_basestring``: quotes, backslashes, control characters).
_ESCAPES = re.compile(r'[\x00-\x1f"\\]')
#: The same characters deleted by ``str.translate`` (5x faster than searching for them with the regex).
_NO_ESCAPES = str.maketrans("", "", "".join(map(chr, range(32))) + '"\\')


def _nothing_to_escape(text: str) -> bool:
    """Whether JSON writes ``text`` as it is between its quotes (no :data:`_ESCAPES` character in it)."""
    return len(text.translate(_NO_ESCAPES)) == len(text)
_QUOTED_TWICE = '"\\"%s\\""'  # text with nothing to escape, as JSON text written as a JSON string
_QUOTES_OPEN, _QUOTES_CLOSE = _QUOTED_TWICE.split("%s")


def _general_field(value: Any) -> str:
    return _text_field(dumps, value)


def _flat_maps(col: list[Any]) -> bool:
    """Whether every item of ``col`` (all exact dicts) maps text not starting with ``$`` to text, floats, bools,
    None or 64-bit ints: what :func:`dumps` hands the strict encoder as it is (a NaN or an infinity inside makes
    the encoder refuse it, and the caller then takes the general path)."""
    keys = list(chain.from_iterable(col))
    if keys and set(map(type, keys)) != _TEXT or any(map(_dollar, set(keys))):  # ("$": once a distinct key)
        return False
    kinds = set(map(type, chain.from_iterable(map(_values, col))))
    if kinds <= _FLAT:
        return True
    if kinds - _FLAT != {int}:
        return False
    ints = [v for v in chain.from_iterable(map(_values, col)) if type(v) is int]
    return _I64_MIN <= min(ints) and max(ints) <= _I64_MAX


def _uniform_fields(t: type, col: list[Any]) -> list[str] | None:
    """:func:`_text_field` of each value of ``col``, all of type ``t``, with C loops; None when they need the
    general path."""
    if t is str:
        if _nothing_to_escape("".join(col)):  # quoted twice as they are
            return list(map(_QUOTED_TWICE.__mod__, col))
        return _each_distinct(col, _escaped_twice)  # (a tool env's actions: a few texts, each escaped once)
    if t is float:
        if all(map(math.isfinite, col)):
            return list(map(_S, _float_texts(col)))
        return None
    if t is dict:
        if _flat_maps(col):
            whole = _maps_at_once(col)
            if whole is not None:
                return whole
        out: list[str] = []
        for k in range(0, len(col), _RUN):
            _map_texts(col[k:k + _RUN], out)
        return out
    return None


_MAP_FIELD = '"{%s}"'


def _maps_at_once(col: list[dict[str, Any]]) -> list[str] | None:
    """:func:`_text_field` of each flat map of ``col`` (:func:`_flat_maps`), from one encoding of the whole
    column escaped at once and cut between the maps (escaping works character by character, so each piece is
    its map's text escaped); None when a value is refused (NaN) or some text holds the cut's own ``},{``."""
    parts = _map_parts(col)
    return None if parts is None else list(map(_MAP_FIELD.__mod__, parts))


def _map_parts(col: list[dict[str, Any]]) -> list[str] | None:
    """:func:`_maps_at_once` without each field's own ``"{`` and ``}"`` around it."""
    try:
        text = _S(_fast(col))  # '"[{...},{...}]"'
    except (ValueError, TypeError):
        return None
    parts = text[3:-3].split("},{")
    return parts if len(parts) == len(col) else None


def _flat_flags(run: list[dict[str, Any]]) -> list[bool]:
    """Whether each map of ``run`` maps text not starting with ``$`` to text, floats, bools or None (what
    :func:`_flat_maps` checks, without ints), a map at a time with C loops over the run."""
    flags = list(map(operator.and_, map(_TEXT.issuperset, map(map, repeat(type), run)),
                     map(_FLAT.issuperset, map(map, repeat(type), map(_values, run)))))
    dollar = map(any, map(map, repeat(_dollar), compress(run, flags)))  # (only maps keyed by text)
    return [f and not next(dollar) for f in flags]


def _map_texts(run: list[dict[str, Any]], out: list[str]) -> None:
    """Append :func:`_text_field` of each map of ``run``: checked and encoded together when all are flat; else
    the flat ones together (told apart a map at a time with C loops) and the others on the general path."""
    if _flat_maps(run):
        texts = _maps_at_once(run)  # None: NaN or an infinity inside (the exact pass), or a text holding "},{"
        if texts is not None:
            out += texts
            return
    else:
        flags = _flat_flags(run)
        if any(flags):
            texts = _maps_at_once(list(compress(run, flags)))
            if texts is not None:
                # Each map's text from its kind's list, in the run's order (bool indexes: False 0, True 1).
                kinds = (map(_general_field, compress(run, map(_not, flags))), iter(texts))
                out += map(next, map(kinds.__getitem__, flags))
                return
    out += map(_general_field, run)


def _field_texts(col: list[Any]) -> list[str]:
    """``[_text_field(dumps, v) for v in col]``: the values of each type together, in C loops (text, finite
    floats, flat maps, None); anything else value by value."""
    types = set(map(type, col))
    if len(types) == 1:
        t = next(iter(types))
        if t is _NoneType:
            return ['"null"'] * len(col)
        got = _uniform_fields(t, col)
        return got if got is not None else list(map(_general_field, col))
    kinds = list(map(type, col))
    texts: dict[type, Iterator[str]] = {}
    for t in types:
        if t is _NoneType:
            texts[t] = repeat('"null"')
            continue
        some = list(compress(col, map(_is, kinds, repeat(t))))
        got = _uniform_fields(t, some)
        texts[t] = iter(got if got is not None else map(_general_field, some))
    # Each value's text from its type's list, in the column's order.
    return list(map(next, map(texts.__getitem__, kinds)))


def _numbers(col: list[Any]) -> list[str]:
    """:func:`_number` of each value."""
    if set(map(type, col)) == {float} and all(map(math.isfinite, col)):
        return _float_texts(col)
    return list(map(_number, col))


def _escaped_twice(text: str) -> str:
    return _S(_S(text))


#: Columns shorter than this are made value by value (a set of the values costs more than it saves).
_DISTINCT_MIN = 16


def _each_distinct(col: list[Any], make: Callable[[Any], str]) -> list[str]:
    """``list(map(make, col))`` for a column of hashable values of one exact type whose equal values have one
    text (no 0.0 beside -0.0: see :func:`_float_texts`), ``make`` called once per distinct value when a sample
    of the column repeats (a tool env's few actions, a timer's repeated durations): the same texts, as
    ``"".join`` reads them."""
    n = len(col)
    if n >= _DISTINCT_MIN and len(set(col[:64])) * 4 <= min(n, 64) * 3:
        distinct = set(col)
        if len(distinct) * 2 <= n:
            made = dict(zip(distinct, map(make, distinct)))
            return list(map(made.__getitem__, col))
    return list(map(make, col))


def _float_texts(col: list[float]) -> list[str]:
    """``float.__repr__`` of each value of a column of finite exact floats; each repeated value's repr made once
    (a float's repr is ~0.25 µs: a timer's durations repeat), unless 0.0 is among them (equal to -0.0 as a key,
    but not as text)."""
    if len(col) >= _DISTINCT_MIN and 0.0 not in col:
        return _each_distinct(col, _float_repr)
    return list(map(_float_repr, col))


def _retry_text(x: Any) -> str:
    return f"{x}" if type(x) is int else "null"


def _recovers_text(x: Any) -> str:
    return _fast([k for k in x if type(k) is int]) if x else "[]"


def _diff_text(diff: Any) -> str:
    return (_S(dumps([{"path": r[0], "action": r[1], "value": r[2], "old_value": r[3]} for r in diff]))
            if diff else '"[]"')


def _column(recs: list[dict[str, Any]], key: str) -> list[Any]:
    return list(map(_get, recs, repeat(key)))


def _rare(col: list[Any], text: Callable[[Any], str], empty: str) -> list[str] | str:
    """A column of fields most steps do not have: ``empty`` (one text for every step) when all are None, else
    each field's text (``text`` called only for the values that are not None)."""
    have = list(compress(range(len(col)), map(_is_not, col, repeat(None))))
    if not have:
        return empty
    out = [empty] * len(col)
    for k in have:
        out[k] = text(col[k])
    return out


def _flags(col: list[Any]) -> list[str] | str:
    """``"true"``/``"false"`` for each value's truth, or ``"false"`` (one text for every step) when none is true."""
    truth = list(map(bool, col))
    return [_TRUTH[b] for b in truth] if any(truth) else "false"


def _plain_text(col: list[Any]) -> bool:
    """Whether every value of ``col`` is text with nothing to escape (its field is the text quoted twice)."""
    return set(map(type, col)) == _TEXT and _nothing_to_escape("".join(col))


def _raw_column(k: int, col: list[Any]) -> tuple[Iterable[str], tuple[str, str] | None] | None:
    """The fields of column ``k`` of :data:`_STEP` without the text that opens and closes each field, and that
    text, when the column's values all take one form: text with nothing to escape (action, observation: quoted
    twice), finite floats (reward: quoted), flat maps encoded at once (info, note: ``"{`` and ``}"``); a column
    of maps that are not all flat: its whole fields and None; None otherwise."""
    types = set(map(type, col))
    if types == _TEXT:
        return (col, _QUOTED) if k in (1, 2) and _nothing_to_escape("".join(col)) else None
    if types == _FLOAT:
        return (_float_texts(col), _QUOTE) if all(map(math.isfinite, col)) else None
    if types == _DICT:
        shaped = _one_shape(col)
        if shaped is not None:
            return shaped
        if _flat_maps(col):
            parts = _map_parts(col)
            if parts is not None:
                return parts, _MAP
        elif len(col) > _RUN and _flat_maps(col[:-1]):
            # A tool env's infos: all flat but the last step's, which holds the env's checks (a list): the others
            # encoded at once, the last on the general path (its field without the "{ and }" around it).
            parts = _map_parts(col[:-1])
            last = _general_field(col[-1])
            if parts is not None and last.startswith('"{') and last.endswith('}"'):
                parts.append(last[2:-2])
                return parts, _MAP
        out: list[str] = []  # whole fields, run by run (the column found not flat: not checked again)
        for j in range(0, len(col), _RUN):
            _map_texts(col[j:j + _RUN], out)
        return out, None
    return None


def _one_shape(col: list[dict[str, Any]]) -> tuple[list[str], tuple[str, str]] | None:
    """A column of maps that all hold the same text keys in the same order (at most 8, none starting with
    ``$``), each mapped to text, keys and values with nothing to escape (a note's ``{"thought": ...}``): each
    field is its values between the keys' text, escaped twice as :func:`_text_field` escapes the map's JSON,
    with no JSON encoding (``(the values between the keys, (opening, closing))``); None otherwise."""
    sizes = set(map(len, col))
    if len(sizes) != 1:
        return None
    m = sizes.pop()
    if not 0 < m <= 8:
        return None
    keys = list(chain.from_iterable(col))
    shape = keys[:m]
    if (keys != shape * len(col) or set(map(type, shape)) != _TEXT or any(map(_dollar, shape))
            or not _nothing_to_escape("".join(shape))):
        return None
    values = list(chain.from_iterable(map(_values, col)))
    if set(map(type, values)) != _TEXT or not _nothing_to_escape("".join(values)):
        return None
    # {"k1":"v1","k2":"v2"} as JSON text, written as a JSON string: "{\"k1\":\"v1\",\"k2\":\"v2\"}"
    opening, closing = '"{\\"%s\\":\\"' % shape[0], '\\"}"'
    if m == 1:
        return values, (opening, closing)
    between = "".join('\\",\\"%s\\":\\"%%s' % k.replace("%", "%%") for k in shape[1:])
    return list(map(("%s" + between).__mod__, zip(*(values[j::m] for j in range(m))))), (opening, closing)


_QUOTED, _QUOTE, _MAP = (_QUOTES_OPEN, _QUOTES_CLOSE), ('"', '"'), ('"{', '}"')
_FLOAT, _DICT = frozenset({float}), frozenset({dict})
_RAW_KEYS = ((1, "action"), (2, "observation"), (3, "reward"), (6, "info"), (9, "note"))


def _step_columns(recs: list[dict[str, Any]], doubt: set[int] | None,
                  raw: bool = False) -> tuple[list[Iterable[str] | str], dict[int, tuple[str, str]]] | None:
    """The text of each field of :data:`_STEP` over the steps, a column at a time (a ``str``: the same text for
    every step), and the columns given raw with the text that opens and closes their fields (with ``raw``: see
    :func:`_raw_column`; the caller puts that text around them); None when a step index is not an int (the
    steps then go one by one)."""
    idx = _column(recs, "i")
    if set(map(type, idx)) != {int}:
        return None
    flags = _flags(_column(recs, "terminated")), _flags(_column(recs, "truncated"))
    unverified = list(map(_TRUTH.__getitem__, map(doubt.__contains__, idx))) if doubt else "false"
    raws: dict[int, tuple[str, str]] = {}
    texts: dict[int, Iterable[str]] = {}
    for k, key in _RAW_KEYS:
        col = _column(recs, key)
        got = _raw_column(k, col) if raw else None
        if got is None:
            texts[k] = _field_texts(col)
        else:
            texts[k], around = got
            if around is not None:
                raws[k] = around
    return [
        map(_int_repr, idx), texts[1], texts[2], texts[3], flags[0], flags[1], texts[6],
        _numbers(_column(recs, "time")), _numbers(_column(recs, "duration")), texts[9],
        _field_texts(_column(recs, "failure")), _rare(_column(recs, "retry_of"), _retry_text, "null"),
        _rare(_column(recs, "recovers"), _recovers_text, "[]"), _rare(_column(recs, "diff"), _diff_text, '"[]"'),
        unverified], raws


def steps_json(recs: list[dict[str, Any]], doubt: set[int] | None = None) -> list[str]:
    """``[step_json(rec, rec["i"] in doubt) for rec in recs]``, the same text, built a field at a time over the
    steps: a column of plain values (text, finite floats, flat maps of text) is encoded with C loops, once per
    value; any other value takes :func:`step_json`'s own path (a test compares them on hostile records)."""
    if not recs:
        return []
    got = _step_columns(recs, doubt)
    if got is None:
        return [step_json(rec, bool(doubt) and rec["i"] in doubt) for rec in recs]
    n = len(recs)
    return list(map(_STEP.__mod__, zip(*(repeat(c, n) if type(c) is str else c for c in got[0]))))


#: :data:`_STEP` around its fields: 16 pieces of text, the last followed by the comma that parts steps.
_STEP_TEXTS = (*_STEP.split("%s")[:-1], _STEP.split("%s")[-1] + ",")


def step_pieces(recs: list[dict[str, Any]], doubt: set[int] | None = None) -> list[str]:
    """The text of :func:`steps_json` ``(recs, doubt)``, each step followed by a comma, as the pieces that
    ``"".join`` makes it from: the steps' fields between :data:`_STEP`'s own text, so that a row is copied once,
    by its one join, instead of once per step and again by the row's."""
    if not recs:
        return []
    got = _step_columns(recs, doubt, raw=True)
    if got is None:
        return [f"{text}," for text in steps_json(recs, doubt)]
    cols, raws = got
    lit = list(_STEP_TEXTS)
    for k, (opening, closing) in raws.items():  # fields spliced bare: what opens and closes them goes around
        lit[k] += opening
        lit[k + 1] = closing + lit[k + 1]
    # A column of one text for every step (no step truncated, no diffs...) goes into the text around it: fewer
    # pieces a step to zip and join.
    interleaved: list[Iterable[str]] = []
    text = lit[0]
    for k, col in enumerate(cols, 1):
        if type(col) is str:
            text += col + lit[k]
        else:
            interleaved += (repeat(text), col)
            text = lit[k]
    interleaved.append(repeat(text))
    return list(chain.from_iterable(zip(*interleaved)))


#: A label's item of ``checks`` (the fields of :meth:`Label.to_record` but ``v`` and ``deleted``, after ``origin``),
#: with the fields that repeat from label to label (kind to author) as one piece, made once for each of their sets.
_LABEL_ITEM = '{"origin":"label","id":%s,"episode_id":%s,"target":%s,%s,"time":%s,"supersedes":%s}'
_LABEL_MIDDLE = '"kind":%s,"judge":%s,"value":%s,"score":%s,"rationale":%s,"tags":%s,"author":%s'
#: The same, as it reads inside a JSON string (the text of the row's ``checks`` field): escaping works character by
#: character, so the escaped item is the escaped template filled with the escaped texts of its fields.
_LABEL_ITEM_ESCAPED = _S(_LABEL_ITEM)[1:-1]
_MIDDLES: dict[tuple[Any, ...], tuple[str, str]] = {}  # a set of the repeated fields -> (text, escaped text)
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_int_repr = int.__repr__
_INT_OR_TEXT = {int, str}


def _escaped(text: str) -> str:
    """``text`` as it reads inside a JSON string (escaped, without the quotes)."""
    return _S(text)[1:-1]


def _column_texts(col: tuple[Any, ...], escaped: bool = False) -> Iterable[str]:
    """The JSON text (:func:`dumps`) of each value of a column, with one C loop where its values share a type;
    with ``escaped``, each text as it reads inside a JSON string (numbers and null read the same there)."""
    esc = _escaped if escaped else None
    types = set(map(type, col))
    if len(types) == 1:
        t = types.pop()
        if t is str:
            return map(esc, map(_S, col)) if esc else map(_S, col)
        if t is type(None):
            return repeat("null", len(col))
        if t is float and all(map(math.isfinite, col)):
            return map(_float_repr, col)
        if t is int and _I64_MIN <= min(col) and max(col) <= _I64_MAX:
            return map(_int_repr, col)
    elif types == _INT_OR_TEXT:  # targets: step indexes and "episode"
        ints = [x for x in col if type(x) is int]
        if _I64_MIN <= min(ints) and max(ints) <= _I64_MAX:
            if esc:
                return [_int_repr(x) if type(x) is int else esc(_S(x)) for x in col]
            return [_int_repr(x) if type(x) is int else _S(x) for x in col]
    return map(esc, map(dumps, col)) if esc else map(dumps, col)


def _middle(key: tuple[Any, ...]) -> tuple[str, str]:
    kind, judge, _vt, value, _st, score, rationale, tags, author = key
    text = _LABEL_MIDDLE % (dumps(kind), dumps(judge), dumps(value), dumps(score), dumps(rationale),
                            dumps(list(tags)), dumps(author))
    return text, _escaped(text)


def label_items(rows: list[Any], escaped: bool = False) -> list[str]:
    """The ``checks`` items of :class:`~trajrec.replay.label_model.LabelRow` s, as JSON text: what encoding
    ``{"origin": "label", **label.to_record()}`` without ``v`` and ``deleted`` gives, a column at a time; with
    ``escaped``, as each reads inside a JSON string (the row's ``checks`` field), escaped a field at a time, the
    repeated fields once for each of their sets (escaping the whole text again cost ~1 µs a label)."""
    (eids, targets, kinds, judges, values, scores, rationales, tags, authors, times, supersedes, ids,
     _deleted) = zip(*rows)
    # The repr is part of the key: 1, 1.0 and True (and 0.0 and -0.0) are equal as keys but not as JSON.
    keys = list(zip(kinds, judges, map(repr, values), values, map(repr, scores), scores, rationales, tags, authors))
    pick = itemgetter(1 if escaped else 0)
    try:
        missing = set(keys) - _MIDDLES.keys()
    except TypeError:  # not hashable (a usual label's fields always are)
        middles: Iterable[str] = map(pick, map(_middle, keys))
    else:
        if len(_MIDDLES) + len(missing) > 4096:
            _MIDDLES.clear()
            missing = set(keys)
        for key in missing:
            _MIDDLES[key] = _middle(key)
        middles = map(pick, map(_MIDDLES.__getitem__, keys))
    eid = _S(eids[0])
    return list(map((_LABEL_ITEM_ESCAPED if escaped else _LABEL_ITEM).__mod__, zip(
        _column_texts(ids, escaped),
        repeat(_escaped(eid) if escaped else eid) if eids.count(eids[0]) == len(eids) else
        _column_texts(eids, escaped),
        _column_texts(targets, escaped), middles, _column_texts(times, escaped),
        _column_texts(supersedes, escaped))))


#: :func:`_middle`'s escaped text for the middle text of a label line (:class:`~..label_join.LabelLines`).
_LINE_MIDDLES: dict[str, str] = {}


def line_pieces(lines: Any) -> list[str]:
    """``label_items(lines.rows(), escaped=True)``, the same text, each item followed by a comma, as the pieces
    ``"".join`` makes it from: spliced from the lines' own pieces (what
    :func:`~trajrec.replay.label_join.read_lines` accepts: ids with nothing to escape, a step index or
    "episode", a time written as its float's repr); only the text of the fields from ``kind`` on is made, once
    for each distinct text."""
    fields = lines.fields
    texts: dict[str, str] = {}
    for mid in fields:
        text = _LINE_MIDDLES.get(mid)
        if text is None:
            kind, judge, value, score, rationale, tags, author, _deleted = fields[mid]
            text = _middle((kind, judge, repr(value), value, repr(score), score, rationale, tags, author))[1]
            if len(mid) <= 1024:  # long texts (a judge's rationale) are made again rather than kept
                if len(_LINE_MIDDLES) >= 4096:
                    _LINE_MIDDLES.clear()
                _LINE_MIDDLES[mid] = text
        texts[mid] = _ITEM_FIELDS + text + _TIME_ESCAPED
    targets = lines.target_texts
    if '"episode"' in targets:
        targets = list(map(_EPISODE_TARGET.get, targets, targets))
    eid = _escaped(_S(lines.episode_id))
    # An item: _LABEL_ITEM_ESCAPED filled, cut where the label's own texts go.
    return list(chain.from_iterable(zip(
        repeat(_ITEM_ID), lines.ids, repeat(_ITEM_EID % eid), targets, map(texts.__getitem__, lines.mids),
        lines.time_texts, repeat(_ITEM_END))))


def line_items_text(lines: Any) -> str:
    """``",".join(label_items(lines.rows(), escaped=True))``, made from :func:`line_pieces`."""
    return "".join(line_pieces(lines))[:-1]


#: :data:`_LABEL_ITEM_ESCAPED` cut where a label line's own texts go (id, target, the fields from kind on, time).
_ITEM = _LABEL_ITEM_ESCAPED.split("%s")
_ITEM_ID = _ITEM[0] + '\\"'
_ITEM_EID = '\\"' + _ITEM[1] + "%s" + _ITEM[2]  # filled with the episode id's escaped text
_ITEM_FIELDS, _TIME_ESCAPED = _ITEM[3], _ITEM[4]
_ITEM_END = _ITEM[5] + "null" + _ITEM[6] + ","  # no line read as text supersedes another
_EPISODE_ESCAPED = _escaped('"episode"')
_EPISODE_TARGET = {'"episode"': _EPISODE_ESCAPED}


class RecordsFormat(JsonlFormat):
    name = "records"
    built_rows = True

    def rows(self, view: EpisodeView) -> tuple[Iterable[dict[str, Any]], int]:
        lines, steps = self.lines(view)
        return [json.loads(line) for line in lines], steps

    def lines(self, view: EpisodeView) -> tuple[list[str], int]:
        line, steps = self._row(view, "")
        return [line], steps

    def encode(self, view: EpisodeView) -> tuple[str, int, int]:
        # The newline goes in with the row's one join (a row is ~1 KB a step: each copy of it costs).
        text, steps = self._row(view, "\n")
        return text, 1, steps

    def _row(self, view: EpisodeView, end: str) -> tuple[str, int]:
        """The row's text followed by ``end``, and its steps."""
        ep = view.ep
        reset = ep.reset
        doubt = unverified_of(ep)  # salvaged steps: flagged per step
        # The row's pieces of text, joined once at the end (parts[0]: its head, made below).
        parts: list[str] = [""]
        steps = 0
        it = view.steps()
        while batch := list(islice(it, BATCH)):
            steps += len(batch)
            pieces = step_pieces(batch, doubt)
            if len(batch) < BATCH and len(parts) == 1:
                parts += pieces  # an episode of one batch: its pieces go straight into the row's join
            else:
                parts.append("".join(pieces))  # a long one: a batch at a time, never every step's pieces at once
        if steps:
            parts[-1] = parts[-1][:-1]  # no comma after the last step
        checks: list[dict[str, Any]] = []
        for c in ep.checks:
            rec = c.to_record()
            rec.pop("step", None)  # the index's copy of the target
            checks.append({"origin": "recorded", **rec})
        joined = view.joined
        label_parts: list[str] = []
        if joined.lines is not None and joined.lines.times_are_reprs():
            # Label lines read as text: their items spliced from the lines' pieces into the row's one join.
            recorded = _escaped(dumps(checks))
            label_parts = line_pieces(joined.lines)
            label_parts[-1] = label_parts[-1][:-1]
            checks_field = f'"{recorded[:-1]},' if checks else '"['
        elif joined.usual:
            # The labels' items as they read inside the row's text field, field by field over all of them (what
            # encoding their dicts, then that text as a string, gives).
            recorded = _escaped(dumps(checks))
            labels = ",".join(label_items(joined.rows, escaped=True))
            checks_field = f'"{recorded[:-1]},{labels}]"' if checks else f'"[{labels}]"'
        else:
            for lab in joined.labels():
                rec = lab.to_record()
                rec.pop("v", None)
                rec.pop("deleted", None)
                checks.append({"origin": "label", **rec})
            checks_field = _S(dumps(checks))
        task, summary = ep.task, ep.summary
        head = {
            "format": RECORDS_FORMAT,
            "episode_id": ep.episode_id,
            "file": view.ref.rel_path,
            "env_id": _str(task.get("env_id")),
            "task_id": _str(task.get("id")),
            "split": _str(task.get("split")),
            "outcome": _str(summary.get("outcome")),
            # null, not {}: a header record lost to damage took them (kept with --keep-partial; "damage" says so)
            "task": dumps(task) if ep.header_lost is None else "null",
            "provenance": dumps(ep.provenance) if ep.header_lost is None else "null",
            "summary": dumps(summary),
            "reset": {"seed": dumps(reset.seed), "options": dumps(reset.options),
                      "observation": dumps(reset.observation), "info": dumps(reset.info),
                      "state": dumps(reset.state),
                      "failure": dumps(reset.failure._asdict() if reset.failure else None),
                      "time": _time(reset.time), "duration": _time(reset.duration),
                      # salvaged by fsck --repair from a damaged first frame: no checksum vouches for it
                      "unverified": ep.reset_unverified is not None},
        }
        tail = {  # after "checks", whose text is made above
            "complete": episode_complete(ep),
            "lost": episode_lost(ep),
            "damage": [d if isinstance(d, str) else dumps(d) for d in ep.damage],
        }
        # The row's text is the encoding of head + {"steps": [...]} + tail as one dict: the steps are already
        # text, so they are spliced in rather than built as dicts and encoded again, with one join.
        parts[0] = f'{dumps_built(head)[:-1]},"steps":['
        if label_parts:
            parts.append(f'],"checks":{checks_field}')
            parts += label_parts
            parts.append(f']",{dumps_built(tail)[1:]}{end}')
        else:
            parts.append(f'],"checks":{checks_field},{dumps_built(tail)[1:]}{end}')
        return "".join(parts), steps
