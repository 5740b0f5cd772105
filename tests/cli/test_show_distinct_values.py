"""``trajrec show`` keeps recorded values apart that look alike: ``--json`` prints the export's encoding with NaN and
the infinities marked (FINDINGS27 #3: NaN printed as the text "nan", bytes as a recorded ``{"$bytes": ...}`` dict),
and the one-line call summary and the step's values show a float NaN or infinity unquoted, unlike the text
"nan"/"inf" (FINDINGS27 #4)."""

from __future__ import annotations

import json
from pathlib import Path

from text_env import EchoTextEnv
import numpy as np
import pytest

from trajrec import Recorder
from trajrec.cli import main

ODD_INFO = {"b": [float("nan"), "nan", None, float("inf"), "inf", float("-inf"), "-inf"],
            "c": [b"\x00", {"$bytes": "00"}], "$int": {"$float": "nan"}, "n": np.array([1.5, np.nan])}
VALUES = [float("inf"), "inf", float("nan"), "nan", True, "true", float("-inf")]



@pytest.fixture
def episode(tmp_path: Path) -> Path:
    env = Recorder(EchoTextEnv(ODD_INFO), tmp_path / "run")
    env.reset(seed=0)
    for v in VALUES:
        env.step(json.dumps({"name": "set", "arguments": {"v": v}}))
    env.step({"name": "set", "arguments": {"v": float("nan"), "w": [float("inf")]}})  # a dict action as well
    env.close()
    return Path(env.episode_path)


def test_show_json_prints_every_recorded_value_in_its_own_form(episode: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["show", str(episode), "--step", "0", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)["info"]
    assert info == {"b": [{"$float": "nan"}, "nan", None, {"$float": "inf"}, "inf", {"$float": "-inf"}, "-inf"],
                    "c": [{"$bytes": "00"}, {"$$bytes": "00"}], "$$int": {"$$float": "nan"},
                    "n": [1.5, {"$float": "nan"}]}
    # The episode lines too, strict JSON (no bare NaN a jq would refuse).
    assert main(["show", str(episode), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in --json")) for line in lines]
    assert rows[-1]["action"] == {"name": "set", "arguments": {"v": {"$float": "nan"}, "w": [{"$float": "inf"}]}}


def test_show_call_summary_and_step_values_tell_floats_from_text(episode: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["show", str(episode)]) == 0
    out = capsys.readouterr().out
    calls = [line.split("set(", 1)[1].split(")", 1)[0] for line in out.splitlines() if "set(" in line]
    assert calls == ["v=Infinity", 'v="inf"', "v=NaN", 'v="nan"', "v=true", 'v="true"', "v=-Infinity",
                     "v=NaN, w=[Infinity]"]
    assert main(["show", str(episode), "--step", "0"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert '"b": [ NaN, "nan", null, Infinity, "inf", -Infinity, "-inf" ]' in out
