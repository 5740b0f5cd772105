"""Provenance runs no command: the code revision is read from ``.git`` directly (HEAD, loose refs, packed-refs,
worktrees), so a repository's own configuration (``core.fsmonitor``, filters, hooks) never starts a program."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from trajrec.recorder import Recorder, open_episode
from trajrec.recorder.provenance import code_revision

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def _fresh_cache():
    code_revision.cache_clear()
    yield
    code_revision.cache_clear()


def _hostile_repo(root, *, packed: bool):
    git = root / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    marker = root / "PWNED"
    (git / "config").write_text(f"[core]\n\tfsmonitor = touch {marker}\n[filter \"x\"]\n\tclean = touch {marker}\n")
    if packed:
        (git / "packed-refs").write_text(f"# pack-refs with: peeled fully-peeled sorted\n{SHA} refs/heads/main\n")
    else:
        (git / "refs" / "heads" / "main").write_text(SHA + "\n")
    return marker


@pytest.mark.parametrize("packed", [False, True], ids=["loose-ref", "packed-refs"])
def test_recording_in_a_hostile_checkout_runs_nothing_and_reads_the_commit(tmp_path, stub_env, monkeypatch, packed):
    repo = tmp_path / "repo"
    marker = _hostile_repo(repo, packed=packed)
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")

    def no_commands(*args, **kwargs):
        raise AssertionError(f"recording started a command: {args!r}")

    monkeypatch.setattr(subprocess, "Popen", no_commands)
    env = Recorder(stub_env(), tmp_path / "out")
    env.reset(seed=0)
    env.step("cat notes.txt")
    env.close()
    monkeypatch.undo()
    assert not marker.exists()
    rev = open_episode(env.episode_path).provenance["code_revision"]
    assert rev == {"commit": SHA, "branch": "main", "dirty": None}


def test_detached_head_and_a_worktree_gitdir_file(tmp_path):
    main = tmp_path / "main"
    _hostile_repo(main, packed=True)
    wt_git = main / ".git" / "worktrees" / "wt"
    wt_git.mkdir(parents=True)
    (wt_git / "HEAD").write_text("ref: refs/heads/main\n")
    (wt_git / "commondir").write_text("../..\n")
    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / ".git").write_text(f"gitdir: {wt_git}\n")
    assert code_revision(str(wt))["commit"] == SHA
    detached = tmp_path / "detached"
    (detached / ".git").mkdir(parents=True)
    (detached / ".git" / "HEAD").write_text("fedcba9876543210fedcba9876543210fedcba98\n")
    assert code_revision(str(detached)) == {"commit": "fedcba9876543210fedcba9876543210fedcba98", "branch": None,
                                             "dirty": None}


def test_a_ref_pointing_outside_the_git_folder_is_not_followed(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (tmp_path / "secret").write_text(SHA)
    (repo / ".git" / "HEAD").write_text("ref: refs/../../secret\n")
    assert code_revision(str(repo)) is None


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_matches_git_itself_on_a_real_repository(tmp_path):
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, capture_output=True, text=True, check=True)  # noqa: E731
    run("init", "-q", "-b", "trunk")
    (tmp_path / "f.txt").write_text("x")
    run("add", "f.txt")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    run("pack-refs", "--all")
    expected = run("rev-parse", "HEAD").stdout.strip()
    assert code_revision(str(tmp_path)) == {"commit": expected, "branch": "trunk", "dirty": None}
