"""The HTML report writes no raw control character from recorded text (FINDINGS28 #6): a task id, split, agent
name, model or error message holding ESC, a newline or a bidi override shows as visible escapes (``\\x1b``,
``\\n``, ``\\u202e``), as the text report shows them, in the tables and in the charts' data alike. A real recorded
run, the real ``trajrec report --html``; the page is checked as text."""

from __future__ import annotations

import re
from pathlib import Path

from report_fixture_run import _env, call

from trajrec.cli import main

# C0 controls but tab/newline/CR (the page's own markup and code use those), DEL, C1 controls, bidi overrides.
_RAW = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_html_report_shows_control_characters_as_escapes(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
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
    # In a chart's data (JSON in the page): the escape's backslash is itself escaped there.
    assert '"x":["..\\u002f..\\u002f\\u6570\\u5b66 test\\\\n\\\\x1b[31m"]' in ours
    text = capsys.readouterr().out
    assert main(["report", str(tmp_path / "run")]) == 0
    assert "\\x1b[31m" in capsys.readouterr().out + text  # the text report: the same escape
