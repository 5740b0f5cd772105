"""NamedTuples (gymnasium's ``GraphInstance`` among them) are stored as plain tuples, and the recorder says so once
per type (FINDINGS5 #18): the values come back in order, the field names do not, and reading imports no class."""

from __future__ import annotations

import collections
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from trajrec import Recorder, open_episode
from trajrec.recorder import codec
from trajrec.recorder.codec import CodecWarning

Point = collections.namedtuple("Point", "x y")


class PointEnv(gym.Env):
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def state_dict(self):
        return {"where": Point(5, 6)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return Point(1, 2), 0.0, True, False, {"nt": Point(3, 4)}


def _record(env: gym.Env, out: Path) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = Recorder(env, out)
        rec.reset(seed=0)
        rec.step(rec.action_space.sample())
        rec.close()
    return [w for w in caught if issubclass(w.category, CodecWarning)]


def test_a_namedtuple_is_stored_as_a_tuple_with_one_warning(tmp_path: Path) -> None:
    codec._warned_types.discard(f"{__name__}.Point:tuple")
    caught = _record(PointEnv(), tmp_path / "r")
    about = [str(w.message) for w in caught if "Point" in str(w.message)]
    assert len(about) == 1, about  # once for the type, though it is in the observation, the info and the state
    assert "plain tuples" in about[0] and "field names" in about[0]
    ep = open_episode(next((tmp_path / "r").glob("*.zst")))
    step = ep[0]
    assert type(step.observation) is tuple and step.observation == (1, 2)
    assert type(step.info["nt"]) is tuple and step.info["nt"] == (3, 4)
    assert type(ep.state_at(0)["where"]) is tuple and ep.state_at(0)["where"] == (5, 6)


def test_a_graph_space_observation_warns_once_and_keeps_its_arrays(tmp_path: Path) -> None:
    class GraphEnv(gym.Env):
        observation_space = gym.spaces.Graph(node_space=gym.spaces.Box(0, 1, (2,)), edge_space=None)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return self.observation_space.sample(), {}

        def step(self, action):
            self.last = self.observation_space.sample()
            return self.last, 0.0, True, False, {}

    codec._warned_types.discard("gymnasium.spaces.graph.GraphInstance:tuple")
    env = GraphEnv()
    caught = _record(env, tmp_path / "g")
    assert sum("GraphInstance" in str(w.message) for w in caught) == 1
    obs = open_episode(next((tmp_path / "g").glob("*.zst")))[0].observation
    assert type(obs) is tuple and len(obs) == 3
    assert np.array_equal(obs[0], env.last.nodes)  # by position: nodes, edges, edge_links


@pytest.mark.filterwarnings("error::trajrec.recorder.codec.CodecWarning")
def test_plain_tuples_do_not_warn(tmp_path: Path) -> None:
    class TupleEnv(PointEnv):
        def state_dict(self):
            return {"where": (5, 6)}

        def step(self, action):
            return (1, 2), 0.0, True, False, {"t": (3, 4)}

    _record(TupleEnv(), tmp_path / "t")


def test_trajrecs_own_rows_do_not_warn() -> None:
    from trajrec.recorder.format import packb, unpackb
    from trajrec.recorder.model import DiffRow

    row = DiffRow(["a"], "values_changed", 1, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert unpackb(packb(row)) == (["a"], "values_changed", 1, 2)
