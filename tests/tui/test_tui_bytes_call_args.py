"""The viewer's step list shows a bytes argument of a tool call unquoted (``set(v=b'\\x00')``), unlike the text
``"<1 bytes>"`` (FINDINGS29 #8: both read ``set(v="<1 bytes>")``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from text_env import EchoTextEnv
from tui_helpers import call_args_shown, open_ready

from trajrec import Recorder
from trajrec.tui.app import create_app



def test_the_step_list_tells_bytes_from_text(tmp_path: Path) -> None:
    env = Recorder(EchoTextEnv(), tmp_path / "run")
    env.reset(seed=0)
    env.step({"name": "set", "arguments": {"v": b"\x00"}})
    env.step(json.dumps({"name": "set", "arguments": {"v": "<1 bytes>"}}))
    env.step({"name": "set", "arguments": {"v": {"$bytes": "00"}}})
    env.close()
    episode = Path(env.episode_path)

    async def run() -> None:
        app = create_app([episode])
        async with app.run_test(size=(160, 40)) as pilot:
            await open_ready(pilot)
            await pilot.pause()
            shown = call_args_shown(app)
            assert shown[:3] == ["v=b'\\x00'", 'v="<1 bytes>"', 'v={"$bytes": "00"}']
    asyncio.run(run())
