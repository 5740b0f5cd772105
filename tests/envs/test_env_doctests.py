"""Run the ``>>>`` examples in every envs module (pytest only collects tests/ by default)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import envs

MODULES = sorted(m.name for m in pkgutil.iter_modules(envs.__path__, "envs."))


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
