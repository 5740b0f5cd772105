"""``trajrec.replay.library``: finding episode files, summaries, the on-disk summary cache, filters and sorting.

(Here rather than under tests/replay/ because the library module belongs to the TUI work; move with it.)
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from trajrec.recorder import TrajrecUsageError
from trajrec.recorder.format import packb, unpackb
from trajrec.replay.library import (
    CATALOG_DIR,
    CATALOG_SHARDS,
    Catalog,
    EpisodeEntry,
    FilterError,
    find_episode_files,
    parse_filter,
    scan,
    sort_entries,
)


def all_entries(paths, **kw) -> list[EpisodeEntry]:
    return [e for batch in scan(paths, **kw) for e in batch.entries]


def test_find_files_recursively_sorted_and_skips_the_cache_folder(library: Path) -> None:
    (library / CATALOG_DIR).mkdir()
    (library / CATALOG_DIR / "x.msgpack.zst").write_bytes(b"")
    (library / "notes.txt").write_text("not an episode")
    files = find_episode_files([library])
    assert len(files) == 4 and files == sorted(files)
    assert all(f.endswith(".msgpack.zst") and CATALOG_DIR not in f for f in files)
    assert find_episode_files([files[0]]) == [files[0]]
    with pytest.raises(TrajrecUsageError, match="no such file or folder"):
        find_episode_files([library / "missing"])


def test_entries_from_summaries(library: Path) -> None:
    entries = all_entries([library], use_catalog=False)
    first = entries[0]
    assert (first.env_id, first.task_id, first.task_text) == ("trajrec-test/Notes-v0", "notes-1",
                                                               "write hello into notes.txt")
    assert (first.steps, first.ret, first.outcome) == (10, 1.0, "passed")
    assert (first.failures, first.retries, first.recoveries, first.complete) == (4, 3, 2, True)
    assert first.checks_passed == 2 and first.error is None and first.labeled is None


def _shards(library: Path) -> list[Path]:
    return sorted((library / CATALOG_DIR / CATALOG_SHARDS).glob("*.msgpack"))


def test_catalog_is_written_reused_and_invalidated(library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = all_entries([library])
    shards = {unpackb(p.read_bytes())["dir"]: p for p in _shards(library)}
    assert sorted(shards) == ["", "a/", "b/"]  # one shard per folder (the root's lists its sub-folders)
    data = unpackb(shards["a/"].read_bytes())
    assert len(data["names"]) == 2 and all(len(col) == 2 for col in data["cols"])
    assert unpackb(shards[""].read_bytes())["dirs"] == ["a", "b"]

    reads: list[str] = []
    import trajrec.replay.library as lib

    real = lib.read_index
    monkeypatch.setattr(lib, "read_index", lambda p: reads.append(p) or real(p))
    assert all_entries([library]) == fresh
    assert reads == []  # every summary came from the cache

    # A file replaced (a new inode: how the writer and fsck --repair change files) is read again; a deleted
    # one leaves the cache.
    files = find_episode_files([library])
    tmp = files[1] + ".tmp"
    shutil.copyfile(files[2], tmp)
    os.replace(tmp, files[1])
    os.unlink(files[3])
    again = all_entries([library])
    assert reads == [files[1]]
    assert [e.task_id for e in again] == ["notes-1", "notes-3", "notes-3"]
    assert len(unpackb(shards["b/"].read_bytes())["names"]) == 1
    # A file overwritten in place keeps its inode: --rescan (use_catalog=False) reads every file.
    shutil.copyfile(files[0], files[2])
    assert [e.task_id for e in all_entries([library], use_catalog=False)] == ["notes-1", "notes-3", "notes-1"]


def test_catalog_is_sharded_per_folder_and_keeps_path_order(library: Path) -> None:
    files = find_episode_files([library])
    for sub in ("a", "a/b", "z"):
        (library / sub).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files[0], library / sub / "x.msgpack.zst")
    shutil.copyfile(files[0], library / "a-file.msgpack.zst")  # sorts before "a/..." as a whole path does
    cold = [e.path for e in all_entries([library])]
    assert cold == sorted(cold) == find_episode_files([library])
    assert sorted(unpackb(p.read_bytes())["dir"] for p in _shards(library)) == ["", "a/", "a/b/", "b/", "z/"]
    assert [e.path for e in all_entries([library])] == cold


def test_damaged_or_foreign_cache_is_ignored_and_said(library: Path) -> None:
    all_entries([library])
    shard = next(p for p in _shards(library) if unpackb(p.read_bytes())["dir"] == "a/")
    shard.write_bytes(b"\xc1 garbage")
    batches = list(scan([library]))
    assert "ignored the summary cache" in " ".join(p for b in batches for p in b.problems)
    assert sum(len(b.entries) for b in batches) == 4
    shard.write_bytes(packb({"version": 999, "names": []}))
    cat = Catalog(library)
    assert cat.shard("a/") is None and "another trajrec version" in (cat.problem or "")
    # The scan replaced it with a good one.
    assert all_entries([library])[0].task_id == "notes-1"
    assert Catalog(library).shard("a/") and not Catalog(library).problems


def test_unwritable_cache_is_reported_not_fatal(library: Path) -> None:
    (library / CATALOG_DIR).write_text("a file where the cache folder should be")
    batches = list(scan([library]))
    assert sum(len(b.entries) for b in batches) == 4
    assert any("could not save the summary cache" in p for b in batches for p in b.problems)


def test_unreadable_file_is_an_entry_with_an_error(library: Path) -> None:
    (library / "bad.msgpack.zst").write_bytes(b"hello")
    entries = all_entries([library], use_catalog=False)
    bad = [e for e in entries if e.error]
    assert len(bad) == 1 and bad[0].outcome == "unreadable" and "not a trajrec episode" in bad[0].error


def test_batches_first_small_then_by_time(library: Path) -> None:
    for i in range(20):
        shutil.copyfile(find_episode_files([library])[0], library / f"copy{i:02d}.msgpack.zst")
    batches = list(scan([library], first_batch=3, batch_seconds=3600, use_catalog=False))
    assert [len(b.entries) for b in batches] == [3, 21]
    cached = list(scan([library], first_batch=3, batch_seconds=3600))
    assert [len(b.entries) for b in cached] == [3, 21] and cached[-1].total == 24
    assert [b.done for b in batches] == [3, 24] and batches[-1].total == 24


def test_labeled_fraction_is_asked_per_entry_and_never_cached(library: Path) -> None:
    got = all_entries([library], labeled_fraction=lambda path, eid, n: n / 10)
    assert [e.labeled for e in got] == [1.0, 0.3, 0.2, 0.3]
    assert [e.labeled for e in all_entries([library])] == [None] * 4


def test_cancelled_scan_stops_without_a_last_batch(library: Path) -> None:
    assert list(scan([library], cancelled=lambda: True)) == []


@pytest.mark.parametrize("query, expected", [
    ("", ["a", "b", "c"]),
    ("failed", ["a", "c"]),  # the outcome, as in `ls` and `--where`
    ("-failed", ["b"]),
    ("faulty", ["a"]),  # has a failed step
    ("-faulty", ["b", "c"]),
    ("failures>0", ["a"]),
    ("failures >= 2 outcome=failed", ["a"]),
    ("recovered", ["a"]),
    ("env:shell", ["a", "c"]),
    ("env:shell env:math", ["a", "b", "c"]),
    ("-env:shell", ["b"]),
    ("outcome:pass", ["b"]),
    ("outcome:f", ["a", "c"]),
    ("task:t-2", ["b"]),
    ("copy", ["c"]),
    ("COPY", ["c"]),
    ('"copy the file"', ["c"]),
    ("copy file", ["c"]),
    ('"failed"', ["c"]),  # quoted: plain text, found in c's task text
    ("incomplete", ["c"]),
    ("env:shell faulty", ["a"]),
    ("env=trajrec/shell-v0", ["a", "c"]),
])
def test_filter_grammar(query: str, expected: list[str]) -> None:
    entries = [
        EpisodeEntry(path="a", episode_id="a", env_id="trajrec/Shell-v0", task_id="t-1", failures=2, recoveries=1,
                     outcome="failed"),
        EpisodeEntry(path="b", episode_id="b", env_id="trajrec/MathCalc-v0", task_id="t-2", outcome="passed"),
        EpisodeEntry(path="c", episode_id="c", env_id="trajrec/Shell-v0", task_id="t-3", outcome="failed",
                     task_text="copy the file that failed", complete=False),
    ]
    f = parse_filter(query)
    assert [e.path for e in entries if f.matches(e)] == expected


def test_filter_key_typo_suggests_the_key() -> None:
    with pytest.raises(FilterError, match=r"in 'outcom:passed': unknown field 'outcom' \(did you mean 'outcome'\?\)"):
        parse_filter("outcom:passed")
    assert parse_filter("http://x").matches(EpisodeEntry(path="p", episode_id="http://x"))  # not a key: text


@pytest.mark.parametrize("query", ["foo:bar", "-foo:bar", "ab:c", "colour:red"])
def test_unknown_field_without_near_match_is_an_error(query: str) -> None:
    """A plain word of 2+ letters before ':' is meant as a field: unknown, it is said (as for ``envv:shell``)."""
    name = query.lstrip("-").split(":")[0]
    with pytest.raises(FilterError, match=rf"unknown field '{name}'; fields: episode, env, "):
        parse_filter(query)


@pytest.mark.parametrize("query, text", [
    ("http://x", "see http://x now"),  # URL-ish: free text
    ("run.py:12", "error at run.py:12"),  # path-ish
    ("a/b:c", "in a/b:c"),
    ("x:y", "pair x:y"),  # one letter before ':'
    ("12:30", "at 12:30"),  # not an identifier
])
def test_colon_text_stays_free_text(query: str, text: str) -> None:
    f = parse_filter(query)
    assert f.matches(EpisodeEntry(path="p", episode_id="e", task_text=text))
    assert not f.matches(EpisodeEntry(path="p", episode_id="e", task_text="nothing"))


def test_sort_entries_missing_values_last_both_ways() -> None:
    es = [EpisodeEntry(path=p, episode_id=p, ret=r, labeled=lab)
          for p, r, lab in (("a", 1.0, None), ("b", None, 0.5), ("c", -1.0, 1.0), ("d", 1.0, None))]
    assert [e.path for e in sort_entries(es, "return")] == ["c", "a", "d", "b"]
    assert [e.path for e in sort_entries(es, "return", reverse=True)] == ["a", "d", "c", "b"]
    assert [e.path for e in sort_entries(es, "labeled", reverse=True)] == ["c", "b", "a", "d"]
    with pytest.raises(TrajrecUsageError, match="cannot sort by 'nope'"):
        sort_entries(es, "nope")


# -- trusting unchanged folders -------------------------------------------------------------------------------

def _age(library: Path) -> None:
    """Date every folder an hour back: a listing of a folder that old may be trusted next time."""
    old = time.time_ns() - 3600 * 10**9
    for d in [library, *(p for p in library.rglob("*") if p.is_dir() and CATALOG_DIR not in p.parts)]:
        os.utime(d, ns=(old, old))


def _summaries(entries: list[EpisodeEntry]) -> list[tuple]:
    return [(os.path.basename(e.path), e.task_id, e.steps, e.complete, e.error is None) for e in entries]


def _count_calls(monkeypatch: pytest.MonkeyPatch, library: Path) -> tuple[list[str], list[str]]:
    """Record the folders listed and the files read under ``library`` from now on."""
    import trajrec.replay.library as lib

    listed: list[str] = []
    reads: list[str] = []
    real_scandir, real_read = os.scandir, lib.read_index
    monkeypatch.setattr(lib.os, "scandir", lambda p=".": (listed.append(os.fspath(p)) if str(library) in
                                                           os.fspath(p) else None) or real_scandir(p))
    monkeypatch.setattr(lib, "read_index", lambda p: reads.append(p) or real_read(p))
    return listed, reads


def test_unchanged_folders_are_trusted_without_listing_them(library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cold = all_entries([library])  # just written: too recent to trust, so listed and recorded untrusted
    assert all(unpackb(p.read_bytes())["stat"] is None for p in _shards(library))
    _age(library)
    assert all_entries([library]) == cold  # listed again (the folders' mtimes moved), now recorded as trusted
    assert all(unpackb(p.read_bytes())["stat"] is not None for p in _shards(library))
    listed, reads = _count_calls(monkeypatch, library)
    assert all_entries([library]) == cold
    assert listed == [] and reads == []  # no folder listed, no file read: three shards and three stats


@pytest.mark.parametrize("change", ["add", "remove", "rename", "replace", "new folder"])
def test_a_change_in_a_trusted_folder_is_seen(library: Path, change: str) -> None:
    all_entries([library])
    _age(library)
    all_entries([library])  # every folder trusted now
    files = find_episode_files([library])
    a, b = library / "a", library / "b"
    if change == "add":
        shutil.copyfile(files[3], a / "added.msgpack.zst")
    elif change == "remove":
        os.unlink(files[2])
    elif change == "rename":
        os.rename(files[0], a / "zz-renamed.msgpack.zst")
    elif change == "replace":  # how the writer and fsck --repair change a file: a new inode, by rename
        shutil.copyfile(files[3], b / "tmp")
        os.replace(b / "tmp", files[2])
    else:
        (library / "c").mkdir()
        shutil.copyfile(files[0], library / "c" / "x.msgpack.zst")
    truth = _summaries(all_entries([library], use_catalog=False))
    assert _summaries(all_entries([library])) == truth
    _age(library)  # and once the changed folder is trusted again
    all_entries([library])
    assert _summaries(all_entries([library])) == truth


def test_a_file_still_being_written_is_rechecked_in_a_trusted_folder(library: Path) -> None:
    src = find_episode_files([library])[0]
    data = Path(src).read_bytes()
    growing = library / "a" / "growing.msgpack.zst"
    growing.write_bytes(data[: len(data) // 2])  # a writer that has not closed it yet: no index
    _age(library)
    all_entries([library])
    before = next(e for e in all_entries([library]) if e.path == str(growing))
    assert not before.complete or before.error is not None
    with open(growing, "ab") as fh:  # the writer appends and closes: same inode, the folder's mtime unchanged
        fh.write(data[len(data) // 2:])
    after = next(e for e in all_entries([library]) if e.path == str(growing))
    assert after.complete and after.error is None
    assert _summaries([after])[0][1:] == _summaries([next(e for e in all_entries([library]) if e.path == src)])[0][1:]


def test_a_link_in_a_trusted_folder_follows_its_target(library: Path) -> None:
    files = find_episode_files([library])
    os.symlink(files[2], library / "a" / "link.msgpack.zst")  # a/ links to a file of b/
    _age(library)
    all_entries([library])
    link = str(library / "a" / "link.msgpack.zst")
    assert next(e for e in all_entries([library]) if e.path == link).task_id == "notes-3"
    shutil.copyfile(files[0], library / "b" / "tmp")
    os.replace(library / "b" / "tmp", files[2])  # b/ changes; a/ does not
    assert next(e for e in all_entries([library]) if e.path == link).task_id == "notes-1"


def test_rewritten_in_place_needs_verify_which_updates_the_cache(library: Path) -> None:
    files = find_episode_files([library])
    all_entries([library])
    _age(library)
    all_entries([library])
    shutil.copyfile(files[0], files[3])  # another tool overwrites in place: same inode, folder unchanged
    assert [e.task_id for e in all_entries([library])][3] == "notes-4"  # the documented blind spot
    assert [e.task_id for e in all_entries([library], verify=True)][3] == "notes-1"
    assert [e.task_id for e in all_entries([library])][3] == "notes-1"  # the cache was brought up to date


def test_a_damaged_root_shard_loses_nothing(library: Path) -> None:
    cold = all_entries([library])
    _age(library)
    all_entries([library])
    root_shard = next(p for p in _shards(library) if unpackb(p.read_bytes())["dir"] == "")
    root_shard.write_bytes(root_shard.read_bytes()[:-7])  # cut short
    batches = list(scan([library]))
    assert [e for b in batches for e in b.entries] == cold
    assert any("ignored the summary cache" in p for b in batches for p in b.problems)
    assert Catalog(library).shard("") is not None  # rebuilt
    assert [e for b in scan([library]) for e in b.entries] == cold


def test_ls_rescan_finds_a_file_rewritten_in_place(library: Path, capsys: pytest.CaptureFixture) -> None:
    from trajrec.cli import main

    def tasks(*args: str) -> list[str]:
        capsys.readouterr()
        assert main(["ls", str(library), *args]) == 0
        lines = capsys.readouterr().out.splitlines()[1:]
        return [line.split()[2] for line in lines]

    files = find_episode_files([library])
    assert tasks() == ["notes-1", "notes-2", "notes-3", "notes-4"]
    _age(library)
    assert tasks() == ["notes-1", "notes-2", "notes-3", "notes-4"]
    shutil.copyfile(files[0], files[3])  # in place: the cache trusts b/ and the file's inode
    assert tasks() == ["notes-1", "notes-2", "notes-3", "notes-4"]
    assert tasks("--rescan") == ["notes-1", "notes-2", "notes-3", "notes-1"]
    assert tasks() == ["notes-1", "notes-2", "notes-3", "notes-1"]
    # Rows that share every column right of the id are formatted once and still each carry their own id.
    capsys.readouterr()
    main(["ls", str(library)])
    out = capsys.readouterr().out.splitlines()[1:]
    assert out[0].split(maxsplit=1)[1] == out[3].split(maxsplit=1)[1]
    assert [line.split()[0] for line in out] == [e.episode_id for e in all_entries([library])]


def test_ls_from_columns_prints_what_ls_from_entries_prints(library: Path, capsys: pytest.CaptureFixture) -> None:
    """The plain listing prints from the catalog's columns; a sorted one from entries: same lines, same notes."""
    from trajrec.cli import main

    (library / "a" / "bad.msgpack.zst").write_bytes(b"hello")
    shutil.copyfile(find_episode_files([library])[0], library / "b" / "c.msgpack.zst")
    for args in ([], ["--rescan"]):
        capsys.readouterr()
        assert main(["ls", str(library), *args]) == 1  # an unreadable file
        plain = capsys.readouterr()
        assert main(["ls", str(library), "--sort", "path", *args]) == 1
        entries = capsys.readouterr()
        assert plain.out == entries.out and len(plain.out.splitlines()) == 6
        assert plain.err == entries.err and "bad.msgpack.zst" in plain.err and "5 episodes" in plain.err


