"""Where episode files live: local paths, or object storage and other file systems through fsspec URLs.

Reading a URL (``s3://bucket/run/x.msgpack.zst``, ``gs://...``, ``memory://...``) opens the object through
fsspec with range reads, so step ``i`` fetches the index at the tail and the one frame that holds it, never the
whole object. Writing to a URL records into a local *outbox* folder first (a step handed back to the agent is on
the local disk, as with a local run) and uploads each episode once its file is closed; an object store PUT is
atomic, so a run on storage never shows half a file. A process that dies leaves its files in the outbox:
``trajrec sync`` uploads what is left.

fsspec and the file system's own package (``s3fs`` for ``s3://``) are optional:
``pip install 'trajrec[remote]'``. File-system options come from fsspec's configuration, e.g. the environment
variable ``FSSPEC_S3_ENDPOINT_URL`` for an S3-compatible server.

>>> is_url("s3://bucket/run"), is_url("runs/x"), is_url("C:/runs")
(True, False, False)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from .errors import TrajrecIOError, TrajrecUsageError, require

__all__ = ["Outbox", "check_url", "find_remote", "is_url", "open_binary", "outbox_for"]

REMOTE_PIP = "pip install 'trajrec[remote]'"
#: Range reads fetch this much at a time: a frame and its neighbours, not the whole object.
BLOCK_SIZE = 1 << 20
_TARGET = "target.json"


def is_url(path: Any) -> bool:
    """True for ``proto://...`` (an fsspec URL other than ``file://``)."""
    if not isinstance(path, str):
        return False
    proto, sep, _ = path.partition("://")
    return bool(sep) and proto.isidentifier() and len(proto) > 1 and proto != "file"


def _fs(url: str) -> tuple[Any, str]:
    fsspec = require("fsspec", REMOTE_PIP, f"reading {url}")
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise TrajrecUsageError(f"cannot open {url}: {exc}; {REMOTE_PIP} (plus the package of that file system, "
                                "e.g. s3fs for s3://)") from exc


def check_url(url: str) -> None:
    """Check that ``url`` can be written before recording anything to it: fsspec and the package of its file
    system (``s3fs`` for ``s3://``, ``gcsfs`` for ``gs://``...) are importable.

    Raises:
        MissingDependencyError: fsspec is not installed.
        TrajrecUsageError: the URL's file system is unknown or its package is missing; the message names it.
    """
    fsspec = require("fsspec", REMOTE_PIP, f"recording to {url}")
    proto = url.partition("://")[0]
    try:
        fsspec.get_filesystem_class(proto)
    except (ImportError, ValueError) as exc:
        raise TrajrecUsageError(f"cannot record to {url}: {exc}; {REMOTE_PIP} (plus the package of that file "
                                "system, e.g. pip install s3fs for s3://)") from exc


def open_binary(path: str) -> tuple[IO[bytes], int]:
    """Open an episode file (local path or URL) for reading; returns the file object and its size in bytes.

    Raises:
        OSError: the file cannot be opened (FileNotFoundError for a missing local file or object).
        MissingDependencyError: a URL without fsspec installed.
    """
    if not is_url(path):
        fh = open(path, "rb")
        return fh, os.fstat(fh.fileno()).st_size
    fs, p = _fs(path)
    size = fs.size(p)
    return fs.open(p, "rb", block_size=BLOCK_SIZE, cache_type="bytes"), int(size)


def find_remote(url: str, suffix: str) -> list[str]:
    """Files under ``url`` (a folder or one object) whose names end with ``suffix``, as URLs, sorted.

    Raises:
        TrajrecUsageError: nothing exists at ``url``.
    """
    fs, p = _fs(url)
    if fs.isfile(p):
        return [url]
    if not fs.exists(p):
        raise TrajrecUsageError(f"{url}: no such file or folder; pass an episode file (*{suffix}) or a folder of them")
    found = sorted(f for f in fs.find(p) if f.endswith(suffix) and "/.trajrec/" not in f)
    return [fs.unstrip_protocol(f) for f in found]


def outbox_for(url: str) -> Path:
    """The local folder where episodes bound for ``url`` are recorded before upload.

    ``$TRAJREC_OUTBOX`` (default ``~/.cache/trajrec/outbox``) holds one folder per target URL.
    """
    root = Path(os.environ.get("TRAJREC_OUTBOX") or Path.home() / ".cache" / "trajrec" / "outbox")
    import hashlib  # here: loading OpenSSL's hashes costs every command ~3.5 MB, and only outboxes use it

    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return root / digest


class Outbox:
    """Episodes recorded locally for one target URL, uploaded when closed (see the module docs).

    Attributes:
        url: the target folder URL.
        folder: the local folder the Recorder writes into.
    """

    def __init__(self, url: str, folder: str | os.PathLike[str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.folder = Path(folder) if folder is not None else outbox_for(self.url)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / _TARGET).write_text(json.dumps({"url": self.url}))

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> Outbox:
        """The outbox in ``folder`` (as written by a Recorder that recorded to a URL).

        Raises:
            TrajrecUsageError: ``folder`` is not an outbox.
        """
        try:
            url = json.loads((Path(folder) / _TARGET).read_text())["url"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TrajrecUsageError(f"{folder} is not a trajrec outbox (no readable {_TARGET}); outboxes are made "
                                    "by recording to a URL, e.g. --out s3://bucket/run") from exc
        return cls(url, folder)

    def upload(self, local: str | os.PathLike[str]) -> str:
        """Upload one closed episode file, then remove the local copy; returns its URL.

        The object is written whole (one PUT on object stores) and its size checked before the local file
        goes, so an interrupted upload leaves the local file for ``trajrec sync``.

        Raises:
            TrajrecIOError: the upload failed; the local file is kept.
        """
        local = Path(local)
        fs, root = _fs(self.url)
        dest = f"{root.rstrip('/')}/{local.name}"
        try:
            fs.makedirs(root, exist_ok=True)
            fs.put_file(str(local), dest)
            remote_size = fs.size(dest)
        except Exception as exc:  # each fsspec file system raises its own types; the local file is kept
            raise TrajrecIOError(f"cannot upload {local} to {self.url}: {exc}; the file stays in {self.folder}, "
                                 f"`trajrec sync {self.folder}` uploads it later") from exc
        if remote_size != local.stat().st_size:
            raise TrajrecIOError(f"upload of {local} to {self.url} is {remote_size} bytes, expected "
                                 f"{local.stat().st_size}; the file stays in {self.folder}")
        local.unlink()
        return f"{self.url}/{local.name}"

    def pending(self, suffix: str) -> list[Path]:
        """Episode files still waiting in the outbox."""
        return sorted(p for p in self.folder.iterdir() if p.name.endswith(suffix))
