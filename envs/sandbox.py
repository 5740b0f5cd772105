"""Running a small project's unittest suite in a limited child process.

:class:`Sandbox` writes the files to a private temp dir and runs ``python -S -B -c BOOTSTRAP``
there with a wall-clock timeout, ``setrlimit`` limits (CPU seconds, address space, file size, no
core files), a minimal environment, ``PYTHONHASHSEED=0`` and sockets disabled. The bootstrap runs
``unittest`` discovery with a result class that rewrites a JSON report after every test, so a
timeout still says which tests passed and which one hung.

Everything handed back is path-free and time-free: temp paths are scrubbed from messages and
memory addresses masked, because a recorded episode is replayed later and compared step by step.
This is a guard rail against accidents (runaway loops, stray network calls), not a security boundary
against hostile code.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The child's message for any socket use.
NETWORK_DISABLED = "network disabled in trajrec sandbox"

# The child program. It never prints the report: tests may write anything to stdout/stderr.
BOOTSTRAP = r"""
import json, os, re, socket, sys, traceback, unittest, unittest.util

# unittest abbreviates long values in assertion messages ("/tmp/abc[43 chars]work"), which would
# leave half a temp path that _scrub cannot recognise; the messages are cut to 300 chars anyway.
unittest.util._MAX_LENGTH = 1 << 20

REPORT = sys.argv[1]
ROOT = os.getcwd()

def _network_disabled(*args, **kwargs):
    raise OSError("network disabled in trajrec sandbox")

socket.socket = _network_disabled
socket.create_connection = _network_disabled
sys.path.insert(0, ROOT)

_FILE_LINE = re.compile(r'File "([^"]+)", line (\d+)')

def _scrub(text):
    text = text.replace(ROOT + os.sep, "").replace(ROOT, ".")
    return re.sub(r"0x[0-9a-fA-F]{6,}", "0x?", text)

def _is_project_file(filename):
    # "<string>" is this bootstrap; only the project's own files make a useful location.
    return not filename.startswith("<") and os.path.abspath(filename).startswith(ROOT + os.sep)

def _describe(err):
    etype, value, tb = err
    text = str(value)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if text.startswith("Failed to import test module"):
        message = lines[-1]  # the loader wraps the real error's traceback; its last line names it
    else:
        # The first line: assertEqual on lists puts a summary first and a diff after it.
        message = etype.__name__ + (": " + lines[0] if lines else "")
    where = None
    for match in _FILE_LINE.finditer(text):
        if _is_project_file(match.group(1)):
            where = (match.group(1), match.group(2))
    for frame in traceback.extract_tb(tb):
        if _is_project_file(frame.filename):
            where = (frame.filename, frame.lineno)
    if where is not None:
        message += " (%s:%s)" % (os.path.relpath(os.path.abspath(where[0]), ROOT), where[1])
    return _scrub(message)[:300]

def _test_id(test):
    test_id = test.id()
    if test_id.startswith("unittest.loader._FailedTest."):
        return test_id.rsplit(".", 1)[1] + " (import)"
    return test_id

class Report(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.tests = {}
        self.running = None

    def _set(self, test, verdict, err=None):
        entry = {"verdict": verdict}
        if err is not None:
            entry["message"] = _describe(err)
        self.tests[_test_id(test)] = entry

    def startTest(self, test):
        super().startTest(test)
        self.running = _test_id(test)
        self.dump(False)

    def stopTest(self, test):
        super().stopTest(test)
        self.running = None
        self.dump(False)

    def addSuccess(self, test):
        self._set(test, "pass")

    def addFailure(self, test, err):
        self._set(test, "fail", err)

    def addError(self, test, err):
        self._set(test, "error", err)

    def addSkip(self, test, reason):
        self.tests[_test_id(test)] = {"verdict": "skip", "message": _scrub(str(reason))[:300]}

    def addExpectedFailure(self, test, err):
        self._set(test, "pass")

    def addUnexpectedSuccess(self, test):
        self.tests[_test_id(test)] = {"verdict": "fail", "message": "unexpected success"}

    def addSubTest(self, test, subtest, err):
        if err is not None:
            verdict = "fail" if issubclass(err[0], test.failureException) else "error"
            self._set(test, verdict, err)

    def dump(self, finished):
        tmp = REPORT + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"tests": self.tests, "running": self.running, "finished": finished}, fh)
        os.replace(tmp, REPORT)

