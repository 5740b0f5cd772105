"""trajrec/CodeRepair-v0: tests really run, in a limited sandbox, and nothing machine-specific leaks."""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from trajrec.envs.code_repair import CodeRepairEnv
from trajrec.envs.code_tasks import TASKS, answer_key
from trajrec.envs.sandbox import Sandbox


def call(tool, **args):
    return json.dumps({"tool": tool, "args": args})


def edit(task_id, text):
    key = answer_key(task_id)
    return call("edit", path=key["module"], start=key["line"], end=key["line"], text=text)


@pytest.fixture
def env(tmp_path, monkeypatch):
    # Sandboxes go under tmp_path, so the tests can see what is left behind.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    env = CodeRepairEnv(timeout=2.0)
    yield env
    env.close()


def test_correct_patch_passes_and_wrong_patch_fails(env):
    env.reset(options={"task_id": "code-stats-1"})
    obs, _, _, _, info = env.step(call("run_tests"))
    assert obs.startswith("Ran 8 tests: 4 passed, 3 failed, 1 errored")
    assert "FAIL  TestMean.test_integers: AssertionError: 3.3333333333333335 != 2.5 (test_stats.py:8)" in obs
    assert info["tests"]["test_stats.TestMean.test_single"] == "error"
    [check] = info["checks"]
    assert check["kind"] == "rule" and check["judge"] == "unittest@py3" and check["target"] == "step"
    assert check["value"] is False
    assert check["rationale"].startswith("4/8 tests passed: TestMean.test_integers failed (AssertionError")
    assert "error" not in info  # failing tests are a verdict, not a tool error

    env.step(edit("code-stats-1", answer_key("code-stats-1")["decoy"]))
    *_, info = env.step(call("run_tests"))
    assert info["checks"][0]["value"] is False

    env.step(edit("code-stats-1", answer_key("code-stats-1")["fixed"]))
    *_, info = env.step(call("run_tests"))
    assert info["checks"][0] == {
        "kind": "rule",
        "judge": "unittest@py3",
        "value": True,
        "score": None,
        "rationale": "8/8 tests passed",
        "target": "step",
    }
    obs, reward, terminated, truncated, info = env.step(call("submit"))
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert obs.startswith("Submission accepted (original tests): 8/8 tests passed")
    assert info["checks"][0]["target"] == "episode" and info["checks"][0]["value"] is True
    assert set(info["tests"].values()) == {"pass"}


def test_submitting_a_wrong_patch_fails_the_episode(env):
    env.reset(options={"task_id": "code-bank-2"})
    env.step(edit("code-bank-2", answer_key("code-bank-2")["decoy"]))
    obs, reward, terminated, _, info = env.step(call("submit"))
    assert (reward, terminated) == (0.0, True)
    assert obs.startswith("Submission rejected")
    assert info["checks"][0]["value"] is False
    assert info["checks"][0]["rationale"] == (
        "5/6 tests passed: TestAccount.test_transfer failed (AssertionError: Tuples differ: (1000, 0) != (600, 400) "
        "(test_bank.py:28))"
    )


def test_infinite_loop_times_out_with_a_clear_failure(env):
    env.reset(options={"task_id": "code-search-1"})  # its bug makes bisect_left loop forever
    obs, reward, terminated, truncated, info = env.step(call("run_tests"))
    assert obs.splitlines()[0] == "tests timed out after 2.0 s while running TestBisect.test_middle"
    assert (
        info["error"] == "tests timed out after 2.0 s while running TestBisect.test_middle; 1 passed before the timeout"
    )
    assert info["checks"][0]["value"] is False
    assert info["tests"] == {"test_search.TestBisect.test_empty": "pass"}
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert env.state_dict()["last_test_run"]["timed_out"] is True


def test_an_infinite_loop_patch_times_out_on_submit_too(env):
    env.reset(options={"task_id": "code-stats-1"})
    env.step(edit("code-stats-1", "    while True:\n        pass"))
    obs, reward, terminated, _, info = env.step(call("submit"))
    assert terminated and reward == 0.0
    assert "tests timed out after 2.0 s" in obs and "timed out" in info["error"]
    assert info["checks"][0]["value"] is False


