"""The report's arithmetic: pass@k against its definition, quantiles, message shapes."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trajrec.replay.report.messages import normalize_message
from trajrec.replay.report.stats import pass_at_k, pass_at_k_curve, pearson, spread, spread_of_counts


def _pass_at_k_by_enumeration(n: int, c: int, k: int) -> Fraction:
    """The definition: the share of k-subsets of the n attempts that hold at least one pass."""
    attempts = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return Fraction(sum(any(attempts[i] for i in s) for s in subsets), len(subsets))


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_matches_the_definition(n):
    for c in range(n + 1):
        curve = pass_at_k_curve(n, c)
        for k in range(1, n + 1):
            exact = float(_pass_at_k_by_enumeration(n, c, k))
            assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)
            assert curve[k - 1] == pytest.approx(exact, abs=1e-12)


@given(st.integers(1, 3000), st.data())
def test_pass_at_k_curve_is_stable_for_large_n(n, data):
    c = data.draw(st.integers(0, n))
    curve = pass_at_k_curve(n, c)
    assert len(curve) == n
    assert all(0.0 <= p <= 1.0 for p in curve)
    assert all(a <= b + 1e-12 for a, b in zip(curve, curve[1:]))  # more tries never lower pass@k
    assert curve[0] == pytest.approx(c / n)  # pass@1 is the solve rate
    k = data.draw(st.integers(1, n))
    exact = 1 - math.comb(n - c, k) / math.comb(n, k)  # exact big-int binomials
    assert curve[k - 1] == pytest.approx(exact, abs=1e-9)


def test_pass_at_k_rejects_impossible_counts():
    with pytest.raises(ValueError, match="n=3, c=4"):
        pass_at_k(3, 4, 1)


def test_spread_of_counts_equals_spread_of_the_values():
    counts = {1: 5, 2: 1, 7: 3, 10: 1}
    values = [v for v, c in counts.items() for _ in range(c)]
    assert spread_of_counts(counts) == pytest.approx(spread(values))


def test_pearson_of_a_perfect_line_and_of_constant_input():
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [5, 5, 5]) is None


@pytest.mark.parametrize("a, b", [
    ("read: no such file 'notes.txt'", "read: no such file 'src/a/b.py'"),
    ("cat: /tmp/run-3/x.log: No such file", "cat: /home/ana/y.txt: No such file"),
    ("timeout after 10.5 s (limit 10)", "timeout after 3 s (limit 2)"),
    ("episode 3f2a9c1e-77b0-4c1e-9a43-0c1d2e3f4a5b not found", "episode 00000000-0000-4000-8000-000000000000 not found"),
    ("commit deadbeef12 is missing", "commit 0a1b2c3d4e5f is missing"),
    ("ticket TCK-1042 closed", "ticket TCK-77 closed"),
    ("unknown tool `serach`", "unknown tool `fetch`"),
])
def test_messages_that_differ_in_values_share_a_shape(a, b):
    assert normalize_message(a) == normalize_message(b)


def test_messages_that_differ_in_words_keep_apart_and_are_cut():
    assert normalize_message("no such file 'a'") != normalize_message("permission denied 'a'")
    assert normalize_message("first line\nTraceback ...") == "first line"
    assert len(normalize_message("x " * 500)) == 160
