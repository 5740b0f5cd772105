"""The importer modules' ``>>>`` examples run (tests/test_doctests.py walks the top folder only)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["trajrec.replay.importers", "trajrec.replay.importers.base", "trajrec.replay.importers.jsonstream",
           "trajrec.importers", "trajrec.replay.exports"]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_every_format_module_loads_and_documents_its_mapping() -> None:
    from trajrec.importers import IMPORTERS

    for name, load in IMPORTERS.items():
        cls = load()
        assert cls.name == name and cls.description
        assert "Mapping" in (importlib.import_module(cls.__module__).__doc__ or "")
