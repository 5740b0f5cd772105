"""Writing inside a run folder without following links out of it.

A run folder may come from someone else (a shared drive, an archive). trajrec writes a few things inside it, the
label files (``.trajrec/labels/``) and the summary cache (``.trajrec/catalog.msgpack``); a symbolic link planted at
one of those names would redirect the write to any file the user can write. :func:`private_dir` creates (or
checks) each folder on the way and refuses a link anywhere below the run folder; :func:`create_new` creates a file
that did not exist, never through a link.
"""

from __future__ import annotations

import os
from pathlib import Path

from trajrec.recorder.errors import TrajrecIOError


def private_dir(root: str | os.PathLike[str], *parts: str) -> Path:
    """``root/part/...`` as a real folder, created when missing.

    Raises:
        TrajrecIOError: a component below ``root`` is a symbolic link (or not a folder), or cannot be created.
    """
    path = Path(root)
    for part in parts:
        path = path / part
        if path.is_symlink():
            raise TrajrecIOError(f"refusing to write through {path}: it is a symbolic link (to "
                                 f"{os.readlink(path)}); trajrec writes only inside the run folder. Remove the link "
                                 "(and check who made it) and run again")
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            if not path.is_dir():
                raise TrajrecIOError(f"cannot use {path}: it exists and is not a folder") from None
        except OSError as exc:
            raise TrajrecIOError(f"cannot create the folder {path}: {exc.strerror}") from exc
    return path


def create_new(path: str | os.PathLike[str], flags: int = os.O_WRONLY) -> int:
    """Create ``path`` (it must not exist, not even as a link) and return its descriptor.

    Raises:
        FileExistsError: something is already there (callers pick another name or report it).
        OSError: it cannot be created.
    """
    return os.open(path, flags | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
