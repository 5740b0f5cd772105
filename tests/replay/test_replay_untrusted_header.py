"""Episode headers are data: replay imports and calls nothing a file names unless the user opts in by name.

Each crafted header names code that would leave a canary file if it ran; each test asserts the refusal message and
that the canary is absent (and, for modules, that they were never imported).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from trajrec.cli import main
from trajrec.recorder.writer import EpisodeWriter
from trajrec.replay.replayer import ReplayError, replay_episode

EVIL_MODULE = """
import gymnasium as gym
open({canary!r}, "w").write("imported")

class Env(gym.Env):
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)
    def __init__(self, **kw):
        open({canary!r}, "w").write("constructed")
    def reset(self, *, seed=None, options=None):
        return 0, {{}}
    def step(self, action):
        return 0, 0.0, True, False, {{}}

class Wrap(gym.Wrapper):
    def __init__(self, env):
        open({canary!r}, "w").write("wrapped")
        super().__init__(env)

def run(env, **kw):
    open({canary!r}, "w").write("called")
    return env
"""


def craft(path: Path, task: dict[str, Any], action: Any = 0) -> Path:
    """An episode with one step whose header carries ``task`` as given."""
    w = EpisodeWriter(path, {"episode_id": "crafted", "provenance": {}, "task": task})
    w.write_reset({"seed": 0, "observation": 0, "info": {}, "time": 0.0, "duration": 0.0})
    w.write_step({"i": 0, "action": action, "observation": 0, "reward": 0.0, "terminated": True, "truncated": False,
                  "info": {}, "time": 0.0, "duration": 0.0})
    w.close()
    return path


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A run folder holding a module that writes the canary when imported, reachable on sys.path (as the
    current folder is for ``python -m trajrec``)."""
    run = tmp_path / "run"
    run.mkdir()
    canary = tmp_path / "CANARY"
    (run / "rt_evil_mod.py").write_text(EVIL_MODULE.format(canary=str(canary)))
    monkeypatch.chdir(run)
    monkeypatch.syspath_prepend(str(run))
    yield run, canary
    sys.modules.pop("rt_evil_mod", None)
    for env_id in [i for i in gym.registry if "rt_evil" in i or i.startswith("rtevil")]:
        del gym.registry[env_id]


