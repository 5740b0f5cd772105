"""The report as terminal tables: :func:`render_text` draws the figures :func:`..build_report` returned.

Recorded text (task ids, messages, judge names) goes through :func:`trajrec.replay.render.one_line`, so nothing
from a file reaches the terminal as anything but literal text. Long tables show their first ``rows`` rows and
say how many more the JSON output has.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..render import cost_text, one_line

__all__ = ["render_text", "table"]


def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x != x:
            return "-"
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        return f"{x:.{digits}g}" if abs(x) < 1 else f"{x:.{digits}g}" if abs(x) < 100 else f"{x:.1f}"
    return str(x)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, indent: int = 2, width: int = 40) -> list[str]:
    """Rows as aligned text columns (numbers right-aligned), each cell cut to ``width`` characters.

    >>> print("\\n".join(table(["name", "n"], [["a", 1], ["bb", 1234]])))
      name      n
      a         1
      bb    1,234
    """
    cells = [[one_line(c, width) if isinstance(c, str) else _num(c) for c in row] for row in rows]
    right = [all(not isinstance(row[i], str) for row in rows) if rows else False for i in range(len(headers))]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    pad = " " * indent

    def line(values: Sequence[str]) -> str:
        return pad + "  ".join(v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right)).rstrip()

    return [line(list(headers))] + [line(r) for r in cells]


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _more(out: list[str], shown: int, total: int, what: str) -> None:
    if total > shown:
        out.append(f"  ... {total - shown:,} more {what} (--json lists them all)")


def render_text(report: dict[str, Any], *, rows: int = 15) -> str:
    """Every section of the report as text tables, ``rows`` rows per long table."""
    out: list[str] = []
    where = f" where {report['where']!r}" if report.get("where") else ""
    out.append(f"trajrec report: {_count(report['episodes'], 'episode')}, {_count(report['steps'], 'step')} in "
               f"{', '.join(report['paths'])}{where}")
    gone = [f"{report[k]:,} {what}" for k, what in (("damaged_steps", "lost to damage"),
                                                     ("unwritten_steps", "not written while recording"))
            if report.get(k)]
    if gone:
        out.append(f"  steps counted are the readable ones (as `trajrec ls` counts them); more steps lost: "
                   f"{', '.join(gone)}")
    if report["unreadable"]:
        out.append(f"  {len(report['unreadable'])} unreadable file(s) left out, e.g. "
                   f"{one_line(report['unreadable'][0]['path'], 80)}: {one_line(report['unreadable'][0]['error'], 120)}")
    live = report.get("live") or []
    if live:
        out.append(f"  {_count(len(live), 'episode')} being recorded (a live Recorder holds "
                   f"{'it' if len(live) == 1 else 'them'}): reported as written so far, e.g. {one_line(live[0], 80)}")
    if report["incomplete"]:
        out.append(f"  {report['incomplete']} episode(s) without an index (the writer did not close them); "
                   "`trajrec fsck --repair` adds one to each that holds a record (`trajrec fsck` names any that cannot be "
                   "repaired)")
    lost = report.get("lost_steps") or []
    if lost:
        out.append(f"  {_count(len(lost), 'episode')} lost steps (to damaged bytes, or to a failed write while "
                   f"recording), reported as far as they hold: not whole, left out of exports unless --keep-partial; "
                   f"`trajrec fsck PATH` says where, e.g. {one_line(lost[0], 80)}")
    _coverage(out, report["coverage"], rows)
    _difficulty(out, report["difficulty"], rows)
    _failures(out, report["failures"], rows)
    _checks(out, report["checks"], rows)
    _behaviour(out, report["behaviour"], rows)
    _lineage(out, report["lineage"], rows)
    return "\n".join(out) + "\n"


def _coverage(out: list[str], c: dict[str, Any], rows: int) -> None:
    out += ["", "1. Coverage"]
    splits = sorted({s for e in c["by_env"] for s in e["splits"]})
    out += table(["env", "episodes", "tasks", "bank", "never tried", *[s or "(no split)" for s in splits]],
                 [[e["env"] or "(no env id)", e["episodes"], e["tasks"], e["bank"], e["never_attempted"],
                   *[e["splits"].get(s, 0) for s in splits]] for e in c["by_env"]])
    never = c["never_attempted"]
    if never:
        out.append(f"  never attempted ({len(never)}): " + ", ".join(
            one_line(f"{n['task']} ({n['split']})", 40) for n in never[: rows * 2]) + (" ..." if len(never) > rows * 2 else ""))
    elif c["banks"]:
        out.append("  every task of the known task banks was attempted")
    unknown = [e["env"] for e in c["by_env"] if e["bank"] is None]
    if unknown:
        out.append(f"  task bank unknown for {', '.join(one_line(u or '(no env id)', 40) for u in unknown)} "
                   "(only the built-in envs declare one)")


def _difficulty(out: list[str], d: dict[str, Any], rows: int) -> None:
    out += ["", "2. Difficulty (solved = the terminal check passed; pass@k: unbiased estimator, Chen et al. 2021)"]
    out.append(f"  {d['judged_tasks']} tasks judged: {d['always_solved']} always solved, {d['never_solved']} never "
               f"solved, {d['useful_tasks']} in between; {d['unverified']} unverified (no verdict)")
    curve = d["pass_at_k_mean"]
    if curve:
        ks = [k for k in (1, 2, 5, 10, 20, 50, 100) if k <= len(curve)]
        out.append("  mean pass@k over the tasks with at least k judged attempts (the set shrinks as k grows):")
        out += table(["k", "tasks", "unsolved", "mean pass@k"],
                     [[k, curve[k - 1]["tasks"], curve[k - 1]["unsolved"], f"{curve[k - 1]['mean']:.3f}"]
                      for k in ks], indent=4)
        left_out = d["never_solved"] - curve[ks[-1] - 1]["unsolved"]
        if left_out > 0:
            out.append(f"    never-solved tasks left out of pass@{ks[-1]} (fewer than {ks[-1]} judged attempts): "
                       f"{left_out} of {d['never_solved']}")
    tasks = [t for t in d["tasks"] if t["flag"] != "unverified"]
    # The tasks worth reading first: flagged ones, then the hardest.
    tasks.sort(key=lambda t: (t["flag"] is None, t["solve_rate"], t["env"], t["task"]))
    shown = tasks[:rows]
    out += table(["env", "task", "split", "attempts", "solved", "rate", "pass@1", "pass@5", "pass@10", "flag"],
                 [[t["env"], t["task"], t["split"], t["judged"], t["solved"], t["solve_rate"],
                   *[t["pass_at_k"][k - 1] if len(t["pass_at_k"]) >= k else None for k in (1, 5, 10)],
                   t["flag"] or ""] for t in shown])
    _more(out, len(shown), len(tasks), "tasks")


def _failures(out: list[str], f: dict[str, Any], rows: int) -> None:
    out += ["", "3. Failures"]
    if not f["steps"]:
        out.append("  no readable step")
    elif not f["failed_steps"]:
        out.append(f"  no failed step in {f['steps']:,} readable steps")
    else:
        r = f["retries_per_chain"]
        s = f["steps_to_recover"]
        out.append(f"  {f['failed_steps']:,} failed steps of {f['steps']:,} ({_pct(f['failed_step_share'])}) in "
                   f"{f['episodes_with_failures']:,} episodes; recovered {f['recovered']:,} "
                   f"({_pct(f['recovery_rate'])}), in {f['episodes_with_recoveries']:,} episodes")
        out.append(f"  retry chains (a failed step that is no retry, with its retries and theirs): "
                   f"{_num(f['retry_chains'])}, {_num(f['chains_retried'])} retried; retries per chain: mean "
                   f"{_num(r['mean'])}, max {_num(r['max'])}")
        out.append(f"  steps to recover: median {_num(s['median'])}, mean {_num(s['mean'])}, p90 {_num(s['p90'])}")
        out += table(["kind", "failures", "recovered", "rate"],
                     [[k["kind"], k["failures"], k["recovered"], _pct(k["recovery_rate"])] for k in f["by_kind"]])
        out.append("")
        tools = f["by_tool"][:rows]
        out += table(["tool", "failures", "recovered", "rate"],
                     [[k["tool"], k["failures"], k["recovered"], _pct(k["recovery_rate"])] for k in tools])
        _more(out, len(tools), len(f["by_tool"]), "tools")
        out.append("")
        msgs = f["messages"][:rows]
        out += table(["count", "message (numbers, paths, ids, quoted values masked)", "tools"],
                     [[m["count"], m["message"], ", ".join(m["tools"])] for m in msgs], width=90)
        _more(out, len(msgs), f["message_shapes"], "message shapes")
    look = f["worth_a_look"]
    if look:
        out += ["", "  worth a look (in the viewer's report screen, keys 1-9 open them at the step shown):"]
        for n, item in enumerate(look, 1):
            out.append(f"  {n:>2}. {one_line(item['episode'], 50)} [{item['reason']}] {one_line(item['detail'], 60)}")
            out.append(f"      {one_line(item['view'], 200)}")


def _checks(out: list[str], c: dict[str, Any], rows: int) -> None:
    out += ["", "4. Checks and labels"]
    if c["verdicts_by_kind"]:
        out += table(["source", "kind", "total", "pass", "fail", "other"],
                     [[v["source"], v["kind"], v["total"], v["passed"], v["failed"], v["other"]]
                      for v in c["verdicts_by_kind"]])
        out.append("")
        judges = c["verdicts_by_judge"][:rows]
        out += table(["source", "judge", "kind", "total", "pass", "fail", "other"],
                     [[v["source"], v["judge"], v["kind"], v["total"], v["passed"], v["failed"], v["other"]]
                      for v in judges])
        _more(out, len(judges), len(c["verdicts_by_judge"]), "judges")
    else:
        out.append("  no checks recorded and no labels")
    cov = c["label_coverage"]
    out.append("")
    out.append(f"  label coverage: {cov['labeled_steps']:,} of {cov['steps']:,} steps labeled "
               f"({_pct(cov['fraction'])}), in {cov['labeled_episodes']:,} episodes; judges per labeled step: "
               + (", ".join(f"{k}: {v:,}" for k, v in cov["judges_per_step"].items()) or "-"))
    for j in cov["by_judge"][:rows]:
        out.append(f"    {one_line(j['judge'], 40)}: {j['steps']:,} steps ({_pct(j['fraction'])})")
    ag = c["agreement"]
    judges = ag["judges"]
    if len(judges) >= 2:
        out.append("")
        out.append("  Cohen's kappa between judges (on steps both labeled; n in brackets):")
        names = [f"j{i + 1}" for i in range(len(judges))]
        body = []
        for i, name in enumerate(names):
            cells = []
            for j in range(len(judges)):
                k, n = ag["kappa"][i][j], ag["overlap"][i][j]
                cells.append("" if i == j else "-" if k is None else f"{k:.2f} ({n:,})")
            body.append([f"{name} {judges[i]}", *cells])
        out += table(["judge", *names], body)
    worst = c["disagreements"]
    if worst:
        out.append("")
        out.append("  steps where judges disagree most:")
        for w in worst[:rows]:
            vals = ", ".join(f"{one_line(j, 24)}={v}" for j, v in w["values"].items())
            out.append(f"  - {one_line(w['episode'], 50)} step {w['step']}: {vals}")
            out.append(f"      {one_line(w['view'], 200)}")


def _behaviour(out: list[str], b: dict[str, Any], rows: int) -> None:
    out += ["", "5. Behaviour"]
    s = b["steps"]
    out.append(f"  steps per episode: mean {_num(s['mean'])}, median {_num(s['median'])}, p90 {_num(s['p90'])}, "
               f"max {_num(s['max'])}")
    for name, sp in s["by_outcome"].items():
        out.append(f"    {name}: {sp['n']:,} episodes, mean {_num(sp['mean'])} steps, median {_num(sp['median'])}")
    out.append(f"  length vs success: r = {_num(s['correlation_with_success'])}; solve rate by steps quartile: "
               + _quartiles(s["solve_rate_by_quartile"]))
    t = b["thought_length"]
    if t["episodes_with_thoughts"]:
        out.append(f"  thought length (chars per step): solved mean {_num(t['solved']['mean'])}, unsolved mean "
                   f"{_num(t['unsolved']['mean'])}; r with success = {_num(t['correlation_with_success'])}")
        out.append("    solve rate by thought-length quartile: " + _quartiles(t["solve_rate_by_quartile"]))
    else:
        out.append("  no thoughts recorded (note['thought'])")
    for key, what in (("duplicates", "identical action sequences"), ("near_duplicates", "same tools in the same order")):
        d = b[key]
        out.append(f"  {key.replace('_', '-')} ({what}): {d['groups']:,} groups holding {d['episodes']:,} episodes "
                   f"({d['redundant']:,} redundant); largest: "
                   + (", ".join(str(g["size"]) for g in d["largest"][:5]) or "-"))
    u = b["usage"]
    if u["episodes"]:
        per = u["per_episode"]
        out.append(f"  tokens: {u['tokens']['total']:,} ({u['tokens']['input']:,} in, {u['tokens']['output']:,} out) "
                   f"over {usage_units(u)} of {_count(u['episodes'], 'episode')}; cost {_cost(u, 4)}; per episode "
                   f"{_num(per['tokens'])} tokens, {cost_text(per['cost'])}"
                   + (" (priced episodes)" if 0 < u["cost_episodes"] < u["episodes"] else ""))
        if u.get("calls_without_usage"):
            n = u["calls_without_usage"]
            out.append(f"    {n:,} of the model calls reported no usage: their tokens are unknown, not counted above")
        if u["model_calls"]:
            out.append(f"    {u['model_calls']:,} model calls, {u['failed_attempts']:,} failed attempts, "
                       + (f"{_num(u['latency'])} s waiting" if u["latency"] is not None
                          else "model time unknown (no call recorded its latency)"))
        for m in u["by_model"][:rows]:
            out.append(f"    {one_line(m['model'], 40)}: {m['episodes']:,} episodes, {m['tokens']:,} tokens, "
                       f"cost {_cost(m, 4)}")
    else:
        out.append("  no token usage recorded (note['usage'] / note['model_call'])")


def usage_units(usage: dict[str, Any]) -> str:
    """What the token totals of a report's ``usage`` were summed over: the model calls the summaries count, and
    the steps whose notes carried usage in episodes without such totals (older files)."""
    parts = []
    if usage.get("model_calls"):
        parts.append(_count(usage["model_calls"], "model call"))
    if usage.get("steps"):
        parts.append(_count(usage["steps"], "step") + " with usage in their notes")
    return " and ".join(parts) or "no model calls"


def _cost(row: dict[str, Any], digits: int) -> str:
    """A usage row's cost: ``-`` when no episode was priced (unknown, not 0); the known sum and how many episodes it
    covers when only some were."""
    shown = cost_text(row.get("cost"), digits)
    priced, episodes = row.get("cost_episodes"), row.get("episodes")
    if row.get("cost") is not None and isinstance(priced, int) and isinstance(episodes, int) and priced < episodes:
        return f"{shown} (priced: {priced:,} of {episodes:,} episodes; the rest unknown)"
    return shown


def _quartiles(qs: list[dict[str, Any]]) -> str:
    if not qs:
        return "-"
    # Half-open bins [lo, hi), the last one closed (behaviour._by_quartile): the brackets say which holds a tie.
    return "  ".join(f"[{_num(q['lo'])}, {_num(q['hi'])}{']' if k == len(qs) - 1 else ')'} {_pct(q['solve_rate'])} "
                     f"({q['episodes']})" for k, q in enumerate(qs))


def _lineage(out: list[str], li: dict[str, Any], rows: int) -> None:
    out += ["", "6. Lineage"]
    out += table(["agent", "version", "class", "episodes"],
                 [[a["name"] or "-", a["version"] or "-", a["class"] or "-", a["episodes"]] for a in li["agents"][:rows]])
    out.append("  models: " + ", ".join(f"{one_line(m['model'] or '(none)', 40)} ({m['episodes']:,})"
                                        for m in li["models"][:rows]))
    out.append("  sampling: " + "; ".join(
        (one_line(", ".join(f"{k}={v}" for k, v in s["settings"].items()), 80) if s["settings"] else "(not recorded)")
        + f" ({s['episodes']:,})" for s in li["sampling"][:rows]))
    out.append("  recorders: " + ", ".join(f"{r['name']} {r['version']} (format {r['format_version']}): "
                                           f"{r['episodes']:,}" for r in li["recorders"]))
    out.append("  env packages: " + ", ".join(f"{one_line(p['package'] or '-', 30)} {p['version'] or ''}: "
                                              f"{p['episodes']:,}" for p in li["env_packages"][:rows]))
    if li["code_revisions"]:
        out.append("  code revisions: " + ", ".join(f"{r['commit']}{' (dirty)' if r['dirty'] else ''}: "
                                                    f"{r['episodes']:,}" for r in li["code_revisions"][:rows]))
    for entry in li["lineage"][:rows]:
        out.append(f"  lineage {one_line(entry['lineage'], 100)}: {entry['episodes']:,}")
    _more(out, min(len(li["lineage"]), rows), len(li["lineage"]), "lineage groups")
    runs = li["runs"]
    out += table(["run", "episodes", "first start", "last start", "hosts"],
                 [[r["run_id"] or "(no run id)", r["episodes"], r["first_start"] or "-", r["last_start"] or "-",
                   ", ".join(r["hosts"])] for r in runs[:rows]])
    _more(out, min(len(runs), rows), len(runs), "runs")
