"""The warnings about a raising ``state_fn``, ``failure_fn`` or ``action_key`` name the user's ``env.step`` /
``env.reset`` line (FINDINGS27 #5: they named trajrec's own lines, or ``sys:1``), also through a gymnasium wrapper."""

from __future__ import annotations

import inspect
import warnings

import gymnasium as gym

from trajrec import Recorder


class Counter(gym.Env):
    action_space = gym.spaces.Text(100)
    observation_space = gym.spaces.Text(100)

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        self.n = 0
        return "r", {}

    def step(self, action):  # type: ignore[no-untyped-def]
        self.n += 1
        return "o", 0.0, False, False, {"error": "x"}


def _state_fn(env):  # type: ignore[no-untyped-def]
    if env.unwrapped.n == 1:
        raise RuntimeError("state_fn broke")
    return {"n": env.unwrapped.n}


def _failure_fn(step):  # type: ignore[no-untyped-def]
    raise ValueError("failure_fn broke")


def _action_key(action):  # type: ignore[no-untyped-def]
    raise KeyError("action_key broke")


def _here() -> int:
    return inspect.currentframe().f_back.f_lineno + 1  # type: ignore[union-attr]


def _caught(caught: list) -> dict[str, tuple[str, int]]:
    return {str(w.message).split(" ")[0]: (w.filename, w.lineno) for w in caught
            if issubclass(w.category, RuntimeWarning)}


def test_each_callables_warning_names_the_step_line(tmp_path) -> None:
    env = Recorder(Counter(), tmp_path, state_fn=_state_fn, failure_fn=_failure_fn, action_key=_action_key)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env.reset(seed=0)
        line = _here()
        env.step("a")
        env.step("b")
    env.close()
    where = _caught(caught)
    assert where == {"state_fn": (__file__, line), "failure_fn": (__file__, line), "action_key": (__file__, line)}


def test_the_reset_line_and_a_wrapper_around_the_recorder(tmp_path) -> None:
    def state_fn(env):  # type: ignore[no-untyped-def]
        raise RuntimeError("state_fn broke")

    env = gym.wrappers.TimeLimit(Recorder(Counter(), tmp_path, state_fn=state_fn, failure_fn=_failure_fn),
                                 max_episode_steps=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _here()
        env.reset(seed=0)
        step_line = _here()
        env.step("a")
    env.close()
    assert _caught(caught) == {"state_fn": (__file__, line), "failure_fn": (__file__, step_line)}


def test_a_note_no_step_took_is_warned_at_the_close_line(tmp_path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Recorder(Counter(), tmp_path) as env:
            env.reset(seed=0)
            env.step("a")
            env.note(thought="too late")
    (w,) = [w for w in caught if "reached no step" in str(w.message)]
    assert w.filename == __file__  # the with statement's exit (it was trajrec's __exit__)
