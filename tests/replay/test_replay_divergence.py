"""Divergences are found at the right step and field, rendered readably, and ``ignore`` removes them; values that
mean the same after the file's round trip are not divergences, real differences are."""

from __future__ import annotations

import enum
import math
from collections import OrderedDict

import numpy as np
import pytest
from replay_envs import ScriptEnv

from trajrec.recorder import open_episode
from trajrec.recorder.errors import TrajrecUsageError
from trajrec.replay.replayer import (
    FIELDS,
    ReplayWarning,
    compare_records,
    parse_ignore,
    replay_episode,
)

ACTIONS = ["write a.txt one", "look", "write b.txt two", "look again", "write a.txt three", "look", "done"]


@pytest.mark.parametrize(("noise_in", "path"), [("info", ("info", "noise")),
                                                ("observation", ("observation",)),
                                                ("state", ("state", "noise"))])
def test_unseeded_randomness_is_reported_at_its_step_and_field(record, noise_in: str, path: tuple) -> None:
    ep_path = record("replaytest/Noisy-v0", ACTIONS, seed=0) if noise_in == "info" else None
    if ep_path is None:
        import gymnasium as gym
        ep_path = record(gym.make("replaytest/Noisy-v0", noise_in=noise_in), ACTIONS, seed=0)

    report = replay_episode(ep_path)

    assert report.diverged
    first = report.first_divergence
    assert first is not None
    assert (first.step, first.field, first.fields) == (3, noise_in, (noise_in,))
    assert [row.path for row in first.rows] == [path]
    assert first.rows[0].change == "values_changed"
    assert first.action == "look again"
    assert report.steps_replayed == 4
    text = str(report)
    assert text.startswith(f"replayed 4 steps, diverged at step 3 in {noise_in}\n")
    assert "step 3 differs in " + noise_in + " (recorded → replayed):\n  action: look again\n  ~ " in text


def test_info_divergence_text_shows_both_values(record) -> None:
    ep_path = record("replaytest/Noisy-v0", ACTIONS, seed=0)
    recorded_noise = open_episode(ep_path)[3].info["noise"]

    first = replay_episode(ep_path).first_divergence

    assert first is not None
    replayed_noise = first.rows[0].replayed
    assert first.rows[0].recorded == recorded_noise != replayed_noise
    assert first.text == f"  ~ info.noise: {recorded_noise!r} → {replayed_noise!r}"


@pytest.mark.parametrize("ignore", [["info.noise"], ["info"], ["info.*"], ["info['noise']"]])
def test_ignore_makes_the_divergence_go_away(record, ignore: list[str]) -> None:
    ep_path = record("replaytest/Noisy-v0", ACTIONS, seed=0)

    report = replay_episode(ep_path, ignore=ignore)

    assert not report.diverged, str(report)
    assert not replay_episode(ep_path, ignore=ignore[0]).diverged  # one path as a plain str
    assert report.steps_replayed == len(ACTIONS)
    assert report.ignored == tuple(ignore)


def test_ignore_in_state(record) -> None:
    import gymnasium as gym
    ep_path = record(gym.make("replaytest/Noisy-v0", noise_in="state"), ACTIONS, seed=0)

    assert replay_episode(ep_path, ignore=["info.noise"]).diverged
    assert not replay_episode(ep_path, ignore=["state.noise"]).diverged


def test_stop_at_first_false_reports_every_divergent_step(record) -> None:
    import gymnasium as gym
    ep_path = record(gym.make("replaytest/Noisy-v0", noise_in="state", at=2), ACTIONS, seed=0)

    report = replay_episode(ep_path, stop_at_first=False)

    # The drawn noise stays in the state: every step from 2 on differs, and only in state.
    assert [d.step for d in report.divergences] == list(range(2, len(ACTIONS)))
    assert {d.fields for d in report.divergences} == {("state",)}
    assert report.steps_replayed == len(ACTIONS)
    assert str(report).startswith(f"replayed {len(ACTIONS)} steps, diverged at step 2 in state; "
                                  f"{len(ACTIONS) - 2} divergent steps in all\n")


def test_until_stops_before_the_divergence(record) -> None:
    ep_path = record("replaytest/Noisy-v0", ACTIONS, seed=0)

    report = replay_episode(ep_path, until=2)

    assert not report.diverged
    assert report.steps_replayed == 3
    assert str(report) == f"replayed 3 steps, no divergence (stopped after step 2 of 0..{len(ACTIONS) - 1})"
    assert replay_episode(ep_path, until=3).first_divergence.step == 3  # type: ignore[union-attr]
    assert not replay_episode(ep_path, until=99, ignore=["info.noise"]).diverged


