"""``trajrec/MathCalc-v0``: arithmetic word problems with a calculator tool and an exact answer check.

Tools: ``calc {"expr": str}`` evaluates arithmetic exactly (see :mod:`trajrec.envs.calculator`, never
``eval``); ``submit {"answer": number | str}`` ends the episode. The submitted answer is compared
with the task's answer as exact rationals (rule check ``exact-answer@1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

from trajrec.envs._base import Outcome, ToolEnv, failed
from trajrec.envs._tools import ToolSpec, make_check
from trajrec.envs.calculator import CalcError, evaluate, format_number, parse_number

JUDGE_ID = "exact-answer@1"
#: A float answer counts as equal when within this relative distance (covers 2.5000000000000004).
REL_TOLERANCE = Fraction(1, 10**9)


@dataclass(frozen=True)
class MathTask:
    """One word problem.

    Attributes:
        id: Stable task id.
        text: The problem as shown to the agent.
        expr: An arithmetic expression that solves it.
        answer: The exact answer (``evaluate(expr)``).
        slip: An expression for a typical wrong approach (e.g. averaging the speeds).
    """

    id: str
    text: str
    expr: str
    answer: Fraction
    slip: str


# Each template: (name, text, solving expression, typical slip, four parameter sets). Parameters are
# chosen so every answer has a finite decimal form and every slip gives a different number.
_TEMPLATES: tuple[tuple[str, str, str, str, tuple[dict[str, Any], ...]], ...] = (
    (
        "change",
        "A shop sells {item} at ${price} each. {name} buys {n} {item} and pays with a ${bill} bill. "
        "How much change, in dollars, does {name} get?",
        "{bill} - {n}*{price}",
        "{n}*{price}",
        (
            {"item": "pencils", "price": 3, "name": "Maya", "n": 14, "bill": 50},
            {"item": "notebooks", "price": 2.5, "name": "Leo", "n": 6, "bill": 20},
            {"item": "apples", "price": 0.75, "name": "Ana", "n": 12, "bill": 10},
            {"item": "tickets", "price": 12.5, "name": "Omar", "n": 3, "bill": 50},
        ),
    ),
    (
        "speed",
        "A train travels {d1} km in {t1} hours and then {d2} km in {t2} hours. "
        "What is its average speed over the whole trip, in km per hour?",
        "({d1} + {d2}) / ({t1} + {t2})",
        "({d1}/{t1} + {d2}/{t2}) / 2",
        (
            {"d1": 150, "t1": 2, "d2": 90, "t2": 3},
            {"d1": 100, "t1": 2, "d2": 60, "t2": 3},
            {"d1": 45, "t1": 0.5, "d2": 105, "t2": 1.5},
            {"d1": 200, "t1": 4, "d2": 70, "t2": 1},
        ),
    ),
    (
        "discount",
        "A {item} costs ${price}. It is on sale for {pct}% off. What is the sale price in dollars?",
        "{price} - {price}*{pct}/100",
        "{price}*{pct}/100",
        (
            {"item": "jacket", "price": 80, "pct": 25},
            {"item": "pair of shoes", "price": 64, "pct": 15},
            {"item": "desk lamp", "price": 45, "pct": 20},
            {"item": "bicycle", "price": 250, "pct": 12},
        ),
    ),
    (
        "paint",
        "A wall is {w} m wide and {h} m tall. One litre of paint covers {c} square metres. "
        "How many litres of paint are needed for {k} coats?",
        "{w}*{h}*{k} / {c}",
        "{w}*{h} / {c}",
        (
            {"w": 5, "h": 3, "c": 6, "k": 2},
            {"w": 4, "h": 2.5, "c": 5, "k": 3},
            {"w": 6, "h": 3, "c": 8, "k": 2},
            {"w": 7, "h": 2.4, "c": 4, "k": 2},
        ),
    ),
    (
        "split",
        "{n} friends share a restaurant bill of ${bill} and add a {tip}% tip. "
        "If they split the total evenly, how much does each person pay, in dollars?",
        "{bill} * (1 + {tip}/100) / {n}",
        "{bill} / {n}",
        (
            {"n": 4, "bill": 86, "tip": 15},
            {"n": 5, "bill": 120, "tip": 10},
            {"n": 3, "bill": 45, "tip": 20},
            {"n": 6, "bill": 150, "tip": 18},
        ),
    ),
    (
        "ages",
        "{a} is {x} years older than {b}. In {y} years their ages will add up to {s}. How old is {b} now?",
        "({s} - 2*{y} - {x}) / 2",
        "({s} - {x}) / 2",
        (
            {"a": "Nora", "b": "Ben", "x": 6, "y": 4, "s": 40},
            {"a": "Ivy", "b": "Sam", "x": 10, "y": 5, "s": 50},
            {"a": "Tom", "b": "Eli", "x": 3, "y": 2, "s": 25},
            {"a": "Zoe", "b": "Max", "x": 8, "y": 10, "s": 60},
        ),
    ),
)


def _build_tasks() -> tuple[MathTask, ...]:
    tasks = []
    # Interleave templates so consecutive seeds give different kinds of problem.
    for k in range(4):
        for name, text, expr, slip, params in _TEMPLATES:
            p = params[k]
            expr_k = expr.format(**p)
            tasks.append(
                MathTask(
                    id=f"math-{name}-{k + 1}",
                    text=text.format(**p) + " Answer with a number.",
                    expr=expr_k,
                    answer=evaluate(expr_k),
                    slip=slip.format(**p),
                )
            )
    return tuple(tasks)


TASKS: tuple[MathTask, ...] = _build_tasks()


def answer_key(task_id: str) -> dict[str, str]:
    """Return how to solve a task: ``{"expr", "answer", "slip", "slip_answer"}`` (for scripted agents).

    >>> answer_key("math-change-1")["answer"]
    '8'
    """
    task = next((t for t in TASKS if t.id == task_id), None)
    if task is None:
        raise ValueError(f"unknown task id {task_id!r}; see MathCalcEnv.task_ids()")
    return {
        "expr": task.expr,
        "answer": format_number(task.answer),
        "slip": task.slip,
        "slip_answer": format_number(evaluate(task.slip)),
    }


class MathCalcEnv(ToolEnv):
    """Arithmetic word problems: compute with ``calc``, then ``submit`` the answer.

    Args:
        max_steps: Steps after which the episode is truncated.
        render_mode: Only None.

    >>> env = MathCalcEnv()
    >>> obs, info = env.reset(seed=0)
    >>> info["task"]["id"], info["task"]["verification"]
    ('math-change-1', ['rule'])
    >>> env.step('{"tool": "calc", "args": {"expr": "50 - 14*3"}}')[0]
    '50 - 14*3 = 8'
    >>> obs, reward, terminated, truncated, info = env.step('{"tool": "submit", "args": {"answer": 8}}')
    >>> reward, terminated, info["checks"][0]["value"]
    (1.0, True, True)
    """

    env_id: ClassVar[str] = "trajrec/MathCalc-v0"
    tasks: ClassVar[tuple[MathTask, ...]] = TASKS
    verification: ClassVar[str] = "rule"
    tool_specs: ClassVar[tuple[ToolSpec, ...]] = (
        ToolSpec(
            "calc",
            "Evaluate an arithmetic expression exactly: numbers, + - * / // % **, parentheses, abs, round, min, max.",
            {"expr": {"type": "string", "minLength": 1, "maxLength": 500, "description": "e.g. (50 - 14*3) / 4"}},
            ("expr",),
        ),
        ToolSpec(
            "submit",
            "Submit the final answer (a number, or a string like '7/2'). Ends the episode.",
            {"answer": {"type": ["number", "string"], "description": "the final answer"}},
            ("answer",),
        ),
    )

    def __init__(self, *, max_steps: int = 30, render_mode: str | None = None) -> None:
        super().__init__(max_steps=max_steps, render_mode=render_mode)
        self._history: list[dict[str, str]] = []
        self._answer: Any = None
        self._correct: bool | None = None

    def _begin(self, task: MathTask) -> None:
        self._history = []
        self._answer = None
        self._correct = None

    def _state(self) -> dict[str, Any]:
        return {"history": list(self._history), "answer": self._answer, "correct": self._correct}

    def _tool_calc(self, args: dict[str, Any]) -> Outcome:
        expr = args["expr"]
        try:
            result = format_number(evaluate(expr))
        except CalcError as exc:
            # Copy-on-write: states already handed out keep their own list.
            self._history = [*self._history, {"expr": expr, "error": str(exc)}]
            return failed(f"calc: {exc}")
        self._history = [*self._history, {"expr": expr, "result": result}]
        return Outcome(text=f"{expr.strip()} = {result}")

    def _tool_submit(self, args: dict[str, Any]) -> Outcome:
        task = self._task
        assert isinstance(task, MathTask)
        raw = args["answer"]
        try:
            # repr() of a float is its shortest round-tripping decimal: 2.5 -> 5/2 exactly.
            got = parse_number(raw) if isinstance(raw, str) else parse_number(repr(raw))
        except CalcError as exc:
            return failed(f"submit: {exc}")
        expected = task.answer
        correct = abs(got - expected) <= REL_TOLERANCE * max(Fraction(1), abs(expected))
        self._answer, self._correct = raw, bool(correct)
        shown = format_number(got)
        verdict = "correct" if correct else "incorrect"
        check = make_check(
            "rule",
            JUDGE_ID,
            bool(correct),
            f"expected {format_number(expected)}, got {shown}: {verdict}",
        )
        return Outcome(
            text=f"Answer {shown} is {verdict}.", checks=[check], reward=1.0 if correct else 0.0, terminal=True
        )

    def _truncation_check(self) -> tuple[dict[str, Any], float]:
        return (
            make_check("environment", "step-limit@1", False, f"no answer submitted within {self.max_steps} steps"),
            0.0,
        )
