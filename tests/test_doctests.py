"""Every ``>>>`` example in the package and in the README runs, against the installed ``trajrec.*`` modules."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import trajrec

README = Path(__file__).resolve().parent.parent / "README.md"
def _modules() -> list[str]:
    # The layer folders install as trajrec.recorder/replay/envs/tui but do not sit inside trajrec/'s folder, so
    # walking trajrec.__path__ alone would miss them: walk each package's own path.
    import trajrec.envs
    import trajrec.recorder
    import trajrec.replay
    import trajrec.tui

    names = set()
    for pkg in (trajrec, trajrec.recorder, trajrec.replay, trajrec.envs, trajrec.tui):
        names.add(pkg.__name__)
        names.update(m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."))
    names.discard("trajrec.__main__")  # running it is `python -m trajrec`
    return sorted(names)


MODULES = _modules()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def test_every_layer_is_walked() -> None:
    for layer in ("trajrec.recorder.format", "trajrec.replay.query", "trajrec.envs.shell", "trajrec.tui.app"):
        assert layer in MODULES


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
