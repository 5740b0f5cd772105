"""Recording many episodes, in this process or in worker processes (used by ``trajrec record`` and ``demo``)."""

from __future__ import annotations

import contextlib
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from trajrec.recorder.errors import AgentError, TrajrecError, TrajrecIOError, TrajrecUsageError


@dataclass(frozen=True)
class Job:
    env_id: str
    out: str
    agent: str = "scripted"
    skill: float = 0.6
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    run_id: str | None = None
    # The openai agent's model and server (see trajrec.openai_agent.OpenAIAgentConfig); pairs keep Job hashable.
    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    sampling: tuple[tuple[str, Any], ...] = ()
    prices: tuple[tuple[str, float], ...] = ()
    request_timeout: float = 60.0
    retries: int = 3
    # ``module:EnvId`` (Gymnasium's form): the module to import first, in every process, to register the env.
    env_module: str | None = None


_WORKER: dict[Job, Any] = {}  # one Recorder per job in each worker process


def split_env_id(env_id: str) -> tuple[str | None, str]:
    """``"module:EnvId"`` (Gymnasium's form) as ``("module", "EnvId")``; a plain id as ``(None, id)``.

    >>> split_env_id("myenvs.kv:KV-v0"), split_env_id("trajrec/MathCalc-v0")
    (('myenvs.kv', 'KV-v0'), (None, 'trajrec/MathCalc-v0'))
    """
    module, sep, name = env_id.partition(":")
    return (module, name) if sep and module and name else (None, env_id)


def import_env_module(job: Job) -> None:
    """Import ``job.env_module`` (which registers the env, as ``gymnasium.make("module:EnvId")`` would), from
    ``sys.path`` and the current folder.

    Raises:
        TrajrecUsageError: the module cannot be imported, naming it and the fix.
    """
    if not job.env_module:
        return
    import importlib

    here = os.getcwd()
    if "" not in sys.path and here not in sys.path:
        sys.path.append(here)  # as `python -m` would: a module beside you imports (last, so it shadows nothing)
    try:
        importlib.import_module(job.env_module)
    except ModuleNotFoundError as exc:
        raise TrajrecUsageError(
            f"cannot import module {job.env_module!r} (from {job.env_module}:{job.env_id}): {exc}; run from the "
            "folder that holds it, add that folder to PYTHONPATH or pip install its package") from exc
    except Exception as exc:  # noqa: BLE001  (the user's module raised while importing)
        raise TrajrecUsageError(f"importing module {job.env_module!r} (from {job.env_module}:{job.env_id}) raised "
                                f"{type(exc).__name__}: {exc}") from exc


