"""What every importer shares: the imported episode, the writer that turns it into a trajrec episode file, and
the report of what was mapped and what was kept as ``extra``.

An importer reads a source file and yields :class:`ImportedEpisode` objects whose ``steps`` is an iterator of
:class:`ImportedStep`: nothing forces a whole trajectory into memory. :func:`write_episode` writes each one with
the project's own :class:`~trajrec.recorder.writer.EpisodeWriter`, classifying failures, retries and recoveries
with the same :class:`~trajrec.recorder.classify.Classifier` as live recording, diffing state with the same
:class:`~trajrec.recorder.diff.StateTracker`, so every reader, ``ls``, ``view``, ``label``, ``export`` and
``fsck`` work on the result.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable, ClassVar, Iterable, Iterator
from zlib import error as zlib_error  # broken deflate data inside a gzip file

from trajrec.recorder.classify import Classifier
from trajrec.recorder.diff import StateTracker
from trajrec.recorder.errors import TrajrecIOError
from trajrec.recorder.format import SUFFIX, new_compressor
from trajrec.recorder.model import normalize_check
from trajrec.recorder.model_call import ModelCall, normalize_usage, parse_tool_calls
from trajrec.recorder.provenance import _static
from trajrec.recorder.version import __version__
from trajrec.recorder.writer import EpisodeWriter

from .jsonstream import ImportFormatError, shown

__all__ = ["IMPORTER_VERSION", "FieldReport", "ImportedEpisode", "ImportedStep", "Importer", "SeenTools", "SourceFile",
           "episode_slug", "open_text", "parse_time", "read_model_stats", "read_text", "usd_amount", "whole_count",
           "with_episode_usage", "write_episode"]

#: Bumped when an importer maps a field differently; stored in every imported episode's provenance.
IMPORTER_VERSION = "2"  # 2: model calls as actions (SWE-agent 1.x, OpenHands), tools from calls, system prompts

_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")
_GZIP_MAGIC = b"\x1f\x8b"


def episode_slug(text: Any) -> str:
    """The part of an episode id (and file name) made from source text: letters, digits, ``_``, ``.`` and ``-``,
    at most 80 characters, never starting with ``-`` or ``.`` (a command line would read ``-1-epoch4`` as an option,
    a shell listing would hide ``.x``) nor ending with ``.`` or ``_``.

    >>> episode_slug("-1-epoch4"), episode_slug("../etc/passwd"), episode_slug("---"), episode_slug("a b/c")
    ('1-epoch4', 'etc_passwd', 'episode', 'a_b_c')
    """
    slug = _SLUG.sub("_", str(text))[:80].lstrip("-._").rstrip("._")
    return slug or "episode"


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with the gzip magic bytes (mini-swe-agent and Harbor ship ``.json.gz`` files)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == _GZIP_MAGIC
    except OSError:
        return False


class _CheckedText(io.TextIOBase):
    """A text reader whose undecodable bytes and broken gzip data raise :class:`ImportFormatError` naming the
    file and what was expected, instead of a raw ``UnicodeDecodeError`` from deep inside a JSON reader."""

    def __init__(self, fh: IO[str], path: Path, expected: str, gz: bool) -> None:
        self._fh = fh
        self._path = path
        self._expected = expected
        self._gz = gz

    def _wrap(self, exc: Exception) -> ImportFormatError:
        what = f"expected {self._expected}" if self._expected else "expected UTF-8 JSON text"
        if isinstance(exc, UnicodeDecodeError):
            inside = " (after gzip decompression)" if self._gz else ""
            return ImportFormatError(self._path, None, f"not UTF-8 text{inside}: {what}")
        return ImportFormatError(self._path, None, f"not a readable gzip file ({exc}): {what}")

    def read(self, size: int | None = -1) -> str:
        try:
            return self._fh.read(size)
        except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib_error) as exc:
            raise self._wrap(exc) from None

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        try:
            return self._fh.readline(size)
        except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib_error) as exc:
            raise self._wrap(exc) from None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._fh.close()
        super().close()


def open_text(path: str | os.PathLike[str], expected: str = "") -> IO[str]:
    """Open a source file as UTF-8 text; a gzip file (found by its magic bytes, whatever its name) is read
    through :mod:`gzip`, streaming.

    Args:
        path: the source file.
        expected: what the file should be (``"SWE-agent .traj files"``), for the error message.

    Raises:
        ImportFormatError: the file cannot be opened, or (while reading) its bytes are not UTF-8 or its gzip data is
            broken; the message names the file and what was expected.
    """
    p = Path(path)
    gz = is_gzip(p)
    try:
        fh = gzip.open(p, "rt", encoding="utf-8") if gz else p.open("r", encoding="utf-8")
    except OSError as exc:
        raise ImportFormatError(p, None, f"cannot read: {exc.strerror or exc}") from exc
    return _CheckedText(fh, p, expected, gz)  # type: ignore[return-value]


def read_text(path: str | os.PathLike[str], expected: str = "") -> str:
    """The whole text of a (small) source file, read like :func:`open_text`."""
    with open_text(path, expected) as fh:
        return fh.read()


def read_head(path: str | os.PathLike[str], size: int = 1 << 16) -> bytes:
    """The first ``size`` bytes of a source file, decompressed when it is gzip (for format detection)."""
    p = Path(path)
    try:
        if is_gzip(p):
            with gzip.open(p, "rb") as fh:
                try:
                    return fh.read(size)
                except (EOFError, gzip.BadGzipFile, zlib_error):
                    return b""
        with p.open("rb") as fh:
            return fh.read(size)
    except OSError as exc:
        raise ImportFormatError(p, None, f"cannot read: {exc.strerror or exc}") from exc


@dataclass
class ImportedStep:
    """One agent action of a source trajectory, in the record's vocabulary.

    ``failure`` is the source's own verdict (``{"kind", "message"}``) or None; the classifier turns it into the
    step's ``failure`` and works out ``retry_of``/``recovers``. ``state`` is the state after the step when the
    source has one (diffed against the previous one; the episode then sets ``reset_state``). ``checks`` are
    checks of this step.
    """

    action: Any
    observation: Any = None
    reward: Any = None
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    time: float | None = None
    duration: float | None = None
    note: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None
    state: Any = None
    has_state: bool = False
    diff: list[list[Any]] | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    #: ``(retry_of, recovers)`` as the source recorded them (a trajrec export), used instead of the classifier's.
    links: tuple[int | None, list[int] | None] | None = None
    #: Steps the source says were lost right before this one (a trajrec export of a partial episode): the record's
    #: ``recorder_errors`` entry ``{"where": "write", "lost_steps": n}``, so the summary and ``Episode.gaps`` count them.
    lost_before: int = 0
    #: Why they were lost, as the source says (the entry's ``message``).
    lost_why: str = ""


@dataclass
class ImportedEpisode:
    """One episode read from a source file.

    ``task`` and ``agent`` go to the header (task, provenance.agent); ``reset`` is the observation the agent
    started from (the task prompt) and its info; ``steps`` an iterator of :class:`ImportedStep`; ``checks``
    the episode-level checks, read after the steps (a source may list its verdict last); ``where`` names the
    episode inside the source (``samples/3_epoch_1.json``), ``extra`` holds source fields with no place in
    the record.
    """

    task: dict[str, Any]
    agent: dict[str, Any] | None
    reset_observation: Any
    steps: Iterable[ImportedStep]
    reset_info: dict[str, Any] = field(default_factory=dict)
    reset_time: float | None = None
    reset_state: Any = None
    checks: Callable[[], list[dict[str, Any]]] | list[dict[str, Any]] = field(default_factory=list)
    where: str | None = None
    name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    #: Steps the source says were lost after its last step (read after the steps, as ``checks``): the summary's
    #: ``lost_steps`` counts them, so the imported episode is not whole either.
    lost_after: Callable[[], int] | int = 0


class FieldReport:
    """Counts which source fields an import mapped onto the record and which it kept under ``extra``.

    >>> r = FieldReport()
    >>> r.mapped("trajectory[].action", "step.action"); r.kept("info.edited_files30")
    >>> r.to_dict()
    {'mapped': {'trajectory[].action': 'step.action'}, 'extra': {'info.edited_files30': 1}}
    """

    def __init__(self) -> None:
        self._mapped: dict[str, str] = {}
        self._extra: dict[str, int] = {}
        self._unread: dict[str, str] = {}

    def mapped(self, source: str, target: str) -> None:
        self._mapped.setdefault(source, target)

    def kept(self, source: str) -> None:
        self._extra[source] = self._extra.get(source, 0) + 1

    def unread(self, source: str, why: str) -> None:
        """A source field whose value could not be read where it maps (``why``: ``expected a whole number >= 0,
        found "lots"``): counted as kept (the caller keeps the raw value as extra), and the first ``why`` of each
        field is in :meth:`to_dict`'s ``unread`` (``trajrec import`` warns once per field)."""
        self.kept(source)
        self._unread.setdefault(source, why)

    def keep_rest(self, prefix: str, obj: Any, known: Iterable[str]) -> dict[str, Any]:
        """The members of ``obj`` not in ``known``, each counted as kept under ``prefix``."""
        if not isinstance(obj, dict):
            return {}
        known = set(known)
        rest = {k: v for k, v in obj.items() if k not in known}
        for k in rest:
            self.kept(f"{prefix}{k}")
        return rest

    def merge(self, other: FieldReport) -> None:
        for k, v in other._mapped.items():
            self._mapped.setdefault(k, v)
        for k, n in other._extra.items():
            self._extra[k] = self._extra.get(k, 0) + n
        for k, why in other._unread.items():
            self._unread.setdefault(k, why)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mapped": dict(sorted(self._mapped.items())), "extra": dict(sorted(self._extra.items()))}
        if self._unread:  # only when some value was not read: the reports of other imports stay as they were
            out["unread"] = dict(sorted(self._unread.items()))
        return out


