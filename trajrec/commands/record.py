"""``trajrec record``: record episodes of an env with a scripted or random agent."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

NAME = "record"
ORDER = 10
HELP = "Record episodes of an environment with a built-in agent or an LLM, one file per episode."
EXAMPLES = """  trajrec record trajrec/Shell-v0 --episodes 50 --out runs/shell
  trajrec record trajrec/CodeRepair-v0 --episodes 200 --workers 2 --skill 0.3 --out runs/code
  trajrec record CartPole-v1 --agent random --episodes 10 --out runs/cartpole
  trajrec record myenvs:KV-v0 --agent openai --model qwen3:4b --base-url http://localhost:11434/v1 --out runs/kv
                                                 your own env: myenvs.py registers KV-v0 when imported
  trajrec record trajrec/MathCalc-v0 --episodes 5 --out runs/math --kwarg max_steps=12
  trajrec record trajrec/MathCalc-v0 --agent openai --model qwen3:4b --base-url http://localhost:11434/v1 \\
      --episodes 5 --temperature 0.2 --out runs/math-llm      an LLM through any OpenAI-compatible server
  trajrec record trajrec/Shell-v0 --episodes 1000 --backend ray --address auto --out runs/shell
  trajrec record trajrec/Shell-v0 --episodes 100 --out runs/shell --resume    after a stop: the missing seeds only"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("env_id", metavar="ENV_ID",
                   help="a registered env id (`trajrec envs` lists the built-in ones), or MODULE:ENV_ID for your own "
                        "env: MODULE (from PYTHONPATH or the current folder) is imported first, in every worker, "
                        "and registers ENV_ID with gymnasium.register, as gymnasium.make('MODULE:ENV_ID') does")
    p.add_argument("--episodes", type=int, default=10, help="how many episodes (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode; episode k uses seed+k (default 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the episode files")
    p.add_argument("--agent", choices=["scripted", "random", "openai"], default="scripted",
                   help="scripted: the env's built-in weak agent; random: samples the action space; openai: an LLM "
                        "calling the env's tools through an OpenAI-compatible server (needs --model; "
                        "pip install 'trajrec[openai]')")
    p.add_argument("--skill", type=float, default=0.6, help="scripted agent skill in [0, 1] (default 0.6)")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("--backend", choices=["process", "ray"], default="process",
                   help="process: --workers local processes; ray: one Ray task per episode on a cluster "
                        "(pip install 'trajrec[ray]')")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="with --backend ray: the cluster to join (default: start or join a local one)")
    p.add_argument("--kwarg", action="append", default=[], metavar="KEY=VALUE",
                   help="env constructor argument (repeatable; VALUE parsed as JSON when it can be)")
    llm = p.add_argument_group("--agent openai")
    llm.add_argument("--model", metavar="M", help="model id the server knows")
    llm.add_argument("--base-url", metavar="URL",
                     help="OpenAI-compatible API root, e.g. http://localhost:8000/v1 (default: OpenAI's)")
    llm.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR",
                     help="environment variable holding the API key (default OPENAI_API_KEY; local servers need none)")
    llm.add_argument("--temperature", type=float, help="sampling temperature")
    llm.add_argument("--top-p", type=float, help="nucleus sampling")
    llm.add_argument("--max-tokens", type=int, help="completion token limit per call")
    llm.add_argument("--price-in", type=float, metavar="USD", help="USD per million prompt tokens, for the cost")
    llm.add_argument("--price-out", type=float, metavar="USD", help="USD per million completion tokens")
    llm.add_argument("--request-timeout", type=float, default=60.0, metavar="S", help="seconds per request (default 60)")
    llm.add_argument("--retries", type=int, default=3, help="retries of a failed request (default 3)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="the folder holds episodes already: record only the seeds not recorded yet (and again "
                            "those cut short: stopped, the agent failed, not closed; not those where the env raised, "
                            "see --retry-errors); refused when the folder was recorded with another env, --kwarg, "
                            "agent or agent options")
    again.add_argument("--overwrite", action="store_true",
                       help="the folder holds episodes already: delete its episode files first (labels stay)")
    p.add_argument("--retry-errors", action="store_true",
                   help="with --resume: record again the seeds whose env raised (outcome error; by default such an "
                        "episode ended and is kept: an env exception ends its episode, recording goes on with the "
                        "next seed, and the command exits 1 naming each)")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")


def parse_kwargs(items: list[str]) -> tuple[tuple[str, object], ...]:
    import json

    from trajrec.recorder.errors import TrajrecUsageError

    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TrajrecUsageError(f"--kwarg {item!r}: expected KEY=VALUE, e.g. --kwarg max_steps=20")
        try:
            parsed: object = json.loads(value)
        except ValueError:
            parsed = value
        out.append((key, parsed))
    return tuple(out)


def run(args: argparse.Namespace) -> int:
    from trajrec.recorder.errors import AgentError, TrajrecUsageError

    from trajrec.recorder.storage import is_url

    from ..progress import Progress
    from trajrec.recorder.storage import check_url

    from ..recording import (Job, check_resume_config, make_out_dir, plan_seeds, record_lock, record_many,
                             remove_empty_dirs, sigterm_as_interrupt, split_env_id, summarize)
    from ._common import dumps
    from .demo import print_summary

    if args.episodes < 1:
        raise TrajrecUsageError(f"--episodes must be at least 1, got {args.episodes}")
    if args.seed < 0:  # Gymnasium refuses negative seeds: found here, before a folder or file is made
        raise TrajrecUsageError(f"--seed must be 0 or more, got {args.seed}")
    if not 0.0 <= args.skill <= 1.0:
        raise TrajrecUsageError(f"--skill must be between 0 and 1, got {args.skill}")
    if args.workers < 1:
        raise TrajrecUsageError(f"--workers must be at least 1, got {args.workers}")
    if args.retry_errors and not args.resume:
        raise TrajrecUsageError("--retry-errors only applies with --resume (it records again the seeds of a folder "
                                "whose env raised); add --resume")
    llm_options = {"--model": args.model, "--base-url": args.base_url, "--temperature": args.temperature,
                   "--top-p": args.top_p, "--max-tokens": args.max_tokens, "--price-in": args.price_in,
                   "--price-out": args.price_out}
    if args.agent == "openai":
        if not args.model:
            raise TrajrecUsageError("--agent openai needs --model M, e.g. --model qwen3:4b --base-url "
                                    "http://localhost:11434/v1")
        if args.retries < 0:
            raise TrajrecUsageError(f"--retries must be 0 or more, got {args.retries}")
    else:
        given = [name for name, value in llm_options.items() if value is not None]
        if given:
            raise TrajrecUsageError(f"{', '.join(given)} only apply to --agent openai")
    sampling = tuple((k, v) for k, v in (("temperature", args.temperature), ("top_p", args.top_p),
                                         ("max_tokens", args.max_tokens)) if v is not None)
    prices = tuple((k, v) for k, v in (("input", args.price_in), ("output", args.price_out)) if v is not None)
    env_module, env_id = split_env_id(args.env_id)
    job = Job(env_id=env_id, env_module=env_module, out=args.out, agent=args.agent, skill=args.skill,
              env_kwargs=parse_kwargs(args.kwarg),
              model=args.model, base_url=args.base_url, api_key_env=args.api_key_env, sampling=sampling,
              prices=prices, request_timeout=args.request_timeout, retries=args.retries)
    seeds = list(range(args.seed, args.seed + args.episodes))
    skipped = 0
    kept_errors: list[dict[str, Any]] = []
    created = []
    url = is_url(args.out)
    try:
        with sigterm_as_interrupt():
            if url:  # a URL records through a local outbox and has no folder here to resume from
                check_url(args.out)  # fsspec and the URL's file system importable, before anything is recorded
                lock: Any = contextlib.nullcontext()
            else:
                created = make_out_dir(args.out)
                lock = record_lock(args.out)
            with lock:
                if not url:
                    if args.resume:
                        check_resume_config(args.out, job)
                    kept_errors = errors_kept(args, seeds) if args.resume and not args.retry_errors else []
                    seeds, skipped = plan_seeds(args.out, env_id, seeds, resume=args.resume,
                                                overwrite=args.overwrite, retry_errors=args.retry_errors)
                results = []
                if seeds:
                    with Progress(len(seeds), f"record {args.env_id}", unit=" episodes") as bar:
                        results = record_many(job, seeds, workers=args.workers, on_done=lambda _r: bar.advance(),
                                              backend=args.backend, address=args.address)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: say what was saved and how to go on
        exc.reason = stop_message(exc, args, seeds)  # type: ignore[attr-defined]
        remove_empty_dirs(created)
        raise
    except AgentError as exc:  # the model server failed: other workers' episodes were stopped with it
        cut = 0 if url or not seeds else done_and_cut(args, seeds)[1] - 1  # (the failed episode is one of them)
        if cut > 0:
            raise AgentError(f"{exc} ({cut} other episode{'s' if cut != 1 else ''} cut short by the stop, recorded "
                             "again by --resume too)", exc.note) from None
        raise
    except BaseException:
        remove_empty_dirs(created)  # a bad env id or --kwarg: no empty folder left behind
        raise
    summary = {**summarize(results), "skipped": skipped}
    raised = env_errors(results)
    if raised or kept_errors:
        summary["env_errors"] = raised
        summary["env_errors_kept"] = kept_errors
    waiting: list[Any] = []
    if url:  # uploads that failed left their files in the local outbox: the run is not at the URL yet
        from trajrec.recorder import SUFFIX
        from trajrec.recorder.storage import Outbox

        outbox = Outbox(args.out)
        waiting = outbox.pending(SUFFIX)
        summary["not_uploaded"] = len(waiting)
    if args.json:
        print(dumps(summary))
    else:
        print_summary(summary, args.out)
    if not url and (args.resume or args.overwrite):
        # --resume renames a stopped episode's file (*.unfinished), --overwrite deletes files: their labels stay,
        # but belong to no episode file now.
        from ._common import orphaned_labels_note

        note = orphaned_labels_note(args.out)
        if note:
            print(f"trajrec record: note: {note}", file=sys.stderr)
    if kept_errors:
        n = len(kept_errors)
        print(f"trajrec record: note: {n} of the seeds skipped ended with the env raising (outcome error: "
              f"{', '.join(str(e['seed']) for e in kept_errors[:10])}{' ...' if n > 10 else ''}); an env exception "
              "ends its episode, which is kept; add --retry-errors to record them again", file=sys.stderr)
    if raised:
        for e in raised:
            print(f"trajrec record: seed {e['seed']}: env {e['error']}; recorded with outcome error in "
                  f"{e['path'] or '(no file: recording the failed reset failed, see the warning above)'}",
                  file=sys.stderr)
        n, total = len(raised), len(results)
        others = " (the others ran to their end)" if n < total else ""
        print(f"trajrec record: error: the env raised in {n} of {total} episode{'s' if total != 1 else ''}{others}; "
              "each file holds the traceback (`trajrec show FILE`). --resume keeps these episodes (they ended); "
              "--resume --retry-errors records them again", file=sys.stderr)
    if waiting:
        n = len(waiting)
        print(f"trajrec record: error: {n} episode file{'s are' if n != 1 else ' is'} not at {args.out}: "
              f"{'their uploads' if n != 1 else 'its upload'} failed (see the warnings above); "
              f"{'they wait' if n != 1 else 'it waits'} in {outbox.folder}, `trajrec sync {outbox.folder}` "
              "uploads them", file=sys.stderr)
        return 1
    return 1 if raised else 0


def env_errors(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``{"seed", "path", "error"}`` for each recorded episode that the env's exception ended, in seed order:
    ``error`` says where and what (``"step 3 raised ZeroDivisionError: division by zero"``, the ``env_error`` of
    :func:`trajrec.recording.record_one`; from the Ray backend's ``collect``, the summary's ``error`` alone)."""
    from ..recording import env_raised

    out = [{"seed": r.get("seed"), "path": r.get("path"), "error": r.get("env_error") or r.get("error")}
           for r in results if r.get("env_error") or env_raised(r)]
    return sorted(out, key=lambda e: (e["seed"] is None, e["seed"] if isinstance(e["seed"], int) else 0))


def errors_kept(args: argparse.Namespace, seeds: list[int]) -> list[dict[str, Any]]:
    """``{"seed", "path", "error"}`` for the episodes of ``seeds`` in ``args.out`` that the env's exception ended:
    ``--resume`` keeps them (without ``--retry-errors``)."""
    from ..recording import ended, env_raised, existing_episodes, split_env_id

    wanted = set(seeds)
    _, found = existing_episodes(args.out, split_env_id(args.env_id)[1])
    return sorted(({"seed": seed, "path": path, "error": summary.get("error")} for path, seed, summary, complete in found
                   if seed in wanted and not ended(summary, complete) and env_raised(summary, complete)),
                  key=lambda e: e["seed"])


def done_and_cut(args: argparse.Namespace, seeds: list[int]) -> tuple[int, int]:
    """How many episodes of ``seeds`` in ``args.out`` ended (ran to their end, or the env raised: ``--resume``
    keeps them, see :func:`trajrec.recording.resume_keeps`), and how many did not (cut short)."""
    from ..recording import existing_episodes, resume_keeps, split_env_id

    retry = bool(getattr(args, "retry_errors", False))
    wanted = set(seeds)
    _, found = existing_episodes(args.out, split_env_id(args.env_id)[1])
    kept = [resume_keeps(summary, complete, retry) for _, seed, summary, complete in found if seed in wanted]
    return sum(kept), len(kept) - sum(kept)


def stop_message(exc: BaseException, args: argparse.Namespace, seeds: list[int]) -> str:
    """The line printed when recording is stopped: what was saved complete, and the command that records the
    rest (the one typed, with ``--resume`` in place of ``--overwrite``)."""
    import shlex

    from trajrec.recorder.storage import is_url

    reason = getattr(exc, "reason", "interrupted")
    if is_url(args.out):
        return f"{reason}; episodes not uploaded yet stay in the local outbox: `trajrec sync {args.out}` uploads them"
    done, cut = done_and_cut(args, seeds)
    argv = [a for a in getattr(args, "_argv", None) or [] if a != "--overwrite"]
    if "--resume" not in argv:
        argv.append("--resume")
    n = len(seeds)
    cut_text = f", {cut} cut short (recorded again by --resume)" if cut else ""
    return (f"{reason}; {done} of {n} episode{'s' if n != 1 else ''} saved complete in {args.out}{cut_text}; "
            f"record the rest with: {shlex.join(['trajrec', *argv])}")
