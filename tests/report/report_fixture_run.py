"""A run whose report figures are known by hand: seven scripted episodes of a small quiz env over four tasks.

=====  ======  =====  ==========================================================  ========
ep     task    split  steps (tool: what happens)                                  outcome
=====  ======  =====  ==========================================================  ========
E1     t1      train  read ok, calc ok, answer 42                                 passed
E2     t1      train  read missing (fail), read missing (retry, fail), read ok    passed
                      (recovers both), answer 42
E3     t1      train  calc bad (fail), calc ok (recovers), answer 41              failed
E4     t2      test   read ok, answer 42                                          passed
E5     t2      test   read ok, answer 42 (the same actions as E4: a duplicate)    passed
E6     t3      train  calc bad (fail, never recovered), answer 40                 failed
E7     t4      train  read ok, boom (env.step raises)                             error
=====  ======  =====  ==========================================================  ========

E1-E6 are one run (``r1``, model ``m-1``, temperature 0.5 in ``agent.sampling``); E7 another (``r2``, model
``m-2``, temperature 1.0 as an agent field). E1's steps carry token usage in ``note["usage"]`` and a cost;
E2's first step in ``note["model_call"]["usage"]``. :func:`add_labels` has two judges label E1's three steps
(agreeing on two: Cohen's kappa 0.4) and a third label one step of E2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym

from trajrec.recorder import Recorder, read_index
from trajrec.replay.labels import LabelStore

ENV_ID = "trajrec-tests/Quiz-v0"


def call(tool: str, **args: Any) -> str:
    return json.dumps({"tool": tool, "args": args})


class QuizEnv(gym.Env):
    """Tools ``read(path)``, ``calc(expr)``, ``answer(value)`` and ``boom``; the task comes in reset options."""

    metadata = {"render_modes": []}
    observation_space = gym.spaces.Text(max_length=1000)
    action_space = gym.spaces.Text(max_length=1000)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        opts = options or {}
        task = {"id": opts["task"], "text": f"Answer quiz {opts['task']}.", "split": opts["split"],
                "verification": ["rule"]}
        return "quiz", {"task": task}

    def step(self, action: str):
        c = json.loads(action)
        tool, args = c["tool"], c.get("args", {})
        info: dict[str, Any] = {"tool": tool}
        terminated = False
        reward = 0.0
        if tool == "read":
            if args["path"] != "notes.txt":
                info["error"] = f"read: no such file '{args['path']}' (errno 2)"
        elif tool == "calc":
            if not args["expr"].replace("*", "").isdigit():
                info["error"] = f"calc: bad number '{args['expr']}' at column {len(args['expr'])}"
        elif tool == "answer":
            ok = args["value"] == "42"
            terminated = True
            reward = 1.0 if ok else 0.0
            info["checks"] = [{"kind": "rule", "judge": "answer@1", "value": ok, "target": "episode"}]
        elif tool == "boom":
            raise RuntimeError("boom at step 1")
        return "ok", reward, terminated, False, info


USAGE = {"usage": {"prompt_tokens": 10, "completion_tokens": 5}, "cost": 0.001}
R1 = {"name": "quiz-agent", "version": "2", "model": "m-1", "sampling": {"temperature": 0.5}}
R2 = {"name": "quiz-agent", "version": "2", "model": "m-2", "temperature": 1.0}

#: name -> (task, split, [(action, note)])
SCRIPTS: dict[str, tuple[str, str, list[tuple[str, dict[str, Any]]]]] = {
    "E1": ("t1", "train", [(call("read", path="notes.txt"), {"thought": "a" * 10, **USAGE}),
                           (call("calc", expr="6*7"), {"thought": "b" * 20, **USAGE}),
                           (call("answer", value="42"), {"thought": "c" * 30, **USAGE})]),
    "E2": ("t1", "train", [(call("read", path="missing.txt"),
                            {"thought": "x" * 4, "model_call": {"usage": {"input_tokens": 7, "output_tokens": 3}}}),
                           (call("read", path="missing.txt"), {}),
                           (call("read", path="notes.txt"), {}),
                           (call("answer", value="42"), {})]),
    "E3": ("t1", "train", [(call("calc", expr="6x7"), {}), (call("calc", expr="6*7"), {}),
                           (call("answer", value="41"), {})]),
    "E4": ("t2", "test", [(call("read", path="notes.txt"), {}), (call("answer", value="42"), {})]),
    "E5": ("t2", "test", [(call("read", path="notes.txt"), {}), (call("answer", value="42"), {})]),
    "E6": ("t3", "train", [(call("calc", expr="4y"), {}), (call("answer", value="40"), {})]),
    "E7": ("t4", "train", [(call("read", path="notes.txt"), {}), (call("boom"), {})]),
}


def _env(out: Path, agent: dict[str, Any], run_id: str) -> Recorder:
    if ENV_ID not in gym.registry:
        gym.register(ENV_ID, entry_point=QuizEnv)
    return Recorder(gym.make(ENV_ID, disable_env_checker=True), out, agent=agent, run_id=run_id)


def record_quiz_run(out: Path) -> dict[str, Path]:
    """Record E1..E7 into ``out``; returns each episode's file by name."""
    paths: dict[str, Path] = {}
    r1 = _env(out, R1, "r1")
    r2 = _env(out, R2, "r2")
    for name, (task, split, script) in SCRIPTS.items():
        env = r2 if name == "E7" else r1
        env.reset(seed=int(name[1:]), options={"task": task, "split": split})
        for action, note in script:
            if note:
                env.note(**note)
            try:
                env.step(action)
            except RuntimeError:
                break  # recorded as a failed step of kind "exception"
        env.end_episode()
        paths[name] = Path(env.episode_path)
    r1.close()
    r2.close()
    return paths


def episode_id(path: Path) -> str:
    return read_index(path)["header"]["episode_id"]


def add_labels(out: Path, paths: dict[str, Path]) -> None:
    """Two judges on E1's steps (+1 +1 -1 and +1 -1 -1: kappa 0.4), one label of a third judge on E2 step 0."""
    store = LabelStore(out)
    e1 = episode_id(paths["E1"])
    for step, (a, b) in enumerate([(1, 1), (1, -1), (-1, -1)]):
        store.add(e1, step, a, judge="human:ana")
        store.add(e1, step, b, kind="judge", judge="model:j@1")
    store.add(episode_id(paths["E2"]), 0, -1, judge="human:bo")
    store.close()
