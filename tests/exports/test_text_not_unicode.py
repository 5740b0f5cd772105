"""Recorded text holding lone surrogates (tool output decoded with surrogateescape) exports in every format, to a
file and through workers, as text every reader loads (pyarrow, ``datasets``): each lone surrogate becomes the text
``\\udcXX``, the export warns with the count, and nothing else changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec import Recorder
from trajrec.cli import main

BAD = "ls output: caf\udce9.txt"


class _Env:
    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        return "start", {}

    def step(self, action):  # type: ignore[no-untyped-def]
        return BAD, 0.0, True, False, {"k\udcff": 1}


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    env = Recorder(_Env(), tmp_path / "runs" / "sur")
    env.reset(seed=0)
    env.step("ls \udce9")
    env.close()
    assert main(["record", "trajrec/Shell-v0", "--episodes", "2", "--out", str(tmp_path / "runs" / "good"),
                 "--json"]) == 0
    assert main(["label", "auto", str(tmp_path / "runs"), "--rules"]) == 0
    return tmp_path / "runs"


@pytest.mark.parametrize("fmt", ["records", "chat", "trl-stepwise", "kto", "atif", "parquet"])
def test_every_format_exports_text_that_is_not_unicode(fmt: str, run: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    extra = ["--unlabeled", "neutral", "--observations"] if fmt == "trl-stepwise" else []
    outs = []
    for workers in ("1", "2"):
        if fmt == "kto" and workers == "2":
            break
        out = tmp_path / f"x{workers}.{'parquet' if fmt == 'parquet' else 'jsonl'}"
        capsys.readouterr()
        assert main(["export", str(run), "--format", fmt, "--out", str(out), "--workers", workers, *extra]) == 0
        err = capsys.readouterr().err
        assert "Traceback" not in err
        if fmt != "kto":  # kto rows are episode-level: the failed step's text may not be in them
            assert "characters of recorded text are not Unicode" in err or "character of recorded" in err, err
        outs.append(out.read_bytes())
        if fmt == "parquet":
            table = pq.read_table(out)
            assert table.num_rows >= 3
            assert any("\\udce9" in str(v) for v in table.column("observation").to_pylist())
        else:
            text = out.read_text(encoding="utf-8")  # strict UTF-8
            rows = [json.loads(line) for line in text.splitlines()]
            assert rows and (fmt == "kto" or "\\udce9" in json.dumps(rows))
            assert pj.read_json(out).num_rows == len(rows)  # the reader `datasets` uses
    assert len(set(outs)) == 1  # workers write the same bytes


def test_records_keep_the_byte_each_lone_surrogate_stood_for(run: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    """`records` stores each recorded value as JSON text: there the escape is JSON's, so the value reads back
    exactly; the warning counts this export's characters only (the action's, the observation's, the info key's)."""
    out = tmp_path / "r.jsonl"
    capsys.readouterr()
    assert main(["export", str(run / "sur"), "--format", "records", "--out", str(out)]) == 0
    assert "warning: 3 characters of recorded text are not Unicode" in capsys.readouterr().err
    [row] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    step = row["steps"][0]
    assert json.loads(step["observation"]) == BAD and json.loads(step["action"]) == "ls \udce9"
    assert json.loads(step["info"]) == {"k\udcff": 1}
