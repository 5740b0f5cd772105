"""`trajrec diff --ignore` takes every field diff reports; `diff --json` names the sides a and b."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.recorder import SUFFIX, open_episode
from trajrec.replay.episode_diff import IGNORE_FIELDS, diff_episodes
from trajrec.recorder.errors import TrajrecUsageError


def _record(out: Path, *argv: str) -> Path:
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "1", "--out", str(out), "--json", *argv]) == 0
    return next(out.glob(f"*{SUFFIX}"))


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("diff")
    return _record(tmp / "a", "--skill", "1.0"), _record(tmp / "b", "--seed", "1", "--skill", "0.0")


@pytest.mark.parametrize("field", IGNORE_FIELDS)
def test_every_reported_field_can_be_ignored(field: str, pair: tuple[Path, Path],
                                             capsys: pytest.CaptureFixture) -> None:
    a, b = pair
    capsys.readouterr()
    main(["diff", str(a), str(b), "--json", "--ignore", field])
    captured = capsys.readouterr()
    assert "ignore path" not in captured.err
    lines = [json.loads(x) for x in captured.out.splitlines()]
    steps = [d for d in lines if d["type"] == "step"]
    assert all(field not in d["fields"] for d in steps)
    if field in ("task", "reset"):
        assert lines[-1][field] == []


def test_action_failure_and_task_paths_leave_those_differences_out(pair: tuple[Path, Path]) -> None:
    a, b = (open_episode(p) for p in pair)
    with a, b:
        full = diff_episodes(a, b)
        assert any("action" in d.fields for d in full.steps) and {r.where for r in full.task} >= {"seed"}
        less = diff_episodes(a, b, ignore=["action", "failure", "task.seed"])
        assert not any({"action", "failure"} & set(d.fields) for d in less.steps)
        assert "seed" not in {r.where for r in less.task}
        assert {r.where for r in less.task} == {r.where for r in full.task} - {"seed"}


def test_unknown_ignore_path_lists_the_fields_without_a_wild_guess(pair: tuple[Path, Path]) -> None:
    a, b = (open_episode(p) for p in pair)
    with a, b, pytest.raises(TrajrecUsageError) as info:
        diff_episodes(a, b, ignore=["acton"])
    msg = str(info.value)
    assert "did you mean 'action'?" in msg and "exception" not in msg
    assert all(f in msg for f in IGNORE_FIELDS)


def test_diff_json_names_the_sides_a_and_b(pair: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    a, b = pair
    capsys.readouterr()
    assert main(["diff", str(a), str(b), "--json"]) == 1
    text = capsys.readouterr().out
    assert '"recorded"' not in text and '"replayed"' not in text
    lines = [json.loads(x) for x in text.splitlines()]
    rows = [r for d in lines if d["type"] == "step" for r in d["rows"]] + lines[-1]["task"]
    assert rows and all("a" in r and "b" in r for r in rows)
    seed = next(r for r in lines[-1]["task"] if r["path"] == "seed")
    assert (seed["a"], seed["b"]) == (0, 1)


def test_a_file_is_the_same_as_itself_with_nan_keys_sets_and_lone_surrogates(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """NaN dict keys and set members read twice are two objects each (a NaN equals nothing): `diff FILE FILE`
    still says same (with a lone surrogate, the bytes fast path cannot decide)."""
    from trajrec import Recorder
    from trajrec.cli import main as cli_main

    class _Env:
        def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
            return 0, {}

        def step(self, action):  # type: ignore[no-untyped-def]
            obs = {"text": "ab\udcff", "scores": {float("nan"): 1, (1, float("nan")): 2}, "seen": {float("nan"), 1}}
            return obs, 0.0, True, False, {}

    env = Recorder(_Env(), tmp_path)
    env.reset(seed=0)
    env.step(0)
    env.close()
    assert cli_main(["diff", str(env.episode_path), str(env.episode_path)]) == 0
