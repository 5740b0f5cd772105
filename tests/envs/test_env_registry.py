"""Registration, Gymnasium API conformance and import hygiene of the built-in envs."""

from __future__ import annotations

import subprocess
import tempfile
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from trajrec import envs

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_IDS = ("trajrec/MathCalc-v0", "trajrec/CodeRepair-v0", "trajrec/Shell-v0", "trajrec/SupportTicket-v0")


def test_all_ids_registered_with_string_entry_points():
    assert envs.ENV_IDS == EXPECTED_IDS
    for env_id in EXPECTED_IDS:
        spec = gym.spec(env_id)
        assert isinstance(spec.entry_point, str) and spec.entry_point.startswith("trajrec.envs.")
        assert spec.max_episode_steps is None  # the envs truncate themselves


@pytest.mark.parametrize("env_id", EXPECTED_IDS)
def test_check_env_passes_unwrapped_and_made(env_id):
    kwargs = {"timeout": 2.0} if "CodeRepair" in env_id else {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # check_env reports most problems as warnings
        env = gym.make(env_id, **kwargs)
        check_env(env.unwrapped)
    with warnings.catch_warnings():
        # Only the "you passed a wrapped env" notice is expected here.
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version")  # inserted first, wins
        check_env(env)
    env.close()
    env.close()  # closing twice is allowed


@pytest.mark.parametrize("env_id", EXPECTED_IDS)
def test_spaces_are_text_over_printable_ascii(env_id):
    env = gym.make(env_id)
    for space in (env.observation_space, env.action_space):
        assert isinstance(space, gym.spaces.Text)
        assert {chr(c) for c in range(0x20, 0x7F)} | {"\n", "\t"} <= set(space.character_set)
    assert env.observation_space.max_length >= 32_768
    env.close()


def _run(code: str) -> str:
    # Not from the repository root: there `-c` would find the source folders as top-level packages.
    result = subprocess.run([sys.executable, "-c", code], cwd=tempfile.gettempdir(), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_envs_only_registers():
    out = _run("import sys, trajrec.envs; print(sorted(m for m in sys.modules if m.startswith('trajrec.envs.')))")
    assert out == "[]"


def test_envs_import_nothing_from_other_layers():
    out = _run(
        "import sys, trajrec.envs, trajrec.envs.agents, trajrec.envs.runner, trajrec.envs.code_repair, "
        "trajrec.envs.shell, trajrec.envs.support, trajrec.envs.math_calc; "
        "print(sorted({'.'.join(m.split('.')[:2]) for m in sys.modules} & {'textual', 'rich', 'trajrec.replay', "
        "'trajrec.tui', 'trajrec.cli', 'trajrec.recorder'}))"
    )
    assert out == "[]"


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_max_steps_is_refused(bad):
    with pytest.raises(ValueError, match="max_steps must be a positive int"):
        gym.make("trajrec/MathCalc-v0", max_steps=bad)


@pytest.mark.filterwarnings("ignore:.*render_mode")
def test_render_mode_other_than_none_is_refused():
    with pytest.raises(ValueError, match="does not render"):
        gym.make("trajrec/Shell-v0", render_mode="human")


def test_step_before_reset_raises_reset_needed():
    from trajrec.envs.math_calc import MathCalcEnv

    with pytest.raises(gym.error.ResetNeeded, match="before reset"):
        MathCalcEnv().step('{"tool": "calc", "args": {"expr": "1"}}')
