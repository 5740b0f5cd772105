"""Agreement: Cohen's kappa on a hand-computable example, its undefined cases, distributions, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.replay.agreement import agreement, category, cohen_kappa, episode_agreement
from trajrec.replay.labels import Label, LabelStore
from trajrec.cli import main


def lab(judge: str, step: int | str, value: object, ep: str = "ep", t: float = 0.0) -> Label:
    return Label(ep, step, "judge", judge, value, id=f"{judge}-{ep}-{step}-{t}", time=t)


def test_kappa_from_a_confusion_table() -> None:
    # Two raters, ten steps. Rows: rater A's category, columns: rater B's.
    table = {(1, 1): 4, (1, -1): 2, (-1, 1): 1, (-1, -1): 3}
    pairs = [pair for pair, count in table.items() for _ in range(count)]
    n = sum(table.values())
    observed = (table[(1, 1)] + table[(-1, -1)]) / n  # 7/10
    a_pos = (table[(1, 1)] + table[(1, -1)]) / n  # 6/10
    b_pos = (table[(1, 1)] + table[(-1, 1)]) / n  # 5/10
    expected = a_pos * b_pos + (1 - a_pos) * (1 - b_pos)  # 0.3 + 0.2 = 0.5
    k = cohen_kappa(pairs)
    assert k.n == n == 10
    assert k.observed == pytest.approx(observed) == pytest.approx(0.7)
    assert k.expected == pytest.approx(expected) == pytest.approx(0.5)
    assert k.kappa == pytest.approx((observed - expected) / (1 - expected)) == pytest.approx(0.4)
    assert k.note is None and k.confusion == table


def test_kappa_with_three_categories_and_perfect_agreement() -> None:
    pairs = [(1, 1), (0, 0), (-1, -1), (1, 1)]
    k = cohen_kappa(pairs)
    # p_o = 1; p_e = (2/4)^2 + (1/4)^2 + (1/4)^2 = 0.375; kappa = (1 - 0.375) / (1 - 0.375) = 1
    assert (k.observed, k.expected, k.kappa) == (1.0, 0.375, 1.0)


def test_kappa_undefined_cases_say_why() -> None:
    none = cohen_kappa([])
    assert (none.n, none.kappa, none.note) == (0, None, "undefined: no step labeled by both")
    one = cohen_kappa([(1, 1), (1, 1), (1, 1)])
    assert (one.n, one.observed, one.expected, one.kappa) == (3, 1.0, 1.0, None)
    assert one.note == "undefined: both used only one category (+1) on these steps"
    # One rater constant, the other not: p_e < 1, kappa defined (and 0: no agreement beyond chance).
    assert cohen_kappa([(1, 1), (1, -1)]).kappa == pytest.approx(0.0)


def test_values_compare_as_categories() -> None:
    assert [category(v) for v in (True, False, "pass", "bad", 1, 0, -1, 1.0, 0.4, "typo")] == [
        1, -1, 1, -1, 1, 0, -1, 1, "score", "typo"]


def test_report_distribution_and_pairs() -> None:
    labels = [
        lab("human:ana", 0, 1), lab("human:ana", 1, -1), lab("human:ana", 2, 0), lab("human:ana", "episode", 1),
        lab("human:bo", 0, 1), lab("human:bo", 1, 1), lab("human:bo", 3, -1),
        lab("rules@1", 0, True), lab("rules@1", 1, False), lab("rules@1", 2, 0.7),  # a score: not in kappa
    ]
    rep = agreement(labels)
    dist = {j.judge: j.distribution for j in rep.judges}
    assert dist == {"human:ana": {"+1": 2, "-1": 1, "0": 1}, "human:bo": {"+1": 2, "-1": 1},
                    "rules@1": {"+1": 1, "-1": 1, "score": 1}}
    ana = next(j for j in rep.judges if j.judge == "human:ana")
    assert (ana.episodes, ana.steps, ana.episode_labels) == (1, 3, 1)
    pairs = {(p.a, p.b): p.kappa for p in rep.pairs}
    ab = pairs[("human:ana", "human:bo")]
    assert (ab.n, ab.observed) == (2, 0.5)  # steps 0 and 1; they agree on step 0
    ar = pairs[("human:ana", "rules@1")]
    assert (ar.n, ar.observed, ar.kappa) == (2, 1.0, 1.0)  # True/False read as +1/-1; step 2 is a score
    assert rep.to_dict()["pairs"][0]["confusion"] == [["+1", "+1", 1], ["-1", "+1", 1]]


def test_episode_agreement() -> None:
    assert episode_agreement([lab("a", 0, 1), lab("b", 1, 1)]) is None
    assert episode_agreement([lab("a", 0, 1), lab("b", 0, True), lab("a", 1, 1), lab("b", 1, -1)]) == 0.5


def test_cli_agreement(run_dir: Path, ids: dict[int, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["label", "auto", str(run_dir), "--rules"]) == 0
    store = LabelStore(run_dir)
    for step, value in ((1, -1), (2, -1), (3, 0)):
        store.add(ids[1], step, value, judge="human:ana")
    capsys.readouterr()
    assert main(["agreement", str(run_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    pair = out["pairs"][0]
    # rules: -1, -1, -1 on steps 1-3; ana: -1, -1, 0 -> p_o = 2/3; p_e = 1 * 2/3 = 2/3 -> kappa 0
    assert (pair["a"], pair["b"], pair["n"]) == ("human:ana", "trajrec-rules@2", 3)
    assert pair["observed"] == pytest.approx(2 / 3) and pair["kappa"] == pytest.approx(0.0)
    assert main(["agreement", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "labels per judge (3 episodes)" in text and "n=3" in text and "kappa=0.000" in text
