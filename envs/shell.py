"""``trajrec/Shell-v0``: reach a goal state in a virtual file tree with shell-like commands.

An action is either a command line (``mv ~/Downloads/*.jpg ~/Pictures/``, parsed with
:mod:`shlex`; wildcards expand, ``echo TEXT > FILE`` and ``>> FILE`` write files) or a JSON tool
call (``{"tool": "cat", "args": {"path": "/etc/hosts"}}``). Either way the tool name is the
command word. Commands: ``ls cat grep find mkdir touch mv cp rm echo sed pwd cd`` and
``done``/``submit``, which end the episode and check the tree with the task's own predicate
(environment check ``fs-goal@1``). No pipes, chaining or subshells: one command per step.

The tree (see :mod:`trajrec.envs.vfs`) is the state: ``state_dict()["tree"]`` is the whole tree, a few KB.
"""

from __future__ import annotations

import copy
import fnmatch
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from trajrec.envs import vfs
from trajrec.envs._base import Outcome, ToolEnv, failed
from trajrec.envs._tools import (
    ToolCall,
    ToolError,
    ToolSpec,
    check_action_text,
    did_you_mean,
    excerpt,
    make_check,
    parse_json,
    tool_call_from_json,
)
from trajrec.envs.shell_tasks import BASE_TREE, TASKS, ShellTask, problems
from trajrec.envs.vfs import FsError, Tree

JUDGE_ID = "fs-goal@1"
#: Limits of the virtual disk; a command that would exceed one is refused and changes nothing.
MAX_TREE_CHARS = 200_000
MAX_TREE_NODES = 2_000
MAX_FILE_CHARS = 50_000
#: Most operands one command takes (after wildcard expansion); bounds the work of a single step.
MAX_OPERANDS = 500
#: How many problems a rationale lists before summarizing the rest.
_MAX_LISTED = 5

_BOOL = {"type": "boolean"}
_PATH = {"type": "string", "minLength": 1, "maxLength": 1000}

_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "ls",
        "List a directory (-a: hidden files, -l: sizes, -R: recursive).",
        {"path": _PATH, "all": _BOOL, "long": _BOOL, "recursive": _BOOL},
    ),
    ToolSpec("cat", "Print a file.", {"path": _PATH}, ("path",)),
    ToolSpec(
        "grep",
        "Print the lines of a file containing a literal text (-r: recurse into directories, -i: ignore case, -n: line numbers).",
        {
            "pattern": {"type": "string", "minLength": 1, "maxLength": 1000},
            "path": _PATH,
            "recursive": _BOOL,
            "ignore_case": _BOOL,
            "line_numbers": _BOOL,
        },
        ("pattern", "path"),
    ),
    ToolSpec(
        "find",
        "List everything under a directory, optionally only names matching a wildcard (-name) or of a type (-type f|d).",
        {
            "path": _PATH,
            "name": {"type": "string", "minLength": 1, "maxLength": 255},
            "type": {"type": "string", "minLength": 1, "maxLength": 1},
        },
    ),
    ToolSpec(
        "mkdir",
        "Create a directory (-p: with parents, no error if it exists).",
        {"path": _PATH, "parents": _BOOL},
        ("path",),
    ),
    ToolSpec("touch", "Create an empty file if it does not exist.", {"path": _PATH}, ("path",)),
    ToolSpec(
        "mv",
        "Move or rename a file or directory; into dst if dst is a directory.",
        {"src": _PATH, "dst": _PATH},
        ("src", "dst"),
    ),
    ToolSpec(
        "cp",
        "Copy a file (-r: a directory); into dst if dst is a directory.",
        {"src": _PATH, "dst": _PATH, "recursive": _BOOL},
        ("src", "dst"),
    ),
    ToolSpec(
        "rm",
        "Remove a file (-r: a directory, -f: ignore missing).",
        {"path": _PATH, "recursive": _BOOL, "force": _BOOL},
        ("path",),
    ),
    ToolSpec(
        "echo",
        "Print text, or write it plus a newline to a file (echo TEXT > FILE overwrites, >> appends).",
        {"text": {"type": "string", "maxLength": MAX_FILE_CHARS}, "path": _PATH, "append": _BOOL},
        ("text",),
    ),
    ToolSpec(
        "sed",
        "Replace literal text on each line: sed [-i] 's/OLD/NEW/[g]' FILE (-i edits the file; OLD is literal text, not a regex).",
        {"expression": {"type": "string", "minLength": 1, "maxLength": 2000}, "path": _PATH, "in_place": _BOOL},
        ("expression", "path"),
    ),
    ToolSpec("pwd", "Print the current directory.", {}),
    ToolSpec("cd", "Change the current directory (default: home).", {"path": _PATH}),
    ToolSpec("done", "Declare the task finished; the file tree is checked. Ends the episode.", {}),
    ToolSpec("submit", "Same as done.", {}),
    ToolSpec(
        "shell",
        "Run one command line, e.g. `ls -a /etc` or `echo hello > notes.txt` (wildcards work; no pipes or chaining).",
        {"command": {"type": "string", "minLength": 1, "maxLength": 10_000}},
        ("command",),
    ),
)