def test_unseeded_reset_warns(record) -> None:
    ep_path = record("replaytest/Script-v0", ACTIONS, seed=None)

    with pytest.warns(ReplayWarning, match=r"reset with seed=None: the env's random generator was unseeded"):
        report = replay_episode(ep_path)

    assert len(report.warnings) == 1
    if report.diverged:  # the reset draws a number from the unseeded generator (1 in 1000 it matches)
        assert report.first_divergence.step == "reset"  # type: ignore[union-attr]
        assert "observation" in report.first_divergence.fields  # type: ignore[union-attr]


# -- the round trip: same meaning is no divergence ----------------------------------------------------------------

class Colour(enum.IntEnum):
    RED = 1


def _tweak_with(values):
    def tweak(env, i, obs, reward, info):
        return values(i, obs, reward, info)
    return tweak


@pytest.mark.filterwarnings("ignore:.*not within the observation space")
@pytest.mark.filterwarnings("ignore::trajrec.recorder.codec.CodecWarning")
@pytest.mark.parametrize("values", [
    pytest.param(lambda i, o, r, info: ((o, i), r, info), id="tuple-observation"),
    pytest.param(lambda i, o, r, info: (o, np.float32(r), info), id="np-float32-reward"),
    pytest.param(lambda i, o, r, info: (o, r, OrderedDict(info, colour=Colour.RED)), id="ordereddict-intenum"),
    pytest.param(lambda i, o, r, info: (np.array([i, math.nan, 2.5]), r, info), id="array-with-nan"),
    pytest.param(lambda i, o, r, info: (o, r, {**info, "x": math.nan, "b": bytearray(b"ab")}), id="nan-bytearray"),
    pytest.param(lambda i, o, r, info: (o, r, {**info, "obj": object(), "s": {1, 2}}), id="unencodable-and-set"),
])
def test_values_that_mean_the_same_after_the_round_trip_do_not_diverge(record, values) -> None:
    ScriptEnv.tweak = _tweak_with(values)
    ep_path = record("replaytest/Script-v0", ACTIONS)

    report = replay_episode(ep_path)

    assert not report.diverged, str(report)


@pytest.mark.filterwarnings("ignore:.*not within the observation space")
@pytest.mark.parametrize(("recorded", "replayed", "line"), [
    pytest.param(lambda i, o, r, info: ((o, i), r, info), lambda i, o, r, info: ([o, i], r, info),
                 '  ~ observation: ( "echo look", 1 ) (tuple) → [ "echo look", 1 ] (list)',
                 id="tuple-vs-list"),
    pytest.param(lambda i, o, r, info: (o, np.float32(r), info), lambda i, o, r, info: (o, np.float64(r), info),
                 "  ~ reward: 0.0 (numpy.float32) → 0.0 (numpy.float64)", id="float32-vs-64"),
    pytest.param(lambda i, o, r, info: (o, r, info), lambda i, o, r, info: (o, r, {**info, "n": float(info["n"])}),
                 "  ~ info.n: 2 (int) → 2.0 (float)", id="int-vs-float-in-info"),
    # FINDINGS34 B5: DeepDiff takes these for equal; the row names the leaf, not the whole field
    pytest.param(lambda i, o, r, info: (o, r, {**info, "z": [1, 2]}), lambda i, o, r, info: (o, r, {**info, "z": [1, 2.0]}),
                 "  ~ info.z[1]: 2 (int) → 2.0 (float)", id="int-vs-float-in-a-list"),
    pytest.param(lambda i, o, r, info: (o, r, {**info, "t": {"u": 0.0}}),
                 lambda i, o, r, info: (o, r, {**info, "t": {"u": -0.0}}),
                 "  ~ info.t.u: 0.0 → -0.0", id="zero-sign-in-a-dict"),
    pytest.param(lambda i, o, r, info: (np.arange(4.0), r, info),
                 lambda i, o, r, info: (np.arange(4.0) + (np.arange(4) == 2), r, info),
                 "  ~ observation[2]: 2.0 → 3.0", id="array-element"),
    pytest.param(lambda i, o, r, info: (o, r, info), lambda i, o, r, info: (o, r, {**info, "extra": [1]}),
                 "  + info.extra = [ 1 ]", id="added-key"),
    pytest.param(lambda i, o, r, info: (o, r, {**info, "gone": "x"}), lambda i, o, r, info: (o, r, info),
                 "  - info.gone (was x)", id="removed-key"),
])
def test_real_differences_are_not_hidden(record, recorded, replayed, line: str) -> None:
    ScriptEnv.tweak = _tweak_with(lambda i, o, r, info: recorded(i, o, r, info) if i == 1 else (o, r, info))
    ep_path = record("replaytest/Script-v0", ACTIONS)
    ScriptEnv.tweak = _tweak_with(lambda i, o, r, info: replayed(i, o, r, info) if i == 1 else (o, r, info))

    first = replay_episode(ep_path).first_divergence

    assert first is not None and first.step == 1
    assert first.text == line


