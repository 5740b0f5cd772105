"""``records`` encodes steps a column at a time (``steps_json``) and label items a column at a time
(``_column_texts``): the text must be what the value-by-value path gives (``step_json``, ``dumps``) on any
record, and anything unusual must fall back to it, never be written differently."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np

from trajrec.recorder import Unencodable
from trajrec.replay.exports import export, records
from trajrec.replay.exports.encode import dumps
from trajrec.replay.exports.records import _column_texts, step_json, step_pieces, steps_json


class Text(str):
    pass


class Map(dict):  # type: ignore[type-arg]
    pass


def _hostile() -> list[Any]:
    return [
        float("nan"), float("inf"), -float("inf"), -0.0, 0.0, 1e308, 5e-324, 2**63 - 1, 2**63, -(2**63) - 1, 2**70,
        "tool said \udcff\udcfe", "\ud83d alone", "a\x00b\x1b[31m\u2028", "", "ünï", Text("sub"),
        {"$k": 1}, {"a": {"$b": 2}}, {"a": "$b"}, {1: "one", "1": "text one"}, {None: 1}, {(1, 2): 3},
        {"x": float("nan")}, {"x": float("inf")}, {"x": 2**64}, {"x": -(2**63)}, {"x": 2**63 - 1}, {"x": [1, 2]},
        {"x": (1, (2, [3]))}, {"x": b"\x00\xff"}, {"x": {1, 2}}, {"x": np.float32(0.5)}, {"x": np.int64(7)},
        {"x": "\udcff"}, {"\udc80k": 1}, {"x": True, "y": None, "z": 1.5, "w": "t"}, {}, Map(a=1), Map(),
        np.float64(1.5), np.int64(-3), np.uint64(2**64 - 1), np.bool_(True), np.float32(np.nan), np.arange(3),
        b"\x01", bytearray(b"ab"), {1, 2}, frozenset({"a"}), (1, (2, [3]), ()), [1, [2.5, "x"]], [],
        [float("nan")], [2**70], None, True, False, 0, -1, 7, 1.5, Unencodable("x.Y", "<y>"),
    ]


def _plain(rng: random.Random) -> Any:
    return rng.choice([
        "obs text", f"file {rng.randint(0, 99)}: lorem ipsum", rng.random(), 0.0, 1.0,
        {"tool": "cat"}, {"tool": "cat", "error": "no such file"}, {"thought": f"step {rng.randint(0, 9)}"},
        {"n": rng.randint(-5, 5), "ok": True, "x": None, "f": 2.5}, None])


def _record(i: int, rng: random.Random, odd: float) -> dict[str, Any]:
    hostile = _hostile()

    def value() -> Any:
        return rng.choice(hostile) if rng.random() < odd else _plain(rng)

    rec: dict[str, Any] = {"t": "step", "i": i}
    for key in ("action", "observation", "reward", "info", "note", "failure"):
        if rng.random() < 0.9:
            rec[key] = value()
    rec["terminated"] = rng.choice([False, True, 0, 1, None, "", "x"])
    rec["truncated"] = rng.choice([False, True])
    rec["time"] = rng.choice([rng.random() * 1e9, 1, None, float("nan"), float("inf"), True, "x", 2**70])
    rec["duration"] = rng.choice([rng.random(), 0.0, -0.0, None, 3])
    if rng.random() < 0.2:
        rec["retry_of"] = rng.choice([i - 1, None, True, 2**70, "x"])
    if rng.random() < 0.2:
        rec["recovers"] = rng.choice([[i - 1], [], [True, 1, "x"], None])
    if rng.random() < 0.1:
        rec["diff"] = rng.choice([[["files.a", "set", value(), value()]], [], None])
    return rec


def test_steps_a_column_at_a_time_are_the_steps_one_by_one_on_hostile_records(monkeypatch) -> None:
    general: list[Any] = []
    one_by_one = records._general_field
    monkeypatch.setattr(records, "_general_field", lambda v: general.append(v) or one_by_one(v))
    rng = random.Random(15)
    for case in range(300):
        odd = rng.choice([0.0, 0.0, 0.01, 0.1, 0.5, 1.0])
        n = rng.choice([1, 2, 5, 63, 64, 65, 130, 300])
        recs = [_record(i, rng, odd) for i in range(n)]
        doubt = rng.choice([None, set(), {0, 3, 64}])
        want = [step_json(r, bool(doubt) and r["i"] in doubt) for r in recs]
        general.clear()
        assert steps_json(recs, doubt) == want, (case, odd, n)
        assert "".join(step_pieces(recs, doubt)) == "".join(f"{w}," for w in want), (case, odd, n)
        if odd == 0.0:
            assert not general  # plain values never leave the C loops
        elif odd == 1.0 and n > 5:
            assert general  # hostile ones do


def test_a_step_index_that_is_not_an_int_takes_the_step_by_step_path() -> None:
    recs = [{"i": 0, "action": "a"}, {"i": True, "action": "b"}]
    assert steps_json(recs) == [step_json(r) for r in recs]
    assert "".join(step_pieces(recs)) == "".join(f"{step_json(r)}," for r in recs)


def test_label_columns_are_their_values_one_by_one() -> None:
    rng = random.Random(7)
    values = _hostile()
    columns = [[1, "episode", 3], [0, 2**63 - 1, "episode"], [1, 2**63, "episode"], [-(2**63) - 1, "episode"],
               [1, True, "episode"], ["a", Text("b")], [0.5, 1.0], [0.5, float("nan")], [1, 2], [None, None],
               [None, 1], [2**70, 1], ["x", "\udcff"]]
    columns += [[rng.choice(values) for _ in range(rng.randint(1, 6))] for _ in range(300)]
    for col in columns:
        assert list(_column_texts(tuple(col))) == [dumps(v) for v in col], col


def test_batches_of_steps_join_into_the_same_rows(builtin_run, tmp_path, monkeypatch) -> None:
    whole = tmp_path / "whole.jsonl"
    export([builtin_run], "records", whole)
    monkeypatch.setattr(records, "BATCH", 2)  # an episode's steps in many batches
    monkeypatch.setattr(records, "_RUN", 1)
    cut = tmp_path / "cut.jsonl"
    export([builtin_run], "records", cut)
    assert cut.read_bytes() == whole.read_bytes()


def test_label_items_escaped_field_by_field_are_the_items_escaped_whole() -> None:
    from trajrec.replay.label_model import LabelRow

    rng = random.Random(3)
    texts = ["plain", 'q"uote', "back\\slash", "ctl\x01\n\t", "ünï", "\u2028", "lone \udcff", "", "$x"]
    for _ in range(200):
        rows = []
        for k in range(rng.randint(1, 8)):
            rows.append(LabelRow(
                rng.choice(["ep", 'e"p']), rng.choice([0, k, "episode", 2**70, 'x"y']),
                rng.choice(["rule", "judge", 'k"']), rng.choice(["human:ana", "model:\\m"]),
                rng.choice([1, -1, 0, True, 1.0, -0.0, 0.5, "cat\"egory", 2**70]),
                rng.choice([None, 0.25, -0.0, 2**64]), rng.choice([None, *texts]),
                rng.choice([(), ("a",), ('t"ag', "\udc80")]), rng.choice([None, *texts]),
                rng.choice([None, 1.5, 2, float("nan"), float("inf"), 2**70]),
                rng.choice([None, f"s{k}", 'q"']), rng.choice([f"id{k}", f'i"d{k}', f"\\{k}"]), False))
        whole = records.label_items(rows)
        assert [json.loads(t)["origin"] for t in whole] == ["label"] * len(rows)  # JSON objects, one a row
        assert records.label_items(rows, escaped=True) == [records._escaped(t) for t in whole], rows


def test_text_with_nothing_to_escape_is_quoted_twice_as_two_escapes_give() -> None:
    from trajrec.replay.exports.encode import _encode_str

    chars = [*map(chr, range(0x3000)), "\ud800", "\udcff", "\U0001f600", "\ufeff", "\x7f"]
    for c in chars:
        col = ["a" + c + "b", "plain"]
        assert records._uniform_fields(str, col) == [_encode_str(_encode_str(v)) for v in col], repr(c)


def test_a_column_of_flat_maps_encoded_at_once_is_each_map_encoded_alone() -> None:
    """Maps whose text holds the cut between maps (``},{``), empty maps, escapes, NaN: the same fields as one by
    one, or the slower path."""
    rng = random.Random(3)
    values = ["x", "},{", "{", "}", ",", '"},{"', "a\\b", "\n", "\udcff", "ü", "", 1.5, True, None, 7, -0.0]
    for _ in range(400):
        col = [{rng.choice(["k", "},{", "a b", "é"]): rng.choice(values) for _ in range(rng.randint(0, 3))}
               for _ in range(rng.randint(1, 70))]
        if rng.random() < 0.1:
            col[rng.randrange(len(col))]["n"] = float("nan")
        want = [records._general_field(m) for m in col]
        assert records._field_texts(col) == want, col
        whole = records._maps_at_once(col)
        assert whole is None or whole == want, col


def test_nothing_to_escape_is_what_the_escapes_pattern_finds_nothing_in() -> None:
    for c in map(chr, [*range(0x3000), 0xD800, 0xDCFF, 0xFFFF, 0x10FFFF]):
        for text in (c, f"ab{c}", f"{c}\u00e9z"):
            assert records._nothing_to_escape(text) == (records._ESCAPES.search(text) is None), repr(text)


def test_a_files_relative_path_is_what_relative_to_gives() -> None:
    """`EpisodeRef.rel_path` cuts the root off as text where it can: the same as `Path.relative_to`."""
    import itertools
    from pathlib import Path

    from trajrec.replay.exports.source import EpisodeRef

    roots = ["/a", "/a/b", ".", "a", "/", "a/b", "/a/b/c.zst", "..", "../a"]
    paths = ["/a/b/c.zst", "a/b/c.zst", "/a/bc/d.zst", "c.zst", "/c.zst", "../a/x.zst", "a/b"]
    for root, path in itertools.product(roots, paths):
        ref = EpisodeRef(Path(path), {}, None, Path(root))  # type: ignore[arg-type]
        try:
            want = ref.path.relative_to(ref.root).as_posix() if ref.root != ref.path else ref.path.name
        except ValueError:
            want = ref.path.name
        assert ref.rel_path == want, (root, path)


def test_columns_of_one_form_spliced_bare_are_the_steps_one_by_one() -> None:
    """Columns whose fields are spliced without their quotes (plain text, finite floats, flat maps encoded at
    once) and the same columns with one odd value (to escape, NaN, a map holding the cut ``},{``, a list)."""
    rng = random.Random(11)
    odd = {"action": ['say "hi"', 1.5], "observation": ["line\nbreak", None], "reward": [float("nan"), 1],
           "info": [{"a": "},{"}, {"a": [1]}, {"n": float("inf")}], "note": [{"t": "x\\y"}, {1: "k"}]}
    for case in range(200):
        n = rng.choice([1, 2, 3, 70])
        recs = [{"t": "step", "i": i, "action": f"act {i}", "observation": f"obs {rng.random()}",
                 "reward": rng.choice([0.0, -0.0, 1.5, 1e300]), "terminated": False, "truncated": False,
                 "info": {"tool": "cat", "k": rng.choice(["v", "w"])}, "time": 1.0 + i, "duration": 0.5,
                 "note": {"thought": f"step {i}"}} for i in range(n)]
        if rng.random() < 0.6:
            key = rng.choice(list(odd))
            recs[rng.randrange(n)][key] = rng.choice(odd[key])
        want = "".join(f"{step_json(r)}," for r in recs)
        assert "".join(step_pieces(recs)) == want, (case, recs)


def test_maps_of_one_shape_spliced_between_their_keys_are_the_steps_one_by_one() -> None:
    """Columns of maps with the same text keys in the same order mapping to plain text (spliced between the keys'
    text, no encoding), and the same with one map that breaks the shape: another key order, a key or a value to
    escape, a ``$`` key, a ``%`` in a key, a number, a text subclass, a lone surrogate, a missing or extra key."""
    rng = random.Random(17)
    shapes = [("thought",), ("tool", "args"), ("a%s", "b", "c"), ("", "k")]
    odd: list[Any] = [lambda m: dict(reversed(list(m.items()))), lambda m: {**m, "x": "y"},
                      lambda m: dict(list(m.items())[1:]), lambda m: {**m, next(iter(m)): 'say "hi"'},
                      lambda m: {**m, next(iter(m)): "back\\slash"}, lambda m: {**m, next(iter(m)): "tab\there"},
                      lambda m: {"$k": "v", **m}, lambda m: {'k"q': "v", **m}, lambda m: {**m, next(iter(m)): 1.5},
                      lambda m: {**m, next(iter(m)): Text("sub")}, lambda m: {**m, next(iter(m)): "\udcff"},
                      lambda m: {**m, next(iter(m)): None}, lambda m: {Text("thought"): "x"}, lambda m: {},
                      lambda m: Map(m), lambda m: {**m, next(iter(m)): "},{"}]
    for case in range(300):
        shape = rng.choice(shapes)
        n = rng.choice([1, 2, 3, 17, 70])
        key = rng.choice(["note", "info"])
        recs = [{"t": "step", "i": i, "action": "a", "observation": "o", "reward": 0.0, "terminated": False,
                 "truncated": False, "time": 1.0 + i, "duration": 0.5,
                 key: {k: rng.choice([f"v {i} %s", "", "ünï", f"{rng.random()}"]) for k in shape}}
                for i in range(n)]
        if rng.random() < 0.5:
            j = rng.randrange(n)
            recs[j][key] = rng.choice(odd)(recs[j][key])
        want = "".join(f"{step_json(r)}," for r in recs)
        assert "".join(step_pieces(recs)) == want, (case, recs)
        assert steps_json(recs) == [step_json(r) for r in recs], (case, recs)


def test_maps_all_flat_but_the_last_are_the_steps_one_by_one() -> None:
    """A column of flat maps whose last is not flat (a tool env's last info holds the env's checks): the others
    encoded at once, the last on the general path; and the same with an odd map elsewhere too."""
    rng = random.Random(19)
    last_maps: list[Any] = [{"tool": "submit", "checks": [{"value": True, "rationale": 'ok "x"'}]},
                            {"n": float("nan")}, {"$k": [1]}, {1: "one"}, {"a": "},{"}, {"x": 2**70}, Map(a=1),
                            {"t": Text("sub")}, {}, {"nested": {"k": "v"}}]
    for case in range(150):
        n = rng.choice([65, 66, 130])
        recs = [{"t": "step", "i": i, "action": "a", "observation": "o", "reward": 0.0, "terminated": False,
                 "truncated": False, "time": 1.0 + i, "duration": 0.5,
                 "info": rng.choice([{"tool": "cat"}, {"tool": "cat", "error": "no such file"}, {"k": 1.5}])}
                for i in range(n)]
        recs[-1]["info"] = rng.choice(last_maps)
        if rng.random() < 0.3:
            recs[rng.randrange(n - 1)]["info"] = rng.choice(last_maps)
        want = "".join(f"{step_json(r)}," for r in recs)
        assert "".join(step_pieces(recs)) == want, (case, recs[-1])