#: Single-letter flags each command accepts on a command line.
_FLAGS: dict[str, str] = {"ls": "alR", "grep": "rRin", "mkdir": "p", "cp": "rR", "rm": "rRf", "sed": "i"}
#: Commands whose first operand is not a path (so it is never glob-expanded).
_FIRST_NOT_PATH = {"grep", "sed"}
#: The command words (``shell`` is the tool that takes a whole command line, not a command).
_NAMES = tuple(s.name for s in _SPECS if s.name != "shell")


@dataclass
class Invocation:
    """A command with its flags and operands, from either a command line or a JSON call."""

    name: str
    flags: set[str] = field(default_factory=set)
    operands: list[str] = field(default_factory=list)
    redirect: tuple[str, str] | None = None
    options: dict[str, str] = field(default_factory=dict)
    expand: bool = False


def parse_command_line(line: str) -> Invocation | ToolError:
    """Parse one command line (no pipes or chaining).

    >>> inv = parse_command_line("rm -rf build ~/x.tmp")
    >>> inv.name, sorted(inv.flags), inv.operands
    ('rm', ['f', 'r'], ['build', '~/x.tmp'])
    >>> parse_command_line("ls | wc").message
    "'|' is not supported: one command per step, no pipes, chaining or input redirection"
    """
    words = line.split()
    first = words[0] if words else None
    tool = first if first in _NAMES else None
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as exc:
        return ToolError(f"could not parse the command line ({exc}); check the quotes in {excerpt(line)}", tool)
    if not tokens:
        return ToolError("the command line is empty (only a comment?); send a command", tool)
    name = tokens[0]
    if name not in _NAMES:
        return ToolError(
            f"{excerpt(name)}: command not found{did_you_mean(name, _NAMES)}; available: {', '.join(_NAMES)}"
        )
    inv = Invocation(name, expand=True)
    rest = tokens[1:]
    for tok in rest:
        if tok and all(ch in "();<>|&" for ch in tok) and tok not in (">", ">>"):
            return ToolError(
                f"{tok!r} is not supported: one command per step, no pipes, chaining or input redirection", name
            )
    if ">" in rest or ">>" in rest:
        at = next(i for i, tok in enumerate(rest) if tok in (">", ">>"))
        if name != "echo":
            return ToolError(f"{name}: output redirection is only supported for echo (echo TEXT > FILE)", name)
        if len(rest) != at + 2:
            return ToolError("echo: expected exactly one file after > or >>, at the end of the line", name)
        inv.redirect = (rest[at], rest[at + 1])
        rest = rest[:at]
    if name == "echo":
        inv.operands = rest
        return inv
    if name == "find":
        return _parse_find(inv, rest)
    allowed = _FLAGS.get(name, "")
    only_operands = False
    for tok in rest:
        if not only_operands and tok == "--":
            only_operands = True
        elif not only_operands and tok.startswith("-") and len(tok) > 1:
            bad = [ch for ch in tok[1:] if ch not in allowed]
            if bad or tok.startswith("--"):
                supported = " ".join(f"-{c}" for c in allowed) or "none"
                return ToolError(f"{name}: invalid option {excerpt(tok)}; supported options: {supported}", name)
            inv.flags.update(tok[1:])
        else:
            inv.operands.append(tok)
    return inv


