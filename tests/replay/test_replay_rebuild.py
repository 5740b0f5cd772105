"""Rebuilding the env from the header: registered ids, ``imports``, entry points and namespaces, clear errors when
it cannot be done; ``record=`` writes the replay as a new episode whose lineage points at the original."""

from __future__ import annotations

import os
import sys
import textwrap
import warnings
from pathlib import Path

import gymnasium as gym
import pytest
from replay_envs import ScriptEnv

from trajrec.recorder import CodecWarning, Unencodable, open_episode
from trajrec.recorder.errors import TrajrecError, TrajrecUsageError
from trajrec.replay.replayer import ReplayError, ReplayWarning, replay_episode

ACTIONS = ["write a.txt one", "look", "write b.txt two", "done"]

THING_ENV = '''
import gymnasium as gym

class ThingEnv(gym.Env):
    def __init__(self, size=3):
        self.observation_space = gym.spaces.Discrete(100)
        self.action_space = gym.spaces.Discrete(3)
        self.size = size
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = int(self.np_random.integers(self.size))
        return self.pos, {}
    def step(self, action):
        self.pos += int(action)
        return self.pos, 1.0, self.pos > 10, False, {}
'''


@pytest.fixture
def plugin_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write third-party style modules under tmp_path and forget them (and their ids) after the test."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    written: list[str] = []

    def write(name: str, source: str) -> None:
        (root / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)

    yield write
    for name in written:
        sys.modules.pop(name, None)
    for env_id in [i for i in gym.registry if i.startswith("rt")]:
        del gym.registry[env_id]


def _forget(env_id: str, *modules: str) -> None:
    del gym.registry[env_id]
    for name in modules:
        sys.modules.pop(name, None)


def test_unregistered_id_names_it_the_nearest_ids_and_the_fix(record, monkeypatch: pytest.MonkeyPatch) -> None:
    ep_path = record("replaytest/Script-v0", ACTIONS)
    keep = {"replaytest/Noisy-v0", "replaytest/Boom-v0", "CartPole-v1", "trajrec/Shell-v0"}
    for env_id in [i for i in gym.registry if i not in keep]:  # a registry this test controls; restored after
        monkeypatch.delitem(gym.registry, env_id)

    with pytest.raises(ReplayError) as err:
        replay_episode(ep_path)

    assert isinstance(err.value, TrajrecError)
    assert str(err.value) == (
        f"env id 'replaytest/Script-v0' recorded in {ep_path} is not registered with gymnasium (nearest registered "
        "ids: replaytest/Noisy-v0, replaytest/Boom-v0). "
        "Import the module that registers it before replaying: `trajrec replay FILE --import mypkg.envs`, "
        "or replay_episode(path, imports=['mypkg.envs']) in Python; replay does not import modules an episode "
        "file names")


def test_imports_register_a_third_party_id(plugin_modules, tmp_path: Path, record) -> None:
    plugin_modules("rt_plugin_envs", THING_ENV + '''
gym.register(id="rtvendor/Thing-v0", entry_point=ThingEnv)
''')
    import rt_plugin_envs  # noqa: F401

    ep_path = record(gym.make("rtvendor/Thing-v0", size=5), [1, 2, 0, 1], seed=4)
    _forget("rtvendor/Thing-v0", "rt_plugin_envs")

    with pytest.raises(ReplayError, match="'rtvendor/Thing-v0' recorded in .* is not registered"):
        replay_episode(ep_path)
    report = replay_episode(ep_path, imports=["rt_plugin_envs"])
    assert not report.diverged, str(report)
    assert report.env_id == "rtvendor/Thing-v0"


def test_the_id_namespace_is_not_imported_unless_the_user_names_it(plugin_modules, record) -> None:
    plugin_modules("rtns", THING_ENV + '''
gym.register(id="rtns/Thing-v0", entry_point=ThingEnv)
''')
    import rtns  # noqa: F401

    ep_path = record("rtns/Thing-v0", [1, 1, 1], seed=2)
    _forget("rtns/Thing-v0", "rtns")

    with pytest.raises(ReplayError, match="'rtns/Thing-v0' recorded in .* is not registered"):
        replay_episode(ep_path)
    assert "rtns" not in sys.modules  # the file named the namespace; replay did not import it
    assert not replay_episode(ep_path, imports=["rtns"]).diverged


