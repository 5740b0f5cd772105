"""``trajrec/CodeRepair-v0``: fix a bug in a small Python module so its unittest suite passes.

Tools: ``list_files {}``, ``read_file {"path"}``, ``edit {"path", "start", "end", "text"}``
(replace lines ``start..end``, 1-based and inclusive), ``run_tests {}`` and ``submit {}``.
Tests really run, in a limited child process (see :mod:`trajrec.envs.sandbox`); ``run_tests`` and
``submit`` produce rule checks by ``unittest@py3``. ``submit`` runs the task's *original* test
files against the edited module, so rewriting the tests does not pass a task.

The files live in memory (they are the env state); each test run writes them to a fresh sandbox
dir, which is removed on ``reset`` and ``close``. No temp path or timing ever reaches an
observation, info or state.
"""

from __future__ import annotations

from typing import Any, ClassVar

from trajrec.envs._base import Outcome, ToolEnv, failed
from trajrec.envs._tools import ToolSpec, did_you_mean, make_check
from trajrec.envs.code_tasks import TASKS, CodeTask
from trajrec.envs.sandbox import Sandbox, TestReport

JUDGE_ID = "unittest@py3"
#: Largest file an edit may produce, in characters (keeps observations and state small).
MAX_FILE_CHARS = 20_000
#: Lines of context shown around an edit.
_CONTEXT = 2


def _numbered(lines: list[str], start: int, stop: int) -> str:
    """Lines ``start..stop`` (1-based, inclusive) with right-aligned line numbers."""
    width = len(str(max(stop, 1)))
    return "\n".join(f"{n:>{width}} | {lines[n - 1]}" for n in range(start, stop + 1))


def _lines(text: str) -> list[str]:
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