def _parse_find(inv: Invocation, rest: list[str]) -> Invocation | ToolError:
    i = 0
    while i < len(rest):
        tok = rest[i]
        if tok in ("-name", "-type"):
            if i + 1 >= len(rest):
                return ToolError(f"find: missing argument to {tok}", "find")
            inv.options[tok[1:]] = rest[i + 1]
            i += 2
        elif tok.startswith("-"):
            return ToolError(f"find: unknown predicate {excerpt(tok)}; supported: -name PATTERN, -type f|d", "find")
        else:
            inv.operands.append(tok)
            i += 1
    return inv


def invocation_from_call(call: ToolCall) -> Invocation:
    """Map a validated JSON tool call onto the same :class:`Invocation` a command line gives."""
    a, name = call.args, call.tool
    inv = Invocation(name)
    flag_args = {
        "all": "a",
        "long": "l",
        "recursive": "r",
        "ignore_case": "i",
        "line_numbers": "n",
        "parents": "p",
        "force": "f",
        "in_place": "i",
    }
    inv.flags = {flag for key, flag in flag_args.items() if a.get(key) is True}
    if name == "ls" and "r" in inv.flags:
        inv.flags = (inv.flags - {"r"}) | {"R"}  # ls spells recursive -R
    if name == "grep":
        inv.operands = [a["pattern"], a["path"]]
    elif name == "sed":
        inv.operands = [a["expression"], a["path"]]
    elif name in ("mv", "cp"):
        inv.operands = [a["src"], a["dst"]]
    elif name == "echo":
        inv.operands = [a["text"]]
        if "path" in a:
            inv.redirect = (">>" if a.get("append") else ">", a["path"])
    elif name == "find":
        inv.operands = [a["path"]] if "path" in a else []
        inv.options = {k: a[k] for k in ("name", "type") if k in a}
    elif "path" in a:
        inv.operands = [a["path"]]
    return inv


