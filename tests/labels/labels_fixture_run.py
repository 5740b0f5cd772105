"""A small scripted tool env and a deterministic run of it, for the label, agreement and export tests.

The run (:func:`record_fixture_run`) has three episodes, one per seed, each exercising what labels and exports
care about: tool-call and command-line actions, thoughts, failures, an unchanged repeated mistake, a changed retry,
a recovery, a passed and a failed terminal check, a truncated episode, numpy values and a NaN reward.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from trajrec.recorder import Recorder

TOOLS = [
    {"type": "function", "function": {"name": "cat", "description": "Print a file.",
                                      "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                                                     "required": ["path"]}}},
    {"type": "function", "function": {"name": "write", "description": "Write a file.",
                                      "parameters": {"type": "object", "properties": {"path": {"type": "string"},
                                                                                      "text": {"type": "string"}},
                                                     "required": ["path", "text"]}}},
    {"type": "function", "function": {"name": "submit", "description": "Submit the answer.",
                                      "parameters": {"type": "object", "properties": {"answer": {"type": "string"}},
                                                     "required": ["answer"]}}},
]


def call(tool: str, **args: Any) -> str:
    return json.dumps({"tool": tool, "args": args})


class FixtureToolEnv(gym.Env):
    """Files in a dict; tools ``cat``/``write``/``submit`` as JSON calls, or command lines ``ls``/``cat PATH``.

    A failed call sets ``info["error"]``; ``submit`` ends the episode with an episode-level rule check.
    """

    metadata = {"render_modes": []}

    def __init__(self, max_steps: int = 50) -> None:
        self.observation_space = gym.spaces.Text(max_length=10_000)
        self.action_space = gym.spaces.Text(max_length=1_000)
        self.max_steps = max_steps
        self.files: dict[str, str] = {}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        self.files = {"notes.txt": "buy milk", "todo.txt": "milk"}
        task = {"id": f"fixture-{seed}", "text": "Find what to buy and submit it.", "split": "train",
                "verification": ["rule"]}
        return f"Task fixture-{seed}:\nFind what to buy and submit it.\nfiles: notes.txt todo.txt", {
            "task": task, "tools": TOOLS}

    def state_dict(self) -> dict[str, Any]:
        return {"files": dict(self.files), "t": self.t}

    def step(self, action: str):
        self.t += 1
        info: dict[str, Any] = {}
        reward: Any = 0.0
        terminated = False
        if action.startswith("{"):
            c = json.loads(action)
            tool, args = c["tool"], c.get("args", {})
        else:
            words = action.split()
            tool, args = words[0], {"path": words[1]} if len(words) > 1 else {}
        info["tool"] = tool
        if tool == "cat":
            text = self.files.get(args.get("path", ""))
            if text is None:
                obs = f"cat: {args.get('path')}: No such file"
                info["error"] = "no such file"
            else:
                obs = text
        elif tool == "ls":
            obs = " ".join(sorted(self.files))
        elif tool == "write":
            self.files[args["path"]] = args["text"]
            obs = "ok"
            info["sizes"] = np.array([len(v) for v in self.files.values()])
        elif tool == "submit":
            ok = args.get("answer") == "milk"
            obs = "correct" if ok else "wrong answer"
            reward = np.float32(1.0) if ok else 0.0
            terminated = True
            info["checks"] = [{"kind": "rule", "judge": "answer-match@1", "value": ok, "target": "episode",
                               "rationale": "answer matches" if ok else f"expected 'milk', got {args.get('answer')!r}"}]
        elif tool == "nan":
            obs = "odd reward"
            reward = float("nan")
        else:
            obs = f"{tool}: command not found"
            info["error"] = "unknown command"
        truncated = not terminated and self.t >= self.max_steps
        return obs, reward, terminated, truncated, info


#: The scripted agent: per seed, (thought, action) pairs.
SCRIPTS: dict[int, list[tuple[str | None, str]]] = {
    0: [  # passes: a repeated mistake, then a recovery
        ("Look at the notes first.", call("cat", path="notes.txt")),
        ("The list is in todo.md.", call("cat", path="todo.md")),
        (None, call("cat", path="todo.md")),
        ("Maybe it is todo.txt.", call("cat", path="todo.txt")),
        ("Write it down.", call("write", path="done.txt", text="milk")),
        ("Submit.", call("submit", answer="milk")),
    ],
    1: [  # fails: command lines, a repeated mistake, a wrong answer
        ("List the files.", "ls /"),
        (None, "cat missing.txt"),
        (None, "cat missing.txt"),
        ("Give up and guess.", call("submit", answer="eggs")),
    ],
    2: [  # truncated, no verdict: a changed retry, a NaN reward
        ("Try a.", call("cat", path="a")),
        ("Try b instead.", call("cat", path="b")),
        (None, "nan"),
    ],
}


ENV_ID = "trajrec-tests/Fixture-v0"


def record_fixture_run(out_dir: Path) -> Path:
    """Record the three scripted episodes into ``out_dir`` (one Recorder, seeds 0, 1, 2)."""
    if ENV_ID not in gym.registry:
        gym.register(ENV_ID, entry_point=FixtureToolEnv)
    env = Recorder(gym.make(ENV_ID, max_steps=50, disable_env_checker=True), out_dir,
                   agent={"name": "scripted", "version": "1"}, run_id="fixture-run")
    for seed, script in SCRIPTS.items():
        env.unwrapped.max_steps = 3 if seed == 2 else 50
        env.reset(seed=seed)
        for thought, action in script:
            if thought:
                env.note(thought=thought)
            env.step(action)
    env.close()
    return out_dir


def episode_ids_by_seed(run: Path) -> dict[int, str]:
    from trajrec.recorder import read_index

    out = {}
    for p in sorted(run.glob("*.msgpack.zst")):
        h = read_index(p)["header"]
        out[h["task"]["seed"]] = h["episode_id"]
    return out
