"""A text tool env for benchmarks: ~9 KB nested-dict state, a few leaves changed per step, ~20% failing steps."""

from __future__ import annotations

import json
import random
from typing import Any

import gymnasium as gym


_VOCAB = [f"{a}{b}" for a in ("re", "con", "de", "pro", "in", "ex", "sub", "trans", "pre", "un")
          for b in ("cord", "fig", "tain", "vert", "ject", "port", "mit", "form", "duce", "sist",
                    "tend", "pose", "scribe", "spect", "struct", "tract", "vene", "fer", "pel", "clude")]


class SyntheticToolEnv(gym.Env):
    """Shell-like tool env whose state is a ~9 KB nested dict of files and counters.

    Observations are file contents made of words drawn from a 200-word vocabulary, so the text compresses
    about as well as real tool output, not better.
    """

    metadata = {"render_modes": []}

    def __init__(self, n_files: int = 75, fail_rate: float = 0.2, seed: int = 0) -> None:
        self.observation_space = gym.spaces.Text(max_length=4096)
        self.action_space = gym.spaces.Text(max_length=256)
        self.n_files = n_files
        self.fail_rate = fail_rate
        self._rng = random.Random(seed)
        self._state: dict[str, Any] = {}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        rng = random.Random(seed)
        self._rng = rng
        files = {f"dir{i % 6}/file{i}.txt": {"size": rng.randint(10, 500), "mode": "rw-r--r--",
                                               "text": f"line {i} " * 8, "tags": ["a", "b"]}
                 for i in range(self.n_files)}
        self._state = {"cwd": "/home/user", "files": files, "history": [], "counters": {"ok": 0, "err": 0},
                       "env": {"PATH": "/usr/bin:/bin", "HOME": "/home/user", "LANG": "C.UTF-8"}}
        self._t = 0
        return "task: tidy the files", {"task": {"id": "synthetic-0", "text": "tidy the files"}}

    def state_dict(self) -> dict[str, Any]:
        return self._state  # the live object, on purpose: the recorder must not keep references into it

    def step(self, action: str):
        self._t += 1
        st = self._state
        k = self._t % self.n_files
        name = f"dir{k % 6}/file{k}.txt"
        if self._rng.random() < self.fail_rate:
            st["counters"]["err"] += 1
            obs = f"cat: {name}: Permission denied"
            info = {"error": "permission denied", "tool": "cat"}
        else:
            st["counters"]["ok"] += 1
            f = st["files"][name]
            f["size"] += 1
            words = self._rng.choices(_VOCAB, k=40)
            f["text"] = " ".join(words[:10])
            obs = f"{name}\n" + " ".join(words)
            info = {"tool": json.loads(action)["tool"] if action.startswith("{") else action.split()[0]}
        if len(st["history"]) >= 8:
            st["history"].pop(0)
        st["history"].append(action[:40])
        return obs, 0.0, False, self._t >= 10_000_000, info