def test_terminated_divergence(record) -> None:
    ep_path = record("replaytest/Script-v0", ACTIONS)
    ScriptEnv.tweak = None
    orig = ScriptEnv.step

    def step(self, action):
        obs, reward, terminated, truncated, info = orig(self, action)
        return obs, reward, terminated or self.i == 2, truncated, info

    ScriptEnv.step = step  # type: ignore[method-assign]
    try:
        first = replay_episode(ep_path).first_divergence
    finally:
        ScriptEnv.step = orig  # type: ignore[method-assign]
    assert first is not None
    assert (first.step, first.fields, first.text) == (1, ("terminated",), "  ~ terminated: False → True")


def test_state_divergence_reaches_into_nested_keys(record) -> None:
    ep_path = record("replaytest/Script-v0", ACTIONS)
    orig = ScriptEnv.state_dict
    ScriptEnv.state_dict = lambda self: {**orig(self), "files": {**orig(self)["files"], "a.txt": "changed"}}  # type: ignore[method-assign]
    try:
        first = replay_episode(ep_path).first_divergence
        quiet = replay_episode(ep_path, ignore=["state.files['a.txt']"])
    finally:
        ScriptEnv.state_dict = orig  # type: ignore[method-assign]
    assert first is not None and first.step == "reset"
    assert first.text == "  + state.files['a.txt'] = changed"
    assert not quiet.diverged, str(quiet)


# -- exceptions -------------------------------------------------------------------------------------------------------

def test_episode_ending_in_an_exception_replays_and_the_exception_repeats(record) -> None:
    ep_path = record("replaytest/Boom-v0", ["a", "b", "c", "d"])
    ep = open_episode(ep_path)
    assert len(ep) == 3 and ep[2].failure.kind == "exception"  # type: ignore[union-attr]

    report = replay_episode(ep_path)

    assert not report.diverged, str(report)
    assert report.steps_replayed == 3
    assert report.exceptions_repeated == [2]
    assert str(report) == "replayed 3 steps, no divergence\nthe recorded exception repeated at step 2"


def test_a_reset_that_raised_replays_and_raises_again(tmp_path) -> None:
    import gymnasium as gym

    from trajrec.recorder import Recorder

    env = Recorder(gym.make("replaytest/Boom-v0", boom_at=-1), tmp_path)
    with pytest.raises(OSError):
        env.reset(seed=0)
    env.close()

    report = replay_episode(env.episode_path)

    assert not report.diverged, str(report)
    assert (report.steps_replayed, report.exceptions_repeated) == (0, ["reset"])
    assert str(report) == "replayed 0 steps, no divergence\nthe recorded exception repeated at the reset"
    other = replay_episode(env.episode_path, env=gym.make("replaytest/Boom-v0"))
    assert other.first_divergence is not None
    assert (other.first_divergence.step, other.first_divergence.text) == (
        "reset", "  ! exception: the recorded raised OSError: no sandbox available; the replay did not raise")


def test_a_different_exception_message_is_reported(record) -> None:
    import gymnasium as gym
    ep_path = record(gym.make("replaytest/Boom-v0", random_message=True), ["a", "b", "c"])

    report = replay_episode(ep_path)

    first = report.first_divergence
    assert first is not None
    assert (first.step, first.fields) == (2, ("exception",))
    assert [r.path for r in first.rows] == [("exception", "message")]
    assert first.rows[0].recorded.startswith("cannot handle 'c' (token ")
    assert not replay_episode(ep_path, ignore=["exception.message"]).diverged


