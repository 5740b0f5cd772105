"""The viewer's step list shows a float NaN or infinity in a tool call unquoted (``set(v=Infinity)``), unlike the
text ``"inf"`` (FINDINGS27 #4: both read ``set(v="inf")``), and the step pane shows a NaN inside info as ``NaN``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from text_env import EchoTextEnv
from tui_helpers import call_args_shown, open_ready

from trajrec import Recorder
from trajrec.tui.app import create_app
from trajrec.tui.step_detail import StepDetail

VALUES = [float("inf"), "inf", float("nan"), "nan", float("-inf"), "-inf"]



def test_the_step_list_and_pane_tell_nonfinite_floats_from_text(tmp_path: Path) -> None:
    env = Recorder(EchoTextEnv({"x": [float("nan"), "nan"]}), tmp_path / "run")
    env.reset(seed=0)
    for v in VALUES:
        env.step(json.dumps({"name": "set", "arguments": {"v": v}}))
    env.close()

    async def run() -> None:
        app = create_app([Path(env.episode_path)])
        async with app.run_test(size=(160, 40)) as pilot:
            await open_ready(pilot)
            await pilot.pause()
            shown = call_args_shown(app)
            assert shown[:6] == ["v=Infinity", 'v="inf"', "v=NaN", 'v="nan"', "v=-Infinity", 'v="-inf"']
            detail = " ".join(app.screen.query_one(StepDetail).text.plain.split())
            assert '"x": [ NaN, "nan" ]' in detail
    asyncio.run(run())
