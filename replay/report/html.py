"""The report as one self-contained HTML page: the figures of :func:`..build_report` as plotly charts and tables.

The page needs no network to view: plotly.js is inlined once (``plotly.offline.get_plotlyjs``), each chart is a
``<div>`` with its data as JSON, and the styles are inline. Recorded text is escaped (``html.escape`` in tables;
plotly escapes ``<``, ``>`` and ``/`` in chart data), so nothing from a file runs as markup or script; before that,
its control characters (ESC, a newline in a task name, bidi overrides) become visible escapes (``\x1b``, ``\n``),
as in the text report and the viewer (:func:`trajrec.replay.render.safe`): the page holds none of them raw.

Needs plotly (``pip install 'trajrec[report]'``); :func:`render_html` raises
:class:`~trajrec.recorder.errors.MissingDependencyError` naming that command when it is missing.
"""

from __future__ import annotations

import html
import json
from typing import Any, Sequence

from trajrec.recorder.errors import require

from ..render import safe
from .text import _num, usage_units

__all__ = ["PLOTLY_PIP", "render_html"]

PLOTLY_PIP = "pip install 'trajrec[report]'"

_MAX_BARS = 60  # per-task and per-tool charts show this many bars; the tables and JSON have the rest

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0; color: #1f2933; background: #f7f8fa; }
header { background: #1f2933; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
header p { margin: 0; color: #cbd2d9; font-size: 13px; }
main { padding: 8px 32px 40px 32px; max-width: 1400px; }
section { background: #fff; border: 1px solid #e4e7eb; border-radius: 6px; margin: 18px 0; padding: 8px 20px 16px; }
h2 { font-size: 18px; margin: 10px 0; }
h3 { font-size: 14px; margin: 14px 0 6px; color: #52606d; }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0 0; }
.kpi { background: #fff; border: 1px solid #e4e7eb; border-radius: 6px; padding: 10px 16px; min-width: 130px; }
.kpi b { display: block; font-size: 20px; }
.kpi span { font-size: 12px; color: #616e7c; }
/* Fixed tracks, not auto-fit: each chart is drawn as the parser reaches it, at the width its cell has then. */
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 12px; }
@media (max-width: 1000px) { .grid { grid-template-columns: minmax(0, 1fr); } }
.plot { min-height: 340px; min-width: 0; overflow: hidden; }
table { border-collapse: collapse; font-size: 12.5px; margin: 6px 0; }
th, td { border-bottom: 1px solid #e4e7eb; padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f0f4f8; padding: 1px 4px; border-radius: 3px; font-size: 12px; user-select: all; }
.note { color: #616e7c; font-size: 12.5px; }
.flag-never-solved { color: #c62828; } .flag-always-solved { color: #2e7d32; }
"""


def _e(x: Any) -> str:
    """Text for the page: control characters as visible escapes (one line: a cell or a title), then HTML-escaped."""
    return html.escape(safe("" if x is None else str(x), keep_newlines=False), quote=True)


def _visible(value: Any) -> Any:
    """A chart's data with the control characters of every string as visible escapes (labels, names, hover
    text come from recorded text; the chart's own strings hold none, so they stay as they are)."""
    if isinstance(value, str):
        return safe(value, keep_newlines=False)
    if isinstance(value, dict):
        return {k: _visible(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_visible(v) for v in value]
    return value


def _fmt(x: Any) -> str:
    return _e(_num(x))  # the terminal tables' number format, escaped for HTML


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, limit: int = 200) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows[:limit]:
        cells = []
        for c in row:
            if isinstance(c, _Raw):
                cells.append(f"<td>{c.html}</td>")
            elif isinstance(c, (int, float)) and not isinstance(c, bool):
                cells.append(f"<td class='n'>{_fmt(c)}</td>")
            else:
                cells.append(f"<td>{_fmt(c)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (f"<p class='note'>... {len(rows) - limit:,} more rows in <code>--json</code></p>"
            if len(rows) > limit else "")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


class _Raw:
    """A table cell that is already HTML (built here from escaped parts)."""

    def __init__(self, markup: str) -> None:
        self.html = markup


def _code(text: str) -> _Raw:
    return _Raw(f"<code>{_e(text)}</code>")


class _Page:
    def __init__(self, go: Any) -> None:
        self.go = go
        self.parts: list[str] = []
        self.n = 0

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def plot(self, fig: Any, title: str, *, height: int = 340) -> str:
        self.n += 1
        fig.update_layout(title={"text": title, "font": {"size": 14}}, template="plotly_white", height=height,
                          margin={"l": 60, "r": 20, "t": 40, "b": 60})
        pio = require("plotly.io", PLOTLY_PIP, "the HTML report")
        div = pio.to_html(_visible(fig.to_plotly_json()), full_html=False, include_plotlyjs=False,
                          div_id=f"plot-{self.n}",
                          config={"displaylogo": False, "responsive": True, "displayModeBar": False})
        return f"<div class='plot'>{div}</div>"


def render_html(report: dict[str, Any]) -> str:
    """The whole page, as text.

    Raises:
        MissingDependencyError: plotly is not installed (``pip install 'trajrec[report]'``).
    """
    go = require("plotly.graph_objects", PLOTLY_PIP, "the HTML report")
    offline = require("plotly.offline", PLOTLY_PIP, "the HTML report")
    page = _Page(go)
    _summary(page, report)
    _coverage(page, report["coverage"])
    _difficulty(page, report["difficulty"])
    _failures(page, report["failures"])
    _checks(page, report["checks"])
    _behaviour(page, report["behaviour"])
    _lineage(page, report["lineage"])
    where = f" where {report['where']}" if report.get("where") else ""
    title = f"trajrec report: {', '.join(report['paths'])}{where}"
    # Inside <script> only "</script" could end the block; escaping every <, > and & (as plotly does) keeps the
    # embedded figures inert whatever a task id or message holds.
    data = (json.dumps(report, ensure_ascii=True, default=str)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{_e(title)}</title>"
            f"<style>{_CSS}</style>"
            f"<script type='text/javascript'>{offline.get_plotlyjs()}</script></head><body>"
            f"<header><h1>{_e(title)}</h1><p>{report['episodes']:,} episodes, {report['steps']:,} steps; "
            f"made by trajrec {_e(report.get('trajrec_version'))} in {report.get('seconds', 0):.1f} s; "
            "figures as JSON: <code>trajrec report ... --json</code></p></header><main>"
            + "".join(page.parts)
            + f"</main><script type='application/json' id='trajrec-report'>{data}</script></body></html>\n")


def _kpi(value: str, label: str) -> str:
    return f"<div class='kpi'><b>{value}</b><span>{_e(label)}</span></div>"


def _summary(page: _Page, r: dict[str, Any]) -> None:
    d, f, c, b = r["difficulty"], r["failures"], r["checks"], r["behaviour"]
    cov = c["label_coverage"]
    kpis = [
        _kpi(_fmt(r["episodes"]), "episodes"),
        _kpi(_fmt(r["steps"]), "steps"),
        _kpi(_fmt(len(r["coverage"]["by_task"])), "tasks attempted"),
        _kpi(_fmt(len(r["coverage"]["never_attempted"])) if r["coverage"]["banks"] else "-",
             "bank tasks never attempted"),
        _kpi(_fmt(d["useful_tasks"]), "tasks neither always nor never solved"),
        _kpi(_pct(f["failed_step_share"]), "steps failed"),
        _kpi(_pct(f["recovery_rate"]), "failures recovered"),
        _kpi(_pct(cov["fraction"]), "steps labeled"),
        _kpi(_fmt(b["duplicates"]["redundant"]), "duplicate episodes"),
    ]
    if r["unreadable"]:
        kpis.append(_kpi(_fmt(len(r["unreadable"])), "unreadable files left out"))
    page.add(f"<div class='kpis'>{''.join(kpis)}</div>")


def _coverage(page: _Page, c: dict[str, Any]) -> None:
    go = page.go
    splits = sorted({s for e in c["by_env"] for s in e["splits"]})
    envs = [e["env"] or "(no env id)" for e in c["by_env"]]
    fig = go.Figure([go.Bar(name=s or "(no split)", x=envs, y=[e["splits"].get(s, 0) for e in c["by_env"]])
                     for s in splits])
    fig.update_layout(barmode="stack", yaxis_title="episodes")
    plots = [page.plot(fig, "Episodes per env and split")]
    tasks = sorted(c["by_task"], key=lambda t: (t["env"], t["task"]))
    if tasks:
        fig = go.Figure()
        for env in sorted({t["env"] for t in tasks}):
            mine = [t for t in tasks if t["env"] == env][:_MAX_BARS]
            fig.add_trace(go.Bar(name=env or "(no env id)", x=[t["task"] for t in mine],
                                 y=[t["episodes"] for t in mine]))
        fig.update_layout(yaxis_title="episodes", xaxis_tickangle=-45)
        plots.append(page.plot(fig, "Episodes per task"))
    rows = [[e["env"], e["episodes"], e["tasks"], e["bank"], e["never_attempted"]] for e in c["by_env"]]
    never = c["never_attempted"]
    page.add("<section id='coverage'><h2>1. Coverage</h2>"
             f"<div class='grid'>{''.join(plots)}</div>"
             + _table(["env", "episodes", "tasks attempted", "task bank", "never attempted"], rows)
             + (f"<h3>Tasks in a bank never attempted ({len(never):,})</h3>"
                + _table(["env", "task", "split"], [[n["env"], n["task"], n["split"]] for n in never])
                if never else "<p class='note'>Every task of the known task banks was attempted.</p>"
                if c["banks"] else "<p class='note'>No task bank is known for these envs (only the built-in envs "
                                   "declare one).</p>")
             + "</section>")


def _difficulty(page: _Page, d: dict[str, Any]) -> None:
    go = page.go
    tasks = [t for t in d["tasks"] if t["solve_rate"] is not None]
    tasks.sort(key=lambda t: (t["solve_rate"], t["env"], t["task"]))
    plots = []
    if tasks:
        colors = ["#c62828" if t["flag"] == "never-solved" else "#2e7d32" if t["flag"] == "always-solved"
                  else "#1565c0" for t in tasks]
        shown = tasks if len(tasks) <= _MAX_BARS * 2 else tasks[:_MAX_BARS] + tasks[-_MAX_BARS:]
        fig = go.Figure(go.Bar(x=[f"{t['task']}" for t in shown], y=[t["solve_rate"] for t in shown],
                               marker_color=colors[: len(shown)] if len(shown) == len(tasks)
                               else colors[:_MAX_BARS] + colors[-_MAX_BARS:],
                               customdata=[[t["env"], t["judged"], t["solved"]] for t in shown],
                               hovertemplate="%{x}<br>%{customdata[0]}<br>solve rate %{y:.3f} "
                                             "(%{customdata[2]} of %{customdata[1]})<extra></extra>"))
        fig.update_layout(yaxis_title="solve rate", yaxis_range=[0, 1.02], xaxis_tickangle=-45)
        plots.append(page.plot(fig, "Solve rate per task (red: never solved, green: always solved)"))
    curve = d["pass_at_k_mean"]
    if curve:
        fig = go.Figure(go.Scatter(x=[p["k"] for p in curve], y=[p["mean"] for p in curve], mode="lines+markers",
                                   customdata=[[p["tasks"], p["unsolved"]] for p in curve],
                                   hovertemplate="pass@%{x}: %{y:.3f} (mean of the %{customdata[0]} tasks with at "
                                                 "least %{x} attempts, %{customdata[1]} never solved)"
                                                 "<extra></extra>"))
        fig.update_layout(xaxis_title="k", yaxis_title="mean pass@k over tasks", yaxis_range=[0, 1.02],
                          xaxis_type="log" if len(curve) > 20 else "linear")
        plots.append(page.plot(fig, "pass@k (unbiased estimator, Chen et al. 2021), mean over the tasks with at "
                                    "least k attempts"))
    rows = [[t["env"], t["task"], t["split"], t["judged"], t["solved"], t["solve_rate"],
             *[t["pass_at_k"][k - 1] if len(t["pass_at_k"]) >= k else None for k in (1, 5, 10)],
             _Raw(f"<span class='flag-{_e(t['flag'])}'>{_e(t['flag'] or '')}</span>")] for t in tasks]
    page.add("<section id='difficulty'><h2>2. Difficulty</h2>"
             f"<p class='note'>{d['judged_tasks']:,} tasks judged: {d['always_solved']:,} always solved, "
             f"{d['never_solved']:,} never solved (both teach little), {d['useful_tasks']:,} in between; "
             f"{d['unverified']:,} tasks with no verdict.</p>"
             f"<div class='grid'>{''.join(plots)}</div>"
             + _table(["env", "task", "split", "attempts", "solved", "solve rate", "pass@1", "pass@5", "pass@10",
                       "flag"], rows) + "</section>")


def _failures(page: _Page, f: dict[str, Any]) -> None:
    go = page.go
    plots = []
    tools = f["by_tool"][:_MAX_BARS]
    if tools:
        fig = go.Figure([go.Bar(name="recovered", x=[t["tool"] for t in tools], y=[t["recovered"] for t in tools],
                                marker_color="#2e7d32"),
                         go.Bar(name="not recovered", x=[t["tool"] for t in tools],
                                y=[t["failures"] - t["recovered"] for t in tools], marker_color="#c62828")])
        fig.update_layout(barmode="stack", yaxis_title="failed steps", xaxis_tickangle=-45)
        plots.append(page.plot(fig, "Failures per tool"))
    msgs = f["messages"][:20]
    if msgs:
        short = [m["message"] if len(m["message"]) <= 70 else m["message"][:69] + "…" for m in msgs]
        fig = go.Figure(go.Bar(y=short[::-1], x=[m["count"] for m in msgs][::-1], orientation="h",
                               customdata=[m["message"] for m in msgs][::-1],
                               hovertemplate="%{customdata}<br>%{x} failed steps<extra></extra>"))
        fig.update_layout(xaxis_title="failed steps", margin={"l": 420}, yaxis={"automargin": True})
        plots.append(page.plot(fig, "Most common error messages (numbers, paths, ids, quoted values masked)",
                               height=max(340, 22 * len(msgs) + 80)))
    hist = f["steps_to_recover"]["histogram"]
    if hist:
        fig = go.Figure(go.Bar(x=[int(k) for k in hist], y=list(hist.values())))
        fig.update_layout(xaxis_title="steps from the failure to its recovery", yaxis_title="recovered failures")
        plots.append(page.plot(fig, "Steps to recover"))
    retries = f["retries_per_chain"]["histogram"]
    if retries:
        fig = go.Figure(go.Bar(x=[int(k) for k in retries], y=list(retries.values()), marker_color="#8e24aa"))
        fig.update_layout(xaxis_title="retries in the chain (retries of retries included)",
                          yaxis_title="failed operations")
        plots.append(page.plot(fig, "Retries per failed operation (retry chain)"))
    look = [[item["reason"], item["episode"], item.get("env"), item.get("task"), item.get("outcome"),
             item["detail"], _code(item["view"]), _code(item["show"])] for item in f["worth_a_look"]]
    summary = (f"{f['failed_steps']:,} failed steps of {f['steps']:,} ({_pct(f['failed_step_share'])}) in "
               f"{f['episodes_with_failures']:,} episodes; {f['recovered']:,} recovered "
               f"({_pct(f['recovery_rate'])}); {_fmt(f['retries_per_chain']['mean'])} retries per failed operation "
               f"(a retry chain, {f['retry_chains']:,} chains); "
               f"median {_fmt(f['steps_to_recover']['median'])} steps to recover.")
    page.add("<section id='failures'><h2>3. Failures</h2>"
             f"<p class='note'>{summary}</p><div class='grid'>{''.join(plots)}</div>"
             "<h3>By kind</h3>"
             + _table(["kind", "failures", "recovered", "recovery rate"],
                      [[k["kind"], k["failures"], k["recovered"], _pct(k["recovery_rate"])] for k in f["by_kind"]])
             + "<h3>Error messages</h3>"
             + _table(["count", "message", "tools", "example"],
                      [[m["count"], m["message"], ", ".join(m["tools"]), m["example"]["message"]]
                       for m in f["messages"]])
             + "<h3>Episodes worth a look</h3>"
             + (_table(["reason", "episode", "env", "task", "outcome", "detail", "open in the viewer", "print"],
                       look) if look else "<p class='note'>Nothing stands out.</p>")
             + "</section>")


def _checks(page: _Page, c: dict[str, Any]) -> None:
    go = page.go
    plots = []
    judges = c["verdicts_by_judge"][:_MAX_BARS]
    if judges:
        names = [f"{j['judge']} ({j['source']})" for j in judges]
        fig = go.Figure([go.Bar(name=k, x=names, y=[j[key] for j in judges], marker_color=col)
                         for k, key, col in (("pass", "passed", "#2e7d32"), ("fail", "failed", "#c62828"),
                                             ("other", "other", "#9aa5b1"))])
        fig.update_layout(barmode="stack", yaxis_title="verdicts", xaxis_tickangle=-30)
        plots.append(page.plot(fig, "Verdicts by judge"))
    ag = c["agreement"]
    if len(ag["judges"]) >= 2:
        z = [[None if i == j else v for j, v in enumerate(row)] for i, row in enumerate(ag["kappa"])]
        text = [["" if i == j or v is None else f"{v:.2f}<br>n={ag['overlap'][i][j]:,}" for j, v in enumerate(row)]
                for i, row in enumerate(ag["kappa"])]
        fig = go.Figure(go.Heatmap(z=z, x=ag["judges"], y=ag["judges"], zmin=-1, zmax=1, colorscale="RdBu",
                                   text=text, texttemplate="%{text}", colorbar={"title": "kappa"},
                                   hovertemplate="%{y} vs %{x}: kappa %{z:.3f}<extra></extra>"))
        fig.update_layout(yaxis_autorange="reversed")
        plots.append(page.plot(fig, "Cohen's kappa between judges (steps both labeled)",
                               height=max(340, 60 * len(ag["judges"]) + 120)))
    cov = c["label_coverage"]
    if cov["by_judge"]:
        fig = go.Figure(go.Bar(x=[j["judge"] for j in cov["by_judge"]], y=[j["fraction"] for j in cov["by_judge"]]))
        fig.update_layout(yaxis_title="share of steps labeled", yaxis_tickformat=".0%")
        plots.append(page.plot(fig, "Label coverage per judge"))
    worst = [[w["episode"], w["step"], w["judges"], w["disagreement"],
              "; ".join(f"{j}={v}" for j, v in w["values"].items()), _code(w["view"])] for w in c["disagreements"]]
    page.add("<section id='checks'><h2>4. Checks and labels</h2>"
             f"<p class='note'>{cov['labeled_steps']:,} of {cov['steps']:,} steps labeled ({_pct(cov['fraction'])}), "
             f"in {cov['labeled_episodes']:,} episodes; judges per labeled step: "
             + (_e(", ".join(f"{k}: {v:,}" for k, v in cov["judges_per_step"].items())) or "-") + ".</p>"
             f"<div class='grid'>{''.join(plots)}</div>"
             "<h3>Verdicts by check kind</h3>"
             + _table(["source", "kind", "total", "pass", "fail", "other"],
                      [[v["source"], v["kind"], v["total"], v["passed"], v["failed"], v["other"]]
                       for v in c["verdicts_by_kind"]])
             + "<h3>Verdicts by judge</h3>"
             + _table(["source", "judge", "kind", "total", "pass", "fail", "other"],
                      [[v["source"], v["judge"], v["kind"], v["total"], v["passed"], v["failed"], v["other"]]
                       for v in c["verdicts_by_judge"]])
             + "<h3>Steps where judges disagree most</h3>"
             + (_table(["episode", "step", "judges", "disagreement", "values", "open"], worst) if worst
                else "<p class='note'>No step has two judges that disagree.</p>")
             + "</section>")


def _behaviour(page: _Page, b: dict[str, Any]) -> None:
    go = page.go
    plots = []
    hist = b["steps"]["histogram"]
    if hist:
        fig = go.Figure(go.Bar(x=[h["lo"] for h in hist], y=[h["count"] for h in hist],
                               width=[h["hi"] - h["lo"] for h in hist], offset=0))
        fig.update_layout(xaxis_title="steps per episode", yaxis_title="episodes", bargap=0.05)
        plots.append(page.plot(fig, "Steps per episode"))
    for key, what in (("steps", "steps"), ("thought_length", "thought length (chars per step)")):
        qs = b[key]["solve_rate_by_quartile"]
        if qs:
            fig = go.Figure(go.Bar(x=[f"[{q['lo']:.3g}, {q['hi']:.3g}{']' if k == len(qs) - 1 else ')'}"
                                      for k, q in enumerate(qs)],
                                   y=[q["solve_rate"] for q in qs], customdata=[q["episodes"] for q in qs],
                                   hovertemplate="%{x}: solve rate %{y:.3f} over %{customdata} episodes"
                                                 "<extra></extra>", marker_color="#00897b"))
            r = b[key]["correlation_with_success"]
            fig.update_layout(xaxis_title=f"{what}, by quartile", yaxis_title="solve rate", yaxis_range=[0, 1.02])
            plots.append(page.plot(fig, f"Solve rate by {what} (r = {'-' if r is None else f'{r:.3f}'})"))
    u = b["usage"]
    if u["by_model"]:
        fig = go.Figure(go.Bar(x=[m["model"] for m in u["by_model"]], y=[m["tokens"] for m in u["by_model"]],
                               customdata=[_num(m["cost"], 4) for m in u["by_model"]],  # "-": unknown
                               hovertemplate="%{x}: %{y:,} tokens, cost %{customdata}<extra></extra>"))
        fig.update_layout(yaxis_title="tokens")
        plots.append(page.plot(fig, "Tokens per model"))
    dup_rows = []
    for key in ("duplicates", "near_duplicates"):
        d = b[key]
        for g in d["largest"][:5]:
            dup_rows.append([key.replace("_", "-"), g["size"], ", ".join(g["examples"])])
    usage = (f"{u['tokens']['total']:,} tokens ({u['tokens']['input']:,} in, {u['tokens']['output']:,} out) over "
             f"{usage_units(u)} of {u['episodes']:,} episode{'' if u['episodes'] == 1 else 's'}; cost {_fmt(u['cost'])}"
             + (f" (priced: {u['cost_episodes']:,} of {u['episodes']:,} episodes)."
                if u["cost"] is not None and u["cost_episodes"] < u["episodes"] else ".")
             if u["episodes"] else "No token usage recorded in the steps' notes.")
    dd, nd = b["duplicates"], b["near_duplicates"]
    page.add("<section id='behaviour'><h2>5. Behaviour</h2>"
             f"<p class='note'>Duplicates (identical action sequences): {dd['groups']:,} groups holding "
             f"{dd['episodes']:,} episodes ({dd['redundant']:,} redundant). Near-duplicates (same tools in the same "
             f"order): {nd['groups']:,} groups, {nd['redundant']:,} redundant. {_e(usage)}</p>"
             f"<div class='grid'>{''.join(plots)}</div>"
             + (_table(["kind", "episodes", "examples"], dup_rows) if dup_rows else "")
             + "</section>")


def _lineage(page: _Page, li: dict[str, Any]) -> None:
    go = page.go
    plots = []
    if li["models"]:
        fig = go.Figure(go.Bar(x=[m["model"] or "(none)" for m in li["models"]],
                               y=[m["episodes"] for m in li["models"]], marker_color="#5c6bc0"))
        fig.update_layout(yaxis_title="episodes")
        plots.append(page.plot(fig, "Episodes per model"))
    sampling = [[json.dumps(s["settings"], sort_keys=True) if s["settings"] else "(not recorded)", s["episodes"]]
                for s in li["sampling"]]
    page.add("<section id='lineage'><h2>6. Lineage</h2>"
             f"<div class='grid'>{''.join(plots)}</div>"
             "<h3>Agents</h3>" + _table(["name", "version", "class", "episodes"],
                                        [[a["name"], a["version"], a["class"], a["episodes"]] for a in li["agents"]])
             + "<h3>Sampling settings</h3>" + _table(["settings", "episodes"], sampling)
             + "<h3>Recorders and env packages</h3>"
             + _table(["recorder", "version", "format", "episodes"],
                      [[r["name"], r["version"], r["format_version"], r["episodes"]] for r in li["recorders"]])
             + _table(["env package", "version", "episodes"],
                      [[p["package"], p["version"], p["episodes"]] for p in li["env_packages"]])
             + ("<h3>Lineage</h3>" + _table(["lineage", "episodes"],
                                            [[json.dumps(x["lineage"], sort_keys=True), x["episodes"]]
                                             for x in li["lineage"]]) if li["lineage"] else "")
             + "<h3>Runs</h3>" + _table(["run", "episodes", "first start", "last start", "hosts"],
                                        [[r["run_id"], r["episodes"], r["first_start"], r["last_start"],
                                          ", ".join(r["hosts"])] for r in li["runs"]])
             + "</section>")
