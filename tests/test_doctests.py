"""Every ``>>>`` example in the package and in the README runs, against the installed ``trajrec.*`` modules."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import trajrec

README = Path(__file__).resolve().parent.parent / "README.md"
MODULES = sorted(m.name for m in pkgutil.walk_packages(trajrec.__path__, "trajrec.")
                 if m.name != "trajrec.__main__")  # running it is `python -m trajrec`
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("name", MODULES)
def test_module_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=FLAGS)
    assert result.failed == 0, f"{result.failed} example(s) failed in {name}"


def test_readme_examples(tmp_path, monkeypatch) -> None:
    # The README's Python examples write runs under the working folder: run them in a fresh one.
    monkeypatch.chdir(tmp_path)
    result = doctest.testfile(str(README), module_relative=False, optionflags=FLAGS)
    assert result.attempted > 0, "the README has no >>> examples"
    assert result.failed == 0, f"{result.failed} README example(s) failed"
