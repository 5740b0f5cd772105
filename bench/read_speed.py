"""Reader speed, measured: step i of a 1,000,000-step episode, and `ls` of 10,000 episodes.

Run:  python bench/read_speed.py [--steps 1000000] [--episodes 10000] [--walk-steps 100000] [--walk-only]

Targets (DESIGN.md): step i of a 1,000,000-step episode in < 20 ms (open included); listing 10,000
episodes in < 2 s. Baselines measured in the same run: decoding the whole episode stream (what a reader
without frames and an index must do) and `os.stat` + reading the first 4 KiB of every file (the least any
lister has to do).

Walking every step (issue 15's target: at least 0.7x the decode floor): a ``--walk-steps`` episode of the
synthetic text tool env (diffs, notes, failures), iterated as raw records (``iter_records``), as ``Step`` objects,
and by the viewer's marker scan, each against decoding its frames alone (the floor) run just before it, 5 rounds
(``--rounds``), medians; in CPU time of the process (what load from other programs changes least) and in wall
time. Also with 1,000,000 small live objects in the process (a UI's heap), which full collections walk.
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trajrec.recorder import Recorder, open_episode, read_index  # noqa: E402
from trajrec.recorder.format import decode_frame, decode_records, decompress  # noqa: E402


class CounterEnv(gym.Env):
    """The cheapest env that still returns a text observation and a small info dict."""

    observation_space = gym.spaces.Text(max_length=64)
    action_space = gym.spaces.Discrete(4)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return "start", {}

    def step(self, action):
        self.t += 1
        return f"t={self.t} a={action}", 0.0, False, False, {"t": self.t}


def make_big(out: Path, steps: int) -> Path:
    env = Recorder(CounterEnv(), out)
    env.reset(seed=0)
    t = time.perf_counter()
    for i in range(steps):
        env.step(i & 3)
    env.close()
    print(f"recorded {steps:,} steps in {time.perf_counter() - t:.1f} s "
          f"({env.episode_path.stat().st_size / 1e6:.1f} MB)")
    return env.episode_path


def walk_ratios(tmp: Path, steps: int, rounds: int = 5) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tui_open import record_episode  # the synthetic tool env, recorded as the viewer bench does

    from trajrec.tui.step_scan import scan_markers

    path = str(record_episode(tmp / "walk", steps))
    with open(path, "rb") as fh:
        data = fh.read()
    with open_episode(path) as ep:
        frames = ep._frames

    def floor() -> int:
        gc.disable()  # the floor: decompressing and decoding alone
        try:
            n = 0
            for fr in frames:
                n += len(decode_frame(data[fr[0]:fr[3]], path=path, offset=fr[0], checksum=True)[0])
            return n
        finally:
            gc.enable()

    def records() -> int:
        with open_episode(path) as ep:
            return sum(1 for _ in ep.iter_records())

    def step_objects() -> int:
        with open_episode(path) as ep:
            return sum(1 for _ in ep)

    def markers() -> int:
        return sum(len(codes) for _, codes in scan_markers(path, cancelled=lambda: False))

    def timed(walk) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        """(wall seconds, CPU seconds of this process) per step."""
        w, c = time.perf_counter(), time.process_time()
        n = walk()
        return (time.perf_counter() - w) / n, (time.process_time() - c) / n

    walks = {"iter_records()": records, "Step objects": step_objects, "marker scan": markers}
    for heap in (0, 1_000_000):
        ballast = [{"k": [i]} for i in range(heap)]  # containers the cyclic collector has to walk
        wall: dict[str, list[float]] = {k: [] for k in walks}
        cpu: dict[str, list[float]] = {k: [] for k in walks}
        floors = []
        for _ in range(rounds):
            for name, walk in walks.items():
                # Each walk against a floor run just before it: on a shared machine the load changes by the second.
                base_wall, base_cpu = timed(floor)
                floors.append(base_wall)
                t_wall, t_cpu = timed(walk)
                wall[name].append(base_wall / t_wall)
                cpu[name].append(base_cpu / t_cpu)
        print(f"== walking a {steps:,}-step tool-env episode, {heap:,} other live objects "
              f"(medians of {rounds}, each walk against a floor run just before it) ==")
        print(f"  decode floor {1 / statistics.median(floors):,.0f} steps/s")
        for name in walks:
            m_cpu, m_wall = statistics.median(cpu[name]), statistics.median(wall[name])
            print(f"  {name:<16} {m_cpu:.2f}x the floor in CPU time, {m_wall:.2f}x in wall time   "
                  f"(target >= 0.70: {'MET' if min(m_cpu, m_wall) >= 0.7 else 'MET in CPU time' if m_cpu >= 0.7 else 'MISSED'})")
        del ballast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--walk-steps", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the walk ratios (medians are printed)")
    parser.add_argument("--walk-only", action="store_true", help="only the walk ratios")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        walk_ratios(out, args.walk_steps, args.rounds)
        if args.walk_only:
            return
        big = make_big(out / "big", args.steps)
        rng = random.Random(0)
        times = []
        for _ in range(50):
            i = rng.randrange(args.steps)
            t = time.perf_counter()
            ep = open_episode(big)  # cold: a fresh open each time
            step = ep[i]
            times.append(time.perf_counter() - t)
            assert step.index == i
            ep.close()
        t = time.perf_counter()
        with open(big, "rb") as fh:
            data = fh.read()
        n = 0
        ep = open_episode(big)
        for frame in ep._frames:
            recs, _ = decode_records(decompress(data[frame[0]:frame[3]]), path=str(big), offset=frame[0])
            n += len(recs)
        full = time.perf_counter() - t
        med, worst = statistics.median(times), max(times)
        print(f"== step i of a {args.steps:,}-step episode (open + ep[i], 50 random i) ==")
        print(f"  median {med * 1e3:.2f} ms, max {worst * 1e3:.2f} ms   (target < 20 ms: "
              f"{'MET' if worst < 0.020 else 'MISSED'})")
        print(f"  baseline: decoding the whole episode {full * 1e3:.0f} ms -> ratio {full / med:,.0f}x")

        small_dir = out / "small"
        env = Recorder(CounterEnv(), small_dir)
        env.reset(seed=0)
        for i in range(20):
            env.step(i & 3)
        env.close()
        src = env.episode_path
        lib = out / "lib"
        lib.mkdir()
        for k in range(args.episodes):
            shutil.copyfile(src, lib / f"ep{k:05d}.msgpack.zst")
        files = sorted(lib.glob("*.msgpack.zst"))
        t = time.perf_counter()
        for p in files:
            p.stat()
            with open(p, "rb") as fh:
                fh.read(4096)
        base = time.perf_counter() - t
        t = time.perf_counter()
        for p in files:
            read_index(p)
        idx = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "trajrec", "ls", str(lib), "--json"], check=True,
                       stdout=subprocess.DEVNULL)
        cli = time.perf_counter() - t
        print(f"== listing {args.episodes:,} episodes ==")
        print(f"  read_index over all files  {idx:.2f} s")
        print(f"  `trajrec ls --json` (whole process) {cli:.2f} s   (target < 2 s: {'MET' if cli < 2 else 'MISSED'})")
        print(f"  baseline: stat + read 4 KiB of each file {base:.2f} s -> ratio {idx / base:.1f}x")


if __name__ == "__main__":
    main()
