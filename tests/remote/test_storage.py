"""Runs on fsspec file systems: recording to a URL through a local outbox, reading with range reads, ``sync``.

The default suite uses fsspec's in-memory file system (a real fsspec implementation, in this process); the
heavy test runs the same path against a real S3-compatible server (moto's server mode) on 127.0.0.1 through
s3fs: ``pip install -e '.[remote,s3server,test]' && python -m pytest -m heavy tests/remote``.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import gymnasium as gym
import pytest

fsspec = pytest.importorskip("fsspec", reason="the remote extra is not installed: pip install -e '.[remote]'")

from trajrec import Recorder, open_episode, open_run  # noqa: E402
from trajrec.cli import main  # noqa: E402
from trajrec.recorder.storage import Outbox, outbox_for  # noqa: E402


@pytest.fixture
def outbox_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "outbox"
    monkeypatch.setenv("TRAJREC_OUTBOX", str(root))
    return root


def _record(url: str, episodes: int = 2, steps: int = 5) -> Recorder:
    env = Recorder(gym.make("CartPole-v1"), url)
    for seed in range(episodes):
        env.reset(seed=seed)
        for i in range(steps):
            env.step(i % 2)
    env.close()
    return env


def test_record_to_a_url_uploads_each_closed_episode(outbox_root: Path) -> None:
    url = f"memory://bucket-{uuid.uuid4().hex[:8]}/run"
    env = _record(url)
    assert len(env.episode_urls) == 2
    assert not list(outbox_for(url).glob("*.msgpack.zst"))  # uploaded, then removed locally
    fs = fsspec.filesystem("memory")
    assert sorted(fs.ls(url.replace("memory://", "/"), detail=False)) == sorted(
        "/" + u.replace("memory://", "") for u in env.episode_urls)
    with open_episode(env.episode_urls[1]) as ep:
        assert len(ep) == 5 and ep.reset.seed == 1 and ep[3].action == 1
        assert ep.summary["steps"] == 5


def test_open_run_and_cli_read_a_url(outbox_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"memory://bucket-{uuid.uuid4().hex[:8]}/run"
    _record(url, episodes=3)
    run = open_run(url)
    assert len(run) == 3 and len(run.where("steps>=5")) == 3
    assert run.to_arrow().num_rows == 15
    assert main(["ls", url, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(rows) == 3
    assert main(["show", run.entries[0].path, "--step", "2"]) == 0
    assert "step 2" in capsys.readouterr().out
    out = outbox_root.parent / "steps.jsonl"
    assert main(["export", url, "--format", "records", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 3


def test_labels_of_a_remote_run_are_read_only(outbox_root: Path) -> None:
    from trajrec import TrajrecUsageError
    from trajrec.replay.labels import LabelStore

    url = f"memory://bucket-{uuid.uuid4().hex[:8]}/run"
    _record(url, episodes=1)
    store = LabelStore(url)
    assert store.current() == []
    with pytest.raises(TrajrecUsageError, match="is on remote storage, which trajrec reads but does not label"):
        store.add("ep", 0, 1, judge="human:ana")


def test_a_failed_upload_keeps_the_file_and_sync_uploads_it(outbox_root: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    url = f"memory://bucket-{uuid.uuid4().hex[:8]}/run"
    box = Outbox(url)
    real = Outbox.upload

    def broken(self: Outbox, local: str | os.PathLike[str]) -> str:
        from trajrec.recorder.errors import TrajrecIOError

        raise TrajrecIOError(f"cannot upload {local} to {self.url}: network unreachable")

    Outbox.upload = broken  # type: ignore[method-assign]
    try:
        with pytest.warns(RuntimeWarning, match="network unreachable"):
            _record(url, episodes=2)
    finally:
        Outbox.upload = real  # type: ignore[method-assign]
    assert len(box.pending(".msgpack.zst")) == 2
    # A writer that died leaves a file with no index: sync repairs it (keeping its steps) before uploading.
    dead = Recorder(gym.make("CartPole-v1"), str(box.folder))
    dead.reset(seed=7)
    dead.step(0)
    dead.step(1)
    dead._writer.abort()  # the process "dies": no end record, no index
    assert main(["sync", url]) == 0
    err = capsys.readouterr().err
    assert "3 of 3 files uploaded from 1 outbox" in err
    assert box.pending(".msgpack.zst") == []
    run = open_run(url)
    assert sorted(e.steps for e in run.entries) == [2, 5, 5]


def test_sync_of_a_folder_that_is_no_outbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", str(tmp_path)]) == 1
    assert "is not a trajrec outbox" in capsys.readouterr().err


@pytest.mark.heavy
def test_s3_compatible_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real S3 API (moto's server on 127.0.0.1) through s3fs: record, list, read steps, export, sync."""
    pytest.importorskip("s3fs", reason="needs s3fs: pip install -e '.[remote]'")
    server_mod = pytest.importorskip("moto.server", reason="needs moto's server: pip install -e '.[s3server]'")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", f"http://{host}:{port}")
        monkeypatch.setenv("TRAJREC_OUTBOX", str(tmp_path / "outbox"))
        fsspec.config.conf.clear()
        fsspec.config.set_conf_env(fsspec.config.conf)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        fs = fsspec.filesystem("s3")
        fs.mkdir("trajrec-test")
        env = _record("s3://trajrec-test/run", episodes=2, steps=40)
        assert len(env.episode_urls) == 2
        run = open_run("s3://trajrec-test/run")
        assert len(run) == 2 and sum(e.steps for e in run.entries) == 80
        with open_episode(env.episode_urls[0]) as ep:
            assert ep[39].action == 1 and len(ep) == 40
        out = tmp_path / "steps.parquet"
        assert main(["export", "s3://trajrec-test/run", "--format", "parquet", "--out", str(out)]) == 0
        import pyarrow.parquet as pq

        assert pq.read_table(out).num_rows == 80
    finally:
        fsspec.config.conf.clear()
        server.stop()


