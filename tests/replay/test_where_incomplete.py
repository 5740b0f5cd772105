"""The filter word ``incomplete`` selects every episode that did not run to its end or lost steps, the same set
through ``trajrec ls --where``, ``trajrec export --where``, ``open_run(...).where`` and the viewer's filter box:
stopped (closed before the end), raised (outcome ``error``), a writer killed (no index), the same repaired by
``fsck --repair`` (outcome ``incomplete``), and steps lost to damage; never an episode judged, terminated or
truncated in a whole file. Its complement is what ``record --resume`` counts as recorded."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from trajrec import open_run
from trajrec.cli import main
from trajrec.recorder import Recorder, fsck, read_index

KILLED_WRITER = textwrap.dedent("""
    import sys
    import gymnasium as gym
    from trajrec.recorder import Recorder

    class Endless(gym.Env):
        observation_space = gym.spaces.Text(max_length=100)
        action_space = gym.spaces.Text(max_length=100)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return "start", {{}}

        def step(self, action):
            return "ok " + action, 0.0, False, False, {{}}

    env = Recorder(Endless(), {out!r}, frame_steps=2)
    env.reset(seed=0)
    for i in range(6):
        env.step(f"step {{i}}")
    print("READY", flush=True)
    sys.stdin.readline()  # killed while waiting here
