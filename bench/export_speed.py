"""Export throughput, measured: each format against a plain ``json.dumps`` loop over the same steps, in one process.

Run:  python bench/export_speed.py [--episodes 100] [--steps 1000] [--run DIR]

Records a run of a cheap text tool env with the Recorder (thoughts as notes, ~10% failing steps, a terminal check
per episode), labels it with the rules (every step then carries a label), then times ``export`` for each format
and a baseline that reads the same raw step records and writes ``json.dumps`` of (episode, step, action,
observation, reward) per line. Prints steps/s (best of ``--repeat`` runs, by wall clock and by CPU time) and the
ratio to the baseline. Target (DESIGN.md): >= 50,000 steps/s to JSONL.

``--cli`` also times ``trajrec export`` itself, from its process's start to its exit (interpreter, imports and
argument parsing included), against the baseline loop run as a script of its own the same way.

Then each format again as a whole process (``--processes``, the default): a fresh child per measurement, the
baseline and the formats interleaved, ``--repeat`` rounds, medians. Each child times its own work (the labels'
reading included; by wall clock and by its own CPU time, which other work on a shared machine disturbs less) and
reports its peak resident memory (``VmHWM`` of ``/proc/self/status``). Each format also
runs with ``--workers`` processes (default 2; the speed-up is against the same format in one process, same
round); ``label auto --rules`` runs over the (already labeled) run and over a copy without labels
(``label-auto-new``: it writes every label); ``parquet-floor`` is what writing any parquet file costs in memory.
Targets (issue 15): every format at least 0.5x the baseline's rate in the same round and 50,000 steps/s, peak
memory under 100 MB and flat (not growing with the run: compare two ``--episodes``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trajrec.recorder import open_episode  # noqa: E402
from trajrec.replay.exports import ExportOptions, episode_files, export  # noqa: E402

TARGET = 50_000


def cheap_tool_env() -> Any:
    """A new ``CheapToolEnv``: text in, text out; every 10th call fails; ``submit`` ends the episode with a passing
    check. (gymnasium is imported here, not at the top: the measuring children import only what an export
    imports, as `trajrec export` does.)"""
    import gymnasium as gym

    class CheapToolEnv(gym.Env):
        """Text in, text out; every 10th call fails; ``submit`` ends the episode with a passing check."""

        metadata = {"render_modes": []}

        def __init__(self) -> None:
            self.observation_space = gym.spaces.Text(max_length=4096)
            self.action_space = gym.spaces.Text(max_length=512)

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            super().reset(seed=seed)
            self.t = 0
            return "Task bench: read the files and submit a summary.", {
                "task": {"id": f"bench-{seed}", "text": "read the files and submit a summary", "split": "train"},
                "tools": [{"type": "function", "function": {"name": "cat", "parameters": {"type": "object"}}}]}

        def step(self, action: str):
            self.t += 1
            if action.startswith('{"tool": "submit"'):
                return "submitted", 1.0, True, False, {"tool": "submit", "checks": [
                    {"kind": "rule", "judge": "bench@1", "value": True, "target": "episode", "rationale": "ok"}]}
            if self.t % 10 == 0:
                return "cat: no such file", 0.0, False, False, {"tool": "cat", "error": "no such file"}
            return f"file {self.t}: " + "lorem ipsum dolor sit amet " * 6, 0.0, False, False, {"tool": "cat"}

    return CheapToolEnv()


def build(run: Path, episodes: int, steps: int) -> None:
    from trajrec.recorder import Recorder

    env = Recorder(cheap_tool_env(), run, agent="bench")
    for e in range(episodes):
        env.reset(seed=e)
        for i in range(steps - 1):
            env.note(thought=f"step {i}: look at file {i % 17}")
            env.step(json.dumps({"tool": "cat", "args": {"path": f"f{i % 17}.txt"}}))
        env.note(thought="done")
        env.step(json.dumps({"tool": "submit", "args": {"summary": "all read"}}))
    env.close()


def baseline(files: list[Path], out: Path) -> tuple[int, float, float]:
    t0 = time.perf_counter()
    c0 = time.process_time()
    n = 0
    dumps = json.dumps
    with open(out, "w", encoding="utf-8", buffering=1 << 20) as fh:
        for path in files:
            with open_episode(path) as ep:
                eid = ep.episode_id
                for i in range(len(ep)):
                    rec = ep.record(i)
                    fh.write(dumps({"episode_id": eid, "step": i, "action": rec["action"],
                                    "observation": rec["observation"], "reward": rec["reward"]}))
                    fh.write("\n")
                    n += 1
    return n, time.perf_counter() - t0, time.process_time() - c0


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``), in MB; 0.0 where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def child(what: str, run: Path, out: Path) -> None:
    """One measurement in this (fresh) process: print ``{"steps", "seconds", "cpu", "rss_mb"}`` as JSON (``cpu``:
    this process's CPU seconds, steadier than wall time on a shared machine).

    ``what``: ``json.dumps`` (the baseline), a format (``records``; ``records@2`` with ``--workers 2``),
    ``label-auto`` (``label auto --rules`` over ``run``) or ``parquet-floor`` (the parquet export writing an empty
    file of its schema: the memory any parquet export costs before its first row).

    Every child runs as the ``trajrec export`` command runs: with its one OpenBLAS thread
    (:func:`trajrec.commands.export.one_blas_thread`; numpy, which parquet and array runs import, otherwise starts a
    thread per core, ~30-50 ms of CPU the command never pays). The baseline imports no numpy.
    """
    from trajrec.commands.export import one_blas_thread

    one_blas_thread()
    gc.collect()
    t0 = time.perf_counter()
    c0 = time.process_time()
    if what == "json.dumps":
        steps, _, _ = baseline(episode_files([run]), out)
    elif what == "label-auto":
        from trajrec.replay.autolabel import label_with_rules

        class Count:
            n = 0

            def advance(self, n: int = 1) -> None:
                self.n += n

        count = Count()
        label_with_rules([run], progress=count)
        steps = count.n
    elif what == "parquet-floor":
        from trajrec.replay.exports.parquet import ParquetFormat

        ParquetFormat(out, ExportOptions()).close()  # an empty file of the schema, written as the export writes
        steps = 0
    else:
        fmt, _, workers = what.partition("@")
        steps = export([run], fmt, out, options=ExportOptions(unlabeled="false"), workers=int(workers or 1),
                       overwrite=True).steps
    secs = time.perf_counter() - t0
    print(json.dumps({"steps": steps, "seconds": secs, "cpu": time.process_time() - c0, "rss_mb": peak_rss_mb()}))


def _fresh_copy(run: Path, dst: Path) -> Path:
    """The run's episode files without its labels (hard links where the file system allows): what ``label auto``
    meets on a run nobody labeled yet."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for f in run.glob("*.msgpack.zst"):
        try:
            os.link(f, dst / f.name)
        except OSError:
            shutil.copy2(f, dst / f.name)
    return dst


def bytecode_env() -> dict[str, str]:
    """The children's environment, with trajrec's modules compiled first: children then run as an installed
    trajrec runs (pip compiles the bytecode at install; an editable checkout caches it on first use). Under
    ``PYTHONDONTWRITEBYTECODE`` (set in some sandboxes) every child compiled the modules an export imports on first
    use, inside its clock: parquet's (its extra is optional, so they load lazily) were 20-70 ms of CPU, 1-2 us a
    step of a 40,000-step export, which the JSONL formats, loaded before the clock, never paid."""
    import compileall

    import trajrec
    import trajrec.recorder
    import trajrec.replay

    for pkg in (trajrec, trajrec.recorder, trajrec.replay):
        for folder in pkg.__path__:
            compileall.compile_dir(folder, quiet=1)
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def processes(run: Path, tmp: Path, formats: list[str], repeat: int, workers: int, env: Any = None) -> None:
    """Each format (alone and with ``--workers``), the baseline and ``label auto --rules`` in fresh processes,
    interleaved; medians. ``env``: the children's environment (None: this process's)."""
    par = [f"{f}@{workers}" for f in formats] if workers > 1 else []
    whats = ["json.dumps", *formats, *par, "label-auto", "label-auto-new", "parquet-floor"]
    rates: dict[str, list[float]] = {w: [] for w in whats}
    ratios: dict[str, list[float]] = {w: [] for w in whats}
    cpu_ratios: dict[str, list[float]] = {w: [] for w in whats}
    rss: dict[str, list[float]] = {w: [] for w in whats}
    secs: dict[str, list[float]] = {w: [] for w in whats}
    speedups: dict[str, list[float]] = {f: [] for f in formats}
    for _ in range(repeat):
        base = cpu_base = None
        for what in whats:
            target, arg = run, what
            if what == "label-auto-new":
                target, arg = _fresh_copy(run, tmp / "fresh"), "label-auto"
            out = tmp / ("c.parquet" if what == "parquet-floor" else "c.out")
            proc = subprocess.run([sys.executable, __file__, "--child", arg, str(target), str(out)],
                                  capture_output=True, text=True, env=env)
            if proc.returncode:
                raise SystemExit(f"measuring {what} failed:\n{proc.stderr}")
            res = json.loads(proc.stdout.splitlines()[-1])
            rate = res["steps"] / res["seconds"] if res["steps"] else 0.0
            cpu_rate = res["steps"] / res["cpu"] if res["steps"] and res["cpu"] else 0.0
            base = rate if what == "json.dumps" else base
            cpu_base = cpu_rate if what == "json.dumps" else cpu_base
            rates[what].append(rate)
            ratios[what].append(rate / base if base else 0.0)
            cpu_ratios[what].append(cpu_rate / cpu_base if cpu_base else 0.0)
            rss[what].append(res["rss_mb"])
            secs[what].append(res["seconds"])
            if "@" in what:
                one = rates[what.partition("@")[0]][-1]
                speedups[what.partition("@")[0]].append(rate / one if one else 0.0)
            if out.is_dir():
                shutil.rmtree(out)
            elif out.exists():
                out.unlink()
    med = statistics.median
    print(f"\nwhole processes, medians of {repeat} interleaved rounds (load average at the end: "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"{'children as this environment starts them' if env is None else 'trajrec bytecode compiled first'})")
    print(f"{'what':<16} {'seconds':>8} {'steps/s':>10} {'vs json.dumps':>14} {'(CPU time)':>10} {'peak RSS MB':>12} "
          f"{f'x{workers} workers':>11}  target (>= 0.5x, >= {TARGET:,} steps/s, < 100 MB)")
    for what in whats:
        ratio = med(ratios[what])
        rate = med(rates[what])
        mem = med(rss[what])
        sp = f"{med(speedups[what]):>10.2f}x" if speedups.get(what) else f"{'-':>11}"
        if what in ("json.dumps", "parquet-floor") or "@" in what:
            verdict = "-"
        elif what.startswith("label-auto"):
            verdict = "ok" if mem < 100 else "BELOW (memory)"
        else:
            misses = [m for m, bad in (("ratio", ratio < 0.5), ("steps/s", rate < TARGET), ("memory", mem >= 100))
                      if bad]
            verdict = "ok" if not misses else "BELOW (" + ", ".join(misses) + ")"
        cpu = f"{med(cpu_ratios[what]):>9.2f}x" if "@" not in what else f"{'-':>10}"  # workers' CPU is elsewhere
        print(f"{what:<16} {med(secs[what]):>8.2f} {rate:>10,.0f} {ratio:>13.2f}x {cpu} {mem:>12.1f} {sp}  {verdict}")
    print("(peak RSS: the writing process; each worker is a process of its own. parquet-floor: the export writing an "
          "empty parquet file of its schema, the least any parquet export holds. CPU time: the same ratio by each "
          "process's own CPU seconds, which other work on the machine disturbs less than wall time)")
    imports_cpu(repeat)


def imports_cpu(repeat: int) -> None:
    """What starting a process costs before its first step, outside the timings above: CPU seconds of a process that
    imports what the baseline loop needs and of one that imports what an export needs (medians)."""
    import resource

    cases = {"baseline (json, trajrec.recorder)": "import json; from trajrec.recorder import open_episode",
             "export (trajrec.replay.exports)": "from trajrec.replay.exports import export"}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(max(repeat, 3)):
        for name, code in cases.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, "-c", code], check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    print("process start and imports, CPU (not in the times above): " + ", ".join(
        f"{name} {1000 * statistics.median(v):.0f} ms" for name, v in cpu.items()))


