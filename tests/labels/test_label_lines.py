"""Usual label lines read as text (`read_lines`): what it accepts must give exactly what decoding the lines and
`usual_rows` give (the same rows, the same `records` items), and any line it cannot vouch for (another shape,
text to escape, a time that is not its float's repr, NaN, duplicate keys, damage) must send the episode to the
decoding path, never be read differently."""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path
from typing import Any

from trajrec.replay import label_join
from trajrec.replay.autolabel import label_with_rules
from trajrec.replay.exports import ExportOptions, export
from trajrec.replay.exports.records import label_items, line_items_text
from trajrec.replay.label_join import EpisodeLabelIndex, decode_lines, read_lines
from trajrec.replay.label_model import Label, usual_rows
from trajrec.replay.labels import LabelStore


def _line(rec: dict[str, Any]) -> str:
    return json.dumps(rec, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _exact(rows: list[Any]) -> list[Any]:
    """Rows compared by type and repr of each field (1, 1.0 and True, 0.0 and -0.0 are equal as values)."""
    return [tuple((type(x).__name__, repr(x)) for x in r) for r in rows]


def _record(rng: random.Random, k: int) -> dict[str, Any]:
    """A label as `LabelStore` writes it (compact: empty optional fields left out), with varied fields."""
    lab = Label("ep", rng.choice([0, 1, 2, 7, 12, "episode"]), rng.choice(["judge", "rule", "environment"]),
                rng.choice(["human:ana", "rules@1"]), rng.choice([1, 0, -1, True, False, 0.5, -0.0, 0.0, 1.0]),
                score=rng.choice([None, None, 0.25, -0.0, 3]),
                rationale=rng.choice([None, "plain", 'quote " and \\ back', "tab\there", "a%sb", "ü"]),
                tags=rng.choice([(), ("typo",), ("typo", "wrong-tool")]), author=rng.choice([None, "cy"]),
                time=rng.choice([1.5, 2.0, 1796039189.3863163, 0.1 + 0.2, 1e-05, 1e16, -0.0, None, 0.0]),
                id=rng.choice([f"id{k}", f"{k:032x}", f"x%s{k}"]))
    return lab.to_record(compact=True)


#: Text changes to one line: each must leave the line unread as text or read exactly as decoding reads it.
_MUTATIONS: list[tuple[str, str]] = [
    ('"time":', '"time": '), ('"time":', '"time":1.50,"x":'), ('"target":', '"target":0'), ('"target":', '"target":-'),
    ('"v":1', '"v":2'), ('"v":1', '"v":1.0'), ('{"v"', ' {"v"'), ('{"v"', '\ufeff{"v"'), ('"kind":', '"kind":"rule","kind":'),
    ('"kind":', '"time":3.0,"kind":'), ('"kind":', '"deleted":false,"kind":'), ('"kind":', '"score":null,"kind":'),
    ('"kind":', '"extra":1,"kind":'), ('"kind":', '"supersedes":"x","kind":'), ('"kind":', '"kind" :'),
    ('"id":"', '"id":"\\u0041'), ('"id":"', '"id":"a\\"'), ('"episode_id":"ep"', '"episode_id":"eq"'),
    ('"episode_id":"ep"', '"episode_id":"e\\u0070"'), ('"value":', '"value":2,"value":'), ('"judge":', '"judge":"x y","judge":'),
]
_TIMES = ["1.50", "nan", "NaN", "Infinity", "-Infinity", "1e400", "1", "null", "-0.0", "1e-05", "1E-05", "1e+16",
          "0.30000000000000004", "0.30000000000000001", "1_0.0", " 1.0", "1.0 ", "true", '"1.0"', "[1.0]"]


def _mutate(rng: random.Random, line: str) -> str:
    roll = rng.random()
    if roll < 0.35:
        old, new = rng.choice(_MUTATIONS)
        return line.replace(old, new, 1)
    if roll < 0.7:
        head, sep, _ = line.rpartition('"time":')
        return f"{head}{sep}{rng.choice(_TIMES)}}}" if sep else line
    if roll < 0.8:
        return line + rng.choice([" ", "\r", ",", '{"a":1}', "}"])
    if roll < 0.9:
        return line[:rng.randrange(len(line))]
    return line.replace('"target":', '"target":' + rng.choice(["99999999999999999999", "3.0", "true", '"ep"']) + ",\"t\":", 1)


def test_read_lines_accepts_only_what_decoding_accepts_and_reads_it_the_same() -> None:
    rng = random.Random(1515)
    for judge, tags in (("human:ana", ["typo"]), ("rules@1", ["typo", "wrong-tool"])):  # judges and tags checked
        Label.from_record({"id": "w", "episode_id": "ep", "target": 0, "judge": judge, "value": 1, "tags": tags})
    accepted = refused = loose_accepted = 0
    for case in range(3000):
        lines = [_line(_record(rng, k)) for k in range(rng.randint(1, 6))]
        if rng.random() < 0.5:
            j = rng.randrange(len(lines))
            lines[j] = _mutate(rng, lines[j])
        if rng.random() < 0.05:
            lines.insert(rng.randrange(len(lines) + 1), "")
        block = "\n".join(lines).encode("utf-8", "surrogatepass")
        text = read_lines([block], "ep")
        recs = decode_lines([block])
        rows = usual_rows(recs, "ep") if recs is not None else None
        # Times as any JSON text of their floats (parquet's reading): what decoding reads, and told whether the
        # texts are the floats' reprs (exactly when the exact reading accepts the lines).
        loose = read_lines([block], "ep", exact_times=False)
        if loose is not None:
            assert rows is not None, lines
            assert _exact(loose.rows()) == _exact(rows), lines
            assert loose.times_are_reprs() == (text is not None), lines
            loose_accepted += 1
        if text is None:
            refused += 1
            continue
        assert loose is not None, lines
        accepted += 1
        assert rows is not None, lines  # never reads what the decoding path refuses
        assert _exact(text.rows()) == _exact(rows), lines
        assert line_items_text(text) == ",".join(label_items(rows, escaped=True)), lines
        judges: dict[str, int] = {}
        for r in rows:
            judges[r.judge] = judges.get(r.judge, 0) + 1
        assert list(text.judges().items()) == list(judges.items())
    assert accepted > 600 and refused > 600  # both paths were taken
    assert loose_accepted > accepted  # and times that are no repr (1.50, 1e2) were read by the loose reading


def test_read_lines_sorts_as_usual_rows_sorts() -> None:
    """Lines in the orders a labeler writes them (steps rising, the episode's labels last) and others: the rows
    in the order decoding gives."""
    Label.from_record({"id": "w", "episode_id": "ep", "target": 0, "judge": "human:ana", "value": 1})
    rng = random.Random(4)
    shapes = [[0, 1, 2, "episode"], [0, 1, 2, "episode", "episode"], [3, 5, "episode", "episode", "episode"],
              ["episode", 0, 1], [0, 0, 1], [2, 1, "episode"], [0, "episode", 1], ["episode"], [4],
              [0, 1, 1, "episode"], ["episode", "episode"]]
    for _ in range(300):
        targets = rng.choice(shapes)
        recs = [Label("ep", t, "judge", "human:ana", 1, time=rng.choice([None, 1.0, 2.0, 0.0, -0.0]),
                      id=rng.choice(["a", "b", "c", "d", "e"]) + str(k)).to_record(compact=True)
                for k, t in enumerate(targets)]
        block = "\n".join(map(_line, recs)).encode()
        text = read_lines([block], "ep")
        rows = usual_rows(decode_lines([block]), "ep")
        assert text is not None and rows is not None
        assert _exact(text.rows()) == _exact(rows), recs
        assert line_items_text(text) == ",".join(label_items(rows, escaped=True))


def test_read_lines_refuses_what_a_text_look_cannot_vouch_for() -> None:
    Label.from_record({"id": "w", "episode_id": "ep", "target": 0, "judge": "human:ana", "value": 1})
    good = _line(Label("ep", 3, "judge", "human:ana", 1, time=2.5, id="a1").to_record(compact=True))
    assert read_lines([good.encode()], "ep") is not None
    assert read_lines([], "ep") is None
    for bad in (good.replace("2.5", "nan"), good.replace("2.5", "2.50"), good.replace('"a1"', '"\\u0061\\u0031"'),
                good + "\n" + good,  # the same id twice: an edit chain for the store to resolve
                good.replace('"human:ana"', '"human: a name with spaces"'), good.replace('"ep"', '"ep2"'),
                good.replace('"value":1', '"value":1,"tags":["not a word"]'),
                good[:-1] + ',"x":[1]}', good.replace("{", "{ ", 1), good + "\n"):
        assert read_lines([bad.encode()], "ep") is None, bad
    assert read_lines([good.encode()], "ep2") is None
    # A judge and a tag list no line named yet (a run's first labels): checked as a Label's reading checks them,
    # then read as text, as decoding reads them.
    new = good.replace('"human:ana"', '"human:nobody-checked-yet"').replace('"value":1', '"value":1,"tags":["x-1"]')
    text = read_lines([new.encode()], "ep")
    assert text is not None
    assert _exact(text.rows()) == _exact(usual_rows(decode_lines([new.encode()]), "ep"))


def _exports(run: Path, out: Path) -> dict[str, bytes]:
    out.mkdir()
    got = {}
    for k, (fmt, opts) in enumerate([("records", {}), ("chat", {}), ("trl-stepwise", {"unlabeled": "false"}),
                                     ("kto", {}), ("records", {"prefer": "model:*,rule"}), ("parquet", {})]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export([run], fmt, f"{out}/{k}-{fmt}/", options=ExportOptions(**opts))  # a folder: with its card
        got.update({f"{k}-{fmt}/{f.name}": f.read_bytes() for f in sorted((out / f"{k}-{fmt}").iterdir())})
    return got


def test_exports_are_the_same_with_lines_read_as_text_and_decoded(run_dir: Path, tmp_path: Path,
                                                                  monkeypatch: Any) -> None:
    label_with_rules([run_dir])
    store = LabelStore(run_dir)
    eids = sorted({lab.episode_id for lab in store.current()})
    store.add(eids[0], "episode", True, judge="human:ana", rationale='said "fine" \\ ok', tags=["typo"])
    store.add(eids[0], 1, -0.0, judge="model:rubric@2", score=-0.0)
    store.add(eids[1], 0, 0.5, judge="model:rubric@2", score=0.5, author="cy%s")
    store.close()
    calls: list[bool] = []
    real = read_lines

    def counted(blocks: list[bytes], eid: str, lines: int | None = None, **kw: Any) -> Any:
        assert lines == b"\n".join(blocks).count(b"\n") + 1  # the index's count of the lines it placed
        got = real(blocks, eid, lines, **kw)
        calls.append(got is not None)
        return got

    monkeypatch.setattr(label_join, "read_lines", counted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        LabelStore(run_dir).current()  # judges and tag lists checked, as an export's first episode would
    as_text = _exports(run_dir, tmp_path / "text")
    assert sum(calls) >= 2  # the lines were read as text
    monkeypatch.setattr(label_join, "read_lines", lambda blocks, eid, lines=None, **kw: None)
    decoded = _exports(run_dir, tmp_path / "decoded")
    assert as_text.keys() == decoded.keys()
    for name in as_text:
        assert as_text[name] == decoded[name], name  # the cards too: the judges' counts in the lineage
    monkeypatch.setattr(label_join, "read_lines", real)
    index = EpisodeLabelIndex(run_dir)
    for eid in eids:
        text = index.episode_labels(eid)
        assert text.lines is not None
        assert [lab.to_record() for lab in text.labels()] == [lab.to_record() for lab in store.current(eid)]


def test_long_field_texts_are_read_each_time_without_being_kept() -> None:
    Label.from_record({"id": "w", "episode_id": "ep", "target": 0, "judge": "human:ana", "value": 1})
    long = "why " * 600  # fields from kind on longer than the cache keeps
    block = "\n".join(_line(Label("ep", t, "judge", "human:ana", 1, rationale=long + str(t % 2), time=1.5,
                                  id=f"i{t}").to_record(compact=True)) for t in range(4)).encode()
    kept = len(label_join._MIDDLES)
    for _ in range(2):
        text = read_lines([block], "ep")
        rows = usual_rows(decode_lines([block]), "ep")
        assert text is not None and _exact(text.rows()) == _exact(rows)
        assert line_items_text(text) == ",".join(label_items(rows, escaped=True))
    assert len(label_join._MIDDLES) == kept


def test_lines_cut_at_their_separators_are_what_the_regex_reads() -> None:
    """`_split_lines` (C string cuts) must give the fields `_LINE` gives, or decline: on usual lines, mutated ones
    (the mutations above, and cuts' own hazards: separators inside texts, an id or a target that is not the
    regex's, a comma or brace in the time, blank and joined lines, another episode's line)."""
    rng = random.Random(2626)
    hazards = [('"kind":', '"kind":"x,\\"time\\":1.0",'), ('"id":"', '"id":"'), ('"id":"', '"id":"x\\ty'),
               ('"time":', '"time":1.0,"kind":"y","time":'), ('"target":', '"target":+'), ('"target":', '"target": '),
               ('"target":', '"target":00'), ('"target":', '"target":"episode","t":'), ('}', '}}'),
               ('"episode_id":"ep"', '"episode_id":"ep","target":1,"kind":"a","time":1.0}\n{"v":1,"id":"z",'
                                     '"episode_id":"ep"')]
    cut = 0
    for case in range(3000):
        lines = [_line(_record(rng, k)) for k in range(rng.randint(1, 8))]
        for _ in range(rng.choice([0, 0, 1, 2])):
            j = rng.randrange(len(lines))
            if rng.random() < 0.5:
                lines[j] = _mutate(rng, lines[j])
            else:
                old, new = rng.choice(hazards)
                lines[j] = lines[j].replace(old, new, 1)
        if rng.random() < 0.05:
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(["", lines[0] + lines[-1]]))
        text = "\n".join(lines)
        if not text.isascii():
            continue
        n = text.count("\n") + 1
        got = label_join._split_lines(text, "ep", n)
        found = label_join._LINE.findall("\n" + text)
        if got is None:
            continue
        cut += 1
        assert len(found) == n, lines  # every line is one the regex reads
        ids, eids, targets, mids, times = zip(*found)
        assert set(eids) == {"ep"}, lines
        assert got == (ids, targets, mids, times), lines
    assert cut > 500  # (the others: lines the cuts decline, or not ASCII)


def test_times_written_otherwise_read_loosely_for_parquet_and_spliced_only_as_reprs(run_dir: Path,
                                                                                   tmp_path: Path) -> None:
    """Label lines whose times are JSON but not their floats' reprs (``1.50``, ``2e0``: another tool wrote them):
    parquet reads them as text (``exact_times`` off for its index), and a ``records`` export over the same
    ``Source`` afterwards splices no such text (``times_are_reprs``): every output as with lines decoded."""
    from trajrec.replay.exports.source import Source

    label_with_rules([run_dir])
    labels = next((run_dir / ".trajrec" / "labels").glob("*.jsonl"))
    text = labels.read_text()
    lines = text.splitlines()
    # Every line's time written as another tool may write it: the same float, other text.
    odd = [line.rpartition(',"time":')[0] + ',"time":' + ("%.6e" % json.loads(line)["time"]) + "}"
           if k % 2 else line for k, line in enumerate(lines)]
    labels.write_text("\n".join(odd) + "\n")
    assert any(float(o.rpartition(":")[2][:-1]) == json.loads(o)["time"] and o != line
               for o, line in zip(odd, lines))
    calls: list[Any] = []
    real = label_join.read_lines

    def counted(blocks: list[bytes], eid: str, lines: int | None = None, **kw: Any) -> Any:
        got = real(blocks, eid, lines, **kw)
        calls.append((kw.get("exact_times", True), got is not None))
        return got

    outs = {}
    for mode in ("shared", "decoded"):
        src = Source([run_dir], join_labels=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if mode == "decoded":
                label_join.read_lines = lambda blocks, eid, lines=None, **kw: None  # type: ignore[assignment]
            else:
                label_join.read_lines = counted  # type: ignore[assignment]
            try:
                export(src, "parquet", tmp_path / f"{mode}.parquet")
                export(src, "records", tmp_path / f"{mode}.jsonl")
            finally:
                label_join.read_lines = real  # type: ignore[assignment]
        outs[mode] = ((tmp_path / f"{mode}.parquet").read_bytes(), (tmp_path / f"{mode}.jsonl").read_bytes())
    assert (False, True) in calls  # parquet read the odd times as text
    assert outs["shared"] == outs["decoded"]  # (the parquet files byte for byte: a NaN return is no equal value)
