"""Layering: the recorder, replay and envs packages (and the library and render helpers the TUI sits on) never
import textual or rich; only ``tui`` does, and only ``trajrec view`` loads it."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _modules_after(code: str) -> set[str]:
    script = textwrap.dedent(code) + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_core_packages_do_not_import_textual_or_rich() -> None:
    loaded = _modules_after("import recorder, replay, envs, replay.library, replay.render")
    assert "textual" not in loaded
    assert "rich" not in loaded


def test_cli_loads_textual_only_for_view() -> None:
    loaded = _modules_after("""
        from trajrec.cli import build_parser
        build_parser().parse_args(["view", "x"])
    """)
    assert "textual" not in loaded


def test_tui_imports_only_public_recorder_and_replay_modules() -> None:
    import ast
    from pathlib import Path
    from trajrec import tui

    allowed = {"recorder", "replay", "replay.labels", "replay.library", "replay.render"}
    for path in Path(tui.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                top = node.module.split(".")[0]
                if top in ("recorder", "replay"):
                    assert node.module in allowed, f"{path.name} imports {node.module}"