def _refused(path: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    assert main(["replay", str(path), *flags]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("trajrec replay: error: ") and err.count("\n") == 1
    return err


@pytest.mark.parametrize("entry_point, kwargs", [
    ("os:system", {"command": "touch {canary}"}),
    ("subprocess:run", {"args": ["touch", "{canary}"]}),
    ("builtins:exec", {"source": "open({canary!r}, 'w')"}),
    ("rt_evil_mod:Env", {}),
])
def test_env_entry_points_in_the_header_are_refused(run_dir, capsys, entry_point: str, kwargs: dict) -> None:
    run, canary = run_dir
    kwargs = {k: (v.format(canary=str(canary)) if isinstance(v, str)
                  else [x.format(canary=str(canary)) for x in v]) for k, v in kwargs.items()}
    ep = craft(run / "evil.msgpack.zst", {"env_id": "rtevil/Anything-v0", "entry_point": entry_point,
                                          "env_kwargs": kwargs, "max_episode_steps": None, "wrappers": []})

    err = _refused(ep, capsys)

    assert err == (f"trajrec replay: error: refusing to import env entry point '{entry_point}' named in the header of "
                   f"{ep} (for 'rtevil/Anything-v0'): episode files are data, and replay runs only ids registered by "
                   f"modules you import. If you trust that code: trajrec replay FILE --allow-entry-point "
                   f"'{entry_point}' (allow_entry_points=['{entry_point}'] in Python), or import the module that "
                   "registers the env: trajrec replay FILE --import MODULE\n")
    with pytest.raises(ReplayError, match="refusing to import env entry point"):
        replay_episode(ep)
    assert not canary.exists()
    assert "rt_evil_mod" not in sys.modules


def test_an_allowed_entry_point_runs_only_when_named_exactly(run_dir, capsys) -> None:
    run, canary = run_dir
    ep = craft(run / "evil.msgpack.zst", {"env_id": "rtevil/Anything-v0", "entry_point": "rt_evil_mod:Env",
                                          "env_kwargs": {}, "wrappers": []})

    _refused(ep, capsys, "--allow-entry-point", "rt_evil_mod:Other")  # a different name allows nothing
    assert not canary.exists()
    assert main(["replay", str(ep), "--allow-entry-point", "rt_evil_mod:Env"]) == 0
    assert canary.read_text() == "constructed"  # the user named it: it ran


def test_module_colon_id_is_refused_unless_imported(run_dir, capsys) -> None:
    run, canary = run_dir
    ep = craft(run / "evil.msgpack.zst", {"env_id": "rt_evil_mod:Thing-v0", "env_kwargs": {}, "wrappers": []})

    err = _refused(ep, capsys)

    assert err == (f"trajrec replay: error: refusing to rebuild env id 'rt_evil_mod:Thing-v0' recorded in {ep}: "
                   "gymnasium.make would import module 'rt_evil_mod', which the episode file names; files are data "
                   "and replay imports only modules you choose. If you trust that module: trajrec replay FILE "
                   "--import rt_evil_mod (replay_episode(path, imports=['rt_evil_mod']) in Python)\n")
    assert not canary.exists() and "rt_evil_mod" not in sys.modules
    # A namespace that matches a module in the run folder is not imported either.
    ep2 = craft(run / "ns.msgpack.zst", {"env_id": "rt_evil_mod/Thing-v0", "env_kwargs": {}, "wrappers": []})
    assert "is not registered with gymnasium" in _refused(ep2, capsys)
    assert not canary.exists() and "rt_evil_mod" not in sys.modules


@pytest.mark.parametrize("wrapper", [
    {"name": "p", "entry_point": "builtins:print", "kwargs": {"end": "CALLED"}},
    {"name": "s", "entry_point": "os:system", "kwargs": {}},
    {"name": "w", "entry_point": "rt_evil_mod:Wrap", "kwargs": {}},
    {"name": "f", "entry_point": "rt_evil_mod:run", "kwargs": {}},
])
def test_wrapper_entry_points_in_the_header_are_refused(run_dir, capsys, wrapper: dict) -> None:
    run, canary = run_dir
    ep = craft(run / "w.msgpack.zst", {"env_id": "CartPole-v1", "env_kwargs": {}, "max_episode_steps": 500,
                                       "wrappers": [wrapper]})

    err = _refused(ep, capsys)

    assert err.startswith(f"trajrec replay: error: refusing to import wrapper entry point '{wrapper['entry_point']}' "
                          f"named in the header of {ep} (for '{wrapper['name']}'): episode files are data, and replay "
                          "runs only Gymnasium's own wrappers or modules you import.")
    assert not canary.exists() and "rt_evil_mod" not in sys.modules


def test_wrappers_from_a_module_the_user_imports_must_be_wrapper_classes(run_dir, capsys) -> None:
    run, canary = run_dir
    ep = craft(run / "f.msgpack.zst", {"env_id": "CartPole-v1", "env_kwargs": {}, "max_episode_steps": 500,
                                       "wrappers": [{"name": "f", "entry_point": "rt_evil_mod:run", "kwargs": {}}]})

    err = _refused(ep, capsys, "--import", "rt_evil_mod")

    assert "refusing wrapper entry point 'rt_evil_mod:run'" in err and "not a Gymnasium wrapper class" in err
    assert canary.read_text() == "imported"  # the user imported the module; the function was not called
    ep2 = craft(run / "g.msgpack.zst", {"env_id": "CartPole-v1", "env_kwargs": {}, "max_episode_steps": 500,
                                        "wrappers": [{"name": "gw", "entry_point": "gymnasium.wrappers:__getattr__",
                                                      "kwargs": {}}]})
    assert "not a Gymnasium wrapper class" in _refused(ep2, capsys)


def test_gymnasium_wrappers_and_user_wrappers_are_reapplied(run_dir, capsys) -> None:
    run, canary = run_dir
    ep = craft(run / "ok.msgpack.zst", {"env_id": "CartPole-v1", "env_kwargs": {}, "max_episode_steps": 500,
                                        "wrappers": [{"name": "Wrap", "entry_point": "rt_evil_mod:Wrap",
                                                      "kwargs": {}}]})
    # Replaying diverges (the crafted step is not CartPole's), but the env is built: exit 1, not 2.
    assert main(["replay", str(ep), "--import", "rt_evil_mod"]) == 1
    assert canary.read_text() == "wrapped"


def test_the_command_line_refuses_in_a_fresh_process(tmp_path: Path) -> None:
    """The real `python -m trajrec replay` in the run folder (which is on sys.path there) runs nothing."""
    run = tmp_path / "run"
    run.mkdir()
    canary = tmp_path / "CANARY"
    (run / "rt_evil_mod.py").write_text(EVIL_MODULE.format(canary=str(canary)))
    files = [
        craft(run / "a.msgpack.zst", {"env_id": "x/Y-v0", "entry_point": "os:system",
                                      "env_kwargs": {"command": f"touch {canary}"}}),
        craft(run / "b.msgpack.zst", {"env_id": "rt_evil_mod:Y-v0"}),
        craft(run / "c.msgpack.zst", {"env_id": "CartPole-v1", "max_episode_steps": 500,
                                      "wrappers": [{"name": "w", "entry_point": "rt_evil_mod:Wrap", "kwargs": {}}]}),
    ]
    for ep in files:
        r = subprocess.run([sys.executable, "-m", "trajrec", "replay", str(ep)], cwd=run, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("trajrec replay: error: refusing") and "Traceback" not in r.stderr
        assert not canary.exists()
    env = {**os.environ, "PYTHONPATH": str(run)}
    r = subprocess.run([sys.executable, "-c", "import trajrec.replay.replayer, sys; "
                        "print('trajrec.envs' in sys.modules)"], capture_output=True, text=True, env=env, timeout=60)
    assert r.stdout.strip() == "False"  # nothing below the command line needs envs


def test_python_users_import_trajrec_envs_themselves_and_the_error_says_so() -> None:
    sample = sorted((Path(__file__).resolve().parents[2] / "sample_runs" / "mathcalc").glob("*.msgpack.zst"))[0]
    code = ("import sys\n"
            "from trajrec.replay.replayer import ReplayError, replay_episode\n"
            f"try:\n    replay_episode({str(sample)!r})\n"
            "except ReplayError as exc:\n    print(exc)\n"
            "import trajrec.envs\n"
            f"print(replay_episode({str(sample)!r}))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    first, second = r.stdout.strip().splitlines()[:2]
    assert "'trajrec/MathCalc-v0'" in first and "is not registered" in first
    assert "`import trajrec.envs` before replay_episode() in Python (the trajrec replay command does it" in first
    assert second.startswith("replayed ") and "no divergence" in second
