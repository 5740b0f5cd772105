"""trajrec's Recorder side by side with Minari's DataCollector (hdf5 and arrow storage), in one process.

Run:  pip install -e '.[bench]' && python bench/minari_compare.py [--steps N] [--rounds R]

The same env, the same actions and the same loop for every variant:

* ``raw``: the env alone (the baseline every overhead is measured against);
* ``trajrec``: wrapped in ``trajrec.Recorder`` (everything on: state diffs, classification, a flushed zstd block
  per step), until ``close()``;
* ``minari hdf5`` / ``minari arrow``: wrapped in ``minari.DataCollector(data_format=...)``, until
  ``create_dataset(...)`` has written the dataset to disk (Minari keeps each episode in memory until it ends,
  then writes it to a folder of its own; ``create_dataset`` moves it into place).

Rounds are interleaved (raw, trajrec, hdf5, arrow, raw, ...) and every figure is the median over rounds, so a busy
machine slows all variants alike. Each round reads back what it wrote: every episode's observations and actions,
through ``trajrec.open_run`` (every step's ``observation`` and ``action``) and through
``minari.load_dataset(id).iterate_episodes()`` (each episode's ``observations`` and ``actions`` arrays).

Envs:

* ``cartpole``: CartPole-v1, random actions (episodes of ~22 steps: per-episode costs show);
* ``image``: 84x84x3 uint8 observations of a noisy scene (a few hundred pixels change per step), 100-step
  episodes. Minari JPEG-encodes image spaces by default (lossy); trajrec stores the array as it is, so Minari
  runs both with its default and with ``jpeg_encoding=False`` (lossless, the like-for-like comparison);
* ``tool``: the text tool env of ``bench/synthetic_env.py`` (text observations and actions, a ~9 KB nested-dict
  state, info keys that differ between failing and working steps), 200-step episodes. Minari has no place for
  the env's state and keeps infos only when every step has the same keys, so its datasets hold observations,
  actions and rewards only; the output says so. Minari's spaces here are the env's text spaces with a character
  set that covers the text (the env's own spaces use Gymnasium's alphanumeric default, which Minari would warn
  about on every step).

Prints, per env: raw µs/step; each variant's overhead over the raw loop (µs/step), bytes on disk per step and
read-back µs/step; then trajrec's ratios against each Minari variant. Storage goes to a temporary folder
(``MINARI_DATASETS_PATH`` points into it), never to ``~/.minari``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from record_overhead import _actions  # noqa: E402  (the same action streams as the recording bench)
from trajrec.recorder.errors import MissingDependencyError, require  # noqa: E402

PIP = "pip install -e '.[bench]'"
IMAGE_EPISODE = 100
TOOL_EPISODE = 200


class NoisyImageEnv(gym.Env):
    """84x84x3 uint8 frames of a fixed random scene in which 400 random pixels change every step.

    Each frame is new (no two frames repeat), as in a camera feed, so no compressor gets repeated frames for free.
    """

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0, 255, (84, 84, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(4)
        self._base = np.random.default_rng(0).integers(0, 255, (84, 84, 3), dtype=np.uint8)
        self._rng = np.random.default_rng(0)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._rng = np.random.default_rng(seed)
        return self._base.copy(), {}

    def step(self, action: int):
        im = self._base.copy()
        rng = self._rng
        im[rng.integers(0, 84, 400), rng.integers(0, 84, 400)] = rng.integers(0, 255, (400, 3), dtype=np.uint8)
        return im, float(action == 0), False, False, {}


def register_envs() -> None:
    """Register the bench envs by import path: Minari stores the env spec as JSON, which a callable cannot be."""
    module = NoisyImageEnv.__module__
    if "trajrec-bench/NoisyImage-v0" not in gym.registry:
        gym.register("trajrec-bench/NoisyImage-v0", entry_point=f"{module}:NoisyImageEnv",
                     max_episode_steps=IMAGE_EPISODE, disable_env_checker=True)
    if "trajrec-bench/SyntheticTool-v0" not in gym.registry:
        gym.register("trajrec-bench/SyntheticTool-v0", entry_point="synthetic_env:SyntheticToolEnv",
                     max_episode_steps=TOOL_EPISODE, disable_env_checker=True)


ENVS = {
    "cartpole": ("CartPole-v1", "CartPole-v1, random actions (~22-step episodes)"),
    "image": ("trajrec-bench/NoisyImage-v0", f"84x84x3 noisy image observations, {IMAGE_EPISODE}-step episodes"),
    "tool": ("trajrec-bench/SyntheticTool-v0",
             f"text tool env, ~9 KB dict state, ~20% failing steps, {TOOL_EPISODE}-step episodes"),
}

# What each Minari dataset leaves out of what trajrec records, said next to its figures.
NOT_STORED = {
    "cartpole": "Minari (record_infos off, its default) keeps no infos, step times, provenance or failure marks",
    "image": "Minari keeps no infos, step times or provenance; with JPEG (its default) the frames come back altered",
    "tool": ("Minari cannot store this env's state (it has no state field, and the nested dict with a history "
             "list of varying length fits neither storage) nor its infos (keys differ between failing and "
             "working steps; Minari needs one structure for every step): its datasets hold observations, "
             "actions and rewards only"),
}


def make_actions(kind: str, n: int) -> list:
    if kind == "cartpole":
        return _actions("cartpole-short", n)
    if kind == "image":
        return [int(a) for a in np.random.default_rng(1).integers(0, 4, n)]
    return _actions("tool", n)


def drive(env: gym.Env, actions: list, finish: Callable[[], Any]) -> float:
    """Reset, play ``actions`` (resetting when an episode ends), then ``finish()``; seconds taken, all of it."""
    seeds = iter(range(1, 10**9))
    t = time.perf_counter()
    env.reset(seed=0)
    step = env.step
    for a in actions:
        _obs, _r, term, trunc, _info = step(a)
        if term or trunc:
            env.reset(seed=next(seeds))
    finish()
    return time.perf_counter() - t


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def minari_spaces(kind: str) -> dict[str, gym.Space]:
    if kind != "tool":
        return {}
    # Text spaces whose character set covers what the tool env prints and takes (see the module docstring).
    chars = frozenset(string.printable)
    return {"observation_space": gym.spaces.Text(max_length=4096, charset=chars),
            "action_space": gym.spaces.Text(max_length=256, charset=chars)}


class Variant:
    """One way of recording: ``record(kind, env_id, actions, out, tag) -> (seconds, bytes, reader)``."""

    def __init__(self, name: str, backend: str | None = None, jpeg: bool = False) -> None:
        self.name, self.backend, self.jpeg = name, backend, jpeg

    def record(self, kind: str, env_id: str, actions: list, out: Path,
               tag: str) -> tuple[float, int, Callable[[], int]]:
        env = gym.make(env_id, disable_env_checker=True)
        if self.name == "raw":
            return drive(env, actions, env.close), 0, lambda: 0
        if self.name == "trajrec":
            from trajrec import Recorder, open_run

            folder = out / f"trajrec-{tag}"
            rec = Recorder(env, folder, agent="random")
            seconds = drive(rec, actions, rec.close)
            size = folder_bytes(folder)

            def read() -> int:
                n = 0
                for ep in open_run(folder):
                    with ep:
                        _ = ep.reset.observation
                        for st in ep:
                            _ = st.observation, st.action
                            n += 1
                return n

            return seconds, size, read
        import minari

        dataset_id = f"{kind}/{self.name.replace(' ', '-')}-{tag}-v0"
        collector = minari.DataCollector(env, data_format=self.backend, jpeg_encoding=self.jpeg,
                                         **minari_spaces(kind))
        made: list = []

        def finish() -> None:
            made.append(collector.create_dataset(
                dataset_id, eval_env=env.spec, algorithm_name="random", author="trajrec bench",
                author_email="bench@example.org", code_permalink="https://example.org/trajrec",
                description="trajrec's bench/minari_compare.py"))
            collector.close()

        seconds = drive(collector, actions, finish)
        size = folder_bytes(Path(os.environ["MINARI_DATASETS_PATH"]) / dataset_id)

        def read() -> int:
            n = 0
            for ep in minari.load_dataset(dataset_id).iterate_episodes():
                _ = ep.observations, ep.actions
                n += len(ep.actions)
            return n

        return seconds, size, read


def compare(kind: str, n: int, rounds: int, out: Path, image_jpeg: bool) -> None:
    env_id, label = ENVS[kind]
    actions = make_actions(kind, n)
    variants = [Variant("raw"), Variant("trajrec"), Variant("minari hdf5", "hdf5"), Variant("minari arrow", "arrow")]
    if kind == "image" and image_jpeg:
        variants += [Variant("minari hdf5 jpeg", "hdf5", jpeg=True), Variant("minari arrow jpeg", "arrow", jpeg=True)]
    rec: dict[str, list[float]] = {v.name: [] for v in variants}
    size: dict[str, int] = {}
    read: dict[str, list[float]] = {v.name: [] for v in variants}
    steps_read: dict[str, int] = {}
    # A short warm-up of every variant first: imports and first-call costs are not per-step costs.
    for v in variants:
        v.record(kind, env_id, actions[:50], out, "warmup")[2]()
    for r in range(rounds):
        for v in variants:
            seconds, nbytes, reader = v.record(kind, env_id, actions, out, f"r{r}")
            rec[v.name].append(seconds)
            size[v.name] = nbytes
            if v.name != "raw":
                t = time.perf_counter()
                steps_read[v.name] = reader()
                read[v.name].append(time.perf_counter() - t)
        # Each round's data goes once it is measured, so a long run does not fill the disk.
        for p in out.iterdir():
            shutil.rmtree(p)
    med = {k: statistics.median(v) for k, v in rec.items()}
    raw = med["raw"]
    over = {k: (med[k] - raw) / n * 1e6 for k in med if k != "raw"}
    rd = {k: statistics.median(v) / n * 1e6 for k, v in read.items() if v}
    print(f"== {label}: {n} steps, medians of {rounds} interleaved rounds ==")
    print(f"  {'variant':<26} {'overhead':>14} {'bytes/step':>11} {'read-back':>14}")
    print(f"  {'raw env loop':<26} {raw / n * 1e6:9.2f} µs/step (the baseline)")
    names = {"trajrec": "trajrec Recorder", "minari hdf5": "Minari hdf5", "minari arrow": "Minari arrow",
             "minari hdf5 jpeg": "Minari hdf5 JPEG (lossy)", "minari arrow jpeg": "Minari arrow JPEG (lossy)"}
    for k in over:
        mismatch = "" if steps_read[k] == n else f"  (read back {steps_read[k]} steps of {n}!)"
        print(f"  {names[k]:<26} {over[k]:+9.2f} µs/step {size[k] / n:11.1f} {rd[k]:9.2f} µs/step{mismatch}")
    for k in over:
        if k == "trajrec":
            continue
        print(f"  ratio trajrec / {names[k]:<26} overhead {over['trajrec'] / over[k]:6.2f}x   "
              f"bytes {size['trajrec'] / size[k]:6.2f}x   read time {rd['trajrec'] / rd[k]:6.2f}x")
    print(f"  not stored by Minari: {NOT_STORED[kind]}")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000, help="CartPole steps per variant and round")
    parser.add_argument("--image-steps", type=int, default=1000)
    parser.add_argument("--tool-steps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; figures are their medians")
    parser.add_argument("--kinds", default="cartpole,image,tool", help="which envs: cartpole, image, tool")
    parser.add_argument("--no-jpeg", action="store_true", help="skip Minari's default (JPEG) image encoding")
    parser.add_argument("--dir", default=".", help="where to make the temporary folder (default: here)")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in kinds if k not in ENVS]
    if unknown:
        parser.error(f"unknown kind {unknown[0]!r}; pick from {', '.join(ENVS)}")
    try:
        # DataCollector's episode buffers import jax; the storages import h5py and pyarrow (and PIL).
        for module in ("minari", "jax", "h5py", "pyarrow", "PIL"):
            require(module, PIP, "bench/minari_compare.py (Minari's DataCollector)")
    except MissingDependencyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    register_envs()
    # Write where the user works, not in /tmp (see record_overhead.py); Minari's datasets go there too.
    with tempfile.TemporaryDirectory(prefix=".trajrec-minari-bench-", dir=args.dir) as tmp:
        # Absolute: Minari's size count joins its folder to paths that already contain it, so a relative
        # MINARI_DATASETS_PATH fails.
        out = Path(tmp).resolve() / "data"
        out.mkdir()
        os.environ["MINARI_DATASETS_PATH"] = str(out)
        steps = {"cartpole": args.steps, "image": args.image_steps, "tool": args.tool_steps}
        for kind in kinds:
            compare(kind, steps[kind], args.rounds, out, image_jpeg=not args.no_jpeg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
