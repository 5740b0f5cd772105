"""A custom wrapper that does not record its constructor arguments (no gymnasium.utils.RecordConstructorArgs) is
recorded with ``kwargs: null`` (unknown), not ``{}`` (no arguments), with one warning per wrapper class when
recording; replay, which rebuilds it with its defaults, names it when it diverges (FINDINGS33 #13). A wrapper whose
constructor takes only ``env`` has nothing to record: ``{}``, no warning."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import gymnasium as gym
import pytest
from replay_envs import record_episode

from trajrec.cli import main
from trajrec.recorder import open_episode
from trajrec.replay.replayer import replay_episode

WRAPPERS = '''
import gymnasium as gym
from gymnasium.utils import RecordConstructorArgs


class Prefix(gym.ObservationWrapper):
    def __init__(self, env, tag="[default] "):
        super().__init__(env)
        self.tag = tag

    def observation(self, o):
        return self.tag + o


class Plain(gym.ObservationWrapper):
    def __init__(self, env):
        super().__init__(env)

    def observation(self, o):
        return o.upper()


class Needs(gym.ObservationWrapper):
    def __init__(self, env, tag):
        super().__init__(env)
        self.tag = tag

    def observation(self, o):
        return self.tag + o


class Recorded(gym.ObservationWrapper, RecordConstructorArgs):
    def __init__(self, env, tag="[default] "):
        RecordConstructorArgs.__init__(self, tag=tag)
        gym.ObservationWrapper.__init__(self, env)
        self.tag = tag

    def observation(self, o):
        return self.tag + o
'''
MODULE = "fixw_wrappers_mod"


@pytest.fixture
def wrappers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    (tmp_path / f"{MODULE}.py").write_text(WRAPPERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    mod = importlib.import_module(MODULE)
    yield mod
    sys.modules.pop(MODULE, None)


def _record(env: gym.Env, out: Path) -> tuple[Path, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = record_episode(env, out, ["a", "b"])
    return path, [str(w.message) for w in caught if "constructor arguments" in str(w.message)]


def test_unknown_kwargs_are_marked_and_warned_once(wrappers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from trajrec.recorder import wrapper as recorder_wrapper

    recorder_wrapper._WARNED_WRAPPERS.discard(f"{MODULE}:Prefix")
    path, said = _record(wrappers.Prefix(gym.make("replaytest/Script-v0"), tag="<<"), tmp_path / "runs")
    with open_episode(path) as ep:
        assert ep.task["wrappers"] == [{"name": "Prefix", "entry_point": f"{MODULE}:Prefix", "kwargs": None}]
    assert len(said) == 1 and f"wrapper Prefix ({MODULE}:Prefix) does not record its constructor arguments" in said[0]
    assert "RecordConstructorArgs" in said[0]
    _again, said = _record(wrappers.Prefix(gym.make("replaytest/Script-v0"), tag="<<"), tmp_path / "runs2")
    assert said == []  # once per wrapper class


def test_known_kwargs_are_kept_without_a_warning(wrappers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, said = _record(wrappers.Plain(gym.make("replaytest/Script-v0")), tmp_path / "plain")
    with open_episode(path) as ep:
        assert ep.task["wrappers"][0]["kwargs"] == {}
    assert said == []
    path, said = _record(wrappers.Recorded(gym.make("replaytest/Script-v0"), tag="<<"), tmp_path / "recorded")
    with open_episode(path) as ep:
        assert ep.task["wrappers"][0]["kwargs"] == {"tag": "<<"}
    assert said == []
    assert replay_episode(path, imports=[MODULE]).diverged is False  # rebuilt with its recorded tag


def test_replay_names_the_wrapper_when_it_diverges(wrappers, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path, _said = _record(wrappers.Prefix(gym.make("replaytest/Script-v0"), tag="<<"), tmp_path / "runs")
    capsys.readouterr()
    assert main(["replay", str(path), "--import", MODULE]) == 1
    out, err = capsys.readouterr()
    assert "diverged at the reset in observation" in out
    assert (f"the recording did not keep the constructor arguments of wrapper Prefix ({MODULE}:Prefix) "
            "(task.wrappers kwargs null") in " ".join(err.split())
    # A wrapper with nothing to record replays the same, and nothing is said about it.
    path, _said = _record(wrappers.Plain(gym.make("replaytest/Script-v0")), tmp_path / "plain")
    assert main(["replay", str(path), "--import", MODULE]) == 0
    assert "constructor arguments" not in capsys.readouterr().err


def test_a_wrapper_that_needs_its_arguments_is_refused_saying_why(wrappers, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path, _said = _record(wrappers.Needs(gym.make("replaytest/Script-v0"), tag="<<"), tmp_path / "needs")
    capsys.readouterr()
    assert main(["replay", str(path), "--import", MODULE]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "cannot re-apply wrapper 'Needs'" in err and "missing 1 required positional argument: 'tag'" in err
    assert "its constructor arguments were not recorded (task.wrappers kwargs null" in err