def test_record_to_s3_without_s3fs_fails_before_recording(tmp_path: Path) -> None:
    import subprocess
    import sys

    outbox = tmp_path / "outbox"
    code = ("import sys; sys.modules['s3fs'] = None  # as if not installed\n"
            "from trajrec.cli import main\n"
            "sys.exit(main(['record', 'trajrec/MathCalc-v0', '--episodes', '2', '--out', 's3://bucket/run']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TRAJREC_OUTBOX": str(outbox)})
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("trajrec record: error: cannot record to s3://bucket/run: ") and "s3fs" in last, last
    assert "pip install" in last
    assert not list(outbox.rglob("*.msgpack.zst"))  # nothing was recorded first


def test_sync_with_nothing_pending_says_so(outbox_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"memory://bucket-{uuid.uuid4().hex[:8]}/run"
    assert main(["sync", "s3://other/run"]) == 0  # never recorded to: no outbox
    err = capsys.readouterr().err
    assert err.strip() == "nothing to upload for s3://other/run: no episode recorded to it is waiting here", err
    _record(url).close()  # recorded and uploaded: its outbox is empty
    assert main(["sync", url]) == 0
    assert capsys.readouterr().err.strip() == f"nothing to upload: every episode recorded to a URL was uploaded ({url})"
    assert main(["sync"]) == 0
    assert capsys.readouterr().err.startswith("nothing to upload: ")


def test_record_to_a_url_whose_uploads_fail_exits_1_and_says_where_the_files_wait(
        tmp_path: Path, outbox_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A real failing upload: fsspec's local file system asked to make a folder under a regular file.
    (tmp_path / "blocker").write_text("not a folder")
    url = f"local://{tmp_path}/blocker/run"
    code = main(["record", "trajrec/MathCalc-v0", "--episodes", "2", "--out", url, "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    assert json.loads(out)["not_uploaded"] == 2
    folder = outbox_for(url)
    lines = err.strip().splitlines()
    assert sum("warning: cannot upload" in line for line in lines) == 2
    assert lines[-1] == (
        f"trajrec record: error: 2 episode files are not at {url}: their uploads failed (see the warnings above); "
        f"they wait in {folder}, `trajrec sync {folder}` uploads them")
    assert len(Outbox(url).pending(".msgpack.zst")) == 2  # nothing lost
    (tmp_path / "blocker").unlink()
    assert main(["sync", str(folder)]) == 0
    assert len(list((tmp_path / "blocker" / "run").glob("*.msgpack.zst"))) == 2