class CodeRepairEnv(ToolEnv):
    """Repair a buggy module: read it, edit it, run its tests, submit.

    Args:
        max_steps: Steps after which the episode is truncated.
        timeout: Wall-clock seconds a test run may take before it is killed.
        memory_mb: Address-space limit of the test process, in MiB.
        render_mode: Only None.

    >>> env = CodeRepairEnv()
    >>> obs, info = env.reset(options={"task_id": "code-stats-1"})
    >>> obs, reward, terminated, truncated, info = env.step('{"tool": "run_tests", "args": {}}')
    >>> info["checks"][0]["rationale"][:19]
    '4/8 tests passed: T'
    >>> fix = '{"tool": "edit", "args": {"path": "stats.py", "start": 8, "end": 8, "text": "    return sum(values) / len(values)"}}'
    >>> _ = env.step(fix)
    >>> obs, reward, terminated, truncated, info = env.step('{"tool": "submit", "args": {}}')
    >>> reward, info["checks"][0]["value"], info["checks"][0]["judge"]
    (1.0, True, 'unittest@py3')
    >>> env.close()
    """

    env_id: ClassVar[str] = "trajrec/CodeRepair-v0"
    tasks: ClassVar[tuple[CodeTask, ...]] = TASKS
    verification: ClassVar[str] = "rule"
    tool_specs: ClassVar[tuple[ToolSpec, ...]] = (
        ToolSpec("list_files", "List the project's files with their line counts.", {}, ()),
        ToolSpec(
            "read_file",
            "Show a file with line numbers.",
            {"path": {"type": "string", "minLength": 1, "maxLength": 200, "description": "e.g. stats.py"}},
            ("path",),
        ),
        ToolSpec(
            "edit",
            "Replace lines start..end (1-based, inclusive) of a file with text. "
            "end = start - 1 inserts before line start; empty text deletes the lines.",
            {
                "path": {"type": "string", "minLength": 1, "maxLength": 200},
                "start": {"type": "integer", "minimum": 1, "description": "first line to replace"},
                "end": {"type": "integer", "minimum": 0, "description": "last line to replace"},
                "text": {"type": "string", "description": "the new lines, newline-separated"},
            },
            ("path", "start", "end", "text"),
        ),
        ToolSpec("run_tests", "Run the unittest suite and show each test's verdict.", {}, ()),
        ToolSpec("submit", "Submit the fix; the original tests are run once more. Ends the episode.", {}, ()),
    )

    def __init__(
        self,
        *,
        max_steps: int = 30,
        timeout: float = 10.0,
        memory_mb: int = 1024,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(max_steps=max_steps, render_mode=render_mode)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 600:
            raise ValueError(f"timeout must be a number of seconds in (0, 600], found {timeout!r}; e.g. timeout=10.0")
        if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or memory_mb < 64:
            raise ValueError(f"memory_mb must be an int >= 64, found {memory_mb!r}; e.g. memory_mb=1024")
        self.timeout = float(timeout)
        self.memory_mb = memory_mb
        self._sandbox = Sandbox(memory_bytes=memory_mb << 20)
        self._files: dict[str, str] = {}
        self._last_run: dict[str, Any] | None = None
        self._test_runs = 0
        self._edits = 0

    def close(self) -> None:
        """Remove the sandbox dir. Safe to call more than once."""
        self._sandbox.close()
        super().close()

    # ------------------------------------------------------------------------------- hooks

    def _begin(self, task: CodeTask) -> None:
        self._sandbox.close()  # the previous episode's dir goes; a new one is made on the first run
        self._files = dict(task.files)
        self._last_run = None
        self._test_runs = 0
        self._edits = 0

    def _state(self) -> dict[str, Any]:
        return {
            "files": dict(self._files),
            "edits": self._edits,
            "test_runs": self._test_runs,
            "last_test_run": self._last_run,
        }

    def _truncation_check(self) -> tuple[dict[str, Any], float]:
        return make_check("environment", "step-limit@1", False, f"no submission within {self.max_steps} steps"), 0.0

    # ------------------------------------------------------------------------------- tools

    def _tool_list_files(self, args: dict[str, Any]) -> Outcome:
        rows = [f"{path}  ({len(_lines(text))} lines)" for path, text in sorted(self._files.items())]
        return Outcome(text="\n".join(rows))

    def _tool_read_file(self, args: dict[str, Any]) -> Outcome:
        path, problem = self._existing(args["path"], "read_file")
        if problem:
            return failed(problem)
        lines = _lines(self._files[path])
        body = _numbered(lines, 1, len(lines)) if lines else "(empty file)"
        return Outcome(text=f"{path} ({len(lines)} lines):\n{body}")

    def _tool_edit(self, args: dict[str, Any]) -> Outcome:
        path, problem = self._existing(args["path"], "edit")
        if problem:
            return failed(problem)
        lines = _lines(self._files[path])
        start, end, n = args["start"], args["end"], len(lines)
        if not 1 <= start <= n + 1:
            return failed(f"edit: start must be between 1 and {n + 1} ({path} has {n} lines), found {start}")
        if not start - 1 <= end <= n:
            return failed(f"edit: end must be between {start - 1} (insert) and {n} ({path} has {n} lines), found {end}")
        new_lines = _lines(args["text"]) if args["text"] else []
        updated = lines[: start - 1] + new_lines + lines[end:]
        text = "\n".join(updated) + "\n" if updated else ""
        if len(text) > MAX_FILE_CHARS:
            return failed(f"edit: {path} would grow to {len(text)} characters, the limit is {MAX_FILE_CHARS}")
        # Copy-on-write: state dicts already handed out keep the old contents.
        self._files = {**self._files, path: text}
        self._edits += 1
        shown_from = max(1, start - _CONTEXT)
        shown_to = min(len(updated), start + len(new_lines) - 1 + _CONTEXT)
        replaced = f"lines {start}-{end}" if end >= start else f"nothing (insert before line {start})"
        view = _numbered(updated, shown_from, shown_to) if shown_to >= shown_from else "(file is now empty)"
        return Outcome(text=f"Edited {path}: replaced {replaced} with {len(new_lines)} line(s). Now:\n{view}")

    def _tool_run_tests(self, args: dict[str, Any]) -> Outcome:
        report = self._run(self._files)
        check = make_check("rule", JUDGE_ID, report.ok, report.summary(), target="step")
        outcome = Outcome(text=report.details(), checks=[check], info={"tests": dict(report.verdicts)})
        if report.timed_out or report.crashed:
            outcome.error = report.summary()
        return outcome

    def _tool_submit(self, args: dict[str, Any]) -> Outcome:
        task = self._task
        assert isinstance(task, CodeTask)
        # Grade with the original tests: an edited test file must not be able to pass the task.
        files = {**self._files, task.tests: task.files[task.tests]}
        report = self._run(files)
        check = make_check("rule", JUDGE_ID, report.ok, report.summary())
        verdict = "accepted" if report.ok else "rejected"
        text = f"Submission {verdict} (original tests): {report.summary()}\n{report.details()}"
        return Outcome(
            text=text,
            error=report.summary() if report.timed_out or report.crashed else None,
            checks=[check],
            reward=1.0 if report.ok else 0.0,
            terminal=True,
            info={"tests": dict(report.verdicts)},
        )

    # ------------------------------------------------------------------------------- helpers

    def _existing(self, raw: str, tool: str) -> tuple[str, str | None]:
        path = raw[2:] if raw.startswith("./") else raw
        if path in self._files:
            return path, None
        files = sorted(self._files)
        return path, f"{tool}: no such file {path!r}{did_you_mean(path, files)}; files: {', '.join(files)}"

    def _run(self, files: dict[str, str]) -> TestReport:
        report = self._sandbox.run_tests(files, timeout=self.timeout)
        self._test_runs += 1
        self._last_run = {
            "passed": report.passed,
            "total": report.total,
            "timed_out": report.timed_out,
            "crashed": report.crashed is not None,
            "verdicts": dict(report.verdicts),
        }
        return report
