"""`trajrec record MODULE:ENV_ID` (Gymnasium's form) records your own env: a real subprocess run from the folder
holding the module, which is imported first (in every worker too) and registers the env; `--agent random`,
`--workers 2` and `--agent openai` against a real local HTTP server; `--resume` finds the episodes again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trajrec.recorder import open_episode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "llm"))
from fake_openai_server import FakeOpenAIServer, tool_reply  # noqa: E402

MODULE = '''
import json
import string

import gymnasium as gym
from gymnasium import spaces

TOOLS = [{"type": "function", "function": {"name": "put", "description": "store a value",
          "parameters": {"type": "object", "properties": {"value": {"type": "string"}}}}}]


class KVEnv(gym.Env):
    def __init__(self):
        self.observation_space = spaces.Text(1000, charset=string.printable)
        self.action_space = spaces.Text(1000, charset=string.printable)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return "Store the value 1.", {"tools": TOOLS}

    def step(self, action):
        try:
            arguments = json.loads(action)["arguments"]
            value = (json.loads(arguments) if isinstance(arguments, str) else arguments)["value"]
        except Exception:
            return "error: call put", 0.0, False, False, {}
        return "stored", float(value == "1"), True, False, {}


gym.register("KV-v0", entry_point=KVEnv, max_episode_steps=3)
'''


def _record(folder: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    # The console script, run from the module's folder, with nothing on PYTHONPATH: the current folder is enough.
    trajrec = Path(sys.executable).with_name("trajrec")
    cmd = [str(trajrec)] if trajrec.exists() else [sys.executable, "-c", "from trajrec.cli import main; main()"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([*cmd, "record", *argv], cwd=folder, capture_output=True, text=True, timeout=180, env=env)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    (tmp_path / "mykv.py").write_text(MODULE)
    return tmp_path


@pytest.mark.parametrize("workers", ["1", "2"])
def test_random_agent_records_an_env_from_a_module(folder, workers):
    proc = _record(folder, "mykv:KV-v0", "--agent", "random", "--episodes", "3", "--workers", workers,
                   "--out", "runs/kv")
    assert proc.returncode == 0, proc.stderr
    paths = sorted((folder / "runs" / "kv").glob("*.msgpack.zst"))
    assert len(paths) == 3
    ep = open_episode(paths[0])
    assert ep.header["task"]["env_id"] == "KV-v0" and len(ep) >= 1
    # --resume recognises the episodes as this env's: nothing left to record.
    again = _record(folder, "mykv:KV-v0", "--agent", "random", "--episodes", "3", "--out", "runs/kv", "--resume")
    assert again.returncode == 0, again.stderr
    assert len(list((folder / "runs" / "kv").glob("*.msgpack.zst"))) == 3


def test_openai_agent_records_an_env_from_a_module(folder):
    pytest.importorskip("openai")
    with FakeOpenAIServer([tool_reply("put", '{"value": "1"}')]) as server:
        proc = _record(folder, "mykv:KV-v0", "--agent", "openai", "--model", "m", "--base-url", server.base_url,
                       "--episodes", "1", "--out", "runs/llm")
    assert proc.returncode == 0, proc.stderr
    (path,) = (folder / "runs" / "llm").glob("*.msgpack.zst")
    ep = open_episode(path)
    assert ep[0].reward == 1.0 and ep.summary["model"]["calls"] == 1
    assert [t["function"]["name"] for t in server.requests[0]["body"]["tools"]] == ["put"]


def test_a_module_that_does_not_import_is_one_clear_line(folder):
    proc = _record(folder, "nosuchmodule:KV-v0", "--agent", "random", "--out", "runs/x")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "cannot import module 'nosuchmodule'" in line and "PYTHONPATH" in line, line
    proc = _record(folder, "mykv:Other-v0", "--agent", "random", "--out", "runs/x")
    assert proc.returncode != 0
    assert "registered no env with id 'Other-v0'" in proc.stderr.strip().splitlines()[-1], proc.stderr
