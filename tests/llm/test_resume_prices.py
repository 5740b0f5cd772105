"""`record --agent openai --price-in/--price-out` (FINDINGS33 #10): the prices are kept in the agent's provenance,
and `--resume` with other prices is refused as with other sampling settings (one run summing costs computed at two
prices); a folder recorded before the prices were kept still resumes. A real local HTTP server, real files."""

from __future__ import annotations

import gymnasium as gym
import pytest
from fake_openai_server import FakeOpenAIServer, tool_reply

import trajrec.envs  # noqa: F401  (registers trajrec/*)
from trajrec import Recorder
from trajrec.cli import main
from trajrec.recorder import SUFFIX, read_index

pytest.importorskip("openai")

CALL = tool_reply("calc", '{"expr": "1 + 1"}')  # one step, then truncated (--kwarg max_steps=1)


def _record(capsys, server, out, episodes: int, *extra: str) -> tuple[int, str]:
    code = main(["record", "trajrec/MathCalc-v0", "--agent", "openai", "--model", "m", "--base-url", server.base_url,
                 "--kwarg", "max_steps=1", "--episodes", str(episodes), "--out", str(out), *extra])
    return code, capsys.readouterr().err


def test_prices_are_kept_and_resume_with_other_prices_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    with FakeOpenAIServer([CALL, CALL]) as server:
        code, err = _record(capsys, server, out, 1, "--price-in", "1", "--price-out", "2")
        assert code == 0, err
        (path,) = out.glob(f"*{SUFFIX}")
        assert read_index(str(path))["header"]["provenance"]["agent"]["prices"] == {"input": 1.0, "output": 2.0}
        code, err = _record(capsys, server, out, 2, "--price-in", "1000", "--price-out", "2000", "--resume")
        assert code == 1
        last = err.strip().splitlines()[-1]
        assert "was recorded with a different setup (prices differ)" in last, last
        assert 'prices {"input": 1.0, "output": 2.0}' in last and '"input": 1000.0' in last, last
        assert len(list(out.glob(f"*{SUFFIX}"))) == 1  # nothing recorded
        # No prices given is another setup too (the costs would be unknown, then summed with known ones).
        code, err = _record(capsys, server, out, 2, "--resume")
        assert code == 1 and "(prices differ)" in err
        code, err = _record(capsys, server, out, 2, "--price-in", "1", "--price-out", "2", "--resume")
        assert code == 0, err
    assert len(list(out.glob(f"*{SUFFIX}"))) == 2


def test_a_folder_recorded_before_prices_were_kept_still_resumes(tmp_path, capsys):
    out = tmp_path / "old"
    # An episode as `record --agent openai` wrote it before the prices were kept: its agent has no "prices".
    with Recorder(gym.make("trajrec/MathCalc-v0", max_steps=1), out,
                  agent={"name": "openai-tools", "model": "m", "sampling": {}}) as env:
        env.reset(seed=0)
        env.step('{"name": "calc", "arguments": {"expr": "1 + 1"}}')
    with FakeOpenAIServer([CALL]) as server:
        code, err = _record(capsys, server, out, 2, "--price-in", "1", "--price-out", "2", "--resume")
    assert code == 0, err
    assert sorted(read_index(str(p))["header"]["task"]["seed"] for p in out.glob(f"*{SUFFIX}")) == [0, 1]
