"""The episode loop shared by trajrec's built-in tool environments.

:class:`ToolEnv` owns everything the four envs do alike: the Text spaces, choosing a task from
the seed or ``options["task_id"]``, the reset observation and info, parsing each action into a
tool call, dispatching it to a ``_tool_<name>`` method, step counting and self-truncation at
``max_steps``, the info conventions (``tool``, ``error``, ``checks``) and ``state_dict()``.
Subclasses supply a task bank, tool specs, the tool methods and their own state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import gymnasium as gym

from trajrec.envs._tools import (
    ACTION_MAX_LEN,
    OBS_MAX_LEN,
    ToolCall,
    ToolError,
    ToolSpec,
    clip,
    nearest,
    parse_tool_call,
    text_space,
    tool_list_text,
    tool_schemas,
)

#: Every ``n``-th task of a bank (index ``n - 1``, ``2n - 1``, ...) is held out as the test split.
TEST_EVERY = 5


class TaskLike(Protocol):
    """What :class:`ToolEnv` needs from a task; each env's task dataclass adds its own fields."""

    @property
    def id(self) -> str: ...

    @property
    def text(self) -> str: ...


def split_of(index: int) -> str:
    """Return ``"test"`` for every :data:`TEST_EVERY`-th task of a bank, else ``"train"``."""
    return "test" if index % TEST_EVERY == TEST_EVERY - 1 else "train"


@dataclass
class Outcome:
    """What one tool call produced; :meth:`ToolEnv.step` turns it into the step's return values.

    Attributes:
        text: The observation text.
        error: Set when the call failed; becomes ``info["error"]``.
        checks: Check records (see :func:`trajrec.envs._tools.make_check`) for ``info["checks"]``.
        reward: The step reward.
        terminal: True when the call ends the episode (submit, answer, done).
        info: Extra info keys, fresh objects only (infos must not share state with the env).
    """

    text: str
    error: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    reward: float = 0.0
    terminal: bool = False
    info: dict[str, Any] = field(default_factory=dict)


def failed(message: str) -> Outcome:
    """Return the outcome of a failed call: an ``error: ...`` observation and ``info["error"]``."""
    return Outcome(text=f"error: {message}", error=message)


