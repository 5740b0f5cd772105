from __future__ import annotations

import pytest

from trajrec.recorder import Recorder, open_episode
from trajrec.recorder.classify import Classifier, default_action_key


def test_issue_example_through_the_recorder(tmp_path, stub_env):
    env = Recorder(stub_env(), tmp_path)
    env.reset(seed=0)
    for a in ("cat missing.txt", "cat missing.txt", "cat notes.txt"):
        env.step(a)
    env.close()
    ep = open_episode(env.episode_path)
    assert [s.failure.kind if s.failure else None for s in ep] == ["tool_error", "tool_error", None]
    assert [s.retry_of for s in ep] == [None, 0, 1]
    assert [s.recovers for s in ep] == [[], [], [0, 1]]
    assert ep.summary["failures"] == 2 and ep.summary["retries"] == 2 and ep.summary["recoveries"] == 1


def test_operations_are_tracked_separately_and_recovery_clears_them():
    c = Classifier()
    assert c.classify(0, '{"tool": "calc", "args": {"expr": "1/0"}}', {"error": "division by zero"})[0]["kind"] == "tool_error"
    assert c.classify(1, "ls /nope", {"error": "no such dir"})[1] is None  # other op: not a retry
    assert c.classify(2, '{"tool": "calc", "args": {"expr": "1/1"}}', {}) == (None, 0, [0])
    # after the recovery, calc is healthy again: a later calc is neither retry nor recovery
    assert c.classify(3, '{"tool": "calc", "args": {"expr": "2"}}', {}) == (None, None, None)
    assert c.classify(4, "ls /", {}) == (None, 1, [1])


def test_failure_fn_can_add_override_and_name_kinds():
    def failure_fn(step):
        if "wrong" in str(step["observation"]):
            return "wrong_answer"
        if step["info"].get("error") == "benign":
            return False
        return None

    c = Classifier(failure_fn=failure_fn)
    assert c.classify(0, "submit 3", {}, None, {"observation": "wrong", "info": {}})[0]["kind"] == "wrong_answer"
    assert c.classify(1, "ls", {"error": "benign"}, None, {"observation": "", "info": {"error": "benign"}})[0] is None
    assert c.classify(2, "ls", {"error": "bad"}, None, {"observation": "", "info": {"error": "bad"}})[0]["kind"] == "tool_error"


def test_exception_failure_carries_type_message_traceback():
    c = Classifier()
    try:
        raise KeyError("k")
    except KeyError as exc:
        failure, _, _ = c.classify(0, "x", None, exc)
    assert failure["kind"] == "exception" and failure["type"] == "KeyError"
    assert "KeyError" in failure["traceback"] and failure["message"] == "'k'"


@pytest.mark.parametrize("action,key", [
    ('{"tool": "read", "args": {}}', "read"),
    ('{"name": "search"}', "search"),
    ('{"function": {"name": "f", "arguments": "{}"}}', "f"),
    ("  grep -r x .", "grep"),
    ("", ""),
    ('{not json', '{not json'),
    ({"tool": "ls"}, "ls"),
    (7, 7),
])
def test_default_action_key(action, key):
    assert default_action_key(action) == key


def test_broken_action_key_warns_once_and_keeps_recording():
    def bad_key(action):
        raise ValueError("nope")

    c = Classifier(action_key=bad_key)
    with pytest.warns(RuntimeWarning, match="action_key raised"):
        c.classify(0, "a", {"error": "x"})
    assert c.classify(1, "a", {"error": "x"})[1] == 0
