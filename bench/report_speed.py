"""`trajrec report` speed and memory on a 40,000-episode run.

Run:  python bench/report_speed.py [--episodes 40000] [--out bench/out/report-40k]

Target (issue 17): a report on 40,000 episodes in < 10 s, streaming (memory flat in the run's size).

The run is generated once with the project's own writer (``Recorder`` around the built-in MathCalc, Shell and
SupportTicket envs driven by their scripted agents, short episodes, notes carrying token usage, two judges
labeling a tenth of the episodes) and cached under ``bench/out/`` (git-ignored); later runs reuse it.

Printed, measured in this process:
- the baseline every streaming report pays at least: open every file, read its index and decompress and
  decode its frames (``Episode.iter_records``), with nothing computed;
- ``build_report`` in process, and its ratio to the baseline (the figure that holds on a busy machine);
- ``trajrec report RUN --json`` as a new process: wall time and peak RSS (the target);
- traced peak memory over a tenth of the run and over all of it: what grows per episode.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ENVS = ("trajrec/MathCalc-v0", "trajrec/Shell-v0", "trajrec/SupportTicket-v0")
MODELS = ({"model": "policy-small", "sampling": {"temperature": 0.7, "top_p": 0.95}, "skill": 0.5},
          {"model": "policy-large", "sampling": {"temperature": 0.2, "top_p": 1.0}, "skill": 0.85})


class _UsageAgent:
    """A scripted agent whose notes also carry a model call's token usage and cost (as an LLM agent would)."""

    def __init__(self, inner, rng: random.Random, price: float) -> None:
        self.inner, self.rng, self.price = inner, rng, price

    def reset(self, observation, info):
        self.inner.reset(observation, info)

    def act(self, observation, info):
        action, note = self.inner.act(observation, info)
        prompt = len(str(observation)) // 4 + self.rng.randrange(50, 400)
        completion = len(str(action)) // 4 + len(note.get("thought", "")) // 4 + self.rng.randrange(5, 60)
        note = {**note, "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
                "cost": round((prompt + completion) * self.price, 8)}
        return action, note


def generate(out: Path, episodes: int) -> None:
    import gymnasium as gym

    from trajrec import envs  # noqa: F401  (registers trajrec/* ids)
    from trajrec.envs.agents import make_agent
    from trajrec.envs.runner import run_episode
    from trajrec.recorder import Recorder
    from trajrec.replay.labels import LabelStore

    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    rng = random.Random(17)
    recorders = {env_id: Recorder(gym.make(env_id, max_steps=12), tmp / env_id.split("/")[1].split("-")[0].lower(),
                                  run_id=f"bench-{env_id.split('/')[1].lower()}") for env_id in ENVS}
    stores = {env_id: LabelStore(rec.out_dir) for env_id, rec in recorders.items()}
    t = time.perf_counter()
    for k in range(episodes):
        env_id = ENVS[k % len(ENVS)]
        rec = recorders[env_id]
        m = MODELS[(k // len(ENVS)) % len(MODELS)]
        seed = k // len(ENVS)
        agent = _UsageAgent(make_agent(env_id, seed=seed, skill=m["skill"]), rng, 2e-6 if m["skill"] < 0.8 else 8e-6)
        rec.agent = {"name": "scripted", "version": "1", "model": m["model"], "sampling": m["sampling"], "seed": seed}
        run_episode(rec, agent, seed=seed)
        rec.end_episode()
        if k % 10 == 0:
            # Two judges label every step of a tenth of the episodes, agreeing most of the time.
            store = stores[env_id]
            from trajrec.recorder import open_episode

            with open_episode(rec.episode_path) as ep:
                for step in ep:
                    truth = -1 if step.failed else 1
                    store.add(ep.episode_id, step.index, truth, judge="model:bench-judge@1", time=1.0)
                    other = truth if rng.random() < 0.85 else -truth
                    store.add(ep.episode_id, step.index, other, judge="human:bench", time=1.0)
        if (k + 1) % 5000 == 0:
            print(f"  generated {k + 1:,} episodes in {time.perf_counter() - t:.0f} s", flush=True)
    for rec in recorders.values():
        rec.close()
    for store in stores.values():
        store.close()
    os.replace(tmp, out)


def _baseline(paths: list[str]) -> tuple[float, int]:
    from trajrec.recorder import open_episode

    t = time.perf_counter()
    steps = 0
    for p in paths:
        with open_episode(p) as ep:
            for _rec in ep.iter_records():
                steps += 1
    return time.perf_counter() - t, steps


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=40_000)
    parser.add_argument("--out", type=Path, default=None, help="where the generated run is cached")
    args = parser.parse_args()
    out = args.out or Path(__file__).resolve().parent / "out" / f"report-{args.episodes // 1000}k"
    from trajrec.replay.library import find_episode_files

    if not out.exists() or len(find_episode_files([out])) != args.episodes:
        print(f"generating {args.episodes:,} episodes under {out} (once; cached for later runs)", flush=True)
        generate(out, args.episodes)
    files = find_episode_files([out])
    print(f"run: {out} ({len(files):,} episodes, {sum(os.path.getsize(f) for f in files) / 1e6:.1f} MB)")

    from trajrec.envs.banks import task_bank
    from trajrec.replay.report import build_report

    # Each timing is the best of two runs in a row (the page cache warm for both); the machine is shared.
    base, steps = min(_baseline(files) for _ in range(2))
    print(f"baseline: open + decode every frame of every episode (Episode.iter_records): {base:.2f} s "
          f"({steps:,} steps)")
    times = []
    for _ in range(2):
        t = time.perf_counter()
        full = build_report([str(out)], task_bank=task_bank)
        times.append(time.perf_counter() - t)
    t_full = min(times)
    assert full["episodes"] == len(files), (full["episodes"], len(files))
    print(f"build_report in process: {t_full:.2f} s = {t_full / base:.2f}x the baseline")

    cmd = [sys.executable, "-c", "import resource, sys; from trajrec.cli import main; rc = main(sys.argv[1:]); "
           "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)",
           "report", str(out), "--json"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"trajrec report failed: {proc.stderr}")
    rss = int(proc.stderr.strip().splitlines()[-1]) / 1024
    data = json.loads(proc.stdout)
    print(f"`trajrec report {out.name} --json` as a new process: {wall:.2f} s, peak RSS {rss:.0f} MB, "
          f"{data['episodes']:,} episodes, {data['steps']:,} steps   (target < 10 s: "
          f"{'MET' if wall < 10 else 'MISSED'})")

    # Memory: traced peak over a tenth of the run and over all of it (tracemalloc slows Python: not timed).
    import tracemalloc

    peaks = []
    for part in (files[: len(files) // 10], files):
        tracemalloc.start()
        build_report(part, task_bank=task_bank)
        peaks.append((len(part), tracemalloc.get_traced_memory()[1]))
        tracemalloc.stop()
    (n1, p1), (n2, p2) = peaks
    print(f"traced peak memory: {p1 / 1e6:.1f} MB for {n1:,} episodes, {p2 / 1e6:.1f} MB for {n2:,} "
          f"({(p2 - p1) / (n2 - n1):,.0f} bytes per extra episode: the file list, the label store, one digest "
          f"per distinct action sequence; nothing per step)")


if __name__ == "__main__":
    main()
