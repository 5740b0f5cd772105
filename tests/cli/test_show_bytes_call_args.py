"""The one-line call summary of ``trajrec show`` shows a bytes argument unquoted, as Python's repr (``b'\\x00'``),
unlike the text ``"<1 bytes>"`` (FINDINGS29 #8: both read ``set(v="<1 bytes>")``); the viewer's step list too
(tests/tui/test_tui_bytes_call_args.py)."""

from __future__ import annotations

import json
from pathlib import Path

from text_env import EchoTextEnv

from trajrec import Recorder
from trajrec.cli import main



def record_bytes_calls(folder: Path) -> Path:
    """Bytes arguments and the texts that looked the same: one step each."""
    env = Recorder(EchoTextEnv(), folder)
    env.reset(seed=0)
    env.step({"name": "set", "arguments": {"v": b"\x00"}})
    env.step(json.dumps({"name": "set", "arguments": {"v": "<1 bytes>"}}))
    env.step({"name": "set", "arguments": {"v": {"$bytes": "00"}}})
    env.step({"name": "set", "arguments": {"v": [b"ab", "b'ab'"], "w": b"x" * 50}})
    env.close()
    return Path(env.episode_path)


def test_show_call_summary_tells_bytes_from_text(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    episode = record_bytes_calls(tmp_path / "run")
    capsys.readouterr()
    assert main(["show", str(episode)]) == 0
    out = capsys.readouterr().out
    calls = [line.split("set(", 1)[1].rsplit(")", 1)[0].rstrip() for line in out.splitlines() if "set(" in line]
    assert calls[:3] == ["v=b'\\x00'", 'v="<1 bytes>"', 'v={"$bytes": "00"}']
    assert calls[3].startswith("""v=[b'ab', "b'ab'"], w=b'xxxx""")