def test_an_exception_that_does_not_repeat_is_a_divergence(record) -> None:
    def boom(env, i, obs, reward, info):
        if i == 2:
            raise KeyError("lost")
        return obs, reward, info

    ScriptEnv.tweak = boom
    ep_path = record("replaytest/Script-v0", ACTIONS)
    ScriptEnv.tweak = None

    first = replay_episode(ep_path).first_divergence

    assert first is not None
    assert (first.step, first.fields) == (2, ("exception",))
    assert first.text == "  ! exception: the recorded raised KeyError: 'lost'; the replay did not raise"


def test_a_new_exception_in_the_replay_is_a_divergence(record) -> None:
    ep_path = record("replaytest/Script-v0", ACTIONS)

    def boom(env, i, obs, reward, info):
        if i == 4:
            raise RuntimeError(f"broken at {object()}")
        return obs, reward, info

    ScriptEnv.tweak = boom
    first = replay_episode(ep_path).first_divergence

    assert first is not None
    assert (first.step, first.fields) == (4, ("exception",))
    assert first.text == ("  ! exception: the recorded did not raise; the replay raised RuntimeError: "
                          "broken at <object object at 0x…>")


# -- the comparison helpers ------------------------------------------------------------------------------------------

def test_compare_records_is_exact_but_nan_equal() -> None:
    a = {"observation": np.array([1.0, np.nan]), "reward": 1.0, "info": {"t": (1, 2)}}
    assert compare_records(a, {"observation": np.array([1.0, np.nan]), "reward": 1.0, "info": {"t": (1, 2)}}) == []
    rows = compare_records(a, {"observation": np.array([1.0, np.nan], dtype=np.float32), "reward": 1.0,
                               "info": {"t": (1, 2)}})
    assert [(r.path, r.change) for r in rows] == [(("observation",), "type_changes")]


def test_state_numbers_compare_by_value() -> None:
    # The recorder's state diff does not record 1 -> 1.0 inside an otherwise equal container, so replay cannot.
    assert compare_records({"state": {"a": [1]}}, {"state": {"a": [1.0]}}) == []
    assert compare_records({"info": {"a": [1]}}, {"info": {"a": [1.0]}}) != []


@pytest.mark.parametrize(("path", "message"), [
    ("infos.x", "ignore path 'infos.x' starts with 'infos' (did you mean 'info'?); paths start with a compared "
                "field: " + ", ".join(FIELDS)),
    (".x", "ignore path '.x' must start with a field name: one of " + ", ".join(FIELDS)
           + " (e.g. info.elapsed, observation, state.files.x)"),
    ("info[x", "ignore path 'info[x': cannot read it from character 4 ('[x'); write dotted keys with [index] or "
               "['key with.dots'], e.g. state.files['a.txt']"),
])
def test_bad_ignore_paths_are_usage_errors(path: str, message: str) -> None:
    with pytest.raises(TrajrecUsageError) as err:
        parse_ignore(path)
    assert str(err.value) == message


def test_ignore_path_syntax() -> None:
    assert [(s.kind, s.value) for s in parse_ignore("info.checks.*.rationale")] == [
        ("key", "info"), ("key", "checks"), ("any", None), ("key", "rationale")]
    assert [(s.kind, s.value) for s in parse_ignore("observation[3]")] == [("key", "observation"), ("num", 3)]
    assert [(s.kind, s.value) for s in parse_ignore('state.files["a.b"].size')] == [
        ("key", "state"), ("key", "files"), ("key", "a.b"), ("key", "size")]
    rows = compare_records({"observation": [1, 2, 3]}, {"observation": [1, 2, 4]}, [parse_ignore("observation.2")])
    assert rows == []


@pytest.mark.filterwarnings("ignore:.*not within the observation space")
def test_terminal_escapes_in_recorded_text_are_shown_not_sent(record) -> None:
    ScriptEnv.tweak = _tweak_with(lambda i, o, r, info: ("ok\x1b[31mred\x07", r, {**info, "k\x1b]0;x": 1}))
    ep_path = record("replaytest/Script-v0", ACTIONS)
    ScriptEnv.tweak = _tweak_with(lambda i, o, r, info: ("ok\x1b[32mgreen", r, info))

    report = replay_episode(ep_path)

    text = str(report)
    assert "\x1b" not in text and "\x07" not in text
    assert "  ~ observation: ok\\x1b[31mred\\x07 → ok\\x1b[32mgreen" in text
    assert "  - info['k\\x1b]0;x'] (was 1)" in text
