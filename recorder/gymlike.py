"""Recording envs that follow Gymnasium's API without subclassing ``gymnasium.Env``.

Many environment suites for LLM agents (GEM's ``gem.make``, TextArena adapters, the gym adapters of RL frameworks)
hand out objects with Gymnasium's ``reset(seed=, options=) -> (obs, info)`` and
``step(action) -> (obs, reward, terminated, truncated, info)`` but not the base class. :func:`as_gym_env` checks
such an object and wraps it in :class:`GymLikeEnv`, a thin ``gymnasium.Env`` the :class:`~trajrec.recorder.Recorder`
can wrap; anything else is refused with a message that says what is missing.
"""

from __future__ import annotations

import inspect
from typing import Any, SupportsFloat

import gymnasium as gym

from .errors import TrajrecUsageError


def _accepts_keyword(fn: Any, name: str) -> bool | None:
    """Whether ``fn`` takes keyword ``name`` (True/False), or None when its signature cannot be read (C code)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if name in params and params[name].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def gym_like_problems(obj: Any) -> list[str]:
    """What keeps ``obj`` from being recorded as a Gymnasium-style env; empty when it can be.

    >>> class NoStep:
    ...     def reset(self, *, seed=None, options=None): return 0, {}
    >>> gym_like_problems(NoStep())
    ['it has no step(action) method']
    """
    problems = []
    if isinstance(obj, gym.vector.VectorEnv):
        return [f"it is a vector env ({type(obj).__name__}, {obj.num_envs} sub-envs); record it with "
                "trajrec.VectorRecorder(envs, out_dir), which writes one file per sub-env episode"]
    reset = getattr(obj, "reset", None)
    step = getattr(obj, "step", None)
    if not callable(reset):
        problems.append("it has no reset(seed=None, options=None) method")
    elif _accepts_keyword(reset, "seed") is False:
        problems.append("its reset() does not accept the keyword seed= (Gymnasium's reset(*, seed=None, options=None))")
    if not callable(step):
        problems.append("it has no step(action) method")
    return problems


class GymLikeEnv(gym.Env):  # type: ignore[type-arg]
    """A ``gymnasium.Env`` around an object that has Gymnasium's ``reset`` and ``step`` but not its base class.

    Spaces, ``spec``, ``metadata`` and ``render_mode`` are taken from the object when it has them. ``unwrapped``
    is the object itself, so provenance names its class and package and its ``state_dict()`` (when it has one)
    gives the state diffs. Return values are checked for Gymnasium's shapes (a 2-tuple from ``reset``, a
    5-tuple from ``step``), since a 4-tuple from the old gym API would otherwise be recorded wrongly.

    Args:
        obj: the env-like object.

    Raises:
        TrajrecUsageError: ``obj`` lacks ``reset``/``step`` (the message lists what is missing).

    >>> class Counter:
    ...     def reset(self, *, seed=None, options=None): self.n = 0; return self.n, {}
    ...     def step(self, action): self.n += action; return self.n, 1.0, self.n >= 2, False, {}
    >>> env = GymLikeEnv(Counter())
    >>> env.reset(seed=0)
    (0, {})
    >>> env.step(2)
    (2, 1.0, True, False, {})
    """

    def __init__(self, obj: Any) -> None:
        problems = gym_like_problems(obj)
        if problems:
            raise TrajrecUsageError(_refusal(obj, problems))
        self._obj = obj
        self._accepts_options = _accepts_keyword(obj.reset, "options") is not False
        for name in ("action_space", "observation_space"):
            space = getattr(obj, name, None)
            if isinstance(space, gym.spaces.Space):
                setattr(self, name, space)
        spec = getattr(obj, "spec", None)
        self.spec = spec if isinstance(spec, gym.envs.registration.EnvSpec) else None
        metadata = getattr(obj, "metadata", None)
        self.metadata = dict(metadata) if isinstance(metadata, dict) else {"render_modes": []}
        self.render_mode = getattr(obj, "render_mode", None)

    @property
    def unwrapped(self) -> Any:  # the object, not this adapter: provenance and state_dict() belong to it
        return self._obj

    @property
    def env_like(self) -> Any:
        """The wrapped object."""
        return self._obj

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if self._accepts_options:
            out = self._obj.reset(seed=seed, options=options)
        elif options is None:
            out = self._obj.reset(seed=seed)
        else:
            raise TrajrecUsageError(f"{_name(self._obj)}.reset() takes no options= keyword; "
                                    f"call reset(seed=...) without options")
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
            raise TrajrecUsageError(f"{_name(self._obj)}.reset() returned {_shape(out)}; Gymnasium's reset returns "
                                    "(observation, info) with info a dict")
        return out

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        out = self._obj.step(action)
        if not (isinstance(out, tuple) and len(out) == 5):
            hint = (" (the old gym API's obs, reward, done, info: split done into terminated and truncated)"
                    if isinstance(out, tuple) and len(out) == 4 else "")
            raise TrajrecUsageError(f"{_name(self._obj)}.step() returned {_shape(out)}{hint}; Gymnasium's step "
                                    "returns (observation, reward, terminated, truncated, info)")
        return out

    def render(self) -> Any:
        render = getattr(self._obj, "render", None)
        return render() if callable(render) else None

    def close(self) -> None:
        close = getattr(self._obj, "close", None)
        if callable(close):
            close()

    def __repr__(self) -> str:
        return f"GymLikeEnv({self._obj!r})"


def as_gym_env(obj: Any) -> gym.Env:  # type: ignore[type-arg]
    """``obj`` itself when it is a ``gymnasium.Env``, else a :class:`GymLikeEnv` around it.

    Raises:
        TrajrecUsageError: ``obj`` is neither; the message says what is missing.
    """
    if isinstance(obj, gym.Env):
        return obj
    return GymLikeEnv(obj)


def _name(obj: Any) -> str:
    return type(obj).__name__


def _shape(out: Any) -> str:
    if isinstance(out, tuple):
        return f"a tuple of {len(out)} values"
    return f"a {type(out).__name__}"


def _refusal(obj: Any, problems: list[str]) -> str:
    return (f"cannot record a {_name(obj)}: {'; '.join(problems)}. The Recorder takes a gymnasium.Env or any "
            "object with reset(*, seed=None, options=None) -> (obs, info) and "
            "step(action) -> (obs, reward, terminated, truncated, info)")
