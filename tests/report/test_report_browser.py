"""The HTML report in a real browser: headless Chromium draws every chart with no script or console error, and
the screenshot is far from blank.

Needs Chromium (Debian: ``apt-get install -y chromium``); skipped with that reason when it is missing.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                                          "(Debian: apt-get install -y chromium)")

# Put first in <head> of a copy of the page: collects uncaught errors, rejected promises and console.error
# calls, then (after load, once plotly has drawn) writes what it saw into the DOM for --dump-dom to print.
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) { __errors.push('error: ' + e.message); });
window.addEventListener('unhandledrejection', function (e) { __errors.push('rejection: ' + e.reason); });
(function () { var ce = console.error; console.error = function () {
  __errors.push('console.error: ' + Array.prototype.join.call(arguments, ' ')); return ce.apply(console, arguments); }; })();
window.addEventListener('load', function () { setTimeout(function () {
  var divs = Array.prototype.slice.call(document.querySelectorAll('.plotly-graph-div'));
  var out = {errors: __errors, plots: divs.length,
             drawn: divs.filter(function (d) { return d.querySelector('svg.main-svg') !== null; }).length,
             marks: document.querySelectorAll('.plotly-graph-div .point, .plotly-graph-div .hm, '
                                              + '.plotly-graph-div .scatterlayer .trace').length};
  var pre = document.createElement('pre'); pre.id = 'trajrec-probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre); }, 300); });
</script>"""


def _chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(exist_ok=True)  # its own profile folder: two browsers may run at once
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-dev-shm-usage", f"--user-data-dir={cwd / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def page(quiz_master, tmp_path_factory) -> Path:
    run, _paths = quiz_master
    out = tmp_path_factory.mktemp("html") / "report.html"
    proc = subprocess.run([sys.executable, "-m", "trajrec", "report", str(run), "--html", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


def test_every_chart_draws_without_errors(page, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    proc = _chromium("--virtual-time-budget=15000", "--dump-dom", probe.as_uri(), cwd=tmp_path)
    found = re.search(r"<pre id=\"trajrec-probe\">(.*?)</pre>", proc.stdout, re.S)
    assert found, f"the probe never ran; chromium said: {proc.stderr[-2000:]}"
    seen = json.loads(html.unescape(found.group(1)))
    assert seen["errors"] == []
    expected = page.read_text(encoding="utf-8").count("class='plot'")
    assert expected >= 10  # every section of the quiz run has charts
    assert seen["plots"] == expected and seen["drawn"] == expected, seen
    assert seen["marks"] > 0


def test_screenshot_shows_the_page(page, tmp_path):
    shot = tmp_path / "report.png"
    blank_html = tmp_path / "blank.html"
    blank_html.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    blank = tmp_path / "blank.png"
    with ThreadPoolExecutor(2) as pool:  # the two browsers at once: each is a second of mostly its own start-up
        shots = {png: pool.submit(_chromium, "--virtual-time-budget=15000", "--hide-scrollbars",
                                  "--window-size=1400,2000", f"--screenshot={png}", target.as_uri(),
                                  cwd=tmp_path / png.stem)
                 for target, png in ((page, shot), (blank_html, blank))}
        for png, proc in shots.items():
            stderr = proc.result().stderr
            assert png.exists(), stderr[-2000:]
    assert _png_size(shot) == (1400, 2000)
    # Charts, tables and text compress far worse than an empty page of the same size.
    assert shot.stat().st_size > 5 * blank.stat().st_size, (shot.stat().st_size, blank.stat().st_size)
