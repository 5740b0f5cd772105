"""An in-memory file tree: nested dicts (directories) whose leaves are strings (file contents).

The tree is persistent: every change returns a new root that shares unchanged subtrees with the
old one, and no dict is ever mutated after it is built. So a state snapshot is the root itself (no
copying per step), an old root stays valid after later changes, and undoing a change that breaks a
limit is just keeping the old root. Two trees that share a subtree share it by identity, which lets
a differ skip it.

Paths are ``/``-separated; ``~`` is the home directory; ``.`` and ``..`` work as in a shell.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Union

Node = Union["Tree", str]
Tree = dict[str, Node]

HOME = "/home/user"
#: Deepest path accepted, in components.
MAX_DEPTH = 24
#: Longest single name accepted.
MAX_NAME = 255


class FsError(ValueError):
    """Raised when a path is invalid or an operation does not apply; the message is shell-style."""


def resolve(path: str, cwd: str) -> tuple[str, ...]:
    """Normalize ``path`` (relative to ``cwd``) into its components.

    Raises:
        FsError: Empty path, a name too long, or too deep.

    >>> resolve("../b/./c.txt", "/home/user/a")
    ('home', 'user', 'b', 'c.txt')
    >>> resolve("~/x", "/")
    ('home', 'user', 'x')
    """
    if not path:
        raise FsError("empty path")
    if path == "~" or path.startswith("~/"):
        path = HOME + path[1:]
    full = path if path.startswith("/") else f"{cwd.rstrip('/')}/{path}"
    parts: list[str] = []
    for part in full.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        if len(part) > MAX_NAME:
            raise FsError(f"{part[:20]}...: File name too long (limit {MAX_NAME})")
        if "\x00" in part:
            raise FsError("path contains a NUL character")
        parts.append(part)
    if len(parts) > MAX_DEPTH:
        raise FsError(f"path is {len(parts)} levels deep, the limit is {MAX_DEPTH}")
    return tuple(parts)


def to_path(parts: tuple[str, ...]) -> str:
    """``("home", "user")`` -> ``"/home/user"``."""
    return "/" + "/".join(parts)


def get(tree: Tree, parts: tuple[str, ...]) -> Node | None:
    """Return the node at ``parts``, or None when there is none."""
    node: Node = tree
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def put(tree: Tree, parts: tuple[str, ...], node: Node) -> Tree:
    """Return a new root with ``node`` at ``parts``; the parent directory must exist.

    Raises:
        FsError: ``parts`` is the root, or its parent is missing or not a directory.
    """
    if not parts:
        raise FsError("cannot replace the root directory")
    parent = get(tree, parts[:-1])
    if not isinstance(parent, dict):
        raise FsError(f"{to_path(parts[:-1])}: No such directory")
    return _replace(tree, parts, node)


def remove(tree: Tree, parts: tuple[str, ...]) -> Tree:
    """Return a new root without the node at ``parts`` (which must exist)."""
    if not parts or get(tree, parts) is None:
        raise FsError(f"{to_path(parts)}: No such file or directory")
    return _replace(tree, parts, None)


def _replace(node: Tree, parts: tuple[str, ...], new: Node | None) -> Tree:
    # Path copying: only the dicts on the way down are rebuilt.
    head, rest = parts[0], parts[1:]
    copy = dict(node)
    if rest:
        child = node[head]
        assert isinstance(child, dict)
        copy[head] = _replace(child, rest, new)
    elif new is None:
        del copy[head]
    else:
        copy[head] = new
    return copy


def walk(node: Node, parts: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Node]]:
    """Yield ``(parts, node)`` for ``node`` and everything below it, depth first, sorted by name."""
    yield parts, node
    if isinstance(node, dict):
        for name in sorted(node):
            yield from walk(node[name], (*parts, name))


def files(node: Node, parts: tuple[str, ...] = ()) -> dict[str, str]:
    """Return every file under ``node`` as ``{absolute path: content}``."""
    return {to_path(p): n for p, n in walk(node, parts) if isinstance(n, str)}


def size(node: Node) -> tuple[int, int]:
    """Return ``(nodes, characters)`` under ``node``, names included."""
    if isinstance(node, str):
        return 1, len(node)
    count, chars = 1, 0
    for name, child in node.items():
        n, c = size(child)
        count, chars = count + n, chars + c + len(name)
    return count, chars


def has_magic(text: str) -> bool:
    """True when ``text`` holds a glob wildcard."""
    return any(ch in text for ch in "*?[")


def glob(tree: Tree, pattern: str, cwd: str) -> list[tuple[str, ...]]:
    """Expand a shell wildcard pattern (``*``, ``?``, ``[...]`` per component); sorted matches.

    Like a shell, a leading ``*`` does not match names starting with ``.``.

    >>> t = {"d": {"a.jpg": "", "b.txt": "", ".c.jpg": ""}}
    >>> glob(t, "/d/*.jpg", "/")
    [('d', 'a.jpg')]
    """
    try:
        parts = resolve(pattern, cwd)
    except FsError:
        return []
    matches: list[tuple[str, ...]] = [()]
    for part in parts:
        step: list[tuple[str, ...]] = []
        for base in matches:
            node = get(tree, base)
            if not isinstance(node, dict):
                continue
            if not has_magic(part):
                if part in node:
                    step.append((*base, part))
                continue
            for name in sorted(node):
                if name.startswith(".") and not part.startswith("."):
                    continue
                if fnmatch.fnmatchcase(name, part):
                    step.append((*base, name))
        matches = step
    return sorted(matches)
