"""Levels 1 and 2 ask for speed: zstd's own parameters; 3 zstd's own finder with its long-distance matcher, and 4 and
up the lazy finder, tuned for per-step blocks.
Whatever the level, a run reads back the same."""

from __future__ import annotations

import random

import gymnasium as gym
import pytest
import zstandard

from trajrec.recorder import Recorder, open_episode, read_records
from trajrec.recorder.format import _params

_WORDS = [f"{a}{b}" for a in ("re", "con", "de", "pro", "in") for b in ("cord", "fig", "tain", "vert", "ject", "port")]


class _TextEnv(gym.Env):
    """Text observations and a dict state of files, a few changed each step."""

    observation_space = gym.spaces.Text(max_length=4096)
    action_space = gym.spaces.Text(max_length=256)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.rng = random.Random(seed)
        self.files = {f"f{i}.txt": {"size": i, "text": f"line {i} " * 6} for i in range(40)}
        return "start", {}

    def state_dict(self):
        return {"files": self.files}

    def step(self, action):
        name = f"f{self.rng.randrange(40)}.txt"
        words = " ".join(self.rng.choices(_WORDS, k=30))
        self.files[name]["text"] = words[:60]
        self.files[name]["size"] += 1
        return f"{name}\n{words}", 0.0, False, False, {"tool": action.split()[0]}


@pytest.mark.parametrize("level", [1, 2])
def test_low_levels_take_zstds_own_parameters(level):
    own = zstandard.ZstdCompressionParameters.from_level(level)
    got = _params(level)
    assert (got.strategy, got.min_match, got.window_log, got.hash_log) == (own.strategy, own.min_match,
                                                                           own.window_log, own.hash_log)
    assert got.strategy < zstandard.STRATEGY_LAZY and got.write_checksum == 1


def test_level_3_takes_zstds_own_finder_with_the_long_distance_matcher():
    got = _params(3)
    own = zstandard.ZstdCompressionParameters.from_level(3)
    assert (got.strategy, got.window_log) == (own.strategy, own.window_log) and got.enable_ldm == 1
    # Smaller tables than level 3's own (cheaper per block between the recorder's other work).
    assert (got.hash_log, got.chain_log, got.min_match) == (16, 14, 6) and got.write_checksum == 1


def _flushed_blocks(params, raws):
    co = zstandard.ZstdCompressor(compression_params=params).compressobj()
    return [len(co.compress(raw) + co.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)) for raw in raws]


def test_level_3_finds_a_value_repeated_far_back_in_word_text():
    # A state diff's old value is text written when the leaf last changed, tens of KB back among text of the same
    # words. zstd's own level-3 finder (one candidate a position) keeps finding nearer short repeats instead; the
    # long-distance matcher finds the whole value, as one match.
    rng = random.Random(1)
    value = " ".join(rng.choices(_WORDS, k=40)).encode()
    filler = [" ".join(rng.choices(_WORDS, k=160)).encode() for _ in range(120)]  # ~100 KB of the same words
    raws = [value, *filler, value]
    with_ldm = _flushed_blocks(_params(3), raws)[-1]
    own = _flushed_blocks(zstandard.ZstdCompressionParameters.from_level(3, write_checksum=1), raws)[-1]
    assert with_ldm < 20 < 3 * with_ldm < own, (with_ldm, own)


@pytest.mark.parametrize("level", [4, 6])
def test_levels_above_3_keep_the_lazy_finder(level):
    got = _params(level)
    assert got.strategy >= zstandard.STRATEGY_LAZY and got.min_match >= 6 and got.write_checksum == 1


def test_a_run_reads_back_the_same_at_every_level(tmp_path):
    runs = {}
    for level in (1, 2, 3):
        env = Recorder(_TextEnv(), tmp_path / str(level), compression_level=level, frame_steps=50)
        env._timing = (1.0, 0.5)  # the same times in every file
        env.reset(seed=0)
        for k in range(180):
            env.step(f"cat file{k % 9}.txt")
        env.close()
        (path,) = env.episode_paths
        records = [r for r in read_records(path)[1] if r["t"] != "end"]
        states = [open_episode(path).state_at(i) for i in (0, 49, 50, 179)]
        runs[level] = (records, states, path.stat().st_size)
    assert runs[1][0] == runs[3][0] and runs[2][0] == runs[3][0]
    assert runs[1][1] == runs[3][1] and runs[2][1] == runs[3][1]
    assert runs[1][2] > runs[3][2]  # the speed has a price in bytes
