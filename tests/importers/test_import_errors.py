"""auto detection, and bad input: errors that name the file and the field, and no half episode left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from import_helpers import (ATIF, INSPECT_ERRORS, INSPECT_EVAL, INSPECT_JSON, INSPECT_TOOLS_EVAL, MINI_LIST, MINI_V1,
                            OH_BASIC, OH_CHAT, SWE)

from trajrec.cli import main
from trajrec.importers import ImportFormatError, detect, import_paths


@pytest.mark.parametrize("path, fmt", [
    (SWE, "swe-agent"), (MINI_LIST, "mini-swe-agent"), (MINI_V1, "mini-swe-agent"), (INSPECT_EVAL, "inspect"),
    (INSPECT_TOOLS_EVAL, "inspect"), (INSPECT_JSON, "inspect"), (INSPECT_ERRORS, "inspect"), (ATIF, "atif"),
    (OH_BASIC, "openhands"), (OH_CHAT, "openhands"),
])
def test_auto_detects_each_sample(path: Path, fmt: str) -> None:
    found, reason = detect(path)
    assert found == fmt and reason


def test_auto_says_what_it_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "auto", str(SWE), str(ATIF), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "(auto: swe-agent, a .traj file" in out and "(auto: atif, schema_version 'ATIF-v1.4'" in out
    assert "kept 5 as extra: info.edited_files30" in out


def test_unknown_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.json"
    path.write_text('{"hello": 1}')
    assert main(["import", "auto", str(path), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"trajrec import: error: {path}: format not recognized") and "trajrec import FORMAT" in err


def test_unknown_format_name_suggests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "swe_agent", str(SWE), "--out", str(tmp_path / "run")]) == 1
    assert "did you mean 'swe-agent'?" in capsys.readouterr().err


def test_bad_field_names_file_and_field(tmp_path: Path) -> None:
    src = json.loads(SWE.read_text())
    src["trajectory"][2]["action"] = 42
    path = tmp_path / "bad.traj"
    path.write_text(json.dumps(src))
    with pytest.raises(ImportFormatError) as err:
        import_paths("swe-agent", [path], tmp_path / "run")
    assert err.value.path == str(path) and err.value.field == "$.trajectory[2].action"
    assert "expected the command text, found 42" in str(err.value)
    assert not (tmp_path / "run").exists()  # the half-written episode was removed, then the empty folder


def test_truncated_json_names_the_offset(tmp_path: Path) -> None:
    text = MINI_V1.read_text()
    path = tmp_path / "cut.traj.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ImportFormatError) as err:
        import_paths("mini-swe-agent", [path], tmp_path / "run")
    assert err.value.path == str(path) and err.value.field.startswith("$.messages[")
    assert err.value.offset is not None and "invalid JSON" in str(err.value)


def test_inspect_member_and_keep_going(tmp_path: Path) -> None:
    src = json.loads(INSPECT_JSON.read_text())
    src["samples"][0]["messages"] = "oops"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(src))
    report = import_paths("inspect", [bad, INSPECT_EVAL], tmp_path / "run", keep_going=True)
    assert report.files[0].error and "$.samples[0].messages" in report.files[0].error
    assert report.files[1].episodes and report.episodes == 1


def test_wrong_format_named(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match=r"schema_version is None, expected 'ATIF-v1.x'"):
        import_paths("atif", [SWE], tmp_path / "run")
    with pytest.raises(ImportFormatError, match=r"basic.json field \$: not an ATIF trajectory"):
        import_paths("atif", [OH_BASIC], tmp_path / "run")


def test_stream_reads_values_cut_by_its_buffer(tmp_path: Path) -> None:
    # Elements larger than the read size and numbers cut at a chunk edge decode whole.
    import io

    from trajrec.replay.importers import jsonstream

    big = "x" * (3 * jsonstream._CHUNK)
    doc = json.dumps({"a": [{"s": big}, 12345678901234567890, {"t": [1, 2, {"u": "\u00e9\\"}]}], "b": 1.5e300})
    s = jsonstream.JsonStream(io.StringIO(doc), "mem.json")
    got = {}
    for key in s.keys():
        got[key] = [v for _, v in s.items()] if key == "a" else s.value()
    assert got == json.loads(doc)


def test_defect_mid_file_is_reported_where_it_is(tmp_path: Path) -> None:
    from trajrec.replay.importers.jsonstream import JsonStream

    path = tmp_path / "x.json"
    path.write_text('{"steps": [{"a": 1}, {"a": 2,, "b": 3}, ' + '{"a": 0}, ' * 100_000 + '{"a": 9}]}')
    s = JsonStream(path.open(), path)
    with pytest.raises(ImportFormatError) as err:
        for _ in s.keys():
            list(s.items())
    assert err.value.field == "$.steps[1]" and err.value.offset == 29
