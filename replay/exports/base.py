"""What every export format shares: the options, the per-episode view a format reads, and the JSONL writer."""

from __future__ import annotations

import codecs
import contextlib
import io
import re
import os
import stat
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, Iterable, Iterator, Sequence

from trajrec.recorder import Episode
from trajrec.recorder.errors import TrajrecError, TrajrecIOError, TrajrecUsageError
from trajrec.recorder.model_call import model_calls_of, note_thought
from trajrec.recorder.spelling import in_cli, option

from ..render import json_safe
from ..run_folder import create_new
from ..label_join import EpisodeLabels
from ..labels import Label
from .choice import DEFAULT_PREFER, Candidate, Preference, candidates_by_step, check_label_map, check_unlabeled
from .encode import dumps as dumps_any
from .encode import dumps_built, text_of, tool_names
from .source import EpisodeRef

__all__ = ["PARTITIONS", "TOOL_ARGUMENTS", "WEIGHT_POLICIES", "EpisodeView", "ExportOptions", "Format",
           "JsonlFormat", "Skip", "check_output_file", "check_output_folder", "writes_in_place"]

TOOL_ARGUMENTS = ("object", "string")
#: ``chat`` weight policies: which assistant messages get ``weight`` 1 (the others 0).
#: ``label``: all but failed steps and steps whose preferred label rates -1; ``positive``: only steps whose
#: preferred label rates +1; ``failures``: all but failed steps; ``all``: every one.
WEIGHT_POLICIES = ("label", "positive", "failures", "all")
PARTITIONS = (None, "split", "env")


