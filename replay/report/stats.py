"""The arithmetic behind ``trajrec report``: pass@k, quantiles, histograms and correlations over plain numbers.

Nothing here knows episodes; every function takes numbers and returns numbers (or small dicts of them).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

__all__ = ["histogram", "pass_at_k", "pass_at_k_curve", "pearson", "quantile", "spread", "spread_of_counts"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass@k from ``n`` attempts of which ``c`` passed (Chen et al. 2021, "Evaluating
    Large Language Models Trained on Code", eq. 1 and its numerically stable form in Figure 3)::

        pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n - c + 1}^{n} (1 - k / i)

    Raises:
        ValueError: unless ``0 <= c <= n`` and ``1 <= k <= n``.

    >>> round(pass_at_k(10, 3, 1), 12), pass_at_k(10, 0, 5), pass_at_k(10, 8, 3)
    (0.3, 0.0, 1.0)
    >>> from math import comb
    >>> abs(pass_at_k(20, 4, 5) - (1 - comb(16, 5) / comb(20, 5))) < 1e-12
    True
    """
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def pass_at_k_curve(n: int, c: int) -> list[float]:
    """pass@k for every k = 1..n, the same estimator as :func:`pass_at_k` in O(n) total.

    ``C(n-c, k) / C(n, k)`` is carried from k to k + 1 as a product of factors ``(n - c - k) / (n - k)``, each in
    [0, 1], so the ratio never overflows and only ever shrinks (no subtraction of near-equal numbers).

    >>> [round(p, 4) for p in pass_at_k_curve(5, 2)]
    [0.4, 0.7, 0.9, 1.0, 1.0]
    >>> all(abs(a - pass_at_k(40, 7, k)) < 1e-12 for k, a in enumerate(pass_at_k_curve(40, 7), 1))
    True
    """
    out = []
    ratio = 1.0  # C(n-c, k) / C(n, k) at k = 0
    for k in range(1, n + 1):
        ratio = ratio * (n - c - k + 1) / (n - k + 1) if n - c - k + 1 > 0 else 0.0
        out.append(1.0 - ratio)
    return out


def quantile(sorted_values: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) of already sorted values, by linear interpolation; None when empty.

    >>> quantile([1, 2, 3, 4], 0.5), quantile([], 0.5), quantile([5], 0.9)
    (2.5, None, 5.0)
    """
    n = len(sorted_values)
    if n == 0:
        return None
    pos = (n - 1) * q
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def spread(values: Sequence[float]) -> dict[str, float | int | None]:
    """``n``, ``mean``, ``min``, ``median``, ``p90`` and ``max`` of some numbers (None where undefined).

    >>> spread([3, 1, 2])
    {'n': 3, 'mean': 2.0, 'min': 1.0, 'median': 2.0, 'p90': 2.8, 'max': 3.0}
    """
    xs = sorted(values)
    if not xs:
        return {"n": 0, "mean": None, "min": None, "median": None, "p90": None, "max": None}
    return {"n": len(xs), "mean": sum(xs) / len(xs), "min": float(xs[0]), "median": quantile(xs, 0.5),
            "p90": quantile(xs, 0.9), "max": float(xs[-1])}


def spread_of_counts(counts: Mapping[int, int]) -> dict[str, float | int | None]:
    """:func:`spread` of integers given as ``{value: how many times}`` (without expanding them).

    >>> spread_of_counts({1: 2, 5: 1}) == spread([1, 1, 5])
    True
    """
    items = sorted((v, c) for v, c in counts.items() if c > 0)
    n = sum(c for _v, c in items)
    if n == 0:
        return spread([])

    def at(rank: int) -> float:
        seen = 0
        for v, c in items:
            seen += c
            if rank < seen:
                return float(v)
        return float(items[-1][0])

    def q(frac: float) -> float:
        pos = (n - 1) * frac
        lo = int(math.floor(pos))
        a, b = at(lo), at(min(lo + 1, n - 1))
        return a + (b - a) * (pos - lo)

    return {"n": n, "mean": sum(v * c for v, c in items) / n, "min": float(items[0][0]), "median": q(0.5),
            "p90": q(0.9), "max": float(items[-1][0])}


def histogram(values: Sequence[float], *, bins: int = 20, integer: bool = True) -> list[dict[str, float | int]]:
    """Counts of ``values`` in at most ``bins`` equal-width bins: ``[{"lo", "hi", "count"}]`` (``lo <= x < hi``,
    the last bin closed). With ``integer``, bin edges are whole numbers and each bin at least one wide.

    >>> [(h["lo"], h["count"]) for h in histogram([1, 1, 2, 5], bins=5)]
    [(1, 2), (2, 1), (3, 0), (4, 0), (5, 1)]
    >>> [(h["lo"], h["hi"], h["count"]) for h in histogram([1, 1, 2, 5], bins=3)]
    [(1, 3, 3), (3, 5, 0), (5, 7, 1)]
    """
    if not values:
        return []
    lo, hi = min(values), max(values)
    if integer:
        lo, hi = int(math.floor(lo)), int(math.floor(hi))
        width = max(1, math.ceil((hi - lo + 1) / bins))
        n = max(1, math.ceil((hi - lo + 1) / width))
        counts = [0] * n
        for v in values:
            counts[min(n - 1, (int(v) - lo) // width)] += 1
        return [{"lo": lo + i * width, "hi": lo + (i + 1) * width, "count": c} for i, c in enumerate(counts)]
    width = (hi - lo) / bins if hi > lo else 1.0
    n = bins if hi > lo else 1
    counts = [0] * n
    for v in values:
        counts[min(n - 1, int((v - lo) / width))] += 1
    return [{"lo": lo + i * width, "hi": lo + (i + 1) * width, "count": c} for i, c in enumerate(counts)]


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's r of paired numbers (with ``ys`` 0/1 it is the point-biserial correlation); None when either
    side is constant or there are fewer than 3 pairs.

    >>> round(pearson([1, 2, 3, 4], [0, 0, 1, 1]), 3), pearson([1, 1, 1], [0, 1, 0])
    (0.894, None)
    """
    n = len(xs)
    if n < 3 or len(ys) != n:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return sxy / math.sqrt(sxx * syy)
