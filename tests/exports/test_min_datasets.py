"""The oldest ``datasets`` the extras allow (``datasets>=4.7``, the first with the ``Json`` feature) reads every
export: the export tests run again in a venv of their own with ``datasets==4.7.0``.

Heavy (it builds a venv with the test extra, a minute or two): ``python -m pytest -m heavy tests/exports/test_min_datasets.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.heavy
def test_exports_load_with_the_oldest_allowed_datasets(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = str(venv / "bin" / "python")
    install = subprocess.run([py, "-m", "pip", "install", "-q", "-e", f"{ROOT}[test]", "datasets==4.7.0"],
                             capture_output=True, text=True, timeout=1200)
    if install.returncode != 0:
        pytest.skip(f"could not install datasets==4.7.0 with the test extra: {install.stderr[-500:]}")
    version = subprocess.run([py, "-c", "import datasets; print(datasets.__version__)"], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert version == "4.7.0"
    result = subprocess.run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/exports",
                             "tests/labels/test_exports.py"], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout.splitlines()[-1].split("passed")[0]
