"""VectorRecorder overhead, measured: a bare vector env vs. the same env under VectorRecorder, in one process.

Run:  python bench/vector_overhead.py [--steps N] [--envs K]

CartPole-v1 in a SyncVectorEnv of K sub-envs, driven by the same fixed actions with and without the recorder
(long episodes: the pole is kept up by a balancing rule, so the per-file cost of short episodes does not
dominate). Prints µs per sub-env step for both, the overhead per sub-env step, and the single-env Recorder's
overhead per step measured the same way for comparison.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trajrec.recorder import Recorder, VectorRecorder  # noqa: E402


def balance(obs: np.ndarray) -> np.ndarray:
    # Push toward the side the pole leans to: keeps CartPole up for hundreds of steps.
    return (obs[..., 2] + 0.5 * obs[..., 3] > 0).astype(np.int64)


def run_vector(k: int, steps: int, out: str | None) -> float:
    vec = gym.make_vec("CartPole-v1", num_envs=k, vectorization_mode="sync",
                       vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP})
    env = VectorRecorder(vec, out) if out else vec
    obs, _ = env.reset(seed=0)
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(steps):
        obs, *_ = env.step(balance(obs))
    took = time.perf_counter() - t0
    env.close()
    return took / (steps * k) * 1e6


def run_single(steps: int, out: str | None) -> float:
    base = gym.make("CartPole-v1")
    env = Recorder(base, out) if out else base
    obs, _ = env.reset(seed=0)
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(int(balance(obs)))
        if terminated or truncated:
            obs, _ = env.reset()
    took = time.perf_counter() - t0
    env.close()
    return took / steps * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--envs", type=int, default=8)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        bare_v = min(run_vector(args.envs, args.steps, None) for _ in range(3))
        rec_v = min(run_vector(args.envs, args.steps, f"{d}/v{i}") for i in range(3))
        bare_s = min(run_single(args.steps * args.envs // 2, None) for _ in range(3))
        rec_s = min(run_single(args.steps * args.envs // 2, f"{d}/s{i}") for i in range(3))
    print(f"SyncVectorEnv x{args.envs}: bare {bare_v:.1f} µs/sub-step, recorded {rec_v:.1f} µs/sub-step, "
          f"overhead +{rec_v - bare_v:.1f} µs/sub-step ({rec_v / bare_v:.2f}x)")
    print(f"single env:      bare {bare_s:.1f} µs/step, recorded {rec_s:.1f} µs/step, "
          f"overhead +{rec_s - bare_s:.1f} µs/step ({rec_s / bare_s:.2f}x)")
    print(f"vector overhead / single overhead: {(rec_v - bare_v) / max(rec_s - bare_s, 1e-9):.2f}")


if __name__ == "__main__":
    main()