def _check_choice(flag: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        names = ", ".join(str(c) for c in choices if c is not None)
        raise TrajrecUsageError(f"{option(flag)}: unknown value {value!r}; choose one of {names}"
                                if in_cli() else f"{option(flag)}{value!r} is not one of {names}")


def fenced_in(thought: str, text: str) -> bool:
    """True when the agent's ``thought`` already holds the action ``text`` as it wrote it: the last line of a
    fenced code block (mini-swe-agent's ```bash blocks). Exports then take the thought as the agent's whole turn
    and add the action neither as text nor as a tool call: it would say the command twice."""
    return bool(text) and f"\n{text}\n```" in thought


@dataclass
class ExportOptions:
    """How labels become training labels, and format details.

    Attributes:
        label_map: ``strict``, ``lenient``, ``float`` or ``unit`` (see :mod:`trajrec.replay.exports.choice`).
        prefer: label sources in order of preference (``human,judge,rule`` by default).
        unlabeled: ``trl-stepwise`` policy for steps without a label: ``skip-episode``, ``truncate``,
            ``drop-step``, ``false`` or ``neutral``.
        system: a system message for ``chat``, ``kto`` and ``dpo``, in place of the episode's own system prompt
            (:meth:`EpisodeView.system`; none when neither is there; ``""``: none).
        observations: ``trl-stepwise`` completions also carry the step's observation.
        tool_arguments: ``chat``: tool-call arguments as an ``object`` (HF/TRL convention, the default) or as JSON
            ``string`` (OpenAI fine-tuning files).
        weights: ``chat``: the weight policy of assistant messages (see :data:`WEIGHT_POLICIES`).
        step_separator: ``trl-stepwise``: the separator the PRM trainer joins steps with; replaced in completions.
        shard_rows: ``parquet`` to a folder: rows per ``part-NNNNN.parquet`` file.
        partition_by: ``parquet`` to a folder: ``split`` or ``env`` subfolders (``split=train/``), or None.
        keep_partial: also export episodes that lost steps (files ``fsck --repair`` kept the readable frames of,
            and files whose summary counts env steps a failed write kept out: ``lost_steps``): their readable
            steps, rows marked ``complete: false`` with where the steps were lost (``lost``). By default they are
            left out whole.
    """

    label_map: str = "strict"
    prefer: str | Sequence[str] = DEFAULT_PREFER
    unlabeled: str = "skip-episode"
    system: str | None = None
    observations: bool = False
    tool_arguments: str = "object"
    weights: str = "label"
    step_separator: str = "\n"
    shard_rows: int = 1_000_000
    partition_by: str | None = None
    keep_partial: bool = False
    preference: Preference = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_label_map(self.label_map)
        check_unlabeled(self.unlabeled)
        _check_choice("--tool-arguments", self.tool_arguments, TOOL_ARGUMENTS)
        _check_choice("--weights", self.weights, WEIGHT_POLICIES)
        _check_choice("--partition-by", self.partition_by, PARTITIONS)
        if not isinstance(self.step_separator, str) or not self.step_separator:
            raise TrajrecUsageError(f"{option('step_separator')} must be non-empty text, e.g. '\\n'")
        if isinstance(self.shard_rows, bool) or not isinstance(self.shard_rows, int) or self.shard_rows < 1:
            raise TrajrecUsageError(f"{option('shard_rows')} must be a positive number of rows, got {self.shard_rows!r}")
        self.preference = Preference(self.prefer)
        if self.system is not None and not isinstance(self.system, str):
            raise TrajrecUsageError(f"system must be text, got {type(self.system).__name__}")


#: The left-out reason of an episode with no step to export (none recorded, or none readable): every format says
#: it the same way.
NO_STEP = "no step"


class Skip(Exception):
    """Raised by a format to leave an episode out; ``reason`` is counted in the export report."""

    def __init__(self, reason: str, *, unlabeled: bool = False, example: str | None = None,
                 category: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        #: Left out because a step has no label (labeling would change that).
        self.unlabeled = unlabeled
        #: Where this episode shows the reason (``"episode 1a2b: step 6, human:ana 'wrong-tool'"``): the report
        #: keeps the first one per reason, so the reason itself stays one line however many episodes it counts.
        self.example = example
        #: The label that left it out is a category (no rating): ``label auto --rules`` would not change that.
        self.category = category


#: Envs whose odd ``info["tools"]`` this process has warned about (:meth:`EpisodeView.tools`): once per env.
_WARNED_TOOLS: set[str] = set()


class EpisodeView:
    """One episode as formats read it: the file's raw step records, the labels and the chosen label per step.

    ``labels``: the episode's live labels, a list of :class:`Label` s or the
    :class:`~trajrec.replay.label_join.EpisodeLabels` an export joins (whose usual lines stay
    :class:`~trajrec.replay.label_model.LabelRow` s: :attr:`label_rows`; :attr:`labels` builds the
    :class:`Label` s on first use).
    """

    def __init__(self, ref: EpisodeRef, ep: Episode, labels: list[Label] | EpisodeLabels,
                 options: ExportOptions) -> None:
        self.ref = ref
        self.ep = ep
        self.joined = labels if isinstance(labels, EpisodeLabels) else EpisodeLabels(ep.episode_id, labels)
        self.options = options
        self._cands: dict[int, list[Candidate]] | None = None
        self._single: dict[tuple[Any, ...], bool] = {}
        self._system: str | None | bool = False  # not read yet

    @property
    def labels(self) -> list[Label]:
        """The live labels, as :class:`Label` s."""
        return self.joined.labels()

    @property
    def label_rows(self) -> list[Any]:
        """The live labels as read: :class:`~trajrec.replay.label_model.LabelRow` s or :class:`Label` s (the same
        attributes), in :meth:`~trajrec.replay.labels.LabelStore.current` order."""
        return self.joined.rows

    @property
    def episode_id(self) -> str:
        return self.ep.episode_id

    @property
    def task(self) -> dict[str, Any]:
        return self.ep.task

    def steps(self) -> Iterator[dict[str, Any]]:
        """Raw step records (shared with the reader's cache: read, never modify), frame by frame."""
        return self.ep.iter_records()

    @property
    def candidates(self) -> dict[int, list[Candidate]]:
        if self._cands is None:
            self._cands = candidates_by_step(self.joined.rows, self.ep.checks)
        return self._cands

    def choose(self, i: int, *, mapped: bool) -> Candidate | None:
        """The preferred label of step ``i``; with ``mapped``, only labels the label map can turn into a label."""
        cands = self.candidates.get(i)
        if not cands:
            return None
        if len(cands) == 1:
            # One candidate (a step labeled once): whether it wins depends on its judge, kind and value only,
            # which repeat from step to step; decided once for each of them.
            c = cands[0]
            v = c.value
            key = (c.judge, c.kind, type(v), v, mapped)
            try:
                ok = self._single.get(key)
            except TypeError:  # an unhashable value (a recorded check's)
                key, ok = None, None
            if ok is None:
                ok = self.options.preference.choose(cands, self.options.label_map if mapped else None) is not None
                if key is not None:
                    self._single[key] = ok
            return c if ok else None
        return self.options.preference.choose(cands, self.options.label_map if mapped else None)

    def prompt(self) -> str:
        """The task text and the reset observation (once, when the observation already holds the text)."""
        text = self.task.get("text") or ""
        obs = text_of(self.ep.reset.observation)
        if text and obs and text in obs:
            return obs
        return "\n\n".join(p for p in (text, obs) if p)

    def system(self) -> str | None:
        """The system prompt the agent started from: the reset info's ``system`` (text, as the importers write
        it: docs/IMPORT.md), else the system message the episode's first model call sent (its ``messages`` from
        the start, as ``trajrec record --agent openai`` records them: docs/RECORDING.md), else None. ``chat``,
        ``kto`` and ``dpo`` start with it as a system message, ``trl-stepwise`` prompts with it."""
        if self._system is False:
            self._system, odd = _system_prompt(self.ep)
            if odd is not None:
                warnings.warn(f"{self.ref.path}: episode {self.episode_id} has a system prompt that is not text "
                              f"({odd}): the export writes no system message for it. Record it as text, or as "
                              "OpenAI content parts [{'type': 'text', 'text': ...}] (docs/EXPORT.md)",
                              UserWarning, stacklevel=2)
        return self._system  # type: ignore[return-value]

    @staticmethod
    def thought(rec: dict[str, Any]) -> str | None:
        """:func:`note_thought` of the step's note, as text."""
        t = note_thought(rec.get("note"))
        return t if t is None or isinstance(t, str) else text_of(t)

    def tools(self) -> list[Any]:
        """The tool schemas the env declared in its reset info (``info["tools"]``); [] when it declared none.

        Entries that are not OpenAI-style function schemas (a list of names, ``["calc", "submit"]``, is the
        usual slip) declare no tool: actions calling them become text turns. A ``UserWarning`` says so once per
        env and process, naming the env and the shape expected (``docs/EXPORT.md``, "Declaring an env's tools").
        """
        info = self.ep.reset.info
        tools = info.get("tools") if isinstance(info, dict) else None
        if not isinstance(tools, (list, tuple)):
            return []
        good = [t for t in tools if isinstance(t, dict)]
        if len(good) != len(tools) or len(tool_names(good)) < len(good):
            self._warn_odd_tools(tools)
        return good

    def _warn_odd_tools(self, tools: Sequence[Any]) -> None:
        # an env without a registered id: the class the Recorder named the file after (`Name-<time>-<hex>`)
        env = str(self.task.get("env_id") or re.sub(r"-\d{8}T\d{6}-[0-9a-f]+$", "", self.episode_id))
        if env in _WARNED_TOOLS:
            return
        _WARNED_TOOLS.add(env)
        odd = [t for t in tools if not tool_names([t])]
        shown = ", ".join(repr(t) if len(repr(t)) <= 40 else repr(t)[:37] + "..." for t in odd[:3])
        warnings.warn(f"env {env} declares {len(odd)} tool{'' if len(odd) == 1 else 's'} in its reset "
                      f"info['tools'] that {'is' if len(odd) == 1 else 'are'} not a function schema ({shown}"
                      f"{', ...' if len(odd) > 3 else ''}): the export lists no such tool and writes calls of it "
                      "as text turns. Declare each tool as {'type': 'function', 'function': {'name': ..., "
                      "'description': ..., 'parameters': {...}}} (docs/EXPORT.md, \"Declaring an env's tools\")",
                      UserWarning, stacklevel=2)

    def text_tool(self) -> tuple[str, str] | None:
        """``(tool, argument)`` the env declared for plain-text actions (``info["text_tool"]``), else None."""
        info = self.ep.reset.info
        tt = info.get("text_tool") if isinstance(info, dict) else None
        if isinstance(tt, dict) and isinstance(tt.get("name"), str) and isinstance(tt.get("argument"), str):
            return tt["name"], tt["argument"]
        return None

    @property
    def outcome(self) -> str | None:
        return self.ep.summary.get("outcome")


def _system_prompt(ep: Episode) -> tuple[str | None, str | None]:
    """:meth:`EpisodeView.system` of ``ep``, and what its system prompt was when it is not text (shown short: the
    caller warns), else None. Text as it is; OpenAI content parts joined as the importers join them
    (:func:`prompt_text`); a blank prompt is none."""
    info = ep.reset.info
    system = info.get("system") if isinstance(info, dict) else None
    if system is not None:
        text = prompt_text(system)
        if text is None:
            shown = repr(system)
            return None, shown if len(shown) <= 60 else shown[:57] + "..."
        if text.strip():
            return text, None
    model = ep.summary.get("model")
    if not (isinstance(model, dict) and model.get("calls") and len(ep)):
        return None, None  # no model call recorded (the summary says so): no step is read
    try:
        note = ep.record(0).get("note")
    except TrajrecError:  # step 0 lost or damaged: the export meets it (and says so) when it reads the steps
        return None, None
    for call in model_calls_of(note)[:1]:
        messages = call.get("messages")
        if call.get("messages_before") in (0, None) and isinstance(messages, list) and messages:
            first = messages[0]
            if isinstance(first, dict) and first.get("role") == "system":
                text = prompt_text(first.get("content"))
                return (text if text and text.strip() else None), None
    return None, None


def prompt_text(value: Any) -> str | None:
    """A system prompt as text: text as it is, OpenAI content parts (``[{"type": "text", "text": ...}]``) their
    texts joined with newlines, as the Inspect and ATIF importers join them; None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(p, dict) for p in value):
        texts = [p.get("text") for p in value if p.get("type") == "text" and isinstance(p.get("text"), str)]
        if texts:
            return "\n".join(t for t in texts if t)
    return None


class Format:
    """An export format: ``write(view)`` returns ``(rows, steps)`` written or raises :class:`Skip`."""

    name: ClassVar[str]
    binary: ClassVar[bool] = False
    #: Whether the format may write label times as the label lines' own texts (``records`` splices them): then
    #: label lines are read as text only when each time text is its float's repr. False (``parquet``, which
    #: writes no label time): any JSON text of the float will do (:func:`~trajrec.replay.label_join.read_lines`).
    splices_label_times: ClassVar[bool] = True

    def __init__(self, out: str | os.PathLike[str], options: ExportOptions) -> None:
        self.options = options
        self.out = out

    def set_context(self, *, where: Sequence[str] = (), sources: Sequence[Any] = ()) -> None:
        """Told, before the first :meth:`write`, which filters and sources the export has (for file metadata)."""

    def write(self, view: EpisodeView) -> tuple[int, int]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


def _tmp_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.tmp-{os.getpid()}")


def writes_in_place(path: str | os.PathLike[str]) -> bool:
    """Whether an output file is written where it is, without a temporary file and a rename: something that is
    not a regular file (``/dev/null``, a named pipe, a socket) or a path under ``/dev`` or ``/proc``
    (``/dev/stdout``). Renaming a finished file over such a path would replace the device or pipe with a regular
    file (run as root: ``/dev/null`` of the whole machine) and deliver nothing to it."""
    text = os.path.abspath(os.fspath(path))
    if text.startswith(("/dev/", "/proc/")):
        return True
    try:
        return not stat.S_ISREG(os.stat(text).st_mode) and not os.path.isdir(text)
    except OSError:  # nothing there yet (or unreadable: the writer reports it)
        return False


#: Names of recorded episode files (and of those kept by ``record --resume``): never an export's output.
EPISODE_NAMES = (".msgpack.zst", ".msgpack.zst.unfinished")


def check_output_file(out: str | os.PathLike[str], inputs: Iterable[Any] = (), *, overwrite: bool = False,
                      flag: str = "--out", example: str = "export.jsonl") -> None:
    """Refuse an output file that would replace recorded data, or any file already there unless ``overwrite``.

    Checked before anything is read or written: a name of an episode file (``*.msgpack.zst``), a path inside a
    run folder's ``.trajrec/`` (labels, catalog), one of the ``inputs``, or a file that holds zstd frames are
    refused always; another existing regular file needs ``overwrite``. A device, pipe or ``/dev/...`` path is
    written in place (:func:`writes_in_place`) and never refused.

    Args:
        out: the output path (``-``: stdout, never refused).
        inputs: the episode files the command reads (paths; URLs are skipped).
        overwrite: replace an existing regular file that is none of the above (``--overwrite``).
        flag: the option named in the message (``--out``, ``--html``).
        example: a file name to suggest.

    Raises:
        TrajrecUsageError: the output is refused; the message names the path and the fix.
    """
    text = os.fspath(out)
    if text == "-" or writes_in_place(text):
        return
    path = Path(text)
    parts = path.parts if ".trajrec" in path.parts else Path(os.path.abspath(text)).parts
    inside = ".trajrec" in parts
    # the suggestion is never refused itself: beside the named file, or beside the .trajrec/ folder it is in
    beside = Path(*parts[:parts.index(".trajrec")]) if inside else path.parent
    fix = f"name a new file such as {beside / example}"
    flag = option(flag, text)  # `--out x.jsonl` from the CLI, `out='x.jsonl'` from Python
    if inside:
        raise TrajrecUsageError(f"{flag} is inside a .trajrec/ folder (where trajrec keeps a run's labels "
                                f"and catalog); {fix}")
    if path.name.endswith(EPISODE_NAMES):
        raise TrajrecUsageError(f"{flag} names an episode file (*.msgpack.zst); an output never replaces a "
                                f"recorded episode: {fix}")
    try:
        st = os.stat(text)
    except OSError:  # nothing there yet (or unreadable: the writer reports it)
        return
    if not stat.S_ISREG(st.st_mode):
        return
    for f in inputs:
        f_text = os.fspath(f) if isinstance(f, (str, os.PathLike)) else None
        if f_text is None:
            continue
        try:
            same = os.path.samestat(st, os.stat(f_text))
        except OSError:
            continue
        if same:
            raise TrajrecUsageError(f"{flag} is one of the episode files this command reads; an output "
                                    f"never replaces a recorded episode: {fix}")
    try:
        with open(text, "rb") as fh:
            head = fh.read(4)
    except OSError:
        head = b""
    # A zstd frame or a skippable frame (what an episode file starts with, whatever its name).
    if len(head) == 4 and (head == b"\x28\xb5\x2f\xfd" or int.from_bytes(head, "little") >> 4 == 0x184D2A5):
        raise TrajrecUsageError(f"{flag} holds zstd-compressed data (an episode file?); an output never "
                                f"replaces it: {fix}")
    if not overwrite:
        raise TrajrecUsageError(f"{flag} is a file that exists; pass {option('overwrite', True)} to replace it, or {fix}")


def open_output(out: str | os.PathLike[str]) -> tuple[Path | None, Path | None]:
    """(final path, temporary path) for an output file; ``-`` means stdout (None, None). For a path written in
    place (:func:`writes_in_place`: a device, a pipe, ``/dev/stdout``) both are the path itself."""
    if os.fspath(out) == "-":
        return None, None
    path = Path(out)
    if path.is_dir():
        raise TrajrecUsageError(f"{option('out', os.fspath(path))} is a folder; pass a file name such as "
                                f"{path / 'export.jsonl'}")
    if writes_in_place(path):
        return path, path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrajrecIOError(f"cannot create the folder {path.parent}: {exc.strerror}") from exc
    return path, _tmp_path(path)


def check_output_folder(folder: Path, writes: str) -> None:
    """Refuse ``--out`` naming a folder that already holds files: an export never replaces what is there.

    Args:
        folder: the ``--out`` folder (it may not exist yet).
        writes: what the export writes there, for the message (e.g. ``data.jsonl and README.md``).

    Raises:
        TrajrecUsageError: the folder is not empty (or ``--out`` names a file, not a folder).
    """
    if folder.exists() and not folder.is_dir():
        raise TrajrecUsageError(f"{option('out', os.fspath(folder))} is a file, not a folder; name a new or empty "
                                "folder")
    try:
        busy = folder.is_dir() and any(folder.iterdir())
    except OSError as exc:
        raise TrajrecIOError(f"cannot read the folder {folder}: {exc.strerror}") from exc
    if busy:
        raise TrajrecUsageError(f"{option('out', os.fspath(folder))} is a folder that is not empty; name a new or "
                                f"empty folder (the export writes {writes} there), or remove what is in it "
                                f"({option('overwrite', True)} replaces a file, never what a folder holds)")



def new_temp_folder(final: Path) -> Path:
    """Create ``.<name>.tmp-<pid>`` beside the ``--out`` folder ``final``, new (never an existing folder or a
    link planted at that name): a folder export writes there and renames it to ``final`` when complete, so an
    interrupted export leaves no folder that reads as a whole dataset.

    Raises:
        TrajrecIOError: something is at that name already, or the folder cannot be created.
    """
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except FileExistsError as exc:
        kind = "a symbolic link" if tmp.is_symlink() else "something"
        raise TrajrecIOError(f"refusing to write the temporary export folder {tmp}: {kind} is "
                             "already there; remove it and export again") from exc
    except OSError as exc:
        raise TrajrecIOError(f"cannot create the folder {tmp}: {exc.strerror}") from exc
    return tmp


def _create_tmp(path: Path) -> int:
    try:
        return create_new(path)
    except FileExistsError as exc:
        kind = "a symbolic link" if path.is_symlink() else "a file"
        raise TrajrecIOError(f"refusing to write the temporary export file {path}: {kind} is already there; "
                             "remove it and export again") from exc
    except OSError as exc:
        raise TrajrecIOError(f"cannot write {path}: {exc.strerror}") from exc


def open_new_text(path: Path) -> IO[str]:
    """Create ``path`` (a temporary output name) for writing text; refuse a symbolic link or a file already there,
    so an export never writes through a link planted in the output folder.

    Text that is not Unicode (lone surrogates: tool output decoded with ``surrogateescape``) goes through
    :data:`SURROGATES` (see :func:`_escape_lone_surrogates`)."""
    return io.open(_create_tmp(path), "w", encoding="utf-8", errors=SURROGATES, newline="\n", buffering=1 << 20)


#: The encoding error handler of every JSON-lines export (files, workers, stdout through the command line): a lone
#: surrogate becomes the six characters ``\udcXX`` of text (JSON ``"\\udcXX"``). A lone surrogate cannot be
#: UTF-8, and strict JSON readers (pyarrow, so ``datasets``; DuckDB) refuse its JSON escape, so the text is
#: written as its escape; :data:`ESCAPED` counts them (Arrow strings' too, ``arrow_build``) and the export warns.
SURROGATES = "trajrec-json-surrogates"
ESCAPED = [0]


def _escape_lone_surrogates(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    ESCAPED[0] += len(bad)
    # Inside a JSON string (the only place recorded text is): "\\" is one backslash of text.
    return "".join(f"\\\\u{ord(c):04x}" for c in bad), exc.end


codecs.register_error(SURROGATES, _escape_lone_surrogates)


def open_new_binary(path: Path) -> IO[bytes]:
    """Like :func:`open_new_text`, for binary formats (Parquet)."""
    return io.open(_create_tmp(path), "wb")


def open_in_place_text(path: Path) -> IO[str]:
    """Open a device or pipe (:func:`writes_in_place`) for the text :func:`open_new_text` would write."""
    try:
        return io.open(path, "w", encoding="utf-8", errors=SURROGATES, newline="\n", buffering=1 << 20)
    except OSError as exc:
        raise TrajrecIOError(f"cannot write {path}: {exc.strerror}") from exc


class JsonlFormat(Format):
    """A format that writes one JSON object per line: subclasses yield rows from :meth:`rows`.

    The file is written to a temporary name and renamed at :meth:`close`, so a crashed export never leaves a
    half file under the requested name.
    """

    def __init__(self, out: str | os.PathLike[str] | None, options: ExportOptions) -> None:
        super().__init__(out, options)  # type: ignore[arg-type]
        self._fh: IO[str] | None
        if out is None:  # encode only (a worker of a parallel export): no file, :meth:`encode` gives the text
            self.folder, self._path, self._tmp, self.files, self._stdout, self._fh = None, None, None, [], False, None
            return
        text = os.fspath(out)
        if text != "-" and (Path(text).is_dir() or text.endswith(("/", os.sep))):
            # A folder: the data goes in data.jsonl, beside the dataset card the pipeline writes.
            self.folder: Path | None = Path(text)
            check_output_folder(self.folder, "data.jsonl and a dataset card README.md")
            out = self.folder / "data.jsonl"
            self._made_folder = not self.folder.exists()  # removed again if the export stops before its end
        else:
            self.folder = None
        self._path, self._tmp = open_output(out)
        self.files: list[Path] = [self._path] if self._path is not None else []
        self._stdout = self._tmp is None
        if self._tmp is None:
            self._fh = sys.stdout
        elif self._tmp == self._path:  # a device or pipe: written in place, never renamed over
            self._fh = open_in_place_text(self._tmp)
        else:
            try:
                self._fh = open_new_text(self._tmp)
            except KeyboardInterrupt:
                # Ctrl-C as the file was created (open() returned, its result not yet here): nothing can abort()
                # this writer, so the temporary file (named after this process) goes now.
                with contextlib.suppress(OSError):
                    os.unlink(self._tmp)
                raise

    #: Rows hold recorded values only as :func:`~.encode.dumps` text or :func:`~.encode.exact` values, so they
    #: are written without the scan for odd keys and big ints.
    built_rows: ClassVar[bool] = False

    def rows(self, view: EpisodeView) -> tuple[Iterable[dict[str, Any]], int]:
        """``(rows, steps covered)``; raise :class:`Skip` to leave the episode out."""
        raise NotImplementedError

    def lines(self, view: EpisodeView) -> tuple[list[str], int]:
        """``(the JSON text of each row, steps covered)``, without the newlines; raise :class:`Skip` to leave
        the episode out. By default the rows of :meth:`rows`, encoded; a format may build the text itself."""
        rows, steps = self.rows(view)
        dumps = dumps_built if self.built_rows else dumps_any
        return [dumps(row) for row in rows], steps

    def encode(self, view: EpisodeView) -> tuple[str, int, int]:
        """``(text, rows, steps)``: the lines an episode adds to the file, each ended by a newline."""
        lines, steps = self.lines(view)
        if not lines:
            return "", 0, steps
        return "\n".join(lines) + "\n", len(lines), steps

    def write(self, view: EpisodeView) -> tuple[int, int]:
        text, n, steps = self.encode(view)
        self.write_encoded(text)
        return n, steps

    def write_encoded(self, text: str | bytes) -> None:
        """Append lines :meth:`encode` made (maybe in another process; ``bytes``: their UTF-8) to the output."""
        if self._fh is None:
            raise TrajrecUsageError("this format was made to encode only (out=None); it has no output to write")
        if isinstance(text, bytes) and self._stdout:
            text = text.decode("utf-8")
        if self._stdout:  # control characters JSON leaves raw become \u escapes: same data, safe on a terminal
            text = json_safe(text)  # type: ignore[arg-type]
        try:
            if isinstance(text, bytes):
                self._fh.flush()  # what was written as text goes first
                self._fh.buffer.write(text)  # type: ignore[attr-defined]
            else:
                self._fh.write(text)
        except BrokenPipeError:
            raise  # `export --out - | head`: the reader is done; the CLI ends quietly, as other Unix tools do
        except OSError as exc:
            raise TrajrecIOError(f"cannot write {self._tmp or 'stdout'}: {exc.strerror}") from exc

    def close(self) -> None:
        if self._fh is None:
            return
        if self._tmp is None:
            self._fh.flush()
            return
        try:
            self._fh.close()
            assert self._path is not None
            if self._tmp != self._path:
                os.replace(self._tmp, self._path)
        except OSError as exc:
            raise TrajrecIOError(f"cannot finish {self._path}: {exc.strerror}") from exc

    def abort(self) -> None:
        if self._tmp is None or self._fh is None:
            return
        with contextlib.suppress(OSError):  # flushing what is buffered fails again (a full disk): the file goes below
            self._fh.close()
        if self._tmp == self._path:  # a device or pipe written in place: never removed
            return
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass
        if self.folder is not None and getattr(self, "_made_folder", False):
            with contextlib.suppress(OSError):  # only if still empty: nothing of anyone else's is removed
                self.folder.rmdir()
