"""Token counts and costs that are not numbers: ``import atif`` refuses them with the file and field named, and
``export --format atif`` never crashes on a recorded note holding one (a note is data from anyone)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from import_helpers import ATIF

from trajrec import Recorder
from trajrec.cli import main
from trajrec.importers import ImportFormatError, import_paths

BAD = [[1], [None], "12", True, float("nan"), -1, 1.5, {"n": 1}]


def _mutated(tmp_path: Path, where: tuple, value: object) -> Path:
    doc = json.loads(ATIF.read_text())
    obj = doc
    for k in where[:-1]:
        obj = obj[k]
    obj[where[-1]] = value
    path = tmp_path / "bm.trajectory.json"
    path.write_text(json.dumps(doc, indent=1))  # NaN as JSON's common NaN extension, which Python's reader accepts
    return path


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_import_refuses_a_token_count_that_is_not_a_number(tmp_path: Path, value: object) -> None:
    path = _mutated(tmp_path, ("steps", 2, "metrics", "completion_tokens"), value)
    with pytest.raises(ImportFormatError) as err:
        import_paths("atif", [path], tmp_path / "run")
    assert err.value.field == "$.steps[2].metrics.completion_tokens"
    assert err.value.path == str(path) and "expected a whole number >= 0" in str(err.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("where", [("steps", 1, "metrics", "cost_usd"), ("final_metrics", "total_prompt_tokens"),
                                   ("final_metrics", "total_cost_usd"), ("steps", 1, "metrics")], ids=str)
def test_import_refuses_other_metrics_that_are_not_numbers(tmp_path: Path, where: tuple, capsys) -> None:
    path = _mutated(tmp_path, where, ["0.1"])
    code = main(["import", "atif", str(path), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    field = "$." + ".".join(f"[{w}]" if isinstance(w, int) else str(w) for w in where).replace(".[", "[")
    assert code != 0 and "Traceback" not in err
    assert err.startswith(f"trajrec import: error: {path} field {field}: expected ")
    assert "found [\"0.1\"]" in err


def test_import_still_takes_null_and_whole_floats(tmp_path: Path) -> None:
    doc = json.loads(ATIF.read_text())
    doc["steps"][1]["metrics"]["cached_tokens"] = None
    doc["steps"][2]["metrics"]["completion_tokens"] = 44.0
    path = tmp_path / "ok.trajectory.json"
    path.write_text(json.dumps(doc, indent=1))
    report = import_paths("atif", [path], tmp_path / "run")
    assert report.episodes == 1


def _record(out: Path, notes: list[dict]) -> None:
    class Env:
        def __init__(self) -> None:
            self.n = 0

        def reset(self, *, seed=None, options=None):
            self.n = 0
            return "task", {}

        def step(self, action):
            self.n += 1
            return f"obs {self.n}", 0.0, self.n >= len(notes), False, {}

    rec = Recorder(Env(), out)
    rec.reset(seed=0)
    for note in notes:
        rec.note(**note)
        rec.step('{"name": "calc", "arguments": {"expr": "1+1"}}')
    rec.close()


def test_export_sums_only_numbers_and_names_what_it_left_out(tmp_path: Path, capsys) -> None:
    good = {"model_call": {"model": "m", "usage": {"prompt_tokens": 10, "completion_tokens": 5}, "cost": 0.25}}
    _record(tmp_path / "good", [good, good])
    bad = [{"model_call": {"usage": {"prompt_tokens": 7, "completion_tokens": [1]}, "cost": "0.1"}},
           {"metrics": {"prompt_tokens": 3, "completion_tokens": None, "cached_tokens": float("nan"),
                        "cost_usd": [2]}},
           {"model_call": {"usage": {"prompt_tokens": True, "completion_tokens": -4}, "cost": float("inf")}}]
    _record(tmp_path / "bad", bad)
    out = tmp_path / "all.jsonl"
    code = main(["export", str(tmp_path / "good"), str(tmp_path / "bad"), "--format", "atif", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, err
    folder = {f.name: run for run in ("good", "bad") for f in (tmp_path / run).glob("*.msgpack.zst")}
    docs = {folder[Path(d["extra"]["trajrec"]["file"]).name]: d for d in map(json.loads, out.read_text().splitlines())}
    assert set(docs) == {"good", "bad"}
    assert docs["good"]["final_metrics"]["total_prompt_tokens"] == 20
    fm = docs["bad"]["final_metrics"]
    assert (fm["total_prompt_tokens"], fm["total_completion_tokens"], fm.get("total_cost_usd")) == (10, 0, None)
    left = [s["extra"]["trajrec"].get("metrics_left_out") for s in docs["bad"]["steps"][1:]]
    assert left == [["note.model_call.usage.completion_tokens: [1]", "note.model_call.cost: '0.1'"],
                    ["note.metrics.cached_tokens: nan", "note.metrics.cost_usd: [2]"],
                    ["note.model_call.usage.prompt_tokens: True", "note.model_call.usage.completion_tokens: -4",
                     "note.model_call.cost: inf"]]
    for doc in docs.values():  # every number written is a real number of the right kind
        for st in doc["steps"]:
            for k, v in (st.get("metrics") or {}).items():
                if k in ("prompt_tokens", "completion_tokens", "cached_tokens"):
                    assert v is None or (type(v) is int and v >= 0)  # null: unknown
    # The export reads back: every value there is a number again.
    assert main(["import", "atif", str(out), "--out", str(tmp_path / "back")]) == 0


def test_export_skips_and_names_an_episode_it_cannot_map(tmp_path: Path, capsys) -> None:
    """A note value of a shape the mapping does not expect (an array where text is looked for) leaves that
    episode out, named, and the others are written."""
    _record(tmp_path / "good", [{"thought": "fine"}])
    _record(tmp_path / "odd", [{"content_parts": np.zeros(0), "atif_before": np.zeros(0)}])
    out = tmp_path / "all.jsonl"
    code = main(["export", str(tmp_path / "good"), str(tmp_path / "odd"), "--format", "atif", "--out", str(out)])
    err = capsys.readouterr().err
    assert "Traceback" not in err and code == 0, err
    assert len(out.read_text().splitlines()) == 1
    (odd,) = (tmp_path / "odd").glob("*.msgpack.zst")
    assert f"{odd}: a recorded value of an unexpected type cannot be written as ATIF" in err
