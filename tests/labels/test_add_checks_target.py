"""``LabelStore.add`` refuses an episode id its folder has no episode of and a step the episode does not have (as
``trajrec label add`` does), and says when it cannot check: a folder without episode files."""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import pytest

from trajrec import Recorder, TrajrecUsageError
from trajrec.replay.labels import LabelStore


def _record(folder: Path, steps: int = 4) -> str:
    env = Recorder(gym.make("CartPole-v1"), folder)
    env.reset(seed=0)
    for _ in range(steps):
        env.step(0)
    env.close()
    return env.episode_paths[-1].name.removesuffix(".msgpack.zst")


def _lines(folder: Path) -> int:
    labels = folder / ".trajrec" / "labels"
    return sum(len(p.read_text().splitlines()) for p in labels.glob("*.jsonl")) if labels.is_dir() else 0


def test_add_refuses_a_missing_step_and_an_unknown_episode(tmp_path: Path) -> None:
    eid = _record(tmp_path / "run")
    store = LabelStore(tmp_path / "run")
    with pytest.raises(TrajrecUsageError, match=rf"step 99 is out of range: episode {eid} has 4 steps \(0\.\.3\)"):
        store.add(eid, 99, 1, judge="human:me")
    with pytest.raises(TrajrecUsageError, match=rf"step 4 is out of range"):
        store.add(eid, 4, 1, judge="human:me")
    with pytest.raises(TrajrecUsageError, match=r"no episode 'nope' in .*run: its 1 episode file holds? other"):
        store.add("nope", 0, 1, judge="human:me")
    with pytest.raises(TrajrecUsageError, match=r"did you mean"):
        store.add(eid[:-1], "episode", True, judge="human:me")
    assert _lines(tmp_path / "run") == 0  # nothing was written
    store.add(eid, 3, 1, judge="human:me")
    store.add(eid, "episode", True, judge="human:me")
    assert _lines(tmp_path / "run") == 2


def test_a_renamed_file_is_found_by_its_header_id(tmp_path: Path) -> None:
    eid = _record(tmp_path / "run", steps=2)
    src = tmp_path / "run" / f"{eid}.msgpack.zst"
    os.rename(src, tmp_path / "run" / "renamed.msgpack.zst")
    store = LabelStore(tmp_path / "run")
    store.add(eid, 1, -1, judge="human:me")
    with pytest.raises(TrajrecUsageError, match="step 2 is out of range"):
        store.add(eid, 2, -1, judge="human:me")


def test_episode_recorded_after_the_store_opened_is_found(tmp_path: Path) -> None:
    first = _record(tmp_path / "run")
    store = LabelStore(tmp_path / "run")
    store.add(first, 0, 1, judge="human:me")
    second = _record(tmp_path / "run", steps=1)
    store.add(second, 0, 1, judge="human:me")


def test_a_folder_without_episode_files_is_not_checked(tmp_path: Path) -> None:
    lab = LabelStore(tmp_path / "prepared").add("ep-1", 7, 1, judge="human:me")
    assert lab.target == 7


def test_an_episode_being_recorded_takes_labels_on_its_steps_so_far(tmp_path: Path) -> None:
    env = Recorder(gym.make("CartPole-v1"), tmp_path / "run")
    env.reset(seed=0)
    env.step(0)
    env.step(0)
    eid = env.episode_paths[-1].name.removesuffix(".msgpack.zst")
    store = LabelStore(tmp_path / "run")
    store.add(eid, 1, 1, judge="human:me")
    env.step(0)
    store.add(eid, 2, 1, judge="human:me")  # the file grew since the store read its index
    env.close()


def test_a_label_for_a_folder_whose_episodes_are_in_subfolders_is_refused(tmp_path) -> None:
    """FINDINGS16 #1: on ``trajrec demo``'s layout (an env subfolder each) a label added to the top folder was
    written where no reader looks (label ls, exports and open_run read the episode's own folder), silently."""
    import gymnasium as gym

    from trajrec import Recorder, open_episode
    from trajrec.recorder.errors import TrajrecUsageError
    from trajrec.replay.labels import LabelStore

    env = Recorder(gym.make("CartPole-v1"), tmp_path / "runs" / "cartpole")
    env.reset(seed=0)
    env.step(0)
    env.close()
    eid = open_episode(env.episode_path).episode_id
    with pytest.raises(TrajrecUsageError, match=r"holds no episode file itself .* open LabelStore\(.*cartpole'\)"):
        LabelStore(tmp_path / "runs").add(eid, 0, 1, judge="human:me")
    assert not (tmp_path / "runs" / ".trajrec" / "labels").exists() or \
        not any((tmp_path / "runs" / ".trajrec" / "labels").iterdir())
    LabelStore(tmp_path / "runs" / "cartpole").add(eid, 0, 1, judge="human:me")  # the folder the error names