class SourceFile:
    """A source: its path, size and SHA-256 (read in 1 MiB blocks, so memory stays flat).

    A folder (a Minari dataset, an OpenHands ``events/`` folder) hashes its files in name order; a name that is
    no file (a Minari dataset id) has no size and no hash.
    """

    def __init__(self, path: str | os.PathLike[str], *, must_exist: bool = True) -> None:
        self.path = Path(path)
        self.exists = self.path.exists()
        if not self.exists and must_exist:
            raise ImportFormatError(self.path, None, "no such file; pass the path of a trajectory file")
        self.size = self._size() if self.exists else None
        self._sha: str | None = None

    def _files(self) -> list[Path]:
        if self.path.is_dir():
            return sorted(p for p in self.path.rglob("*") if p.is_file())
        return [self.path]

    def _size(self) -> int:
        try:
            return sum(p.stat().st_size for p in self._files())
        except OSError as exc:
            raise ImportFormatError(self.path, None, f"cannot read: {exc.strerror or exc}") from exc

    @property
    def sha256(self) -> str | None:
        if self._sha is None and self.exists:
            h = hashlib.sha256()
            for p in self._files():
                if self.path.is_dir():
                    h.update(os.fspath(p.relative_to(self.path)).encode() + b"\0")
                with p.open("rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        h.update(block)
            self._sha = h.hexdigest()
        return self._sha


class Importer:
    """A source format: ``detect`` says whether a file is one, ``read`` yields its episodes.

    Subclasses set ``name`` (the FORMAT of ``trajrec import``), ``agent_name`` and ``description``.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    suffixes: ClassVar[tuple[str, ...]] = ()
    #: True when a source may be a name rather than a file (a Minari dataset id).
    accepts_ids: ClassVar[bool] = False
    #: True when a folder is one source of this format (a Minari dataset, an OpenHands ``events/`` folder).
    reads_folders: ClassVar[bool] = False
    #: Name patterns of the files a folder of this format's files holds (``trajrec export --format atif --out
    #: DIR/`` writes one ``.trajectory.json`` per episode): a folder passed as a source stands for them. Empty: a
    #: folder is refused with the hint to pass the files.
    folder_files: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.fields = FieldReport()

    @classmethod
    def detect(cls, path: Path, head: bytes) -> str | None:
        """A reason when ``path`` (whose first bytes are ``head``) is in this format, else None."""
        raise NotImplementedError

    def read(self, source: SourceFile) -> Iterator[ImportedEpisode]:
        raise NotImplementedError


def parse_time(value: Any, *, path: str | os.PathLike[str] = "", field_name: str = "") -> float | None:
    """A source timestamp as Unix seconds: numbers as they are, ISO 8601 text parsed (no offset: UTC).

    >>> parse_time("2025-07-05T09:59:40.952956-04:00")
    1751723980.952956
    >>> parse_time(1706000000)
    1706000000.0
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ImportFormatError(path, field_name, f"expected a timestamp, found {shown(value)}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            # A time without an offset (OpenHands writes local times so) is read as UTC, the same on every machine.
            return (dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)).timestamp()
    raise ImportFormatError(path, field_name, f"expected a timestamp (ISO 8601 text or Unix seconds), found {shown(value)}")


def _provenance(importer: Importer, source: SourceFile, episode: ImportedEpisode, run_id: str) -> dict[str, Any]:
    imported_from = {
        "format": importer.name,
        "path": os.path.abspath(source.path) if source.exists else os.fspath(source.path),
        "sha256": source.sha256,
        "size": source.size,
        "where": episode.where,
        "importer": {"name": f"trajrec.replay.importers.{importer.name.replace('-', '_')}",
                     "version": IMPORTER_VERSION, "trajrec": __version__},
    }
    prov = dict(_static())
    prov.update({
        "start_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "run_id": run_id,
        "agent": episode.agent,
        "imported_from": imported_from,
        "lineage": {"imported_from": imported_from, "generator": f"trajrec import {importer.name}"},
        "env_package": None,
    })
    prov.update(episode.provenance)
    if episode.extra:
        prov["extra"] = episode.extra
    return prov


def write_episode(importer: Importer, source: SourceFile, episode: ImportedEpisode, out_dir: Path, *,
                  run_id: str, compression_level: int = 3, written: list[str] | None = None,
                  ) -> tuple[Path, dict[str, Any]]:
    """Write one imported episode into ``out_dir``; return its path and summary.

    The file is written under a temporary name and renamed when complete, so a bad source file never leaves a
    half episode in the run folder.

    Args:
        written: the episode's file name is appended to it before the rename, so that a caller who removes the
            files of a source imported only in part (Ctrl-C arriving just after the rename) knows this one too.

    Raises:
        ImportFormatError: the source is malformed (raised by the importer while its steps are read).
        TrajrecIOError: the episode file cannot be written.
    """
    task = {"env_id": f"imported/{importer.name}", "env_kwargs": {}, "entry_point": None, "max_episode_steps": None,
            "wrappers": [], "seed": None, "options": None, "id": None, "text": None, "split": None,
            "verification": [], **episode.task}
    provenance = _provenance(importer, source, episode, run_id)
    base = episode.name or task.get("id") or source.path.name
    episode_id = f"{episode_slug(base)}-{secrets.token_hex(4)}"
    final = out_dir / f"{episode_id}{SUFFIX}"
    tmp = out_dir / f".{episode_id}{SUFFIX}.importing"
    writer: EpisodeWriter | None = None
    try:
        # (made inside the try: Ctrl-C between the file's creation and the first write must not leave it behind)
        writer = EpisodeWriter(tmp, {"episode_id": episode_id, "task": task, "provenance": provenance},
                               compressor=new_compressor(compression_level), level=compression_level)
        _write_body(writer, episode)
        summary = writer.close()
        if written is not None:
            written.append(final.name)
        os.replace(tmp, final)
    except BaseException:
        if writer is not None and not writer.closed:
            writer.abort()
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return final, summary


def _write_body(writer: EpisodeWriter, episode: ImportedEpisode) -> None:
    classifier = Classifier(failure_fn=_source_failure)
    tracker = StateTracker()
    has_state = episode.reset_state is not None
    reset: dict[str, Any] = {"seed": None, "options": None, "observation": episode.reset_observation,
                             "info": episode.reset_info, "time": episode.reset_time or 0.0, "duration": 0.0,
                             "failure": None}
    if has_state:
        reset["state"] = tracker.reset(episode.reset_state)
    writer.write_reset(reset)
    check_seq = 0
    last_time = episode.reset_time or 0.0
    i = -1
    for i, step in enumerate(episode.steps):
        t = step.time if step.time is not None else last_time
        last_time = t
        record: dict[str, Any] = {"t": "step", "i": i, "action": step.action, "observation": step.observation,
                                  "reward": step.reward, "terminated": step.terminated, "truncated": step.truncated,
                                  "info": step.info, "time": t, "duration": step.duration or 0.0}
        if step.note:
            record["note"] = model_call_note(step.note)
        view = {"action": step.action, "observation": step.observation, "info": step.info, "failure": step.failure}
        failure, retry_of, recovers = classifier.classify(i, step.action, step.info, None, view)
        if step.links is not None:
            retry_of, recovers = step.links
        if failure is not None:
            record["failure"] = failure
        if retry_of is not None:
            record["retry_of"] = retry_of
        if recovers:
            record["recovers"] = recovers
        if step.checks:
            checks = []
            for c in step.checks:
                check_seq += 1
                checks.append(normalize_check(c, default_target=i, check_id=f"c{check_seq}", now=t))
            record["checks"] = checks
        if step.has_state and has_state:
            rows = tracker.update(step.state)
            if rows:
                record["diff"] = rows
        elif step.diff:
            record["diff"] = step.diff
        if step.lost_before > 0:  # the source's own gap: the summary counts it as the recorder counts a lost write
            record["recorder_errors"] = [{"where": "write", "type": "lost in the source",
                                          "message": step.lost_why, "lost_steps": step.lost_before}]
        writer.write_step(record, tracker.state if has_state else None, has_state)
    lost_after = episode.lost_after() if callable(episode.lost_after) else episode.lost_after
    if lost_after > 0:  # after the last step: no record comes after them to say so (as the Recorder does)
        writer.summary.lost_steps += lost_after
    checks = episode.checks() if callable(episode.checks) else episode.checks
    for c in checks:
        check_seq += 1
        target = c.get("target", "episode")
        if isinstance(target, int) and not 0 <= target <= i:
            target = "episode"
        writer.write_check(normalize_check({**c, "target": target}, default_target="episode",
                                           check_id=f"c{check_seq}", now=last_time))


_CALL_KEYS = ("model", "usage", "cost", "latency")


def model_call_note(note: dict[str, Any]) -> dict[str, Any]:
    """The note with the importer's ``model``/``usage``/``cost``/``latency`` moved into ``note["model_call"]``,
    the record live LLM recording writes (:class:`~trajrec.recorder.model_call.ModelCall`), so the summary, ``ls``
    and the viewer count imported tokens and cost like recorded ones.

    >>> model_call_note({"thought": "t", "model": "m", "usage": {"input_tokens": 2, "output_tokens": 1}})
    {'thought': 't', 'model_call': {'model': 'm', 'usage': {'input_tokens': 2, 'output_tokens': 1, \
'prompt_tokens': 2, 'completion_tokens': 1, 'total_tokens': 3}}}
    """
    if not any(note.get(k) is not None for k in _CALL_KEYS):
        return note
    usage = note.get("usage") if isinstance(note.get("usage"), dict) else None
    cost = note.get("cost") if isinstance(note.get("cost"), (int, float)) and not isinstance(note.get("cost"), bool) \
        else None
    latency = note.get("latency") if isinstance(note.get("latency"), (int, float)) else None
    call = ModelCall(model=note.get("model") if isinstance(note.get("model"), str) else None, usage=usage,
                     cost=cost, latency=latency)
    out = {k: v for k, v in note.items() if k not in _CALL_KEYS}
    out["model_call"] = call.to_dict()
    return out


def _source_failure(step: dict[str, Any]) -> Any:
    # The source's own verdict is the failure_fn of the shared classifier: None keeps the default rule
    # (info["error"]), a dict sets kind and message.
    return step.get("failure")


def new_run_id() -> str:
    return f"import-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


def ensure_dir(out: str | os.PathLike[str]) -> Path:
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ImportFormatError(path, None, "--out exists and is not a folder; pass a folder for the imported run")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrajrecIOError(f"cannot create the folder {path}: {exc.strerror}") from exc
    return path


def shell_tool(description: str) -> dict[str, Any]:
    """The reset info that declares an agent's one tool, a command line in a shell (``bash`` with a ``command``):
    exports read a text action as a call of this tool (``info["text_tool"]``), never of an invented one."""
    return {
        "tools": [{"type": "function", "function": {
            "name": "bash", "description": description,
            "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}],
        "text_tool": {"name": "bash", "argument": "command"},
    }


def call_of(call: Any, *, missing_args: bool = True) -> tuple[str, dict[str, Any]] | None:
    """An OpenAI-style tool call's ``(name, arguments)``, its arguments parsed as
    :func:`trajrec.recorder.model_call.parse_tool_calls` parses them; None when it is no call with a name and an
    object of arguments (``missing_args``: arguments left out count as ``{}``)."""
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return None
    (parsed,) = parse_tool_calls([call])
    if not isinstance(parsed["name"], str) or not parsed["name"]:
        return None
    if parsed["error"]:
        return (parsed["name"], {}) if missing_args and parsed["raw_arguments"] is None else None
    return parsed["name"], parsed["arguments"]


class SeenTools:
    """The tools a source's calls name, with the argument names seen, for sources that call tools without
    declaring them (an OpenHands event stream, an Inspect log without model events, SWE-agent 1.x's history).

    Declared in the reset info as :meth:`schemas` (OpenAI-style function schemas), the exports read the calls
    as calls of these tools (``docs/EXPORT.md``: a call of an undeclared tool is text). A schema says it was
    made from the calls: the source does not hold the tool's description or argument types.

    >>> seen = SeenTools("OpenHands"); seen.add("execute_bash", {"command": "ls"}); seen.add("think", {})
    >>> [t["function"]["name"] for t in seen.schemas()], seen.schemas()[0]["function"]["parameters"]
    (['execute_bash', 'think'], {'type': 'object', 'properties': {'command': {}}})
    """

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self._args: dict[str, dict[str, None]] = {}

    def add(self, name: Any, args: Any) -> None:
        if not isinstance(name, str) or not name:
            return
        keys = self._args.setdefault(name, {})
        if isinstance(args, dict):
            for k in args:
                keys.setdefault(str(k), None)

    def schemas(self, declared: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Schemas of the tools seen, in the order first seen, leaving out the names in ``declared`` (tools the
        source declares itself)."""
        skip = set(declared)
        return [{"type": "function", "function": {
            "name": name,
            "description": f"A tool {self.agent} called (declared from the calls in the source, which holds no "
                           "schema for it).",
            "parameters": {"type": "object", "properties": {k: {} for k in keys}}}}
            for name, keys in self._args.items() if name not in skip]


def whole_count(value: Any) -> bool:
    """True for a count of tokens or calls: a whole number >= 0 (``3`` or ``3.0``; not a bool, text or NaN)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
            and float(value).is_integer())


def usd_amount(value: Any) -> bool:
    """True for an amount of US dollars: a finite number >= 0 (not a bool or text)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


#: SWE-agent's and mini-swe-agent's ``info.model_stats`` members that are summed: name -> True for a count.
_STATS_NUMBERS = {"tokens_sent": True, "tokens_received": True, "api_calls": True, "instance_cost": False}


def info_object(path: str | os.PathLike[str], top: Any, members: str) -> dict[str, Any]:
    """A SWE-agent or mini-swe-agent trajectory's ``info`` (``{}`` when there is none), which holds how the run
    ended (``exit_status``, ``submission``): read as absent when it is of another type, the episode would get no
    verdict, or the outcome ``stopped`` (cut short), which the file does not say.

    Raises:
        ImportFormatError: ``info`` is there and not an object (``$.info``, naming ``members``).
    """
    info = top.get("info")
    if info is None:
        return {}
    if not isinstance(info, dict):
        raise ImportFormatError(path, "$.info", f"expected an object ({members}), found {shown(info)}")
    return info


def read_model_stats(stats: Any, fields: FieldReport, prefix: str = "info.model_stats"
                     ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The episode totals of ``info.model_stats`` that can be summed, and the raw values that cannot.

    A count (``tokens_sent``, ``tokens_received``, ``api_calls``) must be a whole number >= 0 and
    ``instance_cost`` a number >= 0; null or absent means unknown. A value of another kind (``"lots"``, ``-5``)
    is left out of the totals, its raw value returned in the extras (``{"info.model_stats.tokens_sent": "lots"}``,
    for the episode's ``provenance.extra``) and reported once through ``fields.unread``. A token count that
    cannot be read makes both token counts unknown: the other alone would show as the episode's total.
    ``stats`` that is not an object is kept whole the same way.

    >>> fr = FieldReport()
    >>> read_model_stats({"tokens_sent": "lots", "tokens_received": 200, "instance_cost": -5, "api_calls": 4}, fr)
    ({'api_calls': 4}, {'info.model_stats.tokens_sent': 'lots', 'info.model_stats.instance_cost': -5})
    >>> print(fr.to_dict()["unread"]["info.model_stats.tokens_sent"])
    expected a whole number >= 0 or null, found "lots"; the episode's tokens are unknown
    """
    if stats is None:
        return None, {}
    if not isinstance(stats, dict):
        fields.unread(prefix, f"expected an object of totals, found {shown(stats)}")
        return None, {prefix: stats}
    clean = dict(stats)
    extra: dict[str, Any] = {}
    for key, whole in _STATS_NUMBERS.items():
        v = stats.get(key)
        if v is None or (whole_count(v) if whole else usd_amount(v)):
            continue
        clean.pop(key, None)
        extra[f"{prefix}.{key}"] = v
        what = "a whole number >= 0" if whole else "a number of US dollars >= 0"
        unknown = "tokens" if key.startswith("tokens") else "cost" if not whole else "API calls"
        fields.unread(f"{prefix}.{key}", f"expected {what} or null, found {shown(v)}; the episode's {unknown} "
                      f"{'is' if unknown == 'cost' else 'are'} unknown")
    if any(f"{prefix}.{k}" in extra for k in ("tokens_sent", "tokens_received")):
        clean.pop("tokens_sent", None)
        clean.pop("tokens_received", None)
    return clean, extra


def with_episode_usage(steps: Iterable[ImportedStep], stats: Any, model: Any, where: str) -> Iterator[ImportedStep]:
    """``steps``, the last one carrying the episode's model totals when the source records only those (SWE-agent's
    and mini-swe-agent's ``info.model_stats``: ``instance_cost``, ``tokens_sent``, ``tokens_received``,
    ``api_calls``), so the summary, ``ls`` and ``report`` count the tokens and cost the file states.

    ``stats`` are the totals :func:`read_model_stats` could read. The tokens are given only when both counts
    are (one alone is no total: the episode's tokens stay unknown, as ``ls`` shows them).

    The totals go in the last step's ``note.model_calls`` as one entry (``scope: "episode"``, the number of API
    calls as ``api_calls``; the summary's count of calls counts it once). When any step's note already holds a
    model call's usage or cost (per-call stats, as mini-swe-agent 1.1 writes them), nothing is added: the totals
    would count those tokens twice (they stay in ``provenance.agent.model_stats``).
    """
    usable = isinstance(stats, dict) and any(
        isinstance(stats.get(k), (int, float)) and not isinstance(stats.get(k), bool)
        for k in ("instance_cost", "tokens_sent", "tokens_received"))
    held: ImportedStep | None = None
    per_call = False
    for step in steps:
        note = step.note or {}
        if any(note.get(k) is not None for k in ("usage", "cost", "model_call", "model_calls")):
            per_call = True
        if held is not None:
            yield held
        held = step
    if held is not None and usable and not per_call:
        usage = {k: int(stats[v]) for k, v in (("prompt_tokens", "tokens_sent"),
                                               ("completion_tokens", "tokens_received")) if whole_count(stats.get(v))}
        if len(usage) < 2:
            usage = {}
        call: dict[str, Any] = {"scope": "episode", "source": where}
        if isinstance(model, str):
            call["model"] = model
        if usage:
            call["usage"] = normalize_usage(usage)
        cost = stats.get("instance_cost")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            call["cost"] = cost
        if stats.get("api_calls") is not None:
            call["api_calls"] = stats["api_calls"]
        held.note = {**(held.note or {}), "model_calls": [call]}
    if held is not None:
        yield held
