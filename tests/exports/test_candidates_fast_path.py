"""``candidates_by_step`` with a label a step (its map made in C loops) gives what its item loop gives: the same
keys in the same order, the same candidates in the same order, on labels with repeated, text and odd targets."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

from trajrec.replay.exports.choice import candidates_by_step


def _loop(labels: Any, checks: Any) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for items in (labels, checks):
        for item in items:
            if type(item.target) is int:
                out.setdefault(item.target, []).append(item)
    return out


def test_candidates_by_step_matches_the_item_loop() -> None:
    rng = random.Random(3)
    fast_taken = 0
    for _ in range(500):
        n = rng.randint(0, 12)
        targets: list[Any] = rng.sample(range(40), n)
        if rng.random() < 0.5 and n:  # a repeated, text or odd target: the loop decides
            targets[rng.randrange(n)] = rng.choice([targets[0], "episode", True, 2.0, None, -1])
        labels = [SimpleNamespace(target=t, k=k) for k, t in enumerate(targets)]
        checks = [SimpleNamespace(target=rng.choice([0, 1, 5, "episode", True]), k=-k) for k in range(rng.randint(0, 3))]
        got = candidates_by_step(list(labels), checks)
        want = _loop(labels, checks)
        assert list(got) == list(want)
        assert {t: [id(c) for c in cs] for t, cs in got.items()} == {t: [id(c) for c in cs] for t, cs in want.items()}
        assert all(type(cs) is list for cs in got.values())
        fast_taken += len(set(targets)) == n and all(type(t) is int for t in targets) and n > 0
    assert fast_taken > 100
