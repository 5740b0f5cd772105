"""bench/minari_compare.py runs end to end (heavy: needs `pip install -e '.[bench]'`), and says what to install.

Run:  python -m pip install -e '.[bench,test]' && python -m pytest -m heavy tests/bench
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "minari_compare.py"
ROW = re.compile(r"^  (?P<name>trajrec Recorder|Minari (?:hdf5|arrow)(?: JPEG \(lossy\))?) +"
                 r"(?P<over>[+-][\d.]+) µs/step +(?P<bytes>[\d.]+) +(?P<read>[\d.]+) µs/step$")


def _run(args: list[str], tmp_path: Path, prelude: str = "") -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home)}
    env.pop("MINARI_DATASETS_PATH", None)  # the script must set its own
    code = (f"{prelude}import runpy, sys; sys.argv = {[str(SCRIPT), *args]!r}; "
            f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=600)


@pytest.mark.heavy
def test_side_by_side_prints_every_row(tmp_path: Path) -> None:
    pytest.importorskip("minari", reason="pip install -e '.[bench]'")
    pytest.importorskip("jax", reason="pip install -e '.[bench]' (Minari's DataCollector needs jax)")
    proc = _run(["--steps", "120", "--image-steps", "40", "--tool-steps", "60", "--rounds", "1"],
                tmp_path)  # in the working folder (the default `--dir .`), which is tmp_path
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    sections = re.split(r"^== ", out, flags=re.M)[1:]
    assert [s.split(":")[0] for s in sections] == [
        "CartPole-v1, random actions (~22-step episodes)",
        "84x84x3 noisy image observations, 100-step episodes",
        "text tool env, ~9 KB dict state, ~20% failing steps, 200-step episodes"]
    for section, n in zip(sections, (120, 40, 60)):
        assert f"{n} steps" in section.splitlines()[0]
        assert re.search(r"^  raw env loop +[\d.]+ µs/step", section, re.M)
        rows = {m["name"]: m for m in map(ROW.match, section.splitlines()) if m}
        expected = {"trajrec Recorder", "Minari hdf5", "Minari arrow"}
        if section.startswith("84x84x3"):
            expected |= {"Minari hdf5 JPEG (lossy)", "Minari arrow JPEG (lossy)"}
        assert set(rows) == expected, section
        for m in rows.values():
            assert float(m["bytes"]) > 0 and float(m["read"]) > 0
        # Every variant read back as many steps as it recorded (the script flags any shortfall on the row).
        assert "read back" not in section
        for name in expected - {"trajrec Recorder"}:
            ratio = re.search(rf"^  ratio trajrec / {re.escape(name)} +overhead +(-?[\d.]+)x +bytes +([\d.]+)x +"
                              r"read time +([\d.]+)x$", section, re.M)
            assert ratio, (name, section)
            # The bytes ratio is the two rows' bytes/step divided, as printed.
            want = float(rows["trajrec Recorder"]["bytes"]) / float(rows[name]["bytes"])
            assert abs(float(ratio[2]) - want) <= 0.01 + 0.01 * want
        assert "not stored by Minari:" in section
    assert "cannot store this env's state" in sections[2]
    # Everything went to the temporary folder, which is gone: nothing under ~ (no ~/.minari), nothing left here.
    assert list((tmp_path / "home").iterdir()) == []
    assert not list(tmp_path.glob(".trajrec-minari-bench-*"))


def test_without_minari_names_the_extra(tmp_path: Path) -> None:
    # A None entry in sys.modules makes `import minari` raise ImportError, as when it is not installed.
    proc = _run(["--rounds", "1"], tmp_path, prelude="import sys; sys.modules['minari'] = None; ")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "needs minari, which is not installed: pip install -e '.[bench]'" in proc.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "home"]  # nothing written
