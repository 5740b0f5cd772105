"""``chat`` writes a row as text piece by piece (``conversation_text``) instead of building its dicts and encoding
them: the bytes must be those of the dict path on any episode, and an episode holding anything the strict
encoder refuses must take the dict path (whose fallback makes the whole row exact), never be written otherwise."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from trajrec.recorder import Recorder, read_index
from trajrec.replay.autolabel import label_with_rules
from trajrec.replay.exports import ExportOptions, base, chat, export
from trajrec.replay.labels import LabelStore

TOOLS = [{"type": "function", "function": {"name": "put", "parameters": {"type": "object"}}},
         {"type": "function", "function": {"name": "cat", "parameters": {"type": "object"}}}]


class Text(str):
    pass


def _values() -> list[Any]:
    return [float("nan"), float("inf"), -0.0, 2**70, -(2**63) - 1, 2**63 - 1, "lone \udcff", "\ud83d", "",
            "a\x00b\u2028", Text("sub"), {"$k": 1, "a": {"$$": 2}}, {1: "one", "1": "text one", None: 0},
            {"x": float("nan")}, {"x": np.float32(0.5)}, np.int64(5), np.uint64(2**64 - 1), np.arange(3),
            b"\x00\xff", {1, 2}, ((1, (2,)), [3]), {"t": (1, 2.5, "x")}, {"k\udc80": 1}, None, True, 7, 1.5]


def _actions() -> list[Any]:
    return ['{"tool": "cat", "args": {"path": "a.txt"}}', '{"tool": "put", "args": {"x": NaN}}',
            '{"tool": "put", "args": {"big": 123456789012345678901234567890}}', '{"tool": "put", "args": [1]}',
            '{"tool": "nope", "args": {}}', '{"tool": "put", "args": {"$k": "\\udcff"}}', "plain text",
            {"tool": "put", "args": {1: "int key", "1": "text key"}}, {"tool": "put", "args": {"a": np.arange(2)}},
            {"tool": "put", "args": {"b": b"\x01", "s": {3}, "t": (1, (2,))}}, {"name": "cat", "arguments": '{"p": 1}'},
            {"tool": Text("put"), "args": {"x": 1}}, 2**70, None, ["a", 1]]


class HostileToolEnv(gym.Env):
    """Declares tools and a text tool; answers with hostile values; every so often a failure."""

    metadata = {"render_modes": []}

    def __init__(self, odd: bool) -> None:
        self.observation_space = gym.spaces.Text(100)
        self.action_space = gym.spaces.Text(100)
        self.odd = odd

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        info: dict[str, Any] = {"task": {"id": "same", "text": "Store the values.", "split": "train"}, "tools": TOOLS}
        if seed and seed % 2:
            info["text_tool"] = {"name": "put", "argument": "x"}
        return "Store the values.", info

    def step(self, action: Any):
        vals = _values()
        self.t += 1
        obs = vals[self.t % len(vals)] if self.odd else f"file {self.t}: text"
        info: dict[str, Any] = {"tool": "put"}
        if self.t % 4 == 0:
            # (a lone surrogate in an error message is left out: the rules refuse it as a rationale)
            info["error"] = "no such file" if not self.odd else [2**70, {"$k": 1}, float("nan"), b"\x01"][self.t % 4]
        return obs, float(self.t % 3 == 0), self.t >= 24, False, info


def _record(run: Path) -> None:
    vals, actions = _values(), _actions()
    for seed, odd in enumerate((False, True, False, True, False)):
        env = Recorder(HostileToolEnv(odd), run)
        env.reset(seed=seed)
        for k in range(24):
            if odd:
                env.note(thought=vals[k % len(vals)] if k % 3 else Text(f"t {k}"))
                env.step(actions[k % len(actions)])
            else:
                env.note(thought=f"step {k}")
                env.step(json.dumps({"tool": "cat", "args": {"path": f"f{k % 5}.txt"}}) if seed != 4 or k % 2 else
                         "ls -la")
            if k % 6 == 0:
                env.check(k % 12 == 0, judge="hostile@1", rationale="r" if not odd else vals[k % len(vals)])
        env.close()
    env = Recorder(HostileToolEnv(False), run)  # an episode of no step: kto leaves it out
    env.reset(seed=9)
    env.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        label_with_rules([run])
    store = LabelStore(run)
    ids = sorted({lab.episode_id for lab in store.current()})
    for n, eid in enumerate(ids):
        store.add(eid, 1, [-1, 0, 1, 0.5, -0.0][n % 5], judge="model:rubric@2", rationale="why ü" if n else None,
                  tags=["a", "b"] if n % 2 else [])
        store.add(eid, 2, "category", judge="human:ana")
        store.add(eid, 3, 1.0, judge="human:ana", score=0.75)
        store.add(eid, "episode", 1 if n % 2 else -1, judge="human:ana")
    for path in run.glob("*.msgpack.zst"):
        eid = read_index(path)["header"]["episode_id"]
        if eid not in ids:  # the episode of no step: ranked, so kto leaves it out for having no step
            store.add(eid, "episode", 1, judge="human:ana")
    store.close()


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("hostile") / "run"
    _record(run)
    return run


OPTIONS = [{}, {"prefer": "model:*,rule", "tool_arguments": "string", "system": "sys \udcff", "weights": "all"},
           {"prefer": "human", "weights": "positive", "label_map": "float"},
           {"weights": "failures", "label_map": "unit", "prefer": "rule,environment"}]


@pytest.mark.parametrize("opts", OPTIONS)
def test_chat_rows_as_text_are_the_dict_rows_encoded(hostile_run: Path, tmp_path: Path, opts: dict[str, Any],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[bool] = []
    text_path = chat.conversation_text

    def counted(view: Any, options: Any) -> Any:
        try:
            got = text_path(view, options)
        except chat._Unusual:
            taken.append(False)
            raise
        taken.append(True)
        return got

    monkeypatch.setattr(chat, "conversation_text", counted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export([hostile_run], "chat", tmp_path / "text.jsonl", options=ExportOptions(**opts))
        if opts.get("tool_arguments") == "string":
            assert all(taken)  # arguments as JSON text: nothing for the strict encoder to refuse
        else:
            assert True in taken and False in taken  # plain episodes went as text, NaN arguments fell back
        monkeypatch.setattr(chat.ChatFormat, "lines", base.JsonlFormat.lines)
        export([hostile_run], "chat", tmp_path / "dicts.jsonl", options=ExportOptions(**opts))
    text = (tmp_path / "text.jsonl").read_bytes()
    assert text == (tmp_path / "dicts.jsonl").read_bytes()
    assert len(text.splitlines()) == 5  # the episode of no step is left out on both paths


@pytest.mark.parametrize("opts", OPTIONS)
def test_kto_rows_as_text_are_the_dict_rows_encoded(hostile_run: Path, tmp_path: Path, opts: dict[str, Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from trajrec.replay.exports import prefs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = export([hostile_run], "kto", tmp_path / "text.jsonl", options=ExportOptions(**opts))
        monkeypatch.setattr(prefs.KtoFormat, "lines", base.JsonlFormat.lines)
        dicts = export([hostile_run], "kto", tmp_path / "dicts.jsonl", options=ExportOptions(**opts))
    assert (tmp_path / "text.jsonl").read_bytes() == (tmp_path / "dicts.jsonl").read_bytes()
    same = {"seconds": 0, "steps_per_second": 0, "out": "", "files": []}
    assert text.to_dict() | same == dicts.to_dict() | same
    if not opts:  # (other preferences leave the human episode labels out: nothing ranks)
        assert text.written == 5 and text.skipped == {"no step": 1}  # the episode of no step, left out both ways


def test_the_text_path_refuses_what_the_strict_encoder_refuses() -> None:
    for bad in (float("nan"), {"x": float("inf")}, [np.float32("nan")]):
        with pytest.raises(chat._Unusual):
            chat._strict(bad)
    assert chat._strict({"a": [1, "x", None]}) == '{"a":[1,"x",null]}'