def _make_recorder(job: Job) -> Any:
    import gymnasium as gym
    from trajrec import envs  # noqa: F401  (registers trajrec/* ids)
    from trajrec.recorder import Recorder

    import_env_module(job)
    if job.env_id not in gym.registry:
        if job.env_module:
            raise TrajrecUsageError(f"module {job.env_module!r} was imported but registered no env with id "
                                    f"{job.env_id!r}; it must call gymnasium.register(id={job.env_id!r}, ...)")
        import difflib

        # One suggestion, ours: gymnasium's own message has one too, and several guesses read as noise.
        near = difflib.get_close_matches(job.env_id, sorted(gym.registry), n=1, cutoff=0.75)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise TrajrecUsageError(f"no env with id {job.env_id!r}; {hint}(`trajrec envs` lists the built-in ones)")
    try:
        base = gym.make(job.env_id, **dict(job.env_kwargs))
    except gym.error.Error as exc:
        raise TrajrecUsageError(f"cannot make env {job.env_id!r}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        # A --kwarg the constructor does not take, or a value it refuses (wrong type, out of range).
        reason = str(exc).split(" was raised from the environment creator")[0]
        if not job.env_kwargs:
            raise TrajrecUsageError(f"cannot make env {job.env_id!r}: {type(exc).__name__}: {reason}") from exc
        given = ", ".join(f"{k}={v!r}" for k, v in job.env_kwargs)
        raise TrajrecUsageError(f"cannot make env {job.env_id!r} with the --kwarg values given ({given}): {reason}; "
                                "fix or drop the --kwarg") from exc
    return Recorder(base, job.out, run_id=job.run_id)


def _agent_for(job: Job, env: Any, seed: int) -> Any:
    if job.agent == "random":
        return RandomAgent(env, seed)
    if job.agent == "openai":
        from trajrec.openai_agent import OpenAIAgentConfig, OpenAIToolAgent

        if not job.model:
            raise TrajrecUsageError("--agent openai needs --model M (the model id the server knows)")
        config = OpenAIAgentConfig(model=job.model, base_url=job.base_url, api_key=os.environ.get(job.api_key_env),
                                   sampling=dict(job.sampling), timeout=job.request_timeout, retries=job.retries,
                                   prices=dict(job.prices) or None)
        return OpenAIToolAgent(config)
    from trajrec.envs.agents import make_agent

    try:
        return make_agent(job.env_id, seed=seed, skill=job.skill)
    except ValueError as exc:
        raise TrajrecUsageError(f"{exc}; use --agent random for envs without a scripted agent") from exc


class RandomAgent:
    """Samples the action space: the baseline agent for any env."""

    def __init__(self, env: Any, seed: int) -> None:
        self.space = env.action_space
        self.space.seed(seed)

    def reset(self, observation: Any, info: dict[str, Any]) -> None:
        pass

    def act(self, observation: Any, info: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        return self.space.sample(), {}


def record_one(job: Job, seed: int, recorder: Any = None) -> dict[str, Any]:
    """Record one episode of ``job`` with ``seed``; returns its summary plus ``path`` and ``seed``."""
    from trajrec.envs.runner import run_episode

    env = recorder if recorder is not None else _worker_recorder(job)
    agent = _agent_for(job, env, seed)
    if job.agent == "openai":
        env.agent = {**agent.describe(), "class": type(agent).__qualname__, "seed": seed}
    else:
        env.agent = {"name": job.agent, "class": type(agent).__qualname__, "seed": seed,
                     "skill": job.skill if job.agent == "scripted" else None}
    before = env.episode_path
    try:
        run_episode(env, agent, seed=seed)
    except KeyboardInterrupt as exc:
        # Stopped while the agent waited on its model: that call (failed attempts, the wait so far) is kept in
        # ``agent_error`` and the model totals; the episode still ends as "stopped" (see OpenAIToolAgent).
        if getattr(exc, "trajrec_note", None):
            _hold_stops()  # a repeated stop must not cut this short
            env.end_interrupted_call(exc)
        raise
    except AgentError as exc:
        # The agent had no action (its model server failed): the env is not stepped with a made-up one; the
        # episode ends as an error with the failed call on record, and the command stops (the server is down).
        env.end_episode_with_error(str(exc), **exc.note)
        raise AgentError(f"{exc}; the episode of seed {seed} was closed with outcome error ({env.episode_path}); "
                         "rerun the same command with --resume once the server answers", exc.note) from None
    except Exception as exc:
        if exc is getattr(env, "_env_raised", None):
            # The env raised in reset or step: the Recorder recorded it (a failed step or reset of kind
            # "exception", outcome "error"). That is data, as for `collect`: the episode is closed and the
            # caller goes on with the next seed; the result says which exception ended it.
            summary = env.end_episode() or {}
            if not summary and env.episode_path != before:  # a failed reset: its episode is closed already
                summary = env.last_summary or {}
            path = str(env.episode_path) if env.episode_path != before else None  # None: not recorded (warned)
            if not summary:
                summary = {"outcome": "error", "error": f"{'step' if path else 'reset'} raised {type(exc).__name__}"}
            where = summary.get("error") if isinstance(summary.get("error"), str) else f"raised {type(exc).__name__}"
            message = exception_message(exc)
            return {**summary, "path": path, "seed": seed, "env_error": f"{where}: {message}" if message else where}
        # The agent's own code raised (or the Recorder could not write): the episode is closed before the
        # exception goes on (the agent's is named in its agent_error, as `with Recorder(...)` does), so no file
        # is left without its index when the command then stops its workers.
        _close_open_episode(env, None if isinstance(exc, TrajrecError) else exc)
        raise
    summary = env.end_episode() or {}
    return {**summary, "path": str(env.episode_path), "seed": seed}


def exception_message(exc: BaseException, width: int = 300) -> str:
    """The first line of ``exc``'s message, cut at ``width`` characters ("" when it has none).

    >>> exception_message(ZeroDivisionError("division by zero")), exception_message(KeyError())
    ('division by zero', '')
    """
    try:
        lines = str(exc).strip().splitlines()
    except Exception:  # noqa: BLE001  (a hostile __str__)
        return "<message not readable>"
    text = lines[0] if lines else ""
    return text[:width - 3] + "..." if len(text) > width else text


def _close_open_episode(env: Any, agent_exc: Exception | None) -> None:
    """Close the episode ``env`` (a Recorder) has open, if any: as ``error`` naming ``agent_exc`` (the agent's
    exception), else as the Recorder closes it. Nothing raised here hides the exception that brought us here."""
    try:
        if agent_exc is not None:
            env._end_with_agent_exception(agent_exc)
        env.end_episode()
    except Exception:  # noqa: BLE001  (a full disk: the file is left for fsck, the first error goes on)
        pass


def _worker_recorder(job: Job) -> Any:
    rec = _WORKER.get(job)
    if rec is None:
        rec = _WORKER[job] = _make_recorder(job)
    return rec


_BUSY = False  # in a worker: an episode is being recorded (the SIGTERM handler closes it first)


def _writing(frame: Any) -> bool:
    """Whether the interrupted code is the episode writer's (a record half written, its bookkeeping not done):
    a stop raised there would leave a file whose index does not match its frames. The stop handlers then wait
    for their 0.2 s repeat, which comes between records."""
    from trajrec.recorder import format as fmt
    from trajrec.recorder import writer

    files = {writer.__file__, fmt.__file__}
    while frame is not None:
        if frame.f_code.co_filename in files:
            return True
        frame = frame.f_back
    return False


def _worker_init() -> None:
    """Signals in a worker process: Ctrl-C reaches every process of the terminal's process group, and the
    parent alone decides what stops (a worker interrupted on its own would leave the pool waiting for it).
    The parent stops workers with SIGTERM: an episode being recorded ends as a KeyboardInterrupt (the step in
    progress is not recorded, the file is closed as "stopped"); an idle worker exits at once."""
    import signal
    import sys

    def on_term(signum: int, frame: Any) -> None:
        if not _BUSY:
            os._exit(128 + signal.SIGTERM)
        # Python drops an exception raised inside some callbacks (an at-fork hook while the env starts a
        # subprocess, a finalizer): repeat it every 0.2 s until it reaches _worker_record.
        signal.setitimer(signal.ITIMER_REAL, 0.2, 0.2)
        if _writing(frame):
            return  # a record is being written: the repeat raises the stop between records
        raise KeyboardInterrupt

    def unraisable(info: Any, default: Any = sys.unraisablehook) -> None:
        if not isinstance(info.exc_value, KeyboardInterrupt):  # the dropped stop is repeated: no noise
            default(info)

    sys.unraisablehook = unraisable
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGALRM, on_term)
    _die_with_parent()


def _worker_record(job: Job, seed: int) -> dict[str, Any]:
    global _BUSY
    _BUSY = True
    try:
        try:
            return record_one(job, seed)
        except Exception:
            # record_one closed its episode; this catches what raised before or around it. A worker that goes
            # idle with an episode open loses it: the pool's stop then ends the idle worker at once (os._exit),
            # and the file was left without its index (FINDINGS33 #3). (A stop meanwhile: the handler below.)
            rec = _WORKER.get(job)
            if rec is not None:
                _close_open_episode(rec, None)
            raise
    except KeyboardInterrupt:
        import signal

        _hold_stops()  # nothing may cut the file's closing now
        rec = _WORKER.pop(job, None)
        if rec is not None:
            rec.close()  # the episode in progress: end record and index, outcome "stopped"
        os._exit(128 + signal.SIGTERM)  # the pool is being torn down: no result to send, no traceback
    finally:
        _BUSY = False


class Terminated(KeyboardInterrupt):
    """SIGTERM reached the recording process: it stops as after Ctrl-C (see :func:`sigterm_as_interrupt`)."""

    exit_code = 128 + 15
    reason = "stopped by SIGTERM"


_TERM_ARMED = False  # in the main process: sigterm_as_interrupt's handlers are installed


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While recording, SIGTERM (``kill PID``, a scheduler's stop) stops the command the way Ctrl-C does: the
    episodes being recorded are closed as ``stopped`` with their index, worker processes are terminated and
    joined. Without this, Python dies at once on SIGTERM, leaving files without an index and workers orphaned.

    Python drops an exception raised inside some callbacks (an at-fork hook while an env starts a subprocess, a
    finalizer), so a stop (SIGTERM or Ctrl-C) is raised again every 0.2 s (SIGALRM) until :func:`_stop_arrived`
    says it reached the recording loop, which then closes its files undisturbed by a second signal. No-op
    outside the main thread."""
    import signal
    import threading

    global _TERM_ARMED
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield  # Windows has no SIGALRM (and its SIGTERM cannot be caught anyway)
        return
    stop: list[type[KeyboardInterrupt]] = []  # the kind of stop asked for, raised again by SIGALRM

    def on_signal(signum: int, frame: Any) -> None:
        if signum != signal.SIGALRM:
            stop[:] = [Terminated if signum == signal.SIGTERM else KeyboardInterrupt]
            signal.setitimer(signal.ITIMER_REAL, 0.2, 0.2)
        if _writing(frame):
            return  # a record is being written: the repeat raises the stop between records
        raise (stop or [KeyboardInterrupt])[0]()

    def unraisable(info: Any, default: Any = sys.unraisablehook) -> None:
        if not isinstance(info.exc_value, KeyboardInterrupt):  # a dropped stop is raised again: no noise
            default(info)

    names = ("SIGTERM", "SIGINT", "SIGALRM")
    previous = {name: signal.signal(getattr(signal, name), on_signal) for name in names}
    hook, sys.unraisablehook = sys.unraisablehook, unraisable
    _TERM_ARMED = True
    try:
        yield
    finally:
        _stop_arrived()
        _TERM_ARMED = False
        for name in names:
            signal.signal(getattr(signal, name), previous[name])
        sys.unraisablehook = hook


def _stop_arrived() -> None:
    """The stop reached the recording loop: no second signal or repeat may cut the closing of the files."""
    import signal

    if _TERM_ARMED:
        for name in ("SIGTERM", "SIGINT", "SIGALRM"):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        signal.setitimer(signal.ITIMER_REAL, 0)


def _hold_stops() -> None:
    """A stop reached the code that closes the episode (in the main process or a worker): ignore further
    signals and the 0.2 s repeat from now on."""
    import signal

    if _TERM_ARMED:
        _stop_arrived()
    elif _BUSY:  # a worker (see _worker_init)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.setitimer(signal.ITIMER_REAL, 0)


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when the process that started it dies, even by SIGKILL, instead of living
    on as an orphan blocked on the pool's queue."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass  # no prctl: the parent's own SIGTERM handling still stops the workers


def _stop_pool(pool: ProcessPoolExecutor, futures: list[Any]) -> None:
    """Stop a pool now: cancel what has not started, SIGTERM the workers (see :func:`_worker_init`), give them
    a few seconds to close their files, then kill what is left. Ctrl-C is ignored meanwhile, so a second one
    cannot leave workers behind."""
    import signal
    import threading

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
    try:
        for fut in futures:
            fut.cancel()
        # The executor has no public way to stop running tasks; its worker processes are in _processes.
        procs = list((getattr(pool, "_processes", None) or {}).values())
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():  # stuck in a system call that ignores SIGTERM: the file is left for fsck
                proc.kill()
                proc.join(timeout=5)
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)


def _make_env(job: Job) -> Any:
    import gymnasium as gym
    from trajrec import envs  # noqa: F401  (registers trajrec/* ids)

    import_env_module(job)
    return gym.make(job.env_id, **dict(job.env_kwargs))


def _job_agent(job: Job, env: Any, seed: int) -> Any:
    agent = _agent_for(job, env, seed)
    env.agent = {"name": job.agent, "class": type(agent).__qualname__, "seed": seed,
                 "skill": job.skill if job.agent == "scripted" else None}
    return agent


class _Advance:
    def __init__(self, on_done: Callable[[dict[str, Any]], None] | None) -> None:
        self.on_done = on_done

    def advance(self, n: int = 1) -> None:
        if self.on_done:
            for _ in range(n):
                self.on_done({})


def record_many(job: Job, seeds: list[int], *, workers: int = 1,
                on_done: Callable[[dict[str, Any]], None] | None = None, backend: str = "process",
                address: str | None = None) -> list[dict[str, Any]]:
    """Record one episode per seed; with ``workers`` > 1 in that many processes, each writing its own files;
    with ``backend="ray"`` as Ray tasks (see :func:`trajrec.collect.collect`).

    Raises:
        TrajrecUsageError: the env cannot be made, or ``job.out`` cannot be a folder (a file has its name, no
            permission, a read-only file system).
    """
    import dataclasses

    from trajrec.recorder.storage import is_url

    if not is_url(job.out):  # a URL records through a local outbox (see trajrec.recorder.storage)
        make_out_dir(job.out)
    if job.run_id is None:  # one run id for the whole command, not one per worker process
        job = dataclasses.replace(job, run_id=new_run_id())
    results: list[dict[str, Any]] = []
    if backend == "ray":
        import functools

        from .collect import collect

        probe = _make_recorder(job)  # a bad env id or agent fails here, with the CLI's message
        probe.close()
        _agent_for(job, probe, 0)
        return collect(functools.partial(_make_env, job), functools.partial(_job_agent, job),
                       episodes=len(seeds), seed=seeds[0], out=job.out, backend="ray", address=address,
                       run_id=job.run_id, progress=_Advance(on_done))
    if workers <= 1:
        rec = _make_recorder(job)
        try:
            for seed in seeds:
                res = record_one(job, seed, rec)
                results.append(res)
                if on_done:
                    on_done(res)
        except KeyboardInterrupt:
            _stop_arrived()
            raise
        finally:
            rec.close()
        return results
    # Validate the env id and agent here, where the error reads best, before starting workers.
    probe = _make_recorder(job)
    probe.close()
    _agent_for(job, probe, 0)
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_init)
    futures: list[Any] = []
    try:
        futures = [pool.submit(_worker_record, job, seed) for seed in seeds]
        for fut in as_completed(futures):
            res = fut.result()
            results.append(res)
            if on_done:
                on_done(res)
    except BaseException:
        # Ctrl-C or a failed episode: no worker goes on recording after the command has given up.
        if isinstance(sys.exc_info()[1], KeyboardInterrupt):
            _stop_arrived()
        _stop_pool(pool, futures)
        raise
    pool.shutdown(wait=True)
    results.sort(key=lambda r: r["seed"])
    return results


def new_run_id() -> str:
    """A fresh run id, as the Recorder makes one: ``run-<local time>-<6 hex digits>``."""
    import secrets
    import time

    return f"run-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


def make_out_dir(out: str) -> list[Path]:
    """Create the output folder ``out`` (and its parents); returns the folders created, deepest first (for
    :func:`remove_empty_dirs` when a command ends with nothing recorded).

    Raises:
        TrajrecUsageError: it cannot be a folder; the message says why.
    """
    path = Path(out)
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise TrajrecUsageError(f"--out {out}: a file has that name; give a folder (it is created if missing)") \
            from None
    except OSError as exc:
        raise TrajrecUsageError(f"--out {out}: cannot create the folder: {exc.strerror or exc}; give a folder you "
                                "can write to") from None
    return created


def remove_empty_dirs(created: list[Path]) -> None:
    """Remove the folders a command created (deepest first, as :func:`make_out_dir` lists them) that are still
    empty: a run that failed before recording anything leaves nothing behind. A folder holding anything stays."""
    for folder in created:
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone): it, and the folders above it, stay
            return


def existing_episodes(out: str, env_id: str) -> tuple[list[str], list[tuple[str, int, dict[str, Any], bool]]]:
    """The episode files directly in ``out`` (sorted), and ``(path, seed, summary, complete)`` for those recorded
    from ``env_id`` (``complete``: the file has a sound index, i.e. its writer closed it).

    A file that cannot be read counts as a file but is not in the second list.
    """
    from trajrec.recorder import SUFFIX, read_index
    from trajrec.recorder.errors import TrajrecError

    folder = Path(out)
    if not folder.is_dir():
        return [], []
    files = sorted(str(p) for p in folder.glob(f"*{SUFFIX}") if p.is_file() and not p.is_symlink())
    found = []
    for path in files:
        try:
            index = read_index(path)
        except (TrajrecError, OSError):
            continue
        task = (index.get("header") or {}).get("task") or {}
        if task.get("env_id") == env_id and isinstance(task.get("seed"), int):
            found.append((path, task["seed"], index.get("summary") or {}, bool(index.get("complete"))))
    return files, found


def existing_seeds(out: str, env_id: str) -> tuple[list[str], set[int]]:
    """The episode files directly in ``out`` (sorted), and the seeds of those recorded from ``env_id``.

    A file that cannot be read counts as a file but gives no seed.
    """
    files, found = existing_episodes(out, env_id)
    return files, {seed for _, seed, _, _ in found}


# Where `--resume` moves an episode that did not end: next to it, out of the `*.msgpack.zst` files every command
# reads, so the re-recorded seed is not there twice, and kept (it is recorded data: `trajrec show` still reads it).
UNFINISHED_SUFFIX = ".unfinished"


def ended(summary: dict[str, Any], complete: bool = True) -> bool:
    """Whether an episode summary is of an episode that ran to its end: judged, terminated or truncated. One that
    was stopped (interrupted, the agent gave up), raised (outcome ``error``) or never closed did not.

    >>> ended({"outcome": "passed"}), ended({"outcome": "stopped"}), ended({"outcome": "error", "truncated": True})
    (True, False, True)
    """
    from trajrec.recorder.model import ran_to_end  # the one definition, shared with `--where incomplete`

    return ran_to_end(summary, complete)


def env_raised(summary: dict[str, Any], complete: bool = True) -> bool:
    """Whether an episode summary is of an episode that ended because the env raised (in ``reset`` or a
    ``step``): outcome ``error`` in a closed file, with no ``agent_error`` (the agent failing, its model server
    down, its own code raising, is another matter: that seed is worth recording again once fixed). Such an
    episode did not run to its end (:func:`ended` is False) but it did end: it is data, and ``--resume`` keeps it
    unless asked (``--retry-errors``).

    >>> env_raised({"outcome": "error", "error": "step 3 raised ZeroDivisionError"})
    True
    >>> env_raised({"outcome": "error", "agent_error": {"message": "down"}}), env_raised({"outcome": "stopped"})
    (False, False)
    """
    return complete and summary.get("outcome") == "error" and not summary.get("agent_error")


def resume_keeps(summary: dict[str, Any], complete: bool, retry_errors: bool = False) -> bool:
    """Whether ``--resume`` counts an episode as recorded (its seed is not recorded again): it ran to its end
    (:func:`ended`), or the env raised (:func:`env_raised`) and ``retry_errors`` is not set."""
    return ended(summary, complete) or (not retry_errors and env_raised(summary, complete))


def plan_seeds(out: str, env_id: str, seeds: list[int], *, resume: bool = False,
               overwrite: bool = False, retry_errors: bool = False) -> tuple[list[int], int]:
    """The seeds to record into ``out``, and how many were skipped as already recorded.

    A folder that already holds episode files is only recorded into with ``resume`` (seeds recorded from
    ``env_id`` before are skipped) or ``overwrite`` (its episode files are deleted first; label files stay).

    With ``resume``, an episode of a planned seed that did not end (see :func:`ended`: interrupted, the agent
    failed, never closed) does not count as recorded: its file is renamed with :data:`UNFINISHED_SUFFIX` appended
    (kept, out of the run; a warning names it) and the seed is recorded again. One that ended because the env
    raised (:func:`env_raised`) counts as recorded unless ``retry_errors``.

    Raises:
        TrajrecUsageError: the folder holds episodes and neither flag was given; or ``overwrite`` while another
            process is recording into one of them.
    """
    files, found = existing_episodes(out, env_id)
    if not files:
        return list(seeds), 0
    if overwrite:
        _remove_unless_live(out, files)
        return list(seeds), 0
    if resume:
        import warnings

        def keep(summary: dict[str, Any], complete: bool) -> bool:
            return resume_keeps(summary, complete, retry_errors)

        done = {seed for _, seed, summary, complete in found if keep(summary, complete)}
        wanted = set(seeds)
        moved = []
        from trajrec.recorder.fsck import is_locked

        live = [Path(path).name for path, seed, summary, complete in found
                if seed in wanted and not keep(summary, complete) and is_locked(path)]
        if live:
            raise TrajrecUsageError(
                f"--resume: {out} holds {len(live)} episode file{'s' if len(live) != 1 else ''} of these seeds being "
                f"recorded right now by another process ({', '.join(live[:3])}{' ...' if len(live) > 3 else ''}); "
                "wait for that recording to finish, or record into another folder")
        for path, seed, summary, complete in found:
            if seed in wanted and not keep(summary, complete):
                os.replace(path, path + UNFINISHED_SUFFIX)
                moved.append(f"{Path(path).name} (seed {seed}, {summary.get('outcome') or 'no index'})")
        if moved:
            many = len(moved) != 1
            warnings.warn(f"{len(moved)} episode{'s' if many else ''} in {out} did not end (interrupted, the agent "
                          f"failed{', the env raised' if retry_errors else ''} or not closed) and {'are' if many else 'is'} recorded again; the old file{'s are' if many else ' is'} "
                          f"kept, renamed to *{UNFINISHED_SUFFIX}: {', '.join(moved[:5])}{' ...' if len(moved) > 5 else ''}",
                          UserWarning, stacklevel=2)
        todo = [s for s in seeds if s not in done]
        return todo, len(seeds) - len(todo)
    raise TrajrecUsageError(
        f"{out} already holds {len(files)} episode file{'s' if len(files) != 1 else ''}; recording into it again "
        "would add duplicates. Pass --resume to record only the seeds not recorded yet, --overwrite to delete "
        "those files first, or another folder")


def _remove_unless_live(out: str, files: list[str]) -> None:
    """Delete ``files`` (``--overwrite``), each while holding its writer lock, after checking that none is live.

    A file a live Recorder holds (a Python ``Recorder``, ``collect`` or ``VectorRecorder`` recording into the same
    folder: ``trajrec record`` itself is kept out by the folder's record lock) is never deleted: its writer would
    go on writing into the unlinked file and every step it returned would be lost.

    Raises:
        TrajrecUsageError: a file is being recorded; nothing was deleted.
    """
    from trajrec.recorder.format import lock_file

    held: list[tuple[str, int]] = []
    try:
        live = []
        for path in files:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # gone already (its writer removed an empty stub)
            if lock_file(fd):
                held.append((path, fd))  # locked by us until it is deleted: no writer can take it meanwhile
            else:
                os.close(fd)
                live.append(Path(path).name)
        if live:
            raise TrajrecUsageError(
                f"--overwrite: {out} holds {len(live)} episode file{'s' if len(live) != 1 else ''} being recorded "
                f"right now by another process ({', '.join(live[:3])}{' ...' if len(live) > 3 else ''}); nothing was "
                "deleted. A live file is never deleted (its writer would lose every step): wait for that recording "
                "to finish, or record into another folder")
        for path, _fd in held:
            os.remove(path)
    finally:
        for _path, fd in held:
            os.close(fd)


def job_config(job: Job) -> dict[str, Any]:
    """What makes episodes of one run comparable: env id, env constructor arguments (the registered defaults
    with ``--kwarg`` over them, as the episode header's ``task.env_kwargs`` stores them), agent and its options
    (skill for the scripted agent; model and sampling for the openai one)."""
    import gymnasium as gym
    from trajrec import envs  # noqa: F401  (registers trajrec/* ids)

    import_env_module(job)
    try:
        kwargs = dict(gym.spec(job.env_id).kwargs)
    except gym.error.Error:
        kwargs = {}
    kwargs.update(dict(job.env_kwargs))
    config: dict[str, Any] = {"env": job.env_id, "env kwargs": _plain(kwargs),
                              "agent": "openai-tools" if job.agent == "openai" else job.agent}
    if job.agent == "scripted":
        config["skill"] = job.skill
    if job.agent == "openai":
        config["model"] = job.model
        config["sampling"] = _plain(dict(job.sampling))
        # --price-in/--price-out price the calls whose server gives no cost: one run at two prices would sum
        # costs that cannot be compared (FINDINGS33 #10).
        config["prices"] = _plain(dict(job.prices))
    return config


def header_config(header: dict[str, Any]) -> dict[str, Any]:
    """:func:`job_config` of the command that recorded an episode, read from its header."""
    task = header.get("task") or {}
    agent = (header.get("provenance") or {}).get("agent") or {}
    config: dict[str, Any] = {"env": task.get("env_id"), "env kwargs": _plain(task.get("env_kwargs") or {}),
                              "agent": agent.get("name")}
    if agent.get("name") == "scripted":
        config["skill"] = agent.get("skill")
    if agent.get("name") == "openai-tools":
        config["model"] = agent.get("model")
        config["sampling"] = _plain(agent.get("sampling") or {})
        if "prices" in agent:  # (files recorded before the prices were kept have none to compare)
            config["prices"] = _plain(agent.get("prices") or {})
    return config


def _plain(value: Any) -> Any:
    """``value`` as JSON would carry it (tuples as lists...), so a header read back compares equal."""
    import json

    return json.loads(json.dumps(value, sort_keys=True, default=repr))


def _config_text(config: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v if isinstance(v, str) else _plain_text(v)}" for k, v in config.items())


def _plain_text(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def check_resume_config(out: str, job: Job) -> None:
    """Refuse to ``--resume`` into a folder whose episodes were recorded with another env id, env kwargs, agent
    or agent options: one run would mix two setups and every total over it would be meaningless.

    Raises:
        TrajrecUsageError: naming both setups, what differs, and the ways out.
    """
    from trajrec.recorder import SUFFIX, read_index
    from trajrec.recorder.errors import TrajrecError

    want = job_config(job)
    for path in sorted(Path(out).glob(f"*{SUFFIX}")):
        try:
            header = read_index(str(path)).get("header") or {}
        except (TrajrecError, OSError):
            continue  # unreadable: fsck's business, not a setup to compare
        have = header_config(header)
        # Recorded before the prices were kept: nothing to compare them with.
        wanted = want if "prices" in have else {k: v for k, v in want.items() if k != "prices"}
        if have != wanted:
            from trajrec.recorder.fsck import is_locked

            differ = [k for k in {**have, **wanted} if have.get(k) != wanted.get(k)]
            if is_locked(path):  # another process is recording it: --overwrite would be refused too
                raise TrajrecUsageError(
                    f"--resume: {out} holds {path.name}, being recorded right now by another process with a "
                    f"different setup ({', '.join(differ)} differ; it has: {_config_text(have)}); wait for that "
                    "recording to finish, or record into another folder (--out)")
            raise TrajrecUsageError(
                f"--resume: {out} was recorded with a different setup ({', '.join(differ)} differ); "
                f"{path.name} has: {_config_text(have)}; this command has: {_config_text(wanted)}. Rerun with the "
                "folder's settings to resume it, or record into another folder (--out), or pass --overwrite "
                "instead of --resume to replace its episodes")


LOCK_NAME = ".trajrec-record.lock"


@contextlib.contextmanager
def record_lock(out: str) -> Iterator[None]:
    """Hold ``<out>/.trajrec-record.lock`` while recording into ``out``: a second ``trajrec record`` into the
    same folder, even one started at the same instant, is refused instead of recording every seed twice.

    POSIX: an exclusive ``flock`` on the file, which the kernel releases when the process dies (no stale lock);
    elsewhere an ``O_EXCL`` claim. The file is removed when recording ends.

    Raises:
        TrajrecUsageError: another process holds the folder; the message names it.
    """
    import json
    import socket
    import time

    path = Path(out) / LOCK_NAME
    try:
        import fcntl
    except ImportError:  # Windows
        fcntl = None  # type: ignore[assignment]
    info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | (0 if fcntl else os.O_EXCL), 0o644)
        except FileExistsError:
            _refuse_locked(out, path)
        except OSError as exc:
            raise TrajrecIOError(f"cannot create {path}: {exc.strerror or exc}") from exc
        if fcntl is None:
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            _refuse_locked(out, path)
        try:  # the holder before us may have removed the file between our open and our lock: lock the new one
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, info.encode())
        yield
    finally:
        try:
            os.unlink(path)  # before unlocking: a waiting process then finds no file, or a fresh one
        except OSError:
            pass
        os.close(fd)


def _refuse_locked(out: str, path: Path) -> None:
    import json

    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    who = (f"process {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')}" if holder.get("pid")
           else "another process")
    raise TrajrecUsageError(f"{out} is being recorded into by another `trajrec record` ({who}; lock file {path}); "
                            "wait for it to finish, or record into another folder")


def recorded_summaries(out: str, env_id: str) -> list[dict[str, Any]]:
    """The index summaries (plus ``path`` and ``seed``) of the episodes in ``out`` recorded from ``env_id``."""
    _, found = existing_episodes(out, env_id)
    return [{**summary, "path": path, "seed": seed} for path, seed, summary, _ in found]


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over episode summaries: solved rate (over episodes a terminal check judged), failures, retries,
    recoveries, checks by kind and judge, and the model calls' tokens, latency and cost when there were any."""
    total = len(results)
    passed = sum(1 for r in results if r.get("outcome") == "passed")
    judged = sum(1 for r in results if r.get("outcome") in ("passed", "failed"))
    out: dict[str, Any] = {
        "episodes": total,
        "steps": sum(r.get("steps", 0) for r in results),
        "solved": passed,
        "judged": judged,
        "solved_rate": passed / judged if judged else None,
        "failures": sum(r.get("failures", 0) for r in results),
        "retries": sum(r.get("retries", 0) for r in results),
        "recoveries": sum(r.get("recoveries", 0) for r in results),
        "checks_by_kind": {},
        "checks_by_judge": {},
        "outcomes": {},
    }
    model: dict[str, Any] = {}
    for r in results:
        for key, value in (r.get("model") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                model[key] = model.get(key, 0) + value
    if model:
        out["model"] = model
    for r in results:
        out["outcomes"][r.get("outcome")] = out["outcomes"].get(r.get("outcome"), 0) + 1
        checks = r.get("checks") or {}
        for k, n in (checks.get("by_kind") or {}).items():
            out["checks_by_kind"][k] = out["checks_by_kind"].get(k, 0) + n
        for k, n in (checks.get("by_judge") or {}).items():
            out["checks_by_judge"][k] = out["checks_by_judge"].get(k, 0) + n
    return out


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def iter_seeds(start: int, n: int) -> Iterator[int]:
    return iter(range(start, start + n))