def test_the_recorded_entry_point_needs_the_users_opt_in(plugin_modules, record) -> None:
    plugin_modules("rt_thing_impl", THING_ENV)
    plugin_modules("rt_thing_reg", '''
import gymnasium as gym
gym.register(id="rtother/Thing-v0", entry_point="rt_thing_impl:ThingEnv", max_episode_steps=3)
''')
    import rt_thing_reg  # noqa: F401

    ep_path = record("rtother/Thing-v0", [0, 0, 0, 0, 0], seed=1)
    ep = open_episode(ep_path)
    assert ep.task["entry_point"] == "rt_thing_impl:ThingEnv" and len(ep) == 3  # the time limit truncated it
    _forget("rtother/Thing-v0", "rt_thing_reg", "rt_thing_impl")

    with pytest.raises(ReplayError) as err:
        replay_episode(ep_path)
    assert str(err.value) == (
        f"refusing to import env entry point 'rt_thing_impl:ThingEnv' named in the header of {ep_path} (for "
        "'rtother/Thing-v0'): episode files are data, and replay runs only ids registered by modules you import. "
        "If you trust that code: trajrec replay FILE --allow-entry-point 'rt_thing_impl:ThingEnv' "
        "(allow_entry_points=['rt_thing_impl:ThingEnv'] in Python), or import the module that registers the env: "
        "trajrec replay FILE --import MODULE")
    assert "rt_thing_impl" not in sys.modules

    report = replay_episode(ep_path, allow_entry_points=["rt_thing_impl:ThingEnv"])
    assert not report.diverged, str(report)
    assert report.steps_replayed == 3
    assert "rtother/Thing-v0" not in gym.registry  # built from a spec, nothing registered behind the user's back
    # A module the user imports counts as chosen code: its env classes may be named by the header.
    sys.modules.pop("rt_thing_impl")
    assert not replay_episode(ep_path, imports=["rt_thing_impl"]).diverged


def test_an_import_that_fails_is_reported(record) -> None:
    ep_path = record("replaytest/Script-v0", ACTIONS)

    with pytest.raises(ReplayError) as err:
        replay_episode(ep_path, imports=["rt_no_such_module"])

    assert str(err.value) == ("cannot import 'rt_no_such_module' (given to import before replaying): "
                              "ModuleNotFoundError: No module named 'rt_no_such_module'; check the module name and "
                              "that its package is installed in this Python (a module of your own: run from the "
                              "folder that holds it, or add that folder to PYTHONPATH)")


def test_directly_constructed_env_cannot_be_rebuilt(record) -> None:
    ep_path = record(ScriptEnv(), ACTIONS)
    assert open_episode(ep_path).task["env_id"] is None

    with pytest.raises(ReplayError) as err:
        replay_episode(ep_path)

    assert str(err.value) == (
        f"cannot rebuild the env of {ep_path}: it was recorded from an instance of replay_envs.ScriptEnv constructed "
        "directly, not through gymnasium.make, so the header holds no env id and no constructor arguments to rebuild "
        "it from. To make episodes replayable, register the env (gymnasium.register(id='mypkg/MyEnv-v0', "
        "entry_point='mypkg.module:MyEnv')) and record Recorder(gymnasium.make('mypkg/MyEnv-v0'), ...). To replay "
        "this one, pass the env yourself: replay_episode(path, env=MyEnv(...)), or name a registered id that builds "
        "the same env: trajrec replay FILE --env ID")
    assert not replay_episode(ep_path, env=ScriptEnv()).diverged
    assert not replay_episode(ep_path, env_id="replaytest/Script-v0").diverged


def test_constructor_arguments_that_were_not_data_are_reported(record) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CodecWarning)  # warned once per process: about storing the repr
        ep_path = record(gym.make("replaytest/Script-v0", greeting=object()), ACTIONS)
    assert isinstance(open_episode(ep_path).task["env_kwargs"]["greeting"], Unencodable)

    with pytest.raises(ReplayError, match=r"constructor argument\(s\) greeting were not plain data"):
        replay_episode(ep_path)


def test_a_constructor_that_rejects_the_recorded_kwargs_is_reported(record) -> None:
    ep_path = record(gym.make("replaytest/Script-v0", greeting="hi"), ACTIONS)

    with pytest.raises(ReplayError) as err:
        replay_episode(ep_path, env_id="replaytest/Boom-v0")

    assert str(err.value).startswith(f"cannot rebuild replaytest/Boom-v0 for {ep_path} with the recorded kwargs "
                                     "{'greeting': 'hi'}: the constructor raised TypeError: ")