def test_ls_escapes_control_characters_whichever_way_it_prints(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    """Plain chunks may bypass the escaping stream only when they are printable ASCII: a task id with an
    escape sequence or a non-ASCII letter still goes through it."""
    from tui_helpers import record

    from trajrec.cli import main

    run = tmp_path / "run"
    record(run, ["cat x.txt"], task_id="t\x1b]0;PWNED\x07é")
    record(run, ["cat x.txt"], task_id="plain")
    for args in ([], ["--sort", "path"]):
        capsys.readouterr()
        assert main(["ls", str(run), *args]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out and "\\x1b" in out and "plain" in out, out


def test_skipped_links_are_said_from_a_trusted_folder_too(library: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path, library / "a" / "elsewhere")
    os.symlink(tmp_path / "gone.msgpack.zst", library / "a" / "dangling.msgpack.zst")
    _age(library)
    for _ in range(3):  # listed, recorded as trusted, then from the shard alone
        problems = [p for b in scan([library]) for p in b.problems]
        assert sum("a symbolic link to the folder" in p for p in problems) == 1, problems
        assert sum("dangling.msgpack.zst" in p and "does not exist" in p for p in problems) == 1, problems
    assert unpackb(next(p for p in _shards(library) if unpackb(p.read_bytes())["dir"] == "a/").read_bytes())["stat"]


def test_the_viewers_labels_provider_is_asked_only_about_labeled_episodes(library: Path) -> None:
    from trajrec.replay.labels import LabelStore
    from trajrec.tui.label_source import LabelSource

    first = all_entries([library])[0]
    LabelStore(library / "a").add(first.episode_id, 0, 1, judge="human:ana")
    source = LabelSource([library])
    asked: list[str] = []
    real = LabelSource.labeled_fraction

    class Counting(LabelSource):
        def labeled_fraction(self, episode_path: str, episode_id: str, n_steps: int) -> float | None:
            asked.append(episode_id)
            return real(self, episode_path, episode_id, n_steps)

    counting = Counting([library])
    via_set = [e.labeled for e in all_entries([library], labeled_fraction=counting.labeled_fraction)]
    def plain(path: str, episode_id: str, n_steps: int) -> float | None:  # not a bound method: asked for all
        return source.labeled_fraction(path, episode_id, n_steps)

    per_entry = [e.labeled for e in all_entries([library], labeled_fraction=plain)]
    assert via_set == per_entry == [0.1, None, None, None]
    assert asked == [first.episode_id]


def test_repeated_text_columns_are_stored_once_and_read_back_the_same(library: Path) -> None:
    files = find_episode_files([library])
    for i in range(12):  # enough rows for the env and outcome columns to be dictionary-encoded
        shutil.copyfile(files[i % 2], library / "a" / f"copy{i:02d}.msgpack.zst")
    cold = all_entries([library])
    data = unpackb(next(p for p in _shards(library) if unpackb(p.read_bytes())["dir"] == "a/").read_bytes())
    env = data["cols"][list(data["fields"]).index("env_id")]
    assert isinstance(env, dict) and env["values"] == ["trajrec-test/Notes-v0"] and len(env["codes"]) == 14
    assert isinstance(data["cols"][list(data["fields"]).index("ret")], list)  # numbers stay plain
    warm = all_entries([library])
    assert warm == cold and warm[0].env_id is warm[1].env_id  # one string shared by the rows
    # A code that points nowhere is a damaged shard: ignored, said, rebuilt.
    env["codes"][3] = 7
    path = next(p for p in _shards(library) if unpackb(p.read_bytes())["dir"] == "a/")
    path.write_bytes(packb(data))
    batches = list(scan([library]))
    assert [e for b in batches for e in b.entries] == cold
    assert any("code out of range" in p for b in batches for p in b.problems)


def test_an_older_versions_shard_is_rebuilt_quietly(library: Path) -> None:
    cold = all_entries([library])
    shard = next(p for p in _shards(library) if unpackb(p.read_bytes())["dir"] == "a/")
    shard.write_bytes(packb({"version": 4, "fields": [], "names": [], "inode": [], "mtime": [], "size": [],
                             "cols": []}))
    batches = list(scan([library]))
    assert [e for b in batches for e in b.entries] == cold
    assert not [p for b in batches for p in b.problems]
    assert unpackb(shard.read_bytes())["version"] > 4