report = Report()
report.dump(False)
suite = unittest.defaultTestLoader.discover(ROOT, pattern="test*.py", top_level_dir=ROOT)
suite.run(report)
report.dump(True)
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)  # skip interpreter teardown: stray non-daemon threads must not keep the run alive
"""

_VERDICTS = ("pass", "fail", "error", "skip")


@dataclass(frozen=True)
class TestReport:
    """The outcome of one test run.

    Attributes:
        verdicts: Test id -> ``"pass"``, ``"fail"``, ``"error"`` or ``"skip"``, sorted by id.
        messages: Test id -> a one-line reason for tests that did not pass.
        timeout: The wall-clock limit used, in seconds.
        timed_out: The run hit the time (or CPU) limit.
        crashed: Why the run ended without a complete report, when it did (and did not time out).
        running: The test that was running when the run was stopped.
    """

    __test__ = False  # keep pytest from collecting this as a test class

    verdicts: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    timed_out: bool = False
    crashed: str | None = None
    running: str | None = None

    @property
    def passed(self) -> int:
        """Number of passing tests."""
        return sum(v == "pass" for v in self.verdicts.values())

    @property
    def total(self) -> int:
        """Number of tests that ran and were not skipped."""
        return sum(v != "skip" for v in self.verdicts.values())

    @property
    def ok(self) -> bool:
        """True when the run finished and every test (at least one) passed."""
        return not self.timed_out and self.crashed is None and self.total > 0 and self.passed == self.total

    def summary(self) -> str:
        """One sentence for a check rationale, e.g. ``7/8 tests passed: TestMean.test_single failed (...)``."""
        if self.timed_out:
            where = f" while running {_short(self.running)}" if self.running else ""
            return f"tests timed out after {self.timeout:.1f} s{where}; {self.passed} passed before the timeout"
        if self.crashed is not None:
            return f"test run crashed: {self.crashed}; {self.passed}/{self.total} tests passed before it"
        if self.total == 0:
            return "no tests ran; test files must be named test*.py and define unittest.TestCase classes"
        head = f"{self.passed}/{self.total} tests passed"
        bad = [(t, v) for t, v in self.verdicts.items() if v in ("fail", "error")]
        if not bad:
            return head
        first, verdict = bad[0]
        reason = self.messages.get(first)
        detail = f" ({reason})" if reason else ""
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        return f"{head}: {_short(first)} {'failed' if verdict == 'fail' else 'errored'}{detail}{more}"

    def details(self) -> str:
        """Multi-line observation text: a headline, then one line per test."""
        if self.timed_out:
            head = f"tests timed out after {self.timeout:.1f} s" + (
                f" while running {_short(self.running)}" if self.running else ""
            )
        elif self.crashed is not None:
            head = f"test run crashed: {self.crashed}"
        else:
            counts = {v: sum(x == v for x in self.verdicts.values()) for v in _VERDICTS}
            parts = [f"{counts['pass']} passed"] + [
                f"{counts[v]} {label}"
                for v, label in (("fail", "failed"), ("error", "errored"), ("skip", "skipped"))
                if counts[v]
            ]
            noun = "test" if self.total == 1 else "tests"
            head = f"Ran {self.total} {noun}: {', '.join(parts)}" if self.verdicts else self.summary()
        lines = [head]
        for test_id, verdict in self.verdicts.items():
            label = {"pass": "ok   ", "fail": "FAIL ", "error": "ERROR", "skip": "skip "}[verdict]
            reason = self.messages.get(test_id)
            lines.append(f"{label} {_short(test_id)}" + (f": {reason}" if reason and verdict != "pass" else ""))
        return "\n".join(lines)


def _short(test_id: str | None) -> str:
    """``test_stats.TestMean.test_single`` -> ``TestMean.test_single``."""
    if not test_id:
        return "?"
    parts = test_id.split(".")
    return ".".join(parts[1:]) if len(parts) >= 3 else test_id


class Sandbox:
    """A private temp dir in which a set of files is written and its unittest suite run.

    The dir is created on the first run and removed by :meth:`close` (or when the object is
    garbage-collected). Each run starts from a clean copy of the files.

    Args:
        memory_bytes: Address-space limit for the child.
        file_bytes: Largest file the child may write.

    >>> box = Sandbox()
    >>> files = {"test_one.py": "import unittest\\nclass T(unittest.TestCase):\\n    def test_ok(self):\\n        pass\\n"}
    >>> box.run_tests(files, timeout=10.0).summary()
    '1/1 tests passed'
    >>> box.close()
    """

    def __init__(self, *, memory_bytes: int = 1 << 30, file_bytes: int = 16 << 20) -> None:
        self.memory_bytes = memory_bytes
        self.file_bytes = file_bytes
        self._root: Path | None = None
        self._finalizer: weakref.finalize[..., Any] | None = None

    def run_tests(self, files: Mapping[str, str], *, timeout: float) -> TestReport:
        """Write ``files`` (relative path -> text) to a clean dir and run their tests.

        Args:
            files: The project; test modules are found by ``test*.py`` discovery.
            timeout: Wall-clock seconds before the child's process group is killed.

        Returns:
            The report. Timeouts and crashes are reported, never raised.
        """
        root = self._ensure_root()
        work, report_path, log_path = root / "work", root / "report.json", root / "output.log"
        if work.exists():
            shutil.rmtree(work)
        work.mkdir()
        (root / "tmp").mkdir(exist_ok=True)
        report_path.unlink(missing_ok=True)
        for rel, text in files.items():
            target = work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")

        env = {
            "PATH": os.defpath,
            "HOME": str(work),
            "TMPDIR": str(root / "tmp"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PYTHONHASHSEED": "0",  # set and dict order must not vary between a run and its replay
            "PYTHONIOENCODING": "utf-8",
        }
        cmd = [sys.executable, "-S", "-B", "-c", BOOTSTRAP, str(report_path)]
        timed_out = False
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_limiter(math.ceil(timeout) + 1, self.memory_bytes, self.file_bytes),
                start_new_session=True,
                close_fds=True,
            )
            try:
                _wait_for_exit(proc, timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                # Kill the whole group: tests may have started children of their own.
                _kill_group(proc.pid)
                proc.wait()
        if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL) and not timed_out:
            timed_out = True  # the CPU limit is the same verdict as the wall clock, worded the same way
        return self._read_report(report_path, log_path, root, proc.returncode, timeout, timed_out)

    def close(self) -> None:
        """Remove the temp dir. Safe to call more than once."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._root = None

    def _ensure_root(self) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="trajrec-code-"))
            # ignore_errors: a test may leave unreadable files; a leftover temp dir is the lesser harm.
            self._finalizer = weakref.finalize(self, shutil.rmtree, str(self._root), True)
        return self._root

    def _read_report(
        self, report_path: Path, log_path: Path, root: Path, returncode: int, timeout: float, timed_out: bool
    ) -> TestReport:
        data: Any = {}
        if report_path.exists():
            try:
                data = json.loads(report_path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                data = {}  # killed mid-write; the previous complete report was replaced atomically, so rare
        if not isinstance(data, dict):
            data = {}  # the child can write anything there; only a well-formed report counts
        raw_tests = data.get("tests")
        tests: dict[str, Any] = raw_tests if isinstance(raw_tests, dict) else {}
        verdicts, messages = {}, {}
        for test_id in sorted(tests):
            entry = tests[test_id]
            verdict = entry.get("verdict") if isinstance(entry, dict) else None
            if verdict not in _VERDICTS:
                continue
            verdicts[test_id] = verdict
            if entry.get("message"):
                messages[test_id] = _scrub(str(entry["message"]), root)
        running = data.get("running") if isinstance(data.get("running"), str) else None
        crashed = None
        if not timed_out and not data.get("finished"):
            crashed = f"the test process exited with code {returncode} before finishing"
            if running:
                crashed += f" (while running {_short(running)})"
            tail = _tail(log_path)
            if tail:
                crashed += f"; last output: {_scrub(tail, root)}"
        return TestReport(
            verdicts, messages, float(timeout), timed_out, crashed, running if (timed_out or crashed) else None
        )


def _limiter(cpu_seconds: int, memory_bytes: int, file_bytes: int) -> Callable[[], None]:
    import resource  # Unix only; imported here so the module itself imports anywhere

    wanted = {
        resource.RLIMIT_CPU: cpu_seconds,
        resource.RLIMIT_AS: memory_bytes,
        resource.RLIMIT_FSIZE: file_bytes,
        resource.RLIMIT_CORE: 0,
    }
    # Clamp to the current hard limits here, in the parent: a failing setrlimit inside preexec_fn
    # only surfaces as an opaque SubprocessError.
    limits = {}
    for res, value in wanted.items():
        _, hard = resource.getrlimit(res)
        limit = value if hard == resource.RLIM_INFINITY else min(value, hard)
        limits[res] = (limit, limit if res != resource.RLIMIT_CPU or limit == hard else limit + 1)

    def apply() -> None:
        for res, pair in limits.items():
            resource.setrlimit(res, pair)

    return apply


def _wait_for_exit(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for ``proc`` to exit, waking as it does.

    ``Popen.wait(timeout=...)`` polls with sleeps that grow to 50 ms, so a check that takes 60 ms was returned
    after up to 110. On Linux a pidfd (``os.pidfd_open``, Linux >= 5.3) becomes readable when the child exits;
    elsewhere ``Popen.wait`` is used as it is.

    Args:
        proc: The child, not yet waited for (it is not reaped here: the caller's ``proc.wait()`` does that).
        timeout: Seconds of wall clock.

    Raises:
        subprocess.TimeoutExpired: The child was still running after ``timeout`` seconds.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux, an old kernel, or a sandbox that forbids the call
        proc.wait(timeout=timeout)
        return
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)  # PEP 475: retried on EINTR with the time left
    finally:
        os.close(pidfd)
    if not ready:
        raise subprocess.TimeoutExpired(proc.args, timeout)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already gone
        os.killpg(pid, signal.SIGKILL)


def _tail(path: Path, limit: int = 300) -> str:
    try:
        data = path.read_bytes()[-limit:]
    except OSError:
        return ""
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _scrub(text: str, root: Path) -> str:
    for base in {str(root), os.path.realpath(root)}:
        text = text.replace(os.path.join(base, "work") + os.sep, "").replace(base, "<sandbox>")
    text = re.sub(r"trajrec-code-\w+", "<sandbox>", text)
    return re.sub(r"0x[0-9a-fA-F]{6,}", "0x?", text)
