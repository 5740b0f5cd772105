"""``trajrec.collect``: one Recorder per task, finished files moved in atomically, each seed recorded once even
when a worker dies and its task is retried; a killed worker's partial episode stays readable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec import open_episode
from trajrec.collect import collect
from trajrec.recorder import fsck
from trajrec.replay.library import find_episode_files


class DyingEnv(gym.Wrapper):
    """CartPole that kills its own process at step ``die_at`` of seed ``die_seed`` while ``flag`` exists (the
    first attempt removes the flag first, so the retry lives)."""

    def __init__(self, flag: str, die_seed: int, die_at: int = 5) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.flag, self.die_seed, self.die_at = flag, die_seed, die_at
        self.t = 0
        self.seed_ = None

    def reset(self, *, seed=None, options=None):
        self.t, self.seed_ = 0, seed
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        self.t += 1
        if self.seed_ == self.die_seed and self.t == self.die_at and os.path.exists(self.flag):
            os.unlink(self.flag)
            os.kill(os.getpid(), signal.SIGKILL)
        return self.env.step(action)


def _seeds(out: Path) -> list[int]:
    seeds = []
    for f in find_episode_files([out]):
        with open_episode(f) as ep:
            seeds.append(ep.reset.seed)
    return sorted(seeds)


def test_local_backend_records_each_seed_once_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = collect(lambda: gym.make("CartPole-v1"), "random", episodes=3, out=out, run_id="r1", progress=False)
    assert [r["seed"] for r in first] == [0, 1, 2] and not any(r["skipped"] for r in first)
    again = collect(lambda: gym.make("CartPole-v1"), "random", episodes=5, out=out, run_id="r1", progress=False)
    assert [r["skipped"] for r in again] == [True, True, True, False, False]
    assert [r["path"] for r in again[:3]] == [r["path"] for r in first]
    assert _seeds(out) == [0, 1, 2, 3, 4]


def test_process_backend(tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = collect(_cartpole, "random", episodes=4, out=out, backend="process", workers=2, progress=False)
    assert [r["seed"] for r in res] == [0, 1, 2, 3]
    assert _seeds(out) == [0, 1, 2, 3]


def _cartpole() -> gym.Env:
    return gym.make("CartPole-v1")


def test_killed_task_leaves_a_readable_partial_and_the_rerun_has_no_duplicate(tmp_path: Path) -> None:
    out = tmp_path / "run"
    flag = tmp_path / "die-once"
    flag.touch()
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_collect import DyingEnv
        from trajrec.collect import collect
        collect(lambda: DyingEnv({str(flag)!r}, die_seed=1), "random", episodes=3, out={str(out)!r},
                run_id="r", progress=False)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _seeds(out) == [0]  # seed 0 finished; seed 1 died in staging; seed 2 never started
    staged = list((out / ".trajrec" / "staging").rglob("*.msgpack.zst"))
    assert len(staged) == 1
    report = fsck(staged[0])
    with open_episode(staged[0]) as ep:
        assert len(ep) == 4 and ep.reset.seed == 1  # steps 1-4 were returned before the kill at step 5
    assert report.steps == 4
    res = collect(lambda: DyingEnv(str(flag), die_seed=1), "random", episodes=3, out=out, run_id="r", progress=False)
    assert [r["skipped"] for r in res] == [True, False, False]
    assert _seeds(out) == [0, 1, 2]


def test_bad_arguments(tmp_path: Path) -> None:
    from trajrec import TrajrecUsageError

    with pytest.raises(TrajrecUsageError, match="unknown backend 'spark'; backends: local, process, ray"):
        collect(_cartpole, "random", episodes=1, out=tmp_path, backend="spark")
    with pytest.raises(TrajrecUsageError, match="episodes must be a positive int, got 0"):
        collect(_cartpole, "random", episodes=0, out=tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrajrecUsageError, match="exists and is not a folder"):
        collect(_cartpole, "random", episodes=1, out=tmp_path / "file")


@pytest.mark.heavy
def test_ray_backend_retries_a_killed_worker_without_duplicates(tmp_path: Path) -> None:
    """Needs the ray extra: pip install -e '.[ray,test]' && python -m pytest -m heavy tests/collect"""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[ray]'")
    out = tmp_path / "run"
    flag = tmp_path / "die-once"
    flag.touch()
    sys.path.insert(0, str(Path(__file__).parent))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).parent)}})
    try:
        from test_collect import DyingEnv as RemoteDyingEnv  # importable by name on the workers too

        advanced = []

        class Bar:
            def advance(self, n: int = 1) -> None:
                advanced.append(n)

        res = collect(lambda: RemoteDyingEnv(str(flag), die_seed=2), "random", episodes=6, out=out,
                      backend="ray", run_id="ray-run", progress=Bar())
    finally:
        ray.shutdown()
    assert not flag.exists()  # the first attempt of seed 2 did die
    assert [r["seed"] for r in res] == list(range(6)) and sum(advanced) == 6
    assert _seeds(out) == list(range(6))  # the retried seed is in the run once
    staged = list((out / ".trajrec" / "staging").rglob("*.msgpack.zst"))
    assert len(staged) == 1 and fsck(staged[0]).steps == 4
