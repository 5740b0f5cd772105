"""Display is bounded by what is shown: ``show``, ``show --step`` and the viewer's renderers turn no more of a
huge value into text than fits, ``--full`` prints everything, and odd text (lone surrogates) never crashes them."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from trajrec.cli import main
from trajrec.recorder import Recorder
from trajrec.replay.render import one_line, value_text


class Counted:
    """Counts how many times it was rendered."""

    calls = 0

    def __repr__(self) -> str:
        Counted.calls += 1
        return "c"


class BigStepEnv(gym.Env):
    metadata: dict[str, Any] = {"render_modes": []}
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, big: Any) -> None:
        self.big = big

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.n = 0
        return "start", {}

    def step(self, action: Any):
        self.n += 1
        return (self.big if self.n == 2 else "small"), 0.0, self.n >= 3, False, {"n": self.n}


def _record(tmp_path, big: Any, task: dict[str, Any] | None = None):
    rec = Recorder(BigStepEnv(big), tmp_path, task=task)
    rec.reset(seed=0)
    for k in range(3):
        rec.step(f"act {k}")
    rec.close()
    return str(rec.episode_path)


def test_value_text_renders_no_more_items_than_fit():
    Counted.calls = 0
    value = {"items": [Counted() for _ in range(100_000)], "text": "x" * 1_000_000}
    text = value_text(value, max_len=500)
    assert len(text) <= 500
    assert Counted.calls < 500  # not 100,000: rendering stopped once the budget was spent
    Counted.calls = 0
    assert len(one_line(value, 80)) <= 80 and Counted.calls < 500


def test_value_text_without_a_bound_is_unchanged_for_small_values():
    value = {"a": [1, 2.5, None, "t"], "b": {"c": np.arange(3)}}
    assert value_text(value) == value_text(value, max_len=10_000)


def test_show_step_prints_a_bounded_preview_and_full_prints_everything(tmp_path, capsys):
    big = {"text": "word " * 400_000, "array": np.arange(200_000, dtype=np.float64)}
    path = _record(tmp_path, big)
    assert main(["show", path]) == 0
    listing = capsys.readouterr().out
    assert len(listing) < 5_000
    assert main(["show", path, "--step", "1"]) == 0
    preview = capsys.readouterr().out
    assert len(preview) < 20_000 and "--full prints everything" in preview
    assert main(["show", path, "--step", "1", "--full"]) == 0
    full = capsys.readouterr().out
    assert full.count("word") == 400_000  # every word of the 2 MB text
    assert "199999.0" in full  # and the array's last element


def test_show_and_ls_survive_lone_surrogates_in_the_header_and_steps(tmp_path, capsys):
    path = _record(tmp_path, "obs \udcff", task={"text": "task \udcff", "id": "id \ud83d"})
    assert main(["show", path]) == 0
    assert main(["show", path, "--step", "1"]) == 0
    assert main(["ls", path]) == 0
    out = capsys.readouterr().out
    assert "\\udcff" in out  # shown as a visible escape, never as an unencodable character
    out.encode("utf-8")


def test_header_fields_of_unexpected_types_never_crash_the_readers(tmp_path, capsys):
    from trajrec.replay.library import scan

    odd_task = {"id": 5, "text": ["a", {"b": None}], "verification": "rule", "split": 3.5, "env_id": None}
    odd_prov = {"code_revision": 5, "agent": [1, 2], "host": {"a": 1}, "recorder": "x", "run_id": ("r",)}
    rec = Recorder(BigStepEnv("obs"), tmp_path, task=odd_task, provenance=odd_prov)
    rec.reset(seed=0)
    for k in range(3):
        rec.step(f"act {k}")
    rec.check(True, judge="j@1", target="episode", rationale=None)
    rec.close()
    path = str(rec.episode_path)
    assert main(["show", path]) == 0
    assert main(["show", path, "--step", "0", "--state"]) in (0, 1)  # no state recorded: a clean error at most
    assert main(["ls", path]) == 0 and main(["ls", path, "--json"]) == 0
    out = capsys.readouterr().out
    assert "checks=rule" in out and '[ "a", { "b": null } ]' in out
    entries = [e for b in scan([tmp_path], use_catalog=True) for e in b.entries]
    assert len(entries) == 1 and entries[0].error is None


def test_tree_text_shows_a_file_in_the_state_as_its_lines() -> None:
    from trajrec.replay.render import tree_text

    src = "def f(x):\n    return x + 1\n\x1b[31mred\n"
    text = tree_text({"files": {"a.py": src}, "n": 3}, max_len=10_000)
    assert "\\n" not in text  # not one JSON string full of escapes
    assert "\n    def f(x):\n        return x + 1\n" in text  # the block, indented under its key
    assert "\x1b" not in text and "\\x1b[31mred" in text  # still escaped for the terminal
    assert '"n": 3' in text


def test_tree_text_is_bounded_for_a_huge_multiline_string() -> None:
    from trajrec.replay.render import tree_text

    text = tree_text({"log": "line\n" * 1_000_000}, max_len=5_000)
    assert len(text) <= 5_000 and text.endswith("…")


def test_show_state_prints_a_file_in_the_state_as_its_lines(tmp_path, capsys) -> None:
    import gymnasium as gym

    import trajrec.envs  # noqa: F401  (registers the built-in envs)
    from trajrec import Recorder
    from trajrec.cli import main

    env = Recorder(gym.make("trajrec/CodeRepair-v0"), tmp_path)
    env.reset(seed=0)
    env.step({"tool": "list_files", "args": {}})
    env.close()
    assert main(["show", str(env.episode_path), "--step", "0", "--state"]) == 0
    out = capsys.readouterr().out
    state = out[out.index("state after this step"):]
    assert '": |' in state and "\\n" not in state  # source files as blocks of lines, no JSON escapes
