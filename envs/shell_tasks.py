"""The task bank of ``trajrec/Shell-v0``: a starting file tree, goals, and their predicates.

Every task starts from the same small home-directory tree (:data:`BASE_TREE`, about 4 KB) and
asks for one change: sort downloads into a folder, fix a config key, delete temporary files,
create a layout, back a file up, append a line. A task's predicate looks at the final tree and
lists what is still wrong, including collateral damage: any file outside the task's scope that was
deleted or modified.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from trajrec.envs import vfs
from trajrec.envs.vfs import Tree

BASE_TREE: Tree = {
    "home": {
        "user": {
            ".bashrc": "export PATH=$HOME/bin:$PATH\nalias ll='ls -l'\n",
            "notes.txt": "Meeting notes\n- ship v2 on Friday\n- ask Dana about the budget\n- port 8000 is taken on staging\n",
            "todo.txt": "buy milk\ncall the bank\nwater the plants\n",
            "Downloads": {
                "beach.jpg": "JPEG 4032x3024 beach at noon\n",
                "sunset.jpg": "JPEG 4032x3024 sunset over the bay\n",
                "family_2023.jpg": "JPEG 3000x2000 family dinner\n",
                "invoice_march.pdf": "%PDF-1.7 invoice 2024-03 total 120.00 EUR\n",
                "invoice_april.pdf": "%PDF-1.7 invoice 2024-04 total 95.50 EUR\n",
                "manual.pdf": "%PDF-1.4 router manual\n",
                "song.mp3": "ID3 song by the band\n",
                "podcast_ep12.mp3": "ID3 podcast episode 12\n",
                "budget.csv": "month,amount\njan,1200\nfeb,1150\n",
                "contacts.csv": "name,email\nDana,dana@example.com\n",
                "installer.sh": "#!/bin/sh\necho installing\n",
                "readme.txt": "Downloaded files land here.\n",
            },
            "projects": {
                "webapp": {
                    "README.md": "# webapp\nRun with `python app.py`.\n",
                    "app.py": "from config import load\n\nif __name__ == '__main__':\n    load('config.ini')\n",
                    "app.py~": "from config import load\n",
                    "config.ini": "[server]\nhost = 0.0.0.0\nport = 8000\ndebug = true\n\n[db]\nname = webapp\npool = 5\n",
                    "requirements.txt": "flask==3.0.0\nrequests==2.31.0\n",
                    ".gitignore": "__pycache__/\n*.pyc\n",
                    "build.tmp": "partial build output\n",
                    "logs": {
                        "server.log": "2024-05-01 12:00:01 started on port 8000\n2024-05-01 12:00:09 GET / 200\n",
                        "debug.tmp": "debug dump\n",
                    },
                    "src": {
                        "utils.py": "def slugify(text):\n    return text.lower().replace(' ', '-')\n",
                        "utils.py~": "def slugify(text):\n",
                        "cache.tmp": "cached\n",
                    },
                },
                "blog": {
                    "index.md": "# My blog\n",
                    "post1.md": "# First post\nHello.\n",
                    "post2.md~": "# Second post (draft\n",
                    "drafts": {"post3.md": "# Third post\n", "post3.md~": "# Third\n", "notes.tmp": "ideas\n"},
                },
            },
        }
    },
    "etc": {
        "hosts": "127.0.0.1 localhost\n::1 localhost\n",
        "app": {
            "settings.conf": "[core]\nlog_level = debug\ntimeout = 5\nworkers = 4\n",
            "settings.conf.bak": "[core]\nlog_level = info\n",
        },
    },
    "var": {
        "log": {
            "syslog": "May  1 12:00:00 host kernel: boot\n",
            "app.log": "INFO ready\n",
            "app.log.1": "INFO old run\n",
            "app.log.2": "INFO older run\n",
        },
        "cache": {
            "app": {
                "a.tmp": "x\n",
                "b.tmp": "y\n",
                "index.dat": "keep me\n",
                "thumbs": {"t1.tmp": "z\n", "t1.png": "PNG\n"},
            }
        },
    },
    "tmp": {},
}


@dataclass(frozen=True)
class ShellTask:
    """One shell task.

    Attributes:
        id: Stable task id, e.g. ``shell-organize-1``.
        text: The goal as shown to the agent.
        scope: Paths the task may change (prefixes); any other file must survive unchanged.
        goal: Lists what is still wrong with a tree (empty when the goal is met).
        solution: Commands that solve the task (for scripted agents and tests).
    """

    id: str
    text: str
    scope: tuple[str, ...]
    goal: Callable[[Tree], list[str]]
    solution: tuple[str, ...]


def problems(task: ShellTask, tree: Tree) -> list[str]:
    """Return everything still wrong with ``tree`` for ``task``: goal problems, then collateral damage."""
    found = list(task.goal(tree))
    now = vfs.files(tree)
    for path, content in vfs.files(BASE_TREE).items():
        if any(path == s or path.startswith(s.rstrip("/") + "/") for s in task.scope):
            continue
        if path not in now:
            found.append(f"{path} was deleted but is outside the task")
        elif now[path] != content:
            found.append(f"{path} was modified but is outside the task")
    return found


def _file(tree: Tree, path: str) -> str | None:
    node = vfs.get(tree, vfs.resolve(path, "/"))
    return node if isinstance(node, str) else None


def _is_dir(tree: Tree, path: str) -> bool:
    return isinstance(vfs.get(tree, vfs.resolve(path, "/")), dict)


# ----------------------------------------------------------------------------------- templates

_DOWNLOADS = "/home/user/Downloads"


def _organize(k: int, ext: str, folder: str) -> ShellTask:
    originals = {p: c for p, c in vfs.files(BASE_TREE).items() if p.startswith(_DOWNLOADS + "/")}
    moving = {p: c for p, c in originals.items() if p.endswith("." + ext)}

    def goal(tree: Tree) -> list[str]:
        out = []
        if not _is_dir(tree, folder):
            out.append(f"{folder} is not a directory")
        for path, content in moving.items():
            name = path.rsplit("/", 1)[1]
            if _file(tree, f"{folder}/{name}") != content:
                out.append(f"{folder}/{name} is missing or changed")
            if _file(tree, path) is not None:
                out.append(f"{path} is still in Downloads")
        for path, content in originals.items():
            if path not in moving and _file(tree, path) != content:
                out.append(f"{path} should have stayed in Downloads unchanged")
        return out

    return ShellTask(
        id=f"shell-organize-{k}",
        text=(
            f"Move every .{ext} file from {_DOWNLOADS} into a new folder {folder}. "
            "Leave all other files where they are. Run `done` when finished."
        ),
        scope=(_DOWNLOADS, folder),
        goal=goal,
        solution=(f"ls {_DOWNLOADS}", f"mkdir {folder}", f"mv {_DOWNLOADS}/*.{ext} {folder}/", f"ls {folder}", "done"),
    )


def _config(k: int, path: str, key: str, old: str, new: str) -> ShellTask:
    original = vfs.files(BASE_TREE)[path]
    wanted = original.replace(f"\n{key} = {old}\n", f"\n{key} = {new}\n")
    assert wanted != original, (path, key)

    def goal(tree: Tree) -> list[str]:
        now = _file(tree, path)
        if now is None:
            return [f"{path} is missing"]
        if now == wanted:
            return []
        have, want = now.split("\n"), wanted.split("\n")
        for i, (a, b) in enumerate(zip(have, want, strict=False), start=1):
            if a != b:
                return [f"{path} line {i} is {a!r}, expected {b!r}"]
        return [f"{path} has {len(have) - 1} lines, expected {len(want) - 1}"]

    return ShellTask(
        id=f"shell-config-{k}",
        text=(
            f"In {path} the setting `{key}` is `{old}`; change it to `{new}` and leave every other line "
            "exactly as it is. Run `done` when finished."
        ),
        scope=(path,),
        goal=goal,
        solution=(f"cat {path}", f"sed -i 's/{key} = {old}/{key} = {new}/' {path}", f"cat {path}", "done"),
    )


def _cleanup(k: int, root: str, patterns: tuple[str, ...], label: str) -> ShellTask:
    under = {p: c for p, c in vfs.files(BASE_TREE).items() if p.startswith(root + "/")}

    def junk(path: str) -> bool:
        return any(fnmatch.fnmatchcase(path.rsplit("/", 1)[1], pat) for pat in patterns)

    doomed = sorted(p for p in under if junk(p))

    def goal(tree: Tree) -> list[str]:
        out = [f"{p} still exists" for p in doomed if _file(tree, p) is not None]
        out += [f"{p} should have been kept" for p, c in under.items() if not junk(p) and _file(tree, p) != c]
        return out

    return ShellTask(
        id=f"shell-cleanup-{k}",
        text=(
            f"Delete all {label} under {root}, including its subfolders; keep every other file. "
            "Run `done` when finished."
        ),
        scope=(root,),
        goal=goal,
        solution=(f"find {root} -type f", *(f"rm {p}" for p in doomed), f"find {root} -type f", "done"),
    )


def _layout(k: int, root: str, subdirs: tuple[str, ...]) -> ShellTask:
    def goal(tree: Tree) -> list[str]:
        out = [f"{root}/{d} is not a directory" for d in subdirs if not _is_dir(tree, f"{root}/{d}")]
        if _file(tree, f"{root}/README.md") is None:
            out.append(f"{root}/README.md is missing")
        return out

    listing = ", ".join(subdirs)
    return ShellTask(
        id=f"shell-layout-{k}",
        text=(
            f"Create the directory {root} with the subdirectories {listing}, and an (empty) README.md file in "
            f"{root}. Run `done` when finished."
        ),
        scope=(root,),
        goal=goal,
        solution=(
            f"mkdir -p {' '.join(f'{root}/{d}' for d in subdirs)}",
            f"touch {root}/README.md",
            f"ls {root}",
            "done",
        ),
    )


def _backup(k: int, source: str, folder: str) -> ShellTask:
    content = vfs.files(BASE_TREE)[source]
    name = source.rsplit("/", 1)[1]

    def goal(tree: Tree) -> list[str]:
        out = [] if _is_dir(tree, folder) else [f"{folder} is not a directory"]
        if _file(tree, f"{folder}/{name}") != content:
            out.append(f"{folder}/{name} is missing or differs from {source}")
        if _file(tree, source) != content:
            out.append(f"{source} must stay in place, unchanged")
        return out

    return ShellTask(
        id=f"shell-backup-{k}",
        text=f"Back up {source}: copy it into a new folder {folder} (keep the original). Run `done` when finished.",
        scope=(folder,),
        goal=goal,
        solution=(f"mkdir {folder}", f"cp {source} {folder}/", f"ls {folder}", "done"),
    )


def _append(k: int, path: str, line: str) -> ShellTask:
    original = vfs.files(BASE_TREE)[path]
    wanted = original + line + "\n"

    def goal(tree: Tree) -> list[str]:
        now = _file(tree, path)
        if now is None:
            return [f"{path} is missing"]
        if now == wanted:
            return []
        if not now.startswith(original):
            return [f"{path} lost or changed some of its original lines"]
        return [f"{path} should end with the single new line {line!r}, found {now[len(original) :]!r}"]

    return ShellTask(
        id=f"shell-append-{k}",
        text=f"Append the line `{line}` to the end of {path}, keeping its current content. Run `done` when finished.",
        scope=(path,),
        goal=goal,
        solution=(f"cat {path}", f"echo {shlex.quote(line)} >> {path}", f"cat {path}", "done"),
    )


_WEBAPP = "/home/user/projects/webapp"
_VARIANTS: tuple[tuple[Callable[..., ShellTask], tuple[tuple[object, ...], ...]], ...] = (
    (
        _organize,
        (
            ("jpg", "/home/user/Pictures"),
            ("pdf", "/home/user/Documents"),
            ("mp3", "/home/user/Music"),
            ("csv", "/home/user/Spreadsheets"),
        ),
    ),
    (
        _config,
        (
            (f"{_WEBAPP}/config.ini", "port", "8000", "8080"),
            (f"{_WEBAPP}/config.ini", "debug", "true", "false"),
            ("/etc/app/settings.conf", "log_level", "debug", "warning"),
            ("/etc/app/settings.conf", "timeout", "5", "30"),
        ),
    ),
    (
        _cleanup,
        (
            (_WEBAPP, ("*.tmp", "*~"), "temporary files (names ending in .tmp or ~)"),
            (
                "/home/user/projects/blog",
                ("*~", "*.tmp"),
                "editor backups and temporary files (names ending in ~ or .tmp)",
            ),
            ("/var/cache/app", ("*.tmp",), "temporary files (names ending in .tmp)"),
            ("/var/log", ("*.1", "*.2"), "rotated logs (names ending in .1 or .2)"),
        ),
    ),
    (
        _layout,
        (
            ("/home/user/projects/api", ("src", "tests", "docs")),
            ("/srv/site", ("public", "assets", "logs")),
            ("/home/user/projects/ml", ("data", "models", "notebooks")),
            ("/home/user/archive/2024", ("q1", "q2", "q3", "q4")),
        ),
    ),
    (
        _backup,
        (
            ("/etc/hosts", "/home/user/backup"),
            (f"{_WEBAPP}/config.ini", "/home/user/backup"),
            ("/home/user/notes.txt", "/home/user/backup"),
            ("/etc/app/settings.conf", "/home/user/backup"),
        ),
    ),
    (
        _append,
        (
            (f"{_WEBAPP}/.gitignore", "*.log"),
            ("/home/user/todo.txt", "renew passport"),
            ("/etc/hosts", "10.0.0.5 db.internal"),
            ("/home/user/.bashrc", "alias gs='git status'"),
        ),
    ),
)


def _build_tasks() -> tuple[ShellTask, ...]:
    # Variant k of every template before variant k + 1, so consecutive seeds differ in kind.
    return tuple(make(k + 1, *variants[k]) for k in range(4) for make, variants in _VARIANTS)


TASKS: tuple[ShellTask, ...] = _build_tasks()


def solution(task_id: str) -> list[str]:
    """Return commands that solve ``task_id`` (for scripted agents and tests).

    >>> solution("shell-config-1")[1]
    "sed -i 's/port = 8000/port = 8080/' /home/user/projects/webapp/config.ini"
    """
    task = next((t for t in TASKS if t.id == task_id), None)
    if task is None:
        raise ValueError(f"unknown task id {task_id!r}; see ShellEnv.task_ids()")
    return list(task.solution)
