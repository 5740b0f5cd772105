"""A file a Recorder is still writing is "being recorded" in ``show``, ``ls`` and ``report`` (as ``fsck`` and ``export`` say),
not damaged or incomplete with advice to repair it (``fsck --repair`` leaves a live file alone); once closed, a
file cut the same way (its writer killed) is still told as incomplete."""

from __future__ import annotations

import io
import json
import shutil
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import gymnasium as gym

from trajrec.cli import main
from trajrec.recorder import Recorder


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_show_and_ls_say_being_recorded(tmp_path: Path) -> None:
    import trajrec.envs  # noqa: F401 - registers the ids

    env = Recorder(gym.make("trajrec/Shell-v0"), tmp_path / "live", frame_steps=1000)
    env.reset(seed=0)
    for _ in range(3):
        env.step("ls")
    path = env.episode_path
    assert path is not None
    try:
        code, out, err = cli("show", str(path))
        assert code == 0, err
        assert "being recorded: a live Recorder holds it" in out and "outcome being recorded" in out
        assert "damage" not in out and "did not close" not in out
        for argv in (("ls", str(tmp_path / "live")), ("ls", str(tmp_path / "live"), "--sort", "steps")):
            code, out, err = cli(*argv)
            assert "(* being recorded: a live Recorder holds it" in err and "fsck --repair" not in err, err
        # The same bytes with no writer (a copy: nobody holds its lock) are an unfinished file, as before.
        (tmp_path / "dead").mkdir()
        copy = tmp_path / "dead" / Path(path).name
        shutil.copyfile(path, copy)
        code, out, err = cli("show", str(copy))
        assert "no index: the writer did not close the file" in out and "being recorded" not in out
        code, out, err = cli("ls", str(tmp_path / "dead"))
        assert "fsck --repair" in err and "being recorded" not in err
        # report says the same (FINDINGS12 #2: it told a live file's writer "did not close" it, to fsck --repair)
        code, out, err = cli("report", str(tmp_path / "live"))
        assert code == 0, err
        assert out.splitlines()[0].startswith("trajrec report: 1 episode, 3 steps in ")
        assert "1 episode being recorded (a live Recorder holds it)" in out
        assert "did not close" not in out and "fsck --repair" not in out
        code, out, err = cli("report", str(tmp_path / "live"), "--json")
        report = json.loads(out)
        assert (report["live"], report["incomplete"], report["steps"]) == ([str(path)], 0, 3)
        code, out, err = cli("report", str(tmp_path / "dead"), "--json")
        assert (json.loads(out)["live"], json.loads(out)["incomplete"]) == ([], 1)
        code, out, err = cli("report", str(tmp_path / "dead"))
        assert "did not close" in out and "being recorded" not in out
    finally:
        env.close()