class _Run:
    """Collects one command's output lines and error lines."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.errors: list[str] = []

    def outcome(self) -> Outcome:
        text = "\n".join(self.out + self.errors)
        return Outcome(text=text, error="; ".join(self.errors) if self.errors else None)


class ShellEnv(ToolEnv):
    """A virtual file tree and shell-like commands; reach the task's goal state, then run ``done``.

    Args:
        max_steps: Steps after which the episode is truncated (the tree is checked then too).
        render_mode: Only None.

    >>> env = ShellEnv()
    >>> obs, info = env.reset(options={"task_id": "shell-append-2"})
    >>> env.step("echo 'renew passport' >> ~/todo.txt")[0]
    '(no output)'
    >>> obs, reward, terminated, truncated, info = env.step("done")
    >>> reward, info["checks"][0]["judge"], info["checks"][0]["value"]
    (1.0, 'fs-goal@1', True)
    """

    env_id: ClassVar[str] = "trajrec/Shell-v0"
    tasks: ClassVar[tuple[ShellTask, ...]] = TASKS
    verification: ClassVar[str] = "environment"
    tool_specs: ClassVar[tuple[ToolSpec, ...]] = _SPECS
    #: A plain-text action is a command line: a call of the ``shell`` tool with it as ``command``.
    text_tool: ClassVar[tuple[str, str] | None] = ("shell", "command")

    def __init__(self, *, max_steps: int = 30, render_mode: str | None = None) -> None:
        super().__init__(max_steps=max_steps, render_mode=render_mode)
        self._tree: Tree = BASE_TREE
        self._cwd = vfs.HOME

    # ------------------------------------------------------------------------------- hooks

    def _begin(self, task: ShellTask) -> None:
        # A private copy per episode: the state hands out the tree itself, and a caller that
        # mutates it (it should not) must not be able to corrupt the shared starting tree.
        self._tree = copy.deepcopy(BASE_TREE)
        self._cwd = vfs.HOME

    def _state(self) -> dict[str, Any]:
        # The tree is returned as is: the env replaces trees, never mutates them (see envs.vfs).
        return {"cwd": self._cwd, "tree": self._tree}

    def _reset_text(self, task: ShellTask) -> str:
        return (
            f"Task {task.id}:\n{task.text}\n\n"
            f"You are in {self._cwd} of a virtual file system. Send one command per step, either as a command "
            "line (e.g. `ls -a /etc`, `echo hello > notes.txt`) or as JSON "
            '(e.g. {"tool": "cat", "args": {"path": "/etc/hosts"}}). Wildcards *, ? and [...] work in command '
            "lines; pipes, chaining and subshells do not.\n"
            f"Commands: {', '.join(_NAMES)}. Run `done` when the goal is reached."
        )

    def _parse_action(self, action: Any) -> ToolCall | ToolError:
        problem = check_action_text(action)
        if problem is not None:
            return ToolError(problem)
        text = action.strip()
        if text.startswith("{"):
            try:
                payload = parse_json(text)
            except ValueError as exc:
                return ToolError(
                    f"could not parse the action as a JSON tool call ({exc}); found {excerpt(text)}; "
                    'expected e.g. {"tool": "ls", "args": {"path": "/"}} or a command line like `ls /`'
                )
            call = tool_call_from_json(payload, self.tool_specs)
            if isinstance(call, ToolError):
                return call
            if call.tool == "shell":
                text = call.args["command"].strip()
            else:
                return ToolCall(call.tool, {"invocation": invocation_from_call(call)})
        if "\n" in text:
            return ToolError(
                "send one command per step (the action has several lines)",
                text.split()[0] if text.split()[0] in _NAMES else None,
            )
        inv = parse_command_line(text)
        if isinstance(inv, ToolError):
            return inv
        return ToolCall(inv.name, {"invocation": inv})

    def _truncation_check(self) -> tuple[dict[str, Any], float]:
        # The verdict is about the tree, so a truncated episode is judged like one that ran `done`.
        return self._verdict()

    # ------------------------------------------------------------------------------- helpers

    def _verdict(self) -> tuple[dict[str, Any], float]:
        task = self._task
        assert isinstance(task, ShellTask)
        found = problems(task, self._tree)
        if not found:
            rationale = "goal met: the final file tree satisfies the task"
        else:
            listed = "; ".join(found[:_MAX_LISTED])
            more = f"; and {len(found) - _MAX_LISTED} more" if len(found) > _MAX_LISTED else ""
            rationale = f"{len(found)} problem(s) remain: {listed}{more}"
        return make_check("environment", JUDGE_ID, not found, rationale), 0.0 if found else 1.0

    def _parts(self, path: str) -> tuple[str, ...]:
        return vfs.resolve(path, self._cwd)

    def _operands(self, inv: Invocation) -> list[str]:
        """Operands with wildcards expanded (command lines only); unmatched patterns stay literal.

        Raises:
            FsError: More than :data:`MAX_OPERANDS` operands.
        """
        out = self._expand(inv)
        if len(out) > MAX_OPERANDS:
            raise FsError(f"too many operands ({len(out)}), the limit is {MAX_OPERANDS}; work in smaller batches")
        return out

    def _expand(self, inv: Invocation) -> list[str]:
        if not inv.expand:
            return list(inv.operands)
        out = []
        for i, op in enumerate(inv.operands):
            if (i == 0 and inv.name in _FIRST_NOT_PATH) or not vfs.has_magic(op):
                out.append(op)
                continue
            matches = vfs.glob(self._tree, op, self._cwd)
            if matches:
                out.extend(vfs.to_path(m) for m in matches)
            else:
                out.append(op)  # like bash without nullglob: the pattern stays literal
        return out

    def _commit(self, tree: Tree, run: _Run) -> Outcome:
        """Adopt ``tree`` unless it breaks a disk limit; keep the cwd pointing at a directory."""
        nodes, chars = vfs.size(tree)
        if nodes > MAX_TREE_NODES or chars > MAX_TREE_CHARS:
            run.errors.append(
                f"No space left on device: the virtual disk holds {MAX_TREE_NODES} entries and {MAX_TREE_CHARS} "
                "characters; nothing was changed"
            )
            return run.outcome()
        self._tree = tree
        cwd = self._parts(self._cwd)
        while not isinstance(vfs.get(tree, cwd), dict):
            cwd = cwd[:-1]
        self._cwd = vfs.to_path(cwd)
        return run.outcome()

    # ------------------------------------------------------------------------------- commands

    def _dispatch(self, args: dict[str, Any]) -> Outcome:
        inv: Invocation = args["invocation"]
        command: Callable[[Invocation], Outcome] = getattr(self, f"_cmd_{inv.name}")
        try:
            return command(inv)
        except FsError as exc:
            # Path syntax problems (too deep, name too long) surface here, shell-style.
            return failed(f"{inv.name}: {exc}")

    _tool_ls = _tool_cat = _tool_grep = _tool_find = _tool_mkdir = _tool_touch = _dispatch
    _tool_mv = _tool_cp = _tool_rm = _tool_echo = _tool_sed = _tool_pwd = _tool_cd = _dispatch
    _tool_done = _tool_submit = _tool_shell = _dispatch

    def _cmd_done(self, inv: Invocation) -> Outcome:
        check, reward = self._verdict()
        status = "goal met" if check["value"] else check["rationale"]
        return Outcome(text=f"Checked the file tree: {status}.", checks=[check], reward=reward, terminal=True)

    _cmd_submit = _cmd_done

    def _cmd_pwd(self, inv: Invocation) -> Outcome:
        return Outcome(text=self._cwd)

    def _cmd_cd(self, inv: Invocation) -> Outcome:
        ops = self._operands(inv)
        if len(ops) > 1:
            return failed("cd: too many arguments")
        target = ops[0] if ops else vfs.HOME
        node = vfs.get(self._tree, self._parts(target))
        if node is None:
            return failed(f"cd: {target}: No such file or directory")
        if not isinstance(node, dict):
            return failed(f"cd: {target}: Not a directory")
        self._cwd = vfs.to_path(self._parts(target))
        return Outcome(text=self._cwd)

    def _cmd_ls(self, inv: Invocation) -> Outcome:
        run = _Run()
        ops = self._operands(inv) or [self._cwd]
        show_all, long = "a" in inv.flags, "l" in inv.flags
        for op in ops:
            parts = self._parts(op)
            node = vfs.get(self._tree, parts)
            if node is None:
                run.errors.append(f"ls: cannot access '{op}': No such file or directory")
                continue
            if isinstance(node, str):
                run.out.append(self._entry(op, node, long))
                continue
            dirs = (
                [(p, n) for p, n in vfs.walk(node, parts) if isinstance(n, dict)]
                if "R" in inv.flags
                else [(parts, node)]
            )
            for dparts, dnode in dirs:
                if not show_all and any(name.startswith(".") for name in dparts[len(parts) :]):
                    continue
                if len(ops) > 1 or "R" in inv.flags:
                    run.out.append(f"{vfs.to_path(dparts)}:")
                assert isinstance(dnode, dict)
                names = [n for n in sorted(dnode) if show_all or not n.startswith(".")]
                run.out.extend(self._entry(n, dnode[n], long) for n in names)
        return run.outcome()

    @staticmethod
    def _entry(name: str, node: vfs.Node, long: bool) -> str:
        shown = f"{name}/" if isinstance(node, dict) else name
        if not long:
            return shown
        # Files show their length in characters, directories their number of entries.
        return f"{'d' if isinstance(node, dict) else '-'} {len(node):>6} {shown}"

    def _cmd_cat(self, inv: Invocation) -> Outcome:
        run = _Run()
        ops = self._operands(inv)
        if not ops:
            return failed("cat: missing file operand (reading stdin is not supported)")
        chunks = []
        for op in ops:
            node = vfs.get(self._tree, self._parts(op))
            if node is None:
                run.errors.append(f"cat: {op}: No such file or directory")
            elif isinstance(node, dict):
                run.errors.append(f"cat: {op}: Is a directory")
            else:
                chunks.append(node)
        text = "".join(chunks)
        if text:
            run.out.append(text[:-1] if text.endswith("\n") else text)
        return run.outcome()

    def _cmd_grep(self, inv: Invocation) -> Outcome:
        run = _Run()
        ops = self._operands(inv)
        if len(ops) < 2:
            return failed("grep: usage: grep [-r] [-i] [-n] TEXT FILE... (reading stdin is not supported)")
        pattern, paths = ops[0], ops[1:]
        recursive = bool(inv.flags & {"r", "R"})
        fold = "i" in inv.flags
        needle = pattern.lower() if fold else pattern
        targets: list[tuple[str, str]] = []
        for op in paths:
            parts = self._parts(op)
            node = vfs.get(self._tree, parts)
            if node is None:
                run.errors.append(f"grep: {op}: No such file or directory")
            elif isinstance(node, dict) and not recursive:
                run.errors.append(f"grep: {op}: Is a directory")
            else:
                targets.extend(vfs.files(node, parts).items())
        prefix = len(targets) > 1 or recursive
        for path, content in targets:
            for number, line in enumerate(content.split("\n"), start=1):
                if needle in (line.lower() if fold else line):
                    head = (f"{path}:" if prefix else "") + (f"{number}:" if "n" in inv.flags else "")
                    run.out.append(head + line)
        if not run.out and not run.errors:
            run.out.append("(no matches)")
        return run.outcome()

    def _cmd_find(self, inv: Invocation) -> Outcome:
        ops = self._operands(inv) or ["."]
        kind = inv.options.get("type")
        if kind not in (None, "f", "d"):
            return failed(f"find: -type must be f (files) or d (directories), found {excerpt(kind)}")
        pattern = inv.options.get("name")
        run = _Run()
        for op in ops:
            parts = self._parts(op)
            node = vfs.get(self._tree, parts)
            if node is None:
                run.errors.append(f"find: '{op}': No such file or directory")
                continue
            for p, n in vfs.walk(node, parts):
                if (kind == "f" and not isinstance(n, str)) or (kind == "d" and not isinstance(n, dict)):
                    continue
                if pattern is not None and not fnmatch.fnmatchcase(p[-1] if p else "/", pattern):
                    continue
                run.out.append(vfs.to_path(p))
        return run.outcome()

    def _cmd_mkdir(self, inv: Invocation) -> Outcome:
        run = _Run()
        ops = self._operands(inv)
        if not ops:
            return failed("mkdir: missing operand")
        tree = self._tree
        for op in ops:
            parts = self._parts(op)
            if "p" in inv.flags:
                for i in range(1, len(parts) + 1):
                    node = vfs.get(tree, parts[:i])
                    if node is None:
                        tree = vfs.put(tree, parts[:i], {})
                    elif isinstance(node, str):
                        run.errors.append(f"mkdir: cannot create directory '{op}': Not a directory")
                        break
                continue
            if vfs.get(tree, parts) is not None:
                run.errors.append(f"mkdir: cannot create directory '{op}': File exists")
            elif not isinstance(vfs.get(tree, parts[:-1]), dict):
                run.errors.append(f"mkdir: cannot create directory '{op}': No such file or directory")
            else:
                tree = vfs.put(tree, parts, {})
        return self._commit(tree, run)

    def _cmd_touch(self, inv: Invocation) -> Outcome:
        run = _Run()
        ops = self._operands(inv)
        if not ops:
            return failed("touch: missing file operand")
        tree = self._tree
        for op in ops:
            parts = self._parts(op)
            if not parts or vfs.get(tree, parts) is not None:
                continue  # no timestamps here, so touching something that exists changes nothing
            if not isinstance(vfs.get(tree, parts[:-1]), dict):
                run.errors.append(f"touch: cannot touch '{op}': No such file or directory")
            else:
                tree = vfs.put(tree, parts, "")
        return self._commit(tree, run)

    def _cmd_rm(self, inv: Invocation) -> Outcome:
        run = _Run()
        ops = self._operands(inv)
        if not ops:
            return failed("rm: missing operand")
        recursive, force = bool(inv.flags & {"r", "R"}), "f" in inv.flags
        tree = self._tree
        for op in ops:
            parts = self._parts(op)
            node = vfs.get(tree, parts)
            if not parts:
                run.errors.append("rm: it is dangerous to operate recursively on '/'; refusing")
            elif node is None:
                if not force:
                    run.errors.append(f"rm: cannot remove '{op}': No such file or directory")
            elif isinstance(node, dict) and not recursive:
                run.errors.append(f"rm: cannot remove '{op}': Is a directory")
            else:
                tree = vfs.remove(tree, parts)
        return self._commit(tree, run)

    def _cmd_mv(self, inv: Invocation) -> Outcome:
        return self._transfer(inv, copy=False)

    def _cmd_cp(self, inv: Invocation) -> Outcome:
        return self._transfer(inv, copy=True)

    def _transfer(self, inv: Invocation, *, copy: bool) -> Outcome:
        name, verb = inv.name, "copy" if copy else "move"
        ops = self._operands(inv)
        if len(ops) < 2:
            return failed(f"{name}: missing destination operand (usage: {name} SRC... DST)")
        srcs, dst = ops[:-1], ops[-1]
        dst_parts = self._parts(dst)
        tree = self._tree
        if len(srcs) > 1 and not isinstance(vfs.get(tree, dst_parts), dict):
            return failed(f"{name}: target '{dst}' is not a directory")
        run = _Run()
        for src in srcs:
            src_parts = self._parts(src)
            node = vfs.get(tree, src_parts)
            if node is None:
                run.errors.append(f"{name}: cannot stat '{src}': No such file or directory")
                continue
            if not src_parts:
                run.errors.append(f"{name}: cannot {verb} '/'")
                continue
            if copy and isinstance(node, dict) and not inv.flags & {"r", "R"}:
                run.errors.append(f"cp: -r not specified; omitting directory '{src}'")
                continue
            if isinstance(vfs.get(tree, dst_parts), dict):
                target = (*dst_parts, src_parts[-1])
            elif dst.endswith("/"):
                run.errors.append(f"{name}: cannot {verb} '{src}' to '{dst}': Not a directory")
                continue
            else:
                target = dst_parts
            if target == src_parts:
                run.errors.append(f"{name}: '{src}' and '{vfs.to_path(target)}' are the same file")
                continue
            if target[: len(src_parts)] == src_parts:
                run.errors.append(f"{name}: cannot {verb} '{src}' to a subdirectory of itself, '{vfs.to_path(target)}'")
                continue
            existing = vfs.get(tree, target)
            if isinstance(existing, dict):
                run.errors.append(f"{name}: cannot overwrite directory '{vfs.to_path(target)}'")
                continue
            if isinstance(existing, str) and isinstance(node, dict):
                run.errors.append(
                    f"{name}: cannot overwrite non-directory '{vfs.to_path(target)}' with directory '{src}'"
                )
                continue
            if not isinstance(vfs.get(tree, target[:-1]), dict):
                run.errors.append(f"{name}: cannot {verb} '{src}' to '{dst}': No such file or directory")
                continue
            # Sharing the subtree between source and copy is safe: trees are never mutated.
            tree = vfs.put(tree, target, node)
            if not copy:
                tree = vfs.remove(tree, src_parts)
        return self._commit(tree, run)

    def _cmd_echo(self, inv: Invocation) -> Outcome:
        text = " ".join(inv.operands) + "\n"
        if inv.redirect is None:
            return Outcome(text=text[:-1])
        mode, path = inv.redirect
        parts = self._parts(path)
        node = vfs.get(self._tree, parts)
        if isinstance(node, dict) or not parts:
            return failed(f"echo: {path}: Is a directory")
        if not isinstance(vfs.get(self._tree, parts[:-1]), dict):
            return failed(f"echo: {path}: No such file or directory")
        new = (node or "") + text if mode == ">>" else text
        if len(new) > MAX_FILE_CHARS:
            return failed(f"echo: {path}: File too large: {len(new)} characters, the limit is {MAX_FILE_CHARS}")
        return self._commit(vfs.put(self._tree, parts, new), _Run())

    def _cmd_sed(self, inv: Invocation) -> Outcome:
        ops = self._operands(inv)
        if len(ops) < 2:
            return failed("sed: usage: sed [-i] 's/OLD/NEW/[g]' FILE... (reading stdin is not supported)")
        parsed = _parse_substitution(ops[0])
        if isinstance(parsed, str):
            return failed(parsed)
        old, new, count = parsed
        run = _Run()
        tree = self._tree
        for op in ops[1:]:
            parts = self._parts(op)
            node = vfs.get(tree, parts)
            if node is None:
                run.errors.append(f"sed: can't read {op}: No such file or directory")
                continue
            if isinstance(node, dict):
                run.errors.append(f"sed: couldn't edit {op}: not a regular file")
                continue
            result = "\n".join(line.replace(old, new, count) for line in node.split("\n"))
            if len(result) > MAX_FILE_CHARS:
                run.errors.append(f"sed: {op}: File too large: the limit is {MAX_FILE_CHARS} characters")
            elif "i" in inv.flags:
                tree = vfs.put(tree, parts, result)
            else:
                run.out.append(result[:-1] if result.endswith("\n") else result)
        return self._commit(tree, run)


def _parse_substitution(expr: str) -> tuple[str, str, int] | str:
    """Parse ``s/OLD/NEW/[g]`` (any delimiter; ``\\`` escapes it) into (old, new, count) or an error."""
    if len(expr) < 2 or expr[0] != "s":
        return f"sed: unknown command in {excerpt(expr)}; only substitutions like 's/OLD/NEW/' are supported"
    delim = expr[1]
    if delim.isalnum() or delim in "\\\n ":
        return f"sed: bad delimiter {delim!r} in {excerpt(expr)}; use e.g. 's/OLD/NEW/'"
    fields, current, i = [], [], 2
    while i < len(expr):
        ch = expr[i]
        if ch == "\\" and i + 1 < len(expr) and expr[i + 1] == delim:
            current.append(delim)
            i += 2
            continue
        if ch == delim:
            fields.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    fields.append("".join(current))
    if len(fields) != 3:
        return f"sed: unterminated `s' command in {excerpt(expr)}; expected 's/OLD/NEW/' with three delimiters"
    old, new, flags = fields
    if not old:
        return "sed: the text to replace is empty"
    if flags not in ("", "g"):
        return f"sed: unknown option to `s': {excerpt(flags)}; only 'g' is supported"
    return old, new, -1 if flags == "g" else 1
