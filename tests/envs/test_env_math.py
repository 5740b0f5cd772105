"""trajrec/MathCalc-v0: the safe calculator and the exact-answer check."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from trajrec.envs.calculator import CalcError, evaluate, format_number, parse_number
from trajrec.envs.math_calc import TASKS, MathCalcEnv, answer_key


def call(tool, **args):
    return json.dumps({"tool": tool, "args": args})


@pytest.mark.parametrize(
    ("expr", "shown"),
    [
        ("2 * (3 + 4)", "14"),
        ("0.1 + 0.2", "0.3"),
        ("10 / 4", "2.5"),
        ("1 / 3", "0.333333333333 (exactly 1/3)"),
        ("7 // 2 + 7 % 2", "4"),
        ("-2 ** 3", "-8"),
        ("abs(-3) + round(2.567, 2) + min(4, 5) + max(1, 2)", "11.57"),
        ("2 ** -2", "0.25"),
    ],
)
def test_calculator_is_exact(expr, shown):
    assert format_number(evaluate(expr)) == shown


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ('__import__("os").system("echo pwned")', "unknown function \"__import__('os').system\"()"),
        ('__import__("os")', "unknown function __import__()"),
        ("open('/etc/passwd')", "unknown function open()"),
        ("(1).__class__", "Attribute is not arithmetic"),
        ("[1, 2]", "List is not arithmetic"),
        ("lambda: 1", "Lambda is not arithmetic"),
        ("x", "unknown name 'x'"),
        ("14 x 3", "invalid syntax at column 4"),
        ("1 / 0", "division by zero"),
        ("9 ** 9 ** 9", "exponent 387420489 is too large"),
        ("123456789 ** 100", "number too large"),
        ("10 ** 41", "number too large"),
        ("2 ** 0.5", "whole-number exponents"),
        ("1e999", "number out of range"),
        ("True + 1", "only numbers are allowed"),
        ("1 << 3", "operator << is not supported"),
        ("1" * 501, "limit is 500"),
        ("-" * 250 + "1", "the limit is 200"),
        ("", "expression is empty"),
        ("1\x00", "invalid syntax"),
    ],
)
def test_calculator_refuses_anything_but_bounded_arithmetic(expr, message):
    with pytest.raises(CalcError) as exc:
        evaluate(expr)
    assert message in str(exc.value)


def test_parse_number_accepts_common_answer_spellings():
    assert parse_number(" $1,250.50 ") == Fraction(2501, 2)
    assert parse_number("7/2") == Fraction(7, 2)
    assert parse_number("-$3") == -3
    with pytest.raises(CalcError, match="is not a number"):
        parse_number("twelve")


def test_every_task_has_a_finite_decimal_answer_and_a_distinct_slip():
    assert len(TASKS) >= 20
    for task in TASKS:
        key = answer_key(task.id)
        assert "exactly" not in key["answer"]
        assert key["slip_answer"] != key["answer"], task.id
        assert parse_number(key["answer"]) == task.answer


def test_correct_answer_passes_the_rule_check():
    env = MathCalcEnv()
    env.reset(options={"task_id": "math-split-1"})
    obs, reward, terminated, truncated, info = env.step(call("calc", expr="86 * (1 + 15/100) / 4"))
    assert obs == "86 * (1 + 15/100) / 4 = 24.725" and reward == 0.0 and "checks" not in info
    obs, reward, terminated, truncated, info = env.step(call("submit", answer=24.725))
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["checks"] == [
        {
            "kind": "rule",
            "judge": "exact-answer@1",
            "value": True,
            "score": None,
            "rationale": "expected 24.725, got 24.725: correct",
            "target": "episode",
        }
    ]
    state = env.state_dict()
    assert state["status"] == "terminated" and state["correct"] is True
    assert state["history"] == [{"expr": "86 * (1 + 15/100) / 4", "result": "24.725"}]


def test_string_answers_are_parsed():
    env = MathCalcEnv()
    env.reset(options={"task_id": "math-change-2"})
    *_, info = env.step(call("submit", answer="$5.00"))
    assert info["checks"][0]["value"] is True


def test_wrong_answer_fails_and_names_the_expected_one():
    env = MathCalcEnv()
    env.reset(options={"task_id": "math-speed-1"})
    obs, reward, terminated, _, info = env.step(call("submit", answer=52.5))
    assert (reward, terminated) == (0.0, True)
    assert obs == "Answer 52.5 is incorrect."
    assert info["checks"][0]["value"] is False
    assert info["checks"][0]["rationale"] == "expected 48, got 52.5: incorrect"


@pytest.mark.parametrize(
    ("action", "error"),
    [
        ('{"tool": "calc", "args": {"expr": "1+1"}', "could not parse the action as a JSON tool call"),
        (call("calculator", expr="1"), "unknown tool 'calculator' (did you mean 'calc'?)"),
        (call("calc", expression="1"), "calc: unknown argument 'expression' (did you mean 'expr'?)"),
        (call("calc", expr=5), "calc: argument 'expr' must be string, found int 5"),
        (call("submit", value=8), "submit: unknown argument 'value' (did you mean 'answer'?)"),
        (call("submit", answer=True), "submit: argument 'answer' must be number or string, found bool true"),
        (call("submit", answer="about 8"), "submit: 'about 8' is not a number"),
        ('{"tool": "submit", "args": {"answer": NaN}}', "NaN is not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"tool": "calc", "args": {"expr": "1"}, "extra": 1}', "unexpected key(s) 'extra'"),
    ],
)
def test_bad_calls_are_error_observations_not_exceptions(action, error):
    env = MathCalcEnv()
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(action)
    assert error in info["error"]
    assert obs.startswith("error: ")
    assert (reward, terminated, truncated) == (0.0, False, False)


def test_openai_style_calls_are_accepted():
    env = MathCalcEnv()
    env.reset(seed=0)
    obs, *_, info = env.step(json.dumps({"name": "calc", "arguments": json.dumps({"expr": "6*7"})}))
    assert obs == "6*7 = 42" and info == {"tool": "calc"}


def test_truncation_at_max_steps_gives_a_failing_episode_check():
    env = MathCalcEnv(max_steps=3)
    env.reset(seed=0)
    for _ in range(2):
        assert env.step(call("calc", expr="1"))[3] is False
    obs, reward, terminated, truncated, info = env.step(call("calc", expr="1"))
    assert (terminated, truncated, reward) == (False, True, 0.0)
    assert info["checks"][0]["judge"] == "step-limit@1"
    assert info["checks"][0]["value"] is False
    assert "step limit of 3 reached" in obs
    # Stepping a finished episode is an error observation, not an exception.
    _, _, terminated, truncated, info = env.step(call("calc", expr="1"))
    assert truncated and "call reset()" in info["error"]
