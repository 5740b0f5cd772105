"""Label lines for steps an episode does not have (another tool's lines, labels copied beside another recording):
every reader of an episode's labels leaves them out with one warning, and the lines stay in the labels file."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from trajrec.cli import main
from trajrec.recorder import open_episode
from trajrec.replay.exports import export
from trajrec.replay.label_join import EpisodeLabelIndex
from trajrec.replay.labels import LabelStore, LabelWarning
from trajrec.replay.run import open_run


def steps_of(run_dir: Path, eid: str) -> int:
    with open_episode(run_dir / f"{eid}.msgpack.zst") as ep:
        return len(ep)


def orphan_line(eid: str, target: int, lid: str, **extra: object) -> str:
    rec = {"v": 1, "id": lid, "episode_id": eid, "target": target, "kind": "judge", "judge": "human:zed",
           "value": -1, "author": "zed", "time": 1.0, **extra}
    return json.dumps(rec, separators=(",", ":"))


@pytest.fixture
def orphans(run_dir: Path, ids: dict[int, str]) -> Path:
    """ids[1]: a real label on step 0, a line for its step n (one past the end, as another tool wrote it);
    ids[2]: only a line for step 99 (with an extra field, so exports take the Label path, not the fast rows)."""
    store = LabelStore(run_dir)
    store.add(ids[1], 0, 1, judge="human:ana")
    store.close()
    n1 = steps_of(run_dir, ids[1])
    (run_dir / ".trajrec" / "labels" / "zed-x.jsonl").write_text(
        orphan_line(ids[1], n1, "feedbeef01") + "\n" + orphan_line(ids[2], 99, "feedbeef02", note="copied") + "\n")
    return run_dir


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_store_leaves_them_out_warns_once_and_keeps_the_line(orphans: Path, ids: dict[int, str]) -> None:
    store = LabelStore(orphans)
    n1 = steps_of(orphans, ids[1])
    with pytest.warns(LabelWarning) as caught:
        labels = store.labels_of(ids[1], n1)
    assert [(lab.target, lab.judge) for lab in labels] == [(0, "human:ana")]
    (w,) = caught
    assert f"episode {ids[1]} on steps it does not have ({n1} steps, 0..{n1 - 1}): step {n1} (human:zed, id feedbeef01)" \
        in str(w.message) and "left out" in str(w.message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.labels_of(ids[1], n1) == labels  # warned once
        assert store.labeled_fraction(ids[1], n1) == 1 / n1
    assert len(store.current(ids[1])) == 2  # the raw view (no episode length given) still has the line
    assert "feedbeef01" in (orphans / ".trajrec" / "labels" / "zed-x.jsonl").read_text()


def test_label_ls_and_agreement_do_not_count_them(orphans: Path, ids: dict[int, str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "label", "ls", str(orphans), "--json")
    assert code == 0 and [json.loads(line)["id"] for line in out.splitlines()] != []
    assert not {"feedbeef01", "feedbeef02"} & {json.loads(line)["id"] for line in out.splitlines()}
    assert "step 99 (human:zed, id feedbeef02)" in err and "left out" in err
    code, out, err = cli(capsys, "label", "ls", str(orphans), "--history")
    assert "feedbeef" not in out and "1 label on 1 episode (all versions)" in err.splitlines()
    code, out, err = cli(capsys, "agreement", str(orphans), "--json")
    judges = {j["judge"]: j for j in json.loads(out)["judges"]}
    assert set(judges) == {"human:ana"}


def test_agreement_warns_about_them(orphans: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "agreement", str(orphans))
    assert "feedbeef01" in err and "feedbeef02" in err and "human:zed" not in out


def test_where_labeled_and_ls_json_agree(orphans: Path, ids: dict[int, str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "ls", str(orphans), "--where", "labeled", "--json")
    assert [json.loads(line)["episode_id"] for line in out.splitlines()] == [ids[1]]
    assert "feedbeef02" in err
    code, out, _ = cli(capsys, "ls", str(orphans), "--where", "labels>=2", "--json")
    assert out == ""  # ids[1] has one label on a step it has
    assert {e.episode_id for e in open_run(orphans).where("labeled")} == {ids[1]}
    code, out, _ = cli(capsys, "ls", str(orphans), "--json")
    labeled = {json.loads(line)["episode_id"]: json.loads(line)["labeled"] for line in out.splitlines()}
    assert labeled[ids[2]] == 0.0 and labeled[ids[1]] > 0


def test_ls_where_labeled_warns_once_given_a_relative_path(orphans: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # the filter's store and the labeled column's were two stores of one folder (one named by the absolute
    # path, one by the path given): each warned
    monkeypatch.chdir(orphans.parent)
    code, out, err = cli(capsys, "ls", orphans.name, "--where", "labeled", "--json")
    assert code == 0 and out
    assert len([line for line in err.splitlines() if "does not have" in line and "feedbeef01" in line]) == 1


def test_exports_leave_them_out(orphans: Path, ids: dict[int, str], tmp_path: Path) -> None:
    with pytest.warns(LabelWarning) as caught:
        export([orphans], "records", tmp_path / "r.jsonl")
    said = " ".join(str(c.message) for c in caught)
    assert "id feedbeef01)" in said and "id feedbeef02)" in said
    rows = {r["episode_id"]: r for r in map(json.loads, (tmp_path / "r.jsonl").read_text().splitlines())}
    label_ids = {c.get("id") for r in rows.values() for c in json.loads(r["checks"]) if c["origin"] == "label"}
    assert label_ids and not {"feedbeef01", "feedbeef02"} & label_ids
    # Filters see what the rows hold: ids[2] has no label left.
    with pytest.warns(LabelWarning) as caught:
        export([orphans], "records", tmp_path / "w.jsonl", where=["labeled"])
    assert any("feedbeef02" in str(c.message) for c in caught)
    assert [json.loads(line)["episode_id"] for line in (tmp_path / "w.jsonl").read_text().splitlines()] == [ids[1]]
    # Both ways an export joins labels: the usual lines' rows and Labels.
    index = EpisodeLabelIndex(orphans)
    n1 = steps_of(orphans, ids[1])
    with pytest.warns(LabelWarning) as caught:
        assert [lab.id for lab in index.on_steps(index.episode_labels(ids[1]).rows, ids[1], n1)] != []
        assert index.on_steps(index.episode_labels(ids[2]).rows, ids[2], 4) == []
    assert len(caught) == 2


def test_arrow_rows_of_a_run_leave_them_out(orphans: Path, ids: dict[int, str]) -> None:
    pytest.importorskip("pyarrow")
    with pytest.warns(LabelWarning) as caught:
        table = open_run(orphans).to_arrow()
    assert any("feedbeef02" in str(c.message) for c in caught) and any("feedbeef01" in str(c.message) for c in caught)
    judges = set(table.column("label_judge").to_pylist())
    assert "human:zed" not in judges and "human:ana" in judges


def test_the_viewer_session_leaves_them_out_and_says_so(orphans: Path, ids: dict[int, str]) -> None:
    from trajrec.tui.label_session import LabelSession
    from trajrec.tui.label_source import LabelSource

    n1 = steps_of(orphans, ids[1])
    source = LabelSource([orphans])
    session = LabelSession(source.store_for(orphans / f"{ids[1]}.msgpack.zst"), ids[1], n1, "bo", lock=source.lock)
    assert session.progress() == (0, 1) and session.notice is not None and "feedbeef01" in session.notice
    assert session.notice.startswith(f"1 label on steps this episode does not have ({n1} steps) left out: step {n1} "
                                     "by human:zed (id feedbeef01)")
    session.reload()
    assert session.notice is None  # said once a session
    # Another session (another episode screen) says it again, though the process warned already.
    again = LabelSession(source.store_for(orphans / f"{ids[1]}.msgpack.zst"), ids[1], n1, "bo", lock=source.lock)
    assert again.notice is not None and "feedbeef01" in again.notice
    with pytest.warns(LabelWarning, match="feedbeef02"):
        facts = source.label_facts(str(orphans / f"{ids[2]}.msgpack.zst"), ids[2], steps_of(orphans, ids[2]))
    assert (facts["labels"], facts["labeled"], facts["judge"]) == (0, False, set())
