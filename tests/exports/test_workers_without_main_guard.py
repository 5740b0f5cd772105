"""A script that calls export(workers=2) without the `if __name__ == "__main__":` guard: the workers import it
again while they start. The export stops at once with one clear error naming the guard, instead of the pool
restarting workers that run the script body (and fail) a thousand times."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from trajrec.cli import main


def test_a_script_without_the_main_guard_gets_one_clear_error(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["record", "trajrec/MathCalc-v0", "--episodes", "300", "--out", str(run), "--json"]) == 0
    script = tmp_path / "noguard.py"
    script.write_text(textwrap.dedent(f"""
        from trajrec.replay.exports import export
        print("script body runs", flush=True)
        r = export([{str(run)!r}, {str(run)!r}], "records", {str(tmp_path / "out.jsonl")!r}, workers=2)
        print("done", r.written, flush=True)
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert out.count("script body runs") <= 20, out[-2000:]  # was 1,200 (30 s)
    assert "bootstrapping phase" not in out
    if proc.returncode != 0:  # the workers died before the main process finished alone: the error says why
        assert "is not under `if __name__ == \"__main__\":`" in proc.stderr, out[-2000:]
        assert not (tmp_path / "out.jsonl").exists()
    else:  # the main process did all the work before any worker came up
        assert "done 300" in proc.stdout
