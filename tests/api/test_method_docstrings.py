"""help() on the recording and reading methods says what is recorded and what is raised (not Gymnasium's generic
text), and the documented meaning of ep[-1] versus ep.state_at(-1) holds."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from trajrec import Recorder, VectorRecorder, open_episode
from trajrec.envs.math_calc import MathCalcEnv
from trajrec.recorder.reader import Episode


@pytest.mark.parametrize("method, words", [
    (Recorder.step, ["recorded", "TrajrecUsageError", "reset()", "EpisodeClosedError", "TrajrecIOError",
                     "exception"]),
    (Recorder.reset, ["reset record", "EpisodeClosedError", "TrajrecIOError", "outcome ``error``"]),
    (VectorRecorder.step, ["num_envs", "TrajrecUsageError", "EpisodeClosedError", "NEXT_STEP", "every open"]),
    (VectorRecorder.reset, ["reset_mask", "EpisodeClosedError", "seed + j"]),
    (VectorRecorder.close, ["stopped", "EpisodeClosedError", "with VectorRecorder"]),
    (Episode.__getitem__, ["last step", "state_at", "StepIndexError"]),
    (Episode.__len__, ["steps"]),
    (Episode.__iter__, ["in order", "TrajrecFormatError"]),
    (Episode.close, ["file handle", "reopens"]),
    (Episode.state_at, ["after **reset**", "len(ep) - 1", "StepIndexError"]),
])
def test_the_docstring_says_what_is_recorded_and_raised(method, words: list[str]) -> None:
    doc = inspect.getdoc(method) or ""
    assert "can be overwritten to change the returned data" not in doc and "Step through all" not in doc
    for word in words:
        assert word in doc, f"{method.__qualname__}'s docstring does not mention {word!r}"


def test_minus_one_is_the_last_step_for_indexing_and_the_reset_for_state_at(tmp_path: Path) -> None:
    env = Recorder(MathCalcEnv(), tmp_path)
    env.reset(seed=0)
    env.step('{"tool": "calc", "args": {"expr": "1+1"}}')
    env.step('{"tool": "calc", "args": {"expr": "2+2"}}')
    env.close()
    with open_episode(env.episode_path) as ep:
        assert ep[-1].index == len(ep) - 1 == 1
        assert ep.state_at(-1) == ep.reset.state
        assert ep.state_at(len(ep) - 1) != ep.state_at(-1)
        with pytest.raises(IndexError, match="state_at"):
            ep.state_at(-2)
    # Closed, the episode reopens its file for a read (as Episode.close's docstring says).
    assert ep[1].index == 1 and len(list(ep)) == 2