_NET_TESTS = """
class TestSandbox(unittest.TestCase):
    def test_connect(self):
        import socket
        socket.create_connection(("127.0.0.1", 9), timeout=1)

    def test_socket(self):
        import socket
        socket.socket()

    def test_memory_is_limited(self):
        bytearray(2 * 1024 ** 3)

    def test_cwd_is_not_leaked(self):
        import os
        self.assertEqual(os.getcwd(), "somewhere")
"""


def test_network_is_disabled_and_memory_limited_and_paths_scrubbed(env, tmp_path):
    env.reset(options={"task_id": "code-stats-1"})
    lines = len(TASKS[0].files["test_stats.py"].split("\n"))
    obs, *_, info = env.step(call("edit", path="test_stats.py", start=lines, end=lines - 1, text=_NET_TESTS))
    assert "error" not in info, obs
    obs, *_, info = env.step(call("run_tests"))
    assert "ERROR TestSandbox.test_connect: OSError: network disabled in trajrec sandbox" in obs
    assert "ERROR TestSandbox.test_socket: OSError: network disabled in trajrec sandbox" in obs
    assert "ERROR TestSandbox.test_memory_is_limited: MemoryError" in obs
    assert "FAIL  TestSandbox.test_cwd_is_not_leaked: AssertionError: '.' != 'somewhere'" in obs
    everything = json.dumps([obs, info, env.state_dict()])
    assert str(tmp_path) not in everything and "trajrec-code-" not in everything


def test_editing_the_tests_does_not_pass_submit(env):
    env.reset(options={"task_id": "code-dates-1"})
    n = len(TASKS[5].files["test_dates.py"].split("\n"))
    stub = "import unittest\n\nclass T(unittest.TestCase):\n    def test_ok(self):\n        pass"
    env.step(call("edit", path="test_dates.py", start=1, end=n - 1, text=stub))
    *_, info = env.step(call("run_tests"))
    assert info["checks"][0]["value"] is True  # the edited suite passes...
    *_, info = env.step(call("submit"))
    assert info["checks"][0]["value"] is False  # ...but submission runs the original one
    assert "test_dates.TestLeap.test_four_centuries" in info["tests"]


def test_sandbox_dirs_are_removed_on_reset_and_close(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    env = CodeRepairEnv(timeout=2.0)
    env.reset(seed=0)
    assert list(tmp_path.iterdir()) == []  # created lazily, on the first run
    env.step(call("run_tests"))
    assert len(list(tmp_path.iterdir())) == 1
    env.reset(seed=1)
    assert list(tmp_path.iterdir()) == []
    env.step(call("run_tests"))
    env.close()
    env.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            {"path": "src/stats.py", "start": 1, "end": 1, "text": ""},
            "edit: no such file 'src/stats.py' (did you mean 'stats.py'?); files: stats.py, test_stats.py",
        ),
        ({"path": "stats.py", "start": 0, "end": 1, "text": ""}, "edit: argument 'start' must be >= 1, found 0"),
        (
            {"path": "stats.py", "start": 27, "end": 27, "text": ""},
            "edit: start must be between 1 and 26 (stats.py has 25 lines), found 27",
        ),
        (
            {"path": "stats.py", "start": 5, "end": 3, "text": ""},
            "edit: end must be between 4 (insert) and 25 (stats.py has 25 lines), found 3",
        ),
        (
            {"path": "stats.py", "start": "8", "end": 8, "text": ""},
            "edit: argument 'start' must be integer, found str '8'",
        ),
        ({"path": "stats.py", "start": 8, "end": 8}, "edit: missing required argument 'text'"),
    ],
)
def test_bad_edits_are_errors_and_change_nothing(env, args, error):
    env.reset(options={"task_id": "code-stats-1"})
    before = env.state_dict()["files"]
    obs, *_, info = env.step(call("edit", **args))
    assert error in info["error"]
    assert env.state_dict()["files"] == before


