"""The HTML report writes no raw control character from recorded text (FINDINGS28 #6): a task id, split, agent
name, model or error message holding ESC, a newline or a bidi override shows as visible escapes (``\\x1b``,
``\\n``, ``\\u202e``), as the text report shows them, in the tables and in the charts' data alike. A real recorded
run, the real ``trajrec report --html``; the page is checked as text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from report_fixture_run import _env, call

from trajrec.cli import main

# C0 controls but tab/newline/CR (the page's own markup and code use those), DEL, C1 controls, bidi overrides.
_RAW = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _chart_data(page: str) -> list[tuple[str, list]]:
    """Every chart's data as (the page's text of it, decoded): the JSON array after each ``Plotly.newPlot("plot-N",``."""
    charts, dec = [], json.JSONDecoder()
    for m in re.finditer(r'Plotly\.newPlot\(\s*"plot-\d+",\s*', page):
        data, end = dec.raw_decode(page, m.end())
        charts.append((page[m.end():end], data))
    return charts


# plotly writes chart JSON with the standard library's encoder, or with orjson where that is installed (its "auto"
# engine): the second keeps non-ASCII text as it is, so the page's bytes differ while the data must not.
@pytest.mark.parametrize("engine", ["json", "orjson"])
def test_html_report_shows_control_characters_as_escapes(tmp_path: Path, capsys, monkeypatch, engine) -> None:  # type: ignore[no-untyped-def]
    if engine == "orjson":
        pytest.importorskip("orjson", reason="orjson is not installed (plotly's faster JSON engine: pip install orjson)")
    import plotly.io as pio

    monkeypatch.setattr(pio.json.config, "default_engine", engine)
    task = "../../数学 test\n\x1b[31m"
    env = _env(tmp_path / "run", {"name": "agent\x07\u202e", "model": "m\x1b[0m"}, "r\x1b1")
    env.reset(seed=0, options={"task": task, "split": "tr\x1bain"})
    env.step(call("read", path="x\x1b[2J"))  # a failed step: its error message holds the ESC
    env.step(call("answer", value="42"))
    env.close()
    out = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "run"), "--html", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    from plotly.offline import get_plotlyjs

    bundle = get_plotlyjs()
    assert page.count(bundle) == 1
    ours = page.replace(bundle, "")  # (plotly.js's own code is not recorded text)
    assert _RAW.findall(ours) == []
    assert "<td>../../数学 test\\n\\x1b[31m</td>" in ours  # a table cell, as the text report writes it
    assert "tr\\x1bain" in ours and "agent\\x07\\u202e" in ours
    # In a chart's data (JSON in the page): the same visible escapes once the JSON is decoded, and no "/" or "<"
    # written as is there (so nothing recorded can close the script element).
    charts = _chart_data(ours)
    assert len(charts) >= 2
    xs = [x for _, chart in charts for trace in chart for x in trace.get("x", [])]
    assert "../../数学 test\\n\\x1b[31m" in xs
    assert "m\\x1b[0m" in xs  # the model, as the text report writes it
    assert all("/" not in raw and "<" not in raw for raw, _ in charts)
    text = capsys.readouterr().out
    assert main(["report", str(tmp_path / "run")]) == 0
    assert "\\x1b[31m" in capsys.readouterr().out + text  # the text report: the same escape
