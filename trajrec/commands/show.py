"""``trajrec show``: an episode, or one step of it, as readable text."""

from __future__ import annotations

import argparse
import time

NAME = "show"
ORDER = 30
HELP = "Print an episode (header, summary, one line per step) or one step in full with its state diff."
EXAMPLES = """  trajrec show ep.msgpack.zst                 header, summary and a line per step
  trajrec show ep.msgpack.zst --step 3        step 3 in full: action, observation, info, note, checks, diff
  trajrec show ep.msgpack.zst --step -1 --state    the last step and the whole state after it
  trajrec show ep.msgpack.zst --step 3 --full       every character of every value (no preview cut)
  trajrec show ep.msgpack.zst --json          JSON lines: the episode, then one line per step, as read
  trajrec show ep.msgpack.zst --json | jq -c 'select(.type == "step" and .failure)'    the failed steps"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="FILE", help="an episode file")
    p.add_argument("--step", type=int, metavar="N", help="show step N in full (negative counts from the end)")
    p.add_argument("--state", action="store_true", help="with --step, also print the whole state after the step")
    p.add_argument("--full", action="store_true",
                   help=f"print values in full (default: a preview of {PREVIEW_CHARS:,} characters each with --step, "
                        f"{HEADER_PREVIEW_CHARS} for the kwargs and the agent of the episode view)")
    p.add_argument("--json", action="store_true",
                   help="JSON lines: {\"type\": \"episode\", ...} then {\"type\": \"step\", ...} per step, "
                        "streamed as they are read (with --step: that step alone); values in the export's JSON "
                        "encoding, NaN and infinities as {\"$float\": \"nan\"} (docs/EXPORT.md)")
    p.add_argument("--width", type=int, default=100,
                   help="line width of the step list and the task text (default 100; at least 40)")


# What --step shows of one value unless --full: the cost of showing a step follows this, not the value's size.
PREVIEW_CHARS = 4000
# What the episode view shows of the env kwargs and the agent config (an LLM agent's config runs to kilobytes).
HEADER_PREVIEW_CHARS = 300


def _fmt_time(t: float | None) -> str:
    if not t:
        return "-"
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
    except (TypeError, ValueError, OverflowError, OSError):  # a time of another type or out of range
        return "-"


def run(args: argparse.Namespace) -> int:
    from trajrec.recorder import open_episode
    from trajrec.recorder.reader import lost_spans, unverified_steps
    from trajrec.replay.render import (
        diff_lines,
        one_line,
        checks_by_target,
        safe,
        step_checks_shown,
        step_marker,
        tool_call_text,
        usage_text,
        value_text,
    )

    from ._common import dumps, plural

    from trajrec.recorder import TrajrecUsageError
    from trajrec.recorder.fsck import being_recorded
    from trajrec.replay.render import number_text, step_record

    if args.state and args.step is None:
        raise TrajrecUsageError("--state prints the state after one step: add --step N (e.g. --step -1 --state)")
    if args.width < 40:
        raise TrajrecUsageError(f"--width must be at least 40, got {args.width}")
    ep = open_episode(args.path)
    if args.step is not None and not -len(ep) <= args.step < len(ep):
        # Checked here to quote the number as given: the reader would name the step it counted from the end.
        n = len(ep)
        ends = f"0..{n - 1}, or -{n}..-1 from the end" if n else "none"
        raise TrajrecUsageError(f"--step {args.step} is out of range: {ep.path} has {plural(n, 'step')} ({ends})")
    if args.json:
        if args.step is not None:
            out = {"type": "step", **step_record(ep[args.step])}
            if args.state:
                out["state"] = ep.state_at(out["index"])
            print(dumps(out))
            return 0
        from trajrec.replay.query import index_facts

        # "complete" as `ls --json`, --where and the exports mean it (the one definition: index_facts): the file
        # has its index and lost no step; "closed": it has its index; "lost": where steps are missing (the
        # exports' form, docs/EXPORT.md).
        print(dumps({"type": "episode", "path": ep.path, "complete": index_facts(ep.path, ep.index)["complete"],
                     "closed": ep.complete, "lost": [g.to_json() for g in ep.gaps], "damage": ep.damage,
                     "header": ep.header, "summary": ep.summary, "checks": [c.to_record() for c in ep.checks]}),
              flush=True)
        for st in ep:  # one line per step as it is decoded: `| head` or `| jq` start at once
            print(dumps({"type": "step", **step_record(st)}))
        return 0
    if args.step is not None:
        limit = None if args.full else PREVIEW_CHARS

        def text(value):  # type: ignore[no-untyped-def]
            out = value_text(value, max_len=limit)
            if limit is not None and len(out) >= limit:
                out += f"\n(preview cut at {limit:,} characters; --full prints everything)"
            return out

        _show_step(ep, args.step, args.state, diff_lines, safe, text, step_checks_shown)
        return 0
    task, prov, s = ep.task, ep.provenance, ep.summary
    header_chars = 10**8 if args.full else HEADER_PREVIEW_CHARS
    agent = prov.get("agent") or {}
    print(f"episode   {ep.episode_id}")
    # A file a live Recorder still holds has no index and an open last frame: that is being recorded, not damage.
    live = not ep.complete and being_recorded(ep.path)
    print(f"file      {ep.path}" + ("   (being recorded: a live Recorder holds it; what it wrote so far)" if live
                                    else "" if ep.complete else f"   ({ep.incomplete_text()})"))
    # Header fields are shown through one_line: any type, any text, bounded (a header is data like the rest);
    # kwargs and the agent are previewed like every value (--full prints them whole: they reproduce the episode).
    verification = task.get("verification")
    checks = ",".join(map(str, verification)) if isinstance(verification, (list, tuple)) else verification
    head_lost = ep.header_lost
    if head_lost is not None:
        # The header record was lost to damaged bytes: its task and provenance are unknown, not None or empty.
        kept = head_lost.get("from") if isinstance(head_lost.get("from"), dict) else {}
        print("header    LOST to damaged bytes: env, task, agent and provenance unknown (see the damage lines)")
        if "episode_id" in kept:
            print(f"          episode id from {one_line(kept['episode_id'], args.width - 26)}")
        print(f"recorded  {_fmt_time(s.get('start_time'))} (the summary's start time)")
    else:
        print(f"env       {one_line(task.get('env_id'), 40)}  "
              f"kwargs={one_line(task.get('env_kwargs') or {}, header_chars)}  seed={one_line(task.get('seed'), 20)}")
        print(f"task      {one_line(task.get('id'), 200)}  split={one_line(task.get('split'), 20)}  "
              f"checks={one_line(checks or '-', 40)}")
        if task.get("text"):
            print(f"          {one_line(task['text'], args.width - 10)}")
        agent_text = one_line(agent, header_chars) if agent else "-"
        cut = len(agent_text) >= header_chars and not args.full
        print(f"agent     {agent_text}" + ("  (--full prints it whole)" if cut else ""))
        rev = prov.get("code_revision") if isinstance(prov.get("code_revision"), dict) else {}
        recorder = prov.get("recorder") if isinstance(prov.get("recorder"), dict) else {}
        print(f"recorded  {_fmt_time(s.get('start_time'))} on {one_line(prov.get('host'), 40)}  "
              f"trajrec {one_line(recorder.get('version'), 20)}  rev {one_line(rev.get('commit', '-'), 10)}")
    checks = s.get("checks") or {}
    # A repaired file's summary is its writer's, from before the damage: it counts the lost steps too.
    before = " (as recorded, before the damage; lost steps included)" if ep.lost else ""
    print(f"summary   {plural(s.get('steps'), 'step')}, return {number_text(s.get('return'))}, "
          f"outcome {'being recorded' if live else s.get('outcome')}, {plural(s.get('failures'), 'failure')}, {plural(s.get('retries'), 'retry')}, "
          f"{plural(s.get('recoveries'), 'recovery')}, {plural(checks.get('total', 0), 'check')} "
          f"({checks.get('passed', 0)} passed, {checks.get('failed', 0)} failed){before}")
    usage = usage_text(s.get("model"))
    if usage:
        print(f"model     {usage}")
    if s.get("error"):  # why the episode ended as an error: a step that raised, or the agent (model server) failing
        print(f"error     {one_line(s.get('error'), args.width - 10)}")
    stop = s.get("agent_error")
    if isinstance(stop, dict) and stop.get("interrupted") is True and isinstance(stop.get("interrupted_step"), dict):
        # a stop while the env ran a step: not recorded, its note (the model call that chose it) kept
        print(f"stopped   {one_line(stop.get('message'), args.width - 50)} (its action and note are in agent_error)")
    elif isinstance(stop, dict) and stop.get("interrupted") is True:  # a stop while the agent waited on its model
        print(f"stopped   {one_line(stop.get('message'), args.width - 50)} (the call in flight is in agent_error)")
    after = s.get("after_end")
    if isinstance(after, int) and after > 0:  # the agent stepped on after the env ended the episode
        print(f"after end {plural(after, 'step')} taken after the episode ended, with no reset (marked after_end; "
              "not in its return or outcome)")
    for c in ep.checks:
        if c.target == "episode":
            print(f"verdict   {one_line(c.judge, 40)} [{c.kind}] {one_line(c.value, 40)}: "
                  f"{one_line(c.rationale or '', args.width - 30)}")
    for d in () if live else ep.damage:
        print(f"damage    {d}")
    lost = s.get("lost_steps")
    # Env steps a failed write kept out of the file: no step number, shown where they were taken (before step k).
    unwritten = {} if live else {g.first: g.n for g in ep.gaps if not g.numbered and g.first is not None}
    if isinstance(lost, int) and lost > 0:  # the env took steps whose records could not be written
        where = ", ".join(f"{n} before step {k}" if k < len(ep) else f"{n} after the last step"
                          for k, n in unwritten.items())
        print(f"lost      {plural(lost, 'step')} the env took could not be written (a write failed while recording"
              f"{': ' + where if where else ''}); the step after each gap names the error (recorder_errors)")
    spans = lost_spans(ep)
    if spans:
        print(f"lost      {ep.readable_steps:,} of {len(ep):,} steps readable; lost to damaged bytes: "
              f"{spans} (fsck --repair recorded them; no record of them is left)")
    unverified = [(f, f + k - 1) for f, k, _why in unverified_steps(ep.index)]
    print()
    w = max(20, args.width - 30)
    nxt = 0
    # A check is drawn on the step it targets (step_checks_shown), as the exports count it, not on the step whose
    # info reported it: an env finding at step 3 that step 1 was wrong marks step 1.
    by_target = checks_by_target(ep)
    for st in ep:
        if st.index > nxt:  # the steps in between were lost: say so where they were
            print(f"{'':>5} ✗ steps {nxt}..{st.index - 1} lost (damaged bytes)")
        if st.index in unwritten:
            print(f"{'':>5} ✗ {plural(unwritten[st.index], 'env step')} not written (a write failed)")
        nxt = st.index + 1
        extra = ""
        if any(a <= st.index <= b for a, b in unverified):
            extra += "  unverified (salvaged from a damaged frame)"
        if st.after_end:
            extra += "  after the end (no reset)"
        if st.retry_of is not None:
            extra += f"  retry of {st.retry_of}"
        if st.recovers:
            extra += f"  recovers {','.join(map(str, st.recovers))}"
        extra += _lost_links_text(st.lost_links)
        if st.failure:
            extra += f"  {st.failure.kind}: {one_line(st.failure.message, args.width)}"
        action = tool_call_text(st.action) or st.action
        mark = step_marker(st, step_checks_shown(ep, st, by_target))
        line = f"{st.index:>5} {mark} {one_line(action, w // 2):<{w // 2}} → {one_line(st.observation, w // 2)}"
        # The failure text goes last and is what gives way: no line is wider than --width.
        line += extra
        print(line if len(line) <= args.width else line[:args.width - 1] + "…")
    if nxt < len(ep):
        print(f"{'':>5} ✗ steps {nxt}..{len(ep) - 1} lost (damaged bytes)")
    if len(ep) in unwritten:
        print(f"{'':>5} ✗ {plural(unwritten[len(ep)], 'env step')} not written (a write failed)")
    return 0


def _lost_links_text(links: object) -> str:
    """A step's links to failed steps whose records were lost (a write failed), which have no step number:
    ``"  retry of a lost step (before step 2)  recovers 1 lost step (before step 2)"``; "" for none."""
    if not isinstance(links, dict):
        return ""
    text = ""
    if links.get("retry_of") is not None:
        text += f"  retry of a lost step (before step {links['retry_of']})"
    gone = links.get("recovers")
    if isinstance(gone, list) and gone:
        where = ", ".join(f"before step {k}" for k in dict.fromkeys(gone))
        text += f"  recovers {len(gone)} lost step{'s' if len(gone) > 1 else ''} ({where})"
    return text


def _or_dash(value: object) -> str:
    from trajrec.replay.render import one_line

    return "-" if value is None or value == "" else one_line(value, 200)


def _show_step(ep, n, with_state, diff_lines, safe, value_text, checks_shown) -> None:  # type: ignore[no-untyped-def]
    from trajrec.replay.render import number_text, reported_at, state_diff_missing

    st = ep[n]
    print(f"step {st.index} of {len(ep)}  ({ep.episode_id})")
    print(f"time      {_fmt_time(st.time)}  duration {st.duration * 1000:.2f} ms")
    print(f"reward    {number_text(st.reward)}   terminated {st.terminated}   truncated {st.truncated}")
    if st.failure:
        print(f"failure   {st.failure.kind}: {safe(st.failure.message)}")
        if st.failure.traceback:
            print(safe(st.failure.traceback).rstrip())
    if st.retry_of is not None:
        print(f"retry of  step {st.retry_of}")
    if st.recovers:
        print(f"recovers  steps {', '.join(map(str, st.recovers))}")
    if _lost_links_text(st.lost_links):
        print(f"links     {_lost_links_text(st.lost_links).strip()}")
    if st.note:
        from trajrec.replay.render import model_call_lines

        print("note")
        for k, v in (st.note.items() if isinstance(st.note, dict) else [("note", st.note)]):
            calls = [v] if k == "model_call" else v if k == "model_calls" and isinstance(v, list) else None
            if calls is None:
                print(f"  {safe(str(k))}: {value_text(v)}")
                continue
            for call in calls:
                print(f"  {safe(str(k))}:")
                for _kind, line in model_call_lines(call):
                    print("    " + line.replace("\n", "\n    "))
    print("action")
    print("  " + value_text(st.action).replace("\n", "\n  "))
    print("observation")
    print("  " + value_text(st.observation).replace("\n", "\n  "))
    if st.info:
        print("info")
        print("  " + value_text(st.info).replace("\n", "\n  "))
    for c in checks_shown(ep, st):  # the checks that target this step, wherever the env reported them
        at = reported_at(c)
        where = f" (reported at step {at})" if at is not None and at != st.index else ""
        print(f"check     {safe(str(c.judge))} [{c.kind}] target={c.target}{where} value={value_text(c.value)} "
              f"{value_text(c.rationale or '')}")
    if st.diff:
        print("state diff")
        for _kind, line in diff_lines(st.diff):
            print("  " + line)
    elif state_diff_missing(st):
        print("state diff")
        print("  " + state_diff_missing(st) + "; `--state` prints the state after this step")
    if st.recorder_errors:
        print("recorder errors (the recording went on; the agent never saw these)")
        for err in st.recorder_errors:
            print(f"  {safe(str(err.get('where')))}: {safe(str(err.get('type')))}: {safe(str(err.get('message')))}"
                  if isinstance(err, dict) else f"  {value_text(err)}")
    if with_state:
        print("state after this step")
        from trajrec.replay.render import tree_text  # a file in the state prints as its lines, not JSON escapes

        from trajrec.recorder.codec import state_not_read

        state = ep.state_at(st.index)
        why = state_not_read(state)
        print("  " + (safe(f"unknown: {why}") if why is not None
                      else tree_text(state, max_len=1 << 40).replace("\n", "\n  ")))
