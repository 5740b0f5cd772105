"""A step check is shown on the step it targets (FINDINGS33 #7): an env that reports in step 3's
``info["checks"]`` that step 1 was wrong (``target: 1``) marks step 1 in `trajrec show` and `show --step 1` lists it
"reported at step 3", as the parquet export counts it and as ``Recorder.check(False, target=1)`` is shown. A check
whose target is no step (``"episode"``) stays on the step that reported it. Real files, the real CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from trajrec import Recorder
from trajrec.cli import main
from trajrec.recorder import open_episode
from trajrec.replay.render import checks_by_target, step_checks_shown, step_marker

LATE = {"target": 1, "kind": "environment", "judge": "late-verifier@1", "value": False,
        "rationale": "step 1 was wrong (found later)"}
GOAL = {"target": "episode", "kind": "environment", "judge": "goal@1", "value": True}


class LateVerifier(gym.Env):
    """Four steps; the last reports in its info that step 1 was wrong, and that the episode passed."""

    observation_space = gym.spaces.Discrete(10)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        super().reset(seed=seed)
        self.n = 0
        return 0, {}

    def step(self, action):  # type: ignore[no-untyped-def]
        self.n += 1
        info: dict[str, Any] = {"checks": [dict(LATE), dict(GOAL)]} if self.n == 4 else {}
        return self.n, 0.0, self.n == 4, False, info


def record_late(folder: Path) -> Path:
    with Recorder(LateVerifier(), folder) as env:
        env.reset(seed=0)
        for _ in range(4):
            env.step(0)
        return Path(env.episode_path)


@pytest.fixture(scope="module")
def late(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_late(tmp_path_factory.mktemp("late") / "run")


def _marks(out: str) -> dict[int, str]:
    return {int(line.split()[0]): line.split()[1] for line in out.splitlines()
            if line[:5].strip().isdigit() and len(line.split()) > 1}


def test_show_marks_the_targeted_step(late: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(late)]) == 0
    marks = _marks(capsys.readouterr().out)
    # step 1 failed its (late) check; step 3 carries only the passing episode check it reported
    assert marks == {0: "·", 1: "✗", 2: "·", 3: "✓"}


def test_show_step_lists_the_check_on_its_target_with_where_it_was_reported(
        late: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(late), "--step", "1"]) == 0
    checks = [line for line in capsys.readouterr().out.splitlines() if line.startswith("check ")]
    assert checks == ["check     late-verifier@1 [environment] target=1 (reported at step 3) value=False "
                      "step 1 was wrong (found later)"]
    assert main(["show", str(late), "--step", "3"]) == 0
    out = capsys.readouterr().out
    checks = [line for line in out.splitlines() if line.startswith("check ")]
    assert checks == ["check     goal@1 [environment] target=episode value=True "]
    assert "late-verifier@1" in out  # still in step 3's info, as recorded


def test_the_display_and_the_parquet_export_agree(late: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "late.parquet"
    assert main(["export", str(late.parent), "--format", "parquet", "--out", str(out)]) == 0
    labels = {r["step"]: r["n_labels"] for r in pq.read_table(out).to_pylist()}
    assert labels[1] == 1 and labels[3] == 0
    with open_episode(late) as ep:
        by_target = checks_by_target(ep)
        step_checks = {st.index: [c.judge for c in step_checks_shown(ep, st, by_target) if c.target != "episode"]
                       for st in ep}
    assert step_checks == {0: [], 1: ["late-verifier@1"], 2: [], 3: []}


def test_recorder_check_and_info_checks_land_on_the_same_step(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The two documented ways of reporting a step check are shown alike."""
    with Recorder(LateVerifier(), tmp_path / "api") as env:
        env.reset(seed=0)
        for _ in range(4):
            env.step(0)
        env.check(False, kind="judge", judge="api-judge@1", target=1, rationale="asked later")
        path = env.episode_path
    with open_episode(path) as ep:
        shown = {st.index: sorted(c.judge for c in step_checks_shown(ep, st)) for st in ep}
        assert shown == {0: [], 1: ["api-judge@1", "late-verifier@1"], 2: [], 3: ["goal@1"]}
        assert [step_marker(st, step_checks_shown(ep, st)) for st in ep] == ["·", "✗", "·", "✓"]
    assert main(["show", str(path), "--step", "1"]) == 0
    out = capsys.readouterr().out
    assert "check     api-judge@1 [judge] target=1 value=False asked later" in out  # no "reported at": added so