def test_state_recorded_with_a_custom_state_fn_needs_one_to_be_compared(record) -> None:
    def state_fn(env):
        return {"i": env.unwrapped.i}

    ep_path = record("replaytest/Boom-v0", ["a", "b"], state_fn=state_fn)  # BoomEnv has no state_dict()
    assert open_episode(ep_path).has_state

    with pytest.warns(ReplayWarning, match=r"BoomEnv has no state_dict\(\) \(recorded with a custom state_fn\?\): "
                                           "state is not compared; pass state_fn= to compare it"):
        report = replay_episode(ep_path)
    assert "state" not in report.compared and not report.diverged
    report = replay_episode(ep_path, state_fn=state_fn)
    assert "state" in report.compared and not report.diverged
    assert replay_episode(ep_path, state_fn=lambda env: {"i": -1}).first_divergence.fields == ("state",)  # type: ignore[union-attr]
    with pytest.raises(TrajrecUsageError, match="state_fn must be callable, got int"):
        replay_episode(ep_path, state_fn=3)  # type: ignore[arg-type]


# -- record= --------------------------------------------------------------------------------------------------------

def test_record_writes_the_replay_with_lineage(record, tmp_path: Path) -> None:
    ep_path = record("replaytest/Script-v0", ACTIONS, agent={"name": "scripted", "version": "2"},
                     run_id="run-original")
    original = open_episode(ep_path)

    report = replay_episode(ep_path, record=tmp_path / "replays")

    assert not report.diverged
    assert report.new_episode_path is not None and Path(report.new_episode_path).parent == tmp_path / "replays"
    assert str(report).endswith(f"\nreplay recorded to {report.new_episode_path}")
    new = open_episode(report.new_episode_path)
    assert new.provenance["lineage"] == {
        "replay_of": {"episode_id": original.episode_id, "path": os.path.abspath(ep_path), "run_id": "run-original"},
        "generator": "trajrec replay",
    }
    assert new.provenance["agent"] == {"name": "scripted", "version": "2"}
    assert new.provenance["run_id"] != "run-original"
    assert new.task["id"] == original.task["id"] == "script-1"
    assert (new.task["env_id"], new.task["seed"]) == ("replaytest/Script-v0", 0)
    assert [s.action for s in new] == [s.action for s in original]
    assert new.summary["outcome"] == original.summary["outcome"]
    # The replayed episode is itself replayable, and agrees with the original.
    assert not replay_episode(report.new_episode_path).diverged


def test_record_keeps_the_agent_notes(tmp_path: Path) -> None:
    from trajrec.recorder import Recorder

    env = Recorder(gym.make("replaytest/Script-v0"), tmp_path / "runs")
    env.reset(seed=1)
    env.note(thought="write it")
    env.step("write a.txt x")
    env.step("done")
    env.close()

    report = replay_episode(env.episode_path, record=tmp_path / "replays")

    new = open_episode(report.new_episode_path)  # type: ignore[arg-type]
    assert [s.note for s in new] == [{"thought": "write it"}, None]


def test_record_stops_at_the_divergent_step(record, tmp_path: Path) -> None:
    ep_path = record("replaytest/Noisy-v0", ["a", "b", "c", "d", "e", "f"])

    report = replay_episode(ep_path, record=tmp_path / "replays")

    assert report.first_divergence is not None and report.first_divergence.step == 3
    assert len(open_episode(report.new_episode_path)) == 4  # type: ignore[arg-type]


def test_wrappers_applied_after_make_are_recorded_and_reapplied(tmp_path):
    import gymnasium as gym
    import numpy as np

    from trajrec.recorder import Recorder, open_episode
    from trajrec.replay.replayer import replay_episode

    base = gym.wrappers.ClipReward(gym.make("CartPole-v1"), 0.0, 0.5)
    env = Recorder(base, tmp_path)
    env.reset(seed=4)
    for _ in range(5):
        env.step(1)
    env.close()
    ep = open_episode(env.episode_path)
    assert [w["name"] for w in ep.task["wrappers"]] == ["ClipReward"]
    assert ep[0].reward == 0.5 and np.isfinite(ep[0].observation).all()
    report = replay_episode(env.episode_path)
    assert not report.diverged and report.steps_replayed == 5
