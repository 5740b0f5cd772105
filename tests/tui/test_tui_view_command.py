"""``trajrec view``: argument checks, and what it hands to the app factory (the app itself is not started)."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import pytest

from trajrec import tui

import trajrec.commands.view
import trajrec.tui.app
from trajrec.cli import main
from trajrec.tui.label_session import DEFAULT_TAGS
from trajrec.tui.label_source import LabelSource


class FakeApp:
    return_code = 0

    def __init__(self, paths: list[str], **kw: Any) -> None:
        self.paths = paths
        self.kw = kw
        self.ran = False

    def run(self) -> None:
        self.ran = True


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[FakeApp]:
    apps: list[FakeApp] = []

    def create_app(paths: list[str], **kw: Any) -> FakeApp:
        apps.append(FakeApp(paths, **kw))
        return apps[-1]

    monkeypatch.setattr(tui.app, "create_app", create_app)
    # These tests run without a terminal; the check itself is tested in a real subprocess below.
    monkeypatch.setattr(trajrec.commands.view, "need_terminal", lambda: None)
    monkeypatch.delenv("TRAJREC_THEME", raising=False)
    monkeypatch.delenv("TRAJREC_ANNOTATOR", raising=False)
    monkeypatch.delenv("TRAJREC_TAGS", raising=False)
    return apps


def test_view_folder_passes_options(library: Path, made: list[FakeApp]) -> None:
    assert main(["view", str(library), "--annotator", "ana"]) == 0
    assert made[0].ran and made[0].paths == [str(library)]
    kw = made[0].kw
    labels = kw.pop("labels")
    assert isinstance(labels, LabelSource) and labels.paths == [str(library)]
    assert kw.pop("labeled_fraction") == labels.labeled_fraction  # the library column, from the same stores
    from trajrec.envs.banks import task_bank

    assert kw.pop("task_bank") is task_bank  # the report screen's coverage knows the built-in task banks
    assert kw == {"annotator": "ana", "tags": DEFAULT_TAGS, "step": None, "use_catalog": True, "theme": None}


def test_view_file_at_step_and_no_cache(main_episode: Path, made: list[FakeApp],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAJREC_ANNOTATOR", "bo")
    assert main(["view", str(main_episode), "--step", "-1", "--no-cache"]) == 0
    kw = made[0].kw
    assert (kw["annotator"], kw["step"], kw["use_catalog"]) == ("bo", -1, False)


def test_view_annotator_and_tags_sources(library: Path, made: list[FakeApp],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: "login-name")
    monkeypatch.setenv("TRAJREC_TAGS", "lucky-guess, wrong-tool")
    assert main(["view", str(library)]) == 0
    assert made[-1].kw["annotator"] == "login-name" and made[-1].kw["tags"] == ("lucky-guess", "wrong-tool")
    assert main(["view", str(library), "--tags", "a,b,a", "--annotator", "cy"]) == 0  # --tags wins over the env
    assert made[-1].kw["annotator"] == "cy" and made[-1].kw["tags"] == ("a", "b")


def test_view_refuses_bad_annotator_and_tags(library: Path, made: list[FakeApp],
                                             capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["view", str(library), "--annotator", "ana smith"]) == 1
    err = capsys.readouterr().err
    assert "--annotator is one word without spaces, got 'ana smith'; e.g. --annotator ana_smith" in err
    assert main(["view", str(library), "--annotator", ""]) == 1  # not the login name in disguise
    assert "--annotator is one word without spaces, got ''" in capsys.readouterr().err
    # A judge given for a name (it would label as a second person, human:human:ana), and a bad name from the
    # environment, named as such (FINDINGS32 #10).
    assert main(["view", str(library), "--annotator", "human:ana"]) == 1
    assert "--annotator is the person's name alone, got 'human:ana'; e.g. --annotator ana" in capsys.readouterr().err
    monkeypatch.setenv("TRAJREC_ANNOTATOR", "a b")
    assert main(["view", str(library)]) == 1
    assert "$TRAJREC_ANNOTATOR is one word without spaces, got 'a b'; e.g. 'a_b'" in capsys.readouterr().err
    monkeypatch.delenv("TRAJREC_ANNOTATOR")
    assert main(["view", str(library), "--tags", "lucky guess,x"]) == 1
    assert "--tags: a tag is one word without spaces, got 'lucky guess'" in capsys.readouterr().err
    monkeypatch.setenv("TRAJREC_TAGS", " , ")
    assert main(["view", str(library)]) == 1
    assert "$TRAJREC_TAGS: no tags in ' , '" in capsys.readouterr().err
    assert made == []


def test_view_errors(library: Path, main_episode: Path, made: list[FakeApp], capsys: pytest.CaptureFixture) -> None:
    assert main(["view", str(library / "nope")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["view", str(library), "--step", "3"]) == 1
    assert "--step needs exactly one episode file" in capsys.readouterr().err
    assert main(["view", str(main_episode), "--step", "10"]) == 1
    err = capsys.readouterr().err
    assert "--step 10 is out of range" in err and "has steps 0..9" in err
    bad = library / "bad.msgpack.zst"
    bad.write_bytes(b"nope")
    assert main(["view", str(bad)]) == 1
    assert "not a trajrec episode" in capsys.readouterr().err
    assert made == []


def test_view_without_a_terminal_says_so_and_writes_nothing(library: Path) -> None:
    # A real process with pipes for stdin and stdout (issue 16, item 3): it used to hang, writing escape codes.
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "trajrec", "view", str(library)], stdin=subprocess.PIPE,
                          capture_output=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and "\x1b" not in err
    assert "the viewer needs a terminal, and stdin and stdout are not one" in err
    assert "trajrec ls" in err


def test_view_theme_option(library: Path, made: list[FakeApp], monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture) -> None:
    assert main(["view", str(library), "--theme", "light"]) == 0
    assert made[-1].kw["theme"] == "light"
    monkeypatch.setenv("TRAJREC_THEME", "nord")
    assert main(["view", str(library)]) == 0
    assert made[-1].kw["theme"] == "nord"
    assert main(["view", str(library), "--theme", "ligth"]) == 1
    assert "unknown theme 'ligth' (did you mean 'light'?)" in capsys.readouterr().err


def test_unknown_theme_in_the_environment_warns_and_falls_back(library: Path, made: list[FakeApp],
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture) -> None:
    # Tester: TRAJREC_THEME=bogus stopped the viewer from starting; a setting in a shell profile must not.
    monkeypatch.setenv("TRAJREC_THEME", "bogus")
    capsys.readouterr()
    assert main(["view", str(library)]) == 0
    assert made[-1].ran and made[-1].kw["theme"] is None  # the default theme
    err = capsys.readouterr().err
    assert err.startswith("trajrec view: warning: $TRAJREC_THEME: unknown theme 'bogus'")
    assert err.rstrip().endswith("; using the default theme (dark)") and err.count("\n") == 1
    monkeypatch.setenv("TRAJREC_THEME", "ligth")
    assert main(["view", str(library), "--theme", "light"]) == 0  # an explicit --theme wins, no warning
    assert made[-1].kw["theme"] == "light" and capsys.readouterr().err == ""