""")


class Raising(gym.Env):
    """A text env whose second step raises (the recorded outcome is ``error``)."""

    observation_space = gym.spaces.Text(max_length=100)
    action_space = gym.spaces.Text(max_length=100)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        return "start", {}

    def step(self, action: str):
        self.t += 1
        if self.t == 2:
            raise RuntimeError("the tool crashed")
        return "ok", 0.0, False, False, {}


def _killed_writer(folder: Path) -> Path:
    before = set(folder.glob("*.msgpack.zst"))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER.format(out=str(folder))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    (new,) = set(folder.glob("*.msgpack.zst")) - before
    return new


def _damage_and_repair(path: Path) -> None:
    """Flip a byte in the second frame and repair until steps are declared lost."""
    orig = path.read_bytes()
    row = read_index(path)["frames"][1]
    for k in range(1, 20):
        data = bytearray(orig)
        data[row[0] + max(6, int((row[3] - row[0]) * k / 20))] ^= 0x5A
        path.write_bytes(bytes(data))
        rep = fsck(path, repair=True)
        for extra in path.parent.glob("*.orig"):
            extra.unlink()
        if rep.lost:
            return
        path.write_bytes(orig)
    raise AssertionError(f"no damage in frame 1 of {path} lost steps")


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, set[Path]]]:
    import trajrec.envs  # noqa: F401 - registers the ids
    from trajrec.envs.agents import make_agent
    from trajrec.envs.runner import run_episode

    run = tmp_path_factory.mktemp("where") / "run"
    kinds: dict[str, set[Path]] = {}

    def new(kind: str, before: set[Path]) -> None:
        kinds[kind] = set(run.glob("*.msgpack.zst")) - before

    env = Recorder(gym.make("trajrec/Shell-v0"), run, frame_steps=2)
    before = set()
    for seed in range(3):
        run_episode(env, make_agent("trajrec/Shell-v0", seed=seed, skill=0.5), seed=seed)
    env.close()
    new("ran to its end", before)
    biggest = max(kinds["ran to its end"], key=lambda p: read_index(p)["steps"])
    _damage_and_repair(biggest)
    kinds["ran to its end"].discard(biggest)
    kinds["lost steps"] = {biggest}

    before = set(run.glob("*.msgpack.zst"))
    env = Recorder(gym.make("trajrec/Shell-v0"), run)
    obs, info = env.reset(seed=7)
    env.step("ls")
    env.close()  # closed before the end: outcome stopped
    new("stopped", before)

    before = set(run.glob("*.msgpack.zst"))
    env = Recorder(Raising(), run)
    env.reset(seed=0)
    env.step("a")
    with pytest.raises(RuntimeError):
        env.step("b")
    env.close()
    new("error", before)

    kinds["killed"] = {_killed_writer(run)}
    repaired = _killed_writer(run)
    fsck(repaired, repair=True)
    for extra in run.glob("*.orig"):
        extra.unlink()
    kinds["killed, repaired"] = {repaired}
    return run, kinds


def _outcomes(paths: set[Path]) -> set[str]:
    rows = open_run(sorted(map(str, paths)))
    return {e.outcome or "-" for e in rows.entries}


def test_the_fixture_holds_each_kind(mixed_run: tuple[Path, dict[str, set[Path]]]) -> None:
    _run, kinds = mixed_run
    assert all(len(v) >= 1 for v in kinds.values())
    assert _outcomes(kinds["stopped"]) == {"stopped"}
    assert _outcomes(kinds["error"]) == {"error"}
    assert _outcomes(kinds["killed, repaired"]) == {"incomplete"}
    assert not read_index(next(iter(kinds["killed"])))["complete"]
    assert _outcomes(kinds["ran to its end"]) <= {"passed", "failed", "terminated", "truncated"}


def _expected(kinds: dict[str, set[Path]]) -> tuple[set[Path], set[Path]]:
    bad = {p.resolve() for k, v in kinds.items() if k != "ran to its end" for p in v}
    good = {p.resolve() for p in kinds["ran to its end"]}
    return bad, good


def _ls(capsys: pytest.CaptureFixture, run: Path, *where: str) -> set[Path]:
    main(["ls", str(run), *(x for w in where for x in ("--where", w)), "--json"])
    return {Path(json.loads(line)["path"]).resolve() for line in capsys.readouterr().out.splitlines()}


def test_ls_and_open_run_select_every_unended_episode(mixed_run: tuple[Path, dict[str, set[Path]]],
                                                     capsys: pytest.CaptureFixture) -> None:
    run, kinds = mixed_run
    bad, good = _expected(kinds)
    assert _ls(capsys, run, "incomplete") == bad
    assert _ls(capsys, run, "-incomplete") == good
    assert _ls(capsys, run, "ended=false") == bad
    assert {Path(e.path).resolve() for e in open_run(run).where("incomplete").entries} == bad
    assert {Path(e.path).resolve() for e in open_run(run).where("-incomplete").entries} == good


def test_incomplete_is_what_record_resume_records_again(mixed_run: tuple[Path, dict[str, set[Path]]]) -> None:
    from trajrec.recording import ended

    run, kinds = mixed_run
    bad, _good = _expected(kinds)
    damaged = {p.resolve() for p in kinds["lost steps"]}
    for path in run.glob("*.msgpack.zst"):
        index = read_index(path)
        if path.resolve() not in damaged:  # a damaged file's own index says complete; its steps are gone
            assert ended(index.get("summary") or {}, bool(index.get("complete"))) == (path.resolve() not in bad)


def test_export_where_incomplete(mixed_run: tuple[Path, dict[str, set[Path]]], tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:
    run, kinds = mixed_run
    bad, good = _expected(kinds)
    ids = {Path(e.path).resolve(): e.episode_id for e in open_run(run).entries}
    for where, want in (("incomplete", bad), ("-incomplete", good)):
        out = tmp_path / f"{where}.jsonl"
        main(["export", str(run), "--format", "records", "--out", str(out), "--where", where, "--keep-partial"])
        capsys.readouterr()
        got = {json.loads(line)["episode_id"] for line in out.read_text().splitlines()}
        assert got == {ids[p] for p in want}, where


def test_viewer_filter_incomplete(mixed_run: tuple[Path, dict[str, set[Path]]]) -> None:
    from textual.widgets import Input

    from trajrec.tui.app import create_app

    run, kinds = mixed_run
    bad, good = _expected(kinds)
    got: dict[str, set[Path]] = {}

    async def until(pilot, cond) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 10
        while not cond():
            assert time.monotonic() < deadline, "not reached in time"
            await pilot.pause(0.01)

    async def go() -> None:
        app = create_app([run])
        async with app.run_test(size=(140, 40)) as pilot:
            library = app.library
            await until(pilot, lambda: library.scan_done)
            for term in ("incomplete", "-incomplete"):
                library.query_one("#library-filter", Input).value = term
                await pilot.pause()
                await until(pilot, lambda: library.view_ready)
                got[term] = {Path(p).resolve() for p in library.order}
    asyncio.run(go())
    assert got == {"incomplete": bad, "-incomplete": good}