def test_files_cannot_grow_past_the_limit(env):
    env.reset(options={"task_id": "code-stats-1"})
    big = call("edit", path="stats.py", start=1, end=0, text="#" * 15_000)
    assert "error" not in env.step(big)[-1]
    *_, info = env.step(big)
    assert info["error"].startswith("edit: stats.py would grow to 30")
    assert info["error"].endswith("characters, the limit is 20000")


def test_edit_inserts_deletes_and_shows_context(env):
    env.reset(options={"task_id": "code-stats-1"})
    obs, *_, info = env.step(call("edit", path="stats.py", start=1, end=0, text="# header"))
    assert obs.startswith("Edited stats.py: replaced nothing (insert before line 1) with 1 line(s). Now:\n1 | # header")
    state = env.state_dict()
    assert state["files"]["stats.py"].startswith('# header\n"""Small statistics helpers."""\n')
    env.step(call("edit", path="stats.py", start=1, end=1, text=""))
    assert env.state_dict()["files"]["stats.py"] == TASKS[0].files["stats.py"]
    assert state["files"]["stats.py"].startswith("# header")  # a state handed out earlier is untouched
    obs, *_ = env.step(call("read_file", path="./stats.py"))
    assert obs.splitlines()[0] == "stats.py (25 lines):" and " 8 |     return sum(values) / (len(values) - 1)" in obs


def _variant(task, line):
    lines = task.files[task.module].split("\n")
    lines[task.line - 1] = line
    return {**task.files, task.module: "\n".join(lines)}


def _grade(task):
    box = Sandbox()
    try:
        return task.id, {
            kind: box.run_tests(_variant(task, getattr(task, kind)), timeout=1.5)
            for kind in ("buggy", "fixed", "decoy")
        }
    finally:
        box.close()


def test_every_task_tells_the_fix_from_the_bug_and_the_decoy():
    assert len(TASKS) >= 20
    with ThreadPoolExecutor(2) as pool:
        for task_id, runs in pool.map(_grade, TASKS):
            assert not runs["buggy"].ok, task_id
            assert runs["fixed"].ok, (task_id, runs["fixed"].summary())
            assert not runs["decoy"].ok and not runs["decoy"].timed_out, (task_id, runs["decoy"].summary())


def test_constructor_validates_limits():
    with pytest.raises(ValueError, match="timeout must be a number of seconds"):
        CodeRepairEnv(timeout=0)
    with pytest.raises(ValueError, match="memory_mb must be an int >= 64"):
        CodeRepairEnv(memory_mb=1)


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "Popen.wait"])
def test_a_run_and_a_timeout_report_alike_with_or_without_a_pidfd(pidfd, monkeypatch):
    """The child is waited for with a pidfd on Linux and with ``Popen.wait`` where there is none (macOS, old
    kernels): a passing run, a failing one and a timeout give the same reports either way."""
    import os

    if pidfd and not hasattr(os, "pidfd_open"):
        pytest.skip("this platform has no os.pidfd_open")
    if not pidfd:
        def no_pidfd(pid, flags=0):
            raise OSError(38, "Function not implemented")

        monkeypatch.setattr(os, "pidfd_open", no_pidfd, raising=False)
    task = TASKS[0]
    box = Sandbox()
    try:
        fixed = box.run_tests(_variant(task, task.fixed), timeout=5.0)
        buggy = box.run_tests(_variant(task, task.buggy), timeout=5.0)
        hangs = box.run_tests({"test_hang.py": "import unittest\nclass T(unittest.TestCase):\n"
                                               "    def test_hang(self):\n        while True:\n            pass\n"},
                              timeout=0.5)
    finally:
        box.close()
    assert fixed.ok and not fixed.timed_out
    assert not buggy.ok and not buggy.timed_out and buggy.summary() != fixed.summary()
    assert hangs.timed_out and not hangs.ok
    assert "timed out after 0.5 s" in hangs.summary()