class ToolEnv(gym.Env[str, str]):
    """Base class of the built-in text tool environments.

    Subclasses set :attr:`env_id`, :attr:`tasks`, :attr:`tool_specs` and :attr:`verification`, and
    implement ``_begin``, ``_state``, ``_truncation_check`` and one ``_tool_<name>(args)`` method per
    tool spec returning an :class:`Outcome`.

    Args:
        max_steps: Steps after which the env truncates the episode itself.
        render_mode: Only None is supported.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (Gymnasium declares it this way)
    env_id: ClassVar[str]
    tasks: ClassVar[Sequence[TaskLike]]
    tool_specs: ClassVar[tuple[ToolSpec, ...]]
    verification: ClassVar[str]
    #: ``(tool name, argument name)`` of the declared tool a plain-text action calls (the text becomes that
    #: argument), or None when every action must be a JSON tool call. Exports read it from the reset info.
    text_tool: ClassVar[tuple[str, str] | None] = None

    def __init__(self, *, max_steps: int = 30, render_mode: str | None = None) -> None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive int, found {max_steps!r}; pass e.g. max_steps=30")
        if render_mode is not None:
            raise ValueError(f"{type(self).__name__} does not render; expected render_mode=None, found {render_mode!r}")
        missing = [s.name for s in self.tool_specs if not callable(getattr(self, f"_tool_{s.name}", None))]
        if missing:
            raise TypeError(f"{type(self).__name__} declares tools without a _tool_<name> method: {missing}")
        self.max_steps = max_steps
        self.render_mode = render_mode
        self.observation_space = text_space(OBS_MAX_LEN)
        self.action_space = text_space(ACTION_MAX_LEN, min_length=1)
        self._task: TaskLike | None = None
        self._task_index = -1
        self._steps = 0
        self._terminated = False
        self._truncated = False

    # ------------------------------------------------------------------------------- public API

    @classmethod
    def task_ids(cls) -> list[str]:
        """Return the ids of the task bank, in seed order (``seed % len(bank)`` picks one)."""
        return [task.id for task in cls.tasks]

    @classmethod
    def task_bank(cls) -> dict[str, str]:
        """Return the task bank as ``{task id: split}`` in seed order (what ``trajrec report`` checks coverage
        against)."""
        return {task.id: split_of(i) for i, task in enumerate(cls.tasks)}

    @property
    def task(self) -> TaskLike | None:
        """The current task, or None before the first reset."""
        return self._task

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start an episode on the task chosen by ``options["task_id"]``, else by ``seed``.

        Args:
            seed: Picks task ``seed % len(tasks)``; None draws one from ``self.np_random``.
            options: ``{"task_id": id}`` picks that task. No other keys are accepted.

        Returns:
            The task text with a tool list, and ``{"task": {...}, "tools": [...]}`` (plus ``"text_tool":
            {"name", "argument"}`` when a plain-text action calls a tool).

        Raises:
            ValueError: Unknown option or task id (the message names the nearest ids).
        """
        super().reset(seed=seed)
        self._task_index = self._choose_task(seed, options)
        self._task = self.tasks[self._task_index]
        self._steps = 0
        self._terminated = False
        self._truncated = False
        self._begin(self._task)
        # The tool declaration (docs/EXPORT.md, "Declaring an env's tools"): chat exports list exactly these tools.
        info: dict[str, Any] = {"task": self._public_task(), "tools": tool_schemas(self.tool_specs)}
        if self.text_tool is not None:
            info["text_tool"] = {"name": self.text_tool[0], "argument": self.text_tool[1]}
        return clip(self._reset_text(self._task)), info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Run one tool call.

        Any string is a legal action: a malformed call, unknown tool or bad arguments give an
        ``error: ...`` observation and ``info["error"]``, never an exception.

        Returns:
            ``(observation, reward, terminated, truncated, info)`` where info has ``tool`` (the tool
            name or None), ``error`` on failure, and ``checks`` on steps that produce a verdict.

        Raises:
            gymnasium.error.ResetNeeded: ``step`` was called before ``reset``.
        """
        if self._task is None:
            raise gym.error.ResetNeeded("step() was called before reset(); call env.reset(seed=...) first")
        if self._terminated or self._truncated:
            message = f"the episode already ended after {self._steps} steps; call reset() to start a new one"
            return f"error: {message}", 0.0, self._terminated, self._truncated, {"tool": None, "error": message}

        self._steps += 1
        call = self._parse_action(action)
        if isinstance(call, ToolError):
            tool, outcome = call.tool, failed(call.message)
        else:
            tool, outcome = call.tool, getattr(self, f"_tool_{call.tool}")(call.args)
        self._after_call(action, call, outcome)

        if outcome.terminal:
            self._terminated = True
        elif self._steps >= self.max_steps:
            self._truncated = True
            check, reward = self._truncation_check()
            outcome.checks.append(check)
            outcome.reward = reward
            outcome.text += f"\n[step limit of {self.max_steps} reached: episode truncated. {check['rationale']}]"

        info: dict[str, Any] = {"tool": tool, **outcome.info}
        if outcome.error is not None:
            info["error"] = outcome.error
        if outcome.checks:
            info["checks"] = outcome.checks
        text = outcome.text if outcome.text else "(no output)"
        return clip(text), float(outcome.reward), self._terminated, self._truncated, info

    def state_dict(self) -> dict[str, Any]:
        """Return the env state as plain JSON-like data.

        Common keys: ``task_id``, ``step``, ``status`` (``"ready"``, ``"running"``, ``"terminated"``,
        ``"truncated"``); the rest is env-specific. Nested values are never mutated by the env after
        they are returned (it replaces them instead), so holding on to a state is safe.
        """
        if self._task is None:
            return {"task_id": None, "step": 0, "status": "ready"}
        status = "terminated" if self._terminated else "truncated" if self._truncated else "running"
        return {"task_id": self._task.id, "step": self._steps, "status": status, **self._state()}

    def render(self) -> None:
        """Nothing to render: observations are the text."""
        return None

    # ------------------------------------------------------------------------------- subclass hooks

    def _begin(self, task: Any) -> None:
        """Set up the state for ``task`` (called by reset)."""
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        """Return the env-specific part of :meth:`state_dict`."""
        raise NotImplementedError

    def _truncation_check(self) -> tuple[dict[str, Any], float]:
        """Return the episode check and reward for a truncated episode."""
        raise NotImplementedError

    def _reset_text(self, task: Any) -> str:
        """Return the reset observation."""
        example = self.tool_specs[0].name
        return (
            f"Task {task.id}:\n{task.text}\n\n{tool_list_text(self.tool_specs)}\n\n"
            f'Call one tool per step as JSON, e.g. {{"tool": "{example}", "args": {{...}}}}.'
        )

    def _parse_action(self, action: Any) -> ToolCall | ToolError:
        """Turn an action into a tool call (JSON by default)."""
        return parse_tool_call(action, self.tool_specs)

    def _after_call(self, action: Any, call: ToolCall | ToolError, outcome: Outcome) -> None:
        """Hook run after every call (e.g. to keep a transcript)."""

    # ------------------------------------------------------------------------------- helpers

    def _public_task(self) -> dict[str, Any]:
        task = self._task
        assert task is not None
        return {
            "id": task.id,
            "text": task.text,
            "split": split_of(self._task_index),
            "verification": [self.verification],
        }

    def _choose_task(self, seed: int | None, options: Mapping[str, Any] | None) -> int:
        options = {} if options is None else options
        if not isinstance(options, Mapping):
            raise ValueError(f"reset options must be a dict like {{'task_id': ...}}, found {type(options).__name__}")
        unknown = sorted(set(options) - {"task_id"})
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {unknown} for {self.env_id}; the only supported option is 'task_id'"
            )
        ids = self.task_ids()
        if "task_id" in options:
            task_id = options["task_id"]
            if task_id in ids:
                return ids.index(task_id)
            close = nearest(str(task_id), ids) or ids[:3]
            raise ValueError(
                f"unknown task id {task_id!r} for {self.env_id}; nearest ids: {', '.join(close)} "
                f"(all {len(ids)} ids: {type(self).__name__}.task_ids())"
            )
        if seed is not None:
            return int(seed) % len(ids)
        return int(self.np_random.integers(len(ids)))
