"""A stop (Ctrl-C, SIGTERM) while the env runs a step keeps that step's note (FINDINGS33 #1): the model call that
chose the action is a paid call, so it goes with the action into the summary's ``agent_error`` and counts in
``summary.model``, as the call in flight of a stop during the model wait does. The step itself is not recorded
and the episode ends ``stopped``; no warning blames the agent. Checked with a real ``trajrec record --agent
openai`` subprocess against a local server (SIGINT while its env runs the tool) and with your own loop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import gymnasium as gym
import pytest
from fake_openai_server import FakeOpenAIServer, tool_reply

from trajrec import Recorder, open_episode
from trajrec.recorder.model_call import ModelCall

pytest.importorskip("openai")

# An env of your own (`trajrec record slowtool:SlowTool-v0`): its tool hangs (a test suite that does not finish),
# after saying so in a file, so the test knows the env is inside step() when it sends the stop.
SLOW_ENV = '''
import os, time
import gymnasium as gym

TOOLS = [{"type": "function", "function": {"name": "run_tests", "description": "run the test suite",
                                           "parameters": {"type": "object", "properties": {}}}}]

class SlowTool(gym.Env):
    observation_space = gym.spaces.Text(2000)
    action_space = gym.spaces.Text(2000)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return "Fix the bug, then run the tests.", {"tools": TOOLS}

    def step(self, action):
        open(os.environ["SLOW_TOOL_MARK"], "w").close()
        time.sleep(120)
        return "passed", 1.0, True, False, {}

gym.register("SlowTool-v0", entry_point="slowtool:SlowTool")
'''


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT are POSIX")
def test_ctrl_c_while_the_env_runs_the_tool_keeps_the_call_that_chose_it(tmp_path):
    (tmp_path / "slowtool.py").write_text(SLOW_ENV)
    mark = tmp_path / "in-step"
    out = tmp_path / "run"
    reply = {**tool_reply("run_tests", "{}", prompt_tokens=1000, completion_tokens=100), "usage": {
        "prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100, "cost": 0.5}}
    with FakeOpenAIServer([reply]) as server:
        proc = subprocess.Popen([sys.executable, "-m", "trajrec", "record", "slowtool:SlowTool-v0", "--agent", "openai",
                                 "--model", "m", "--base-url", server.base_url, "--seed", "3", "--episodes", "1",
                                 "--out", str(out)], cwd=tmp_path, env={**os.environ, "SLOW_TOOL_MARK": str(mark)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.monotonic() + 60  # a guard against a hang, not a measurement
        while not mark.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the env's step never started"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            err = proc.communicate(timeout=60)[1]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail("Ctrl-C did not stop `trajrec record`")
    assert proc.returncode == 130, err
    assert len(server.requests) == 1
    assert "reached no step" not in err and "Traceback" not in err, err
    (path,) = out.glob("*.msgpack.zst")
    ep = open_episode(path)
    s = ep.summary
    assert len(ep) == 0 and s["outcome"] == "stopped"
    kept = s["agent_error"]
    assert kept["interrupted"] is True and "stopped while the env ran" in kept["message"]
    assert kept["interrupted_step"]["i"] == 0
    assert '"run_tests"' in kept["interrupted_step"]["action"]
    assert kept["model_call"]["usage"]["total_tokens"] == 1100
    assert (s["model"]["calls"], s["model"]["total_tokens"], s["model"]["cost"]) == (1, 1100, 0.5)
    shown = subprocess.run([sys.executable, "-m", "trajrec", "show", str(path)], capture_output=True, text=True,
                           timeout=120)
    stopped = "stopped   stopped while the env ran step 0 (its action and note are in agent_error)"
    assert stopped in shown.stdout, shown.stdout
    assert "model     1 call" in shown.stdout, shown.stdout


class Tool(gym.Env):
    """Its third step is cut short by a stop, as Ctrl-C cuts short whatever Python code runs when it comes."""

    observation_space = gym.spaces.Text(100)
    action_space = gym.spaces.Text(100)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.n = 0
        return "go", {}

    def step(self, action):
        self.n += 1
        if self.n == 3:
            raise KeyboardInterrupt
        return "ok", 0.0, False, False, {}


@pytest.mark.parametrize("stop", ["with", "close"])
def test_your_own_loop_keeps_the_note_of_the_step_a_stop_cut_short(tmp_path, stop):
    def call(k):
        return ModelCall(model="m", usage={"prompt_tokens": 1000, "completion_tokens": 100}, cost=0.05,
                         content=f"call {k}").to_dict()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing blames the agent, which noted before env.step() as it should
        env = Recorder(Tool(), tmp_path)
        with pytest.raises(KeyboardInterrupt):
            if stop == "with":
                with env:
                    env.reset(seed=0)
                    for k in range(5):
                        env.note(model_call=call(k), thought=f"step {k}")
                        env.step(f"a{k}")
            else:
                env.reset(seed=0)
                try:
                    for k in range(5):
                        env.note(model_call=call(k), thought=f"step {k}")
                        env.step(f"a{k}")
                finally:
                    env.close()
    ep = open_episode(env.episode_path)
    s = ep.summary
    assert len(ep) == 2 and s["outcome"] == "stopped"
    kept = s["agent_error"]
    assert kept["interrupted"] is True and kept["interrupted_step"] == {"i": 2, "action": "a2"}
    assert kept["thought"] == "step 2" and kept["model_call"]["content"] == "call 2"
    # Three calls were made and paid for: the two recorded steps' and the interrupted one's.
    assert s["model"]["calls"] == 3 and s["model"]["total_tokens"] == 3300
    assert abs(s["model"]["cost"] - 0.15) < 1e-9


def test_a_stop_in_a_step_without_a_note_leaves_no_agent_error(tmp_path):
    env = Recorder(Tool(), tmp_path)
    env.reset(seed=0)
    env.step("a0")
    env.step("a1")
    with pytest.raises(KeyboardInterrupt):
        env.step("a2")
    env.close()
    s = open_episode(env.episode_path).summary
    assert s["outcome"] == "stopped" and "agent_error" not in s and "model" not in s