#: The baseline as a whole process of its own: what it imports (json and the reader) and its loop, nothing else.
_BASELINE_SCRIPT = """
import json, sys
from pathlib import Path
from trajrec.recorder import open_episode
n = 0
dumps = json.dumps
with open(sys.argv[2], "w", encoding="utf-8", buffering=1 << 20) as fh:
    for path in sorted(Path(sys.argv[1]).glob("*.msgpack.zst")):
        with open_episode(path) as ep:
            eid = ep.episode_id
            for i in range(len(ep)):
                rec = ep.record(i)
                fh.write(dumps({"episode_id": eid, "step": i, "action": rec["action"],
                                "observation": rec["observation"], "reward": rec["reward"]}))
                fh.write("\\n")
                n += 1
print(n)
"""


def _whole(argv: list[str], env: Any) -> tuple[float, float, float, str]:
    """Run ``argv`` as a process: ``(wall seconds, CPU seconds, peak RSS MB, stdout)``, all of it from its start
    (interpreter, imports, argument parsing) to its exit, read from the parent (``os.wait4``'s usage of that one
    child)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = proc.stdout.read(), proc.stderr.read()  # (small: a count, a summary line)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{argv} failed:\n{err.decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.decode()


def cli_processes(run: Path, tmp: Path, formats: list[str], repeat: int, env: Any = None) -> None:
    """``trajrec export`` as a user runs it, against the baseline loop run as a script of its own: both timed from
    their process's start to its exit (start-up and imports included), interleaved, ``repeat`` rounds, medians."""
    med = statistics.median
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    rss: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    cpu_ratios: dict[str, list[float]] = {}
    steps = 0
    for _ in range(repeat):
        wall, cpu, mem, out = _whole([sys.executable, "-c", _BASELINE_SCRIPT, str(run), str(tmp / "b.jsonl")], env)
        steps = int(out.split()[-1])
        base_wall, base_cpu = wall, cpu
        for what, res in [("json.dumps", (wall, cpu, mem, out))] + [
                (fmt, None) for fmt in formats]:
            if res is None:
                out_path = tmp / ("c.parquet" if what == "parquet" else "c/" if what == "atif" else "c.jsonl")
                res = _whole([sys.executable, "-m", "trajrec", "export", str(run), "--format", what, "--out",
                              str(out_path), "--overwrite", "--unlabeled", "false"], env)
                if out_path.is_dir():
                    shutil.rmtree(out_path)
            walls.setdefault(what, []).append(res[0])
            cpus.setdefault(what, []).append(res[1])
            rss.setdefault(what, []).append(res[2])
            ratios.setdefault(what, []).append(base_wall / res[0])
            cpu_ratios.setdefault(what, []).append(base_cpu / res[1])
    print(f"\n`trajrec export` as whole processes (start-up and imports included; {steps:,} steps), medians of "
          f"{repeat} interleaved rounds (load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"{'what':<16} {'seconds':>8} {'CPU s':>7} {'steps/s':>10} {'vs json.dumps':>14} {'(CPU time)':>10} "
          f"{'peak RSS MB':>12}")
    for what in walls:
        print(f"{what:<16} {med(walls[what]):>8.2f} {med(cpus[what]):>7.2f} {steps / med(walls[what]):>10,.0f} "
              f"{med(ratios[what]):>13.2f}x {med(cpu_ratios[what]):>9.2f}x {med(rss[what]):>12.1f}")


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        try:  # as `trajrec export` starts (numpy's OpenBLAS with one thread, should the export import numpy)
            from trajrec.commands.export import one_blas_thread
        except ImportError:  # a trajrec before it
            pass
        else:
            one_blas_thread()
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--run", type=Path, help="reuse or create the run in this folder (default: a temp folder)")
    ap.add_argument("--formats", default="records,trl-stepwise,chat,kto,parquet")
    ap.add_argument("--repeat", type=int, default=3, help="time each format this many times, keep the best "
                                                         "(other processes on the machine add noise, never speed)")
    ap.add_argument("--workers", type=int, default=2, help="also time each format with this many workers (1: not)")
    ap.add_argument("--no-processes", dest="processes", action="store_false",
                    help="skip the whole-process measurements (speed ratio and peak memory per format)")
    ap.add_argument("--no-in-process", dest="in_process", action="store_false",
                    help="skip the in-process measurements")
    ap.add_argument("--cli", action="store_true",
                    help="also time `trajrec export` itself as whole processes (start-up and imports included) "
                         "against the baseline loop as a script of its own")
    ap.add_argument("--cold-imports", action="store_true",
                    help="children as this environment starts them (under PYTHONDONTWRITEBYTECODE each compiles the "
                         "modules it imports); default: trajrec's bytecode compiled first, as an installed trajrec has it")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="trajrec-export-bench-"))
    run = args.run or tmp / "run"
    if not run.exists() or not any(run.glob("*.msgpack.zst")):
        t = time.perf_counter()
        build(run, args.episodes, args.steps)
        print(f"recorded {args.episodes} x {args.steps} steps in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        from trajrec.replay.autolabel import label_with_rules

        t = time.perf_counter()
        res = label_with_rules([run])
        print(f"labeled: {res} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    ok = True
    if args.in_process:
        files = episode_files([run])
        # Nothing big stays alive between measurements: a second run's worth of labels held in memory slows JSON
        # encoding of large rows by a third (allocator effects), which a real `trajrec export` never has.
        gc.collect()
        n, secs, cpu = min((baseline(files, tmp / "baseline.jsonl") for _ in range(args.repeat)), key=lambda r: r[1])
        base = n / secs
        print(f"{'format':<14} {'steps':>9} {'seconds':>8} {'steps/s':>10} {'cpu steps/s':>12} {'vs json.dumps':>14}  "
              "target")
        print(f"{'json.dumps':<14} {n:>9,} {secs:>8.2f} {base:>10,.0f} {n / cpu:>12,.0f} {1.0:>13.2f}x")
        for fmt in args.formats.split(","):
            secs = cpu = float("inf")
            for _ in range(args.repeat):
                gc.collect()
                t0 = time.perf_counter()  # each format pays for its own scan of indexes and loading of labels
                c0 = time.process_time()
                rep = export([run], fmt, tmp / f"out.{fmt}", options=ExportOptions(unlabeled="false"), overwrite=True)
                secs = min(secs, time.perf_counter() - t0)
                cpu = min(cpu, time.process_time() - c0)
            rate = rep.steps / secs
            jsonl = fmt != "parquet"
            verdict = ("ok" if rate >= TARGET else "BELOW") if jsonl else "-"
            ok &= rate >= TARGET or not jsonl
            print(f"{fmt:<14} {rep.steps:>9,} {secs:>8.2f} {rate:>10,.0f} {rep.steps / cpu:>12,.0f} "
                  f"{rate / base:>13.2f}x  {verdict}")
        assert n == rep.steps
    if args.processes:
        env = None if args.cold_imports else bytecode_env()
        processes(run, tmp, args.formats.split(","), args.repeat, args.workers, env)
    if args.cli:
        env = None if args.cold_imports else bytecode_env()
        cli_processes(run, tmp, args.formats.split(","), args.repeat, env)
    shutil.rmtree(tmp)  # outputs (and the run, unless --run) lived there
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
