"""One self-contained HTML page of a finding: header, variant matrix, swimlane, replay command.

Inline CSS and SVG only (no scripts, fonts or images from the network), so the page can be
attached to a mail or a bug report as it is. The swimlane is a table with one column per
thread role: a step sits in its role's column, a preempted step (the scheduler switched away
from the previous thread) has an orange edge and ``»``, the violating step is red with ``✗``.
"""

from __future__ import annotations

from html import escape
from typing import Any

from ..engine.report import preemption_text

CSS = """
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1d2433;background:#fafbfc}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.meta{color:#57606a}.meaning{max-width:980px}
code,pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
pre{background:#f0f2f5;padding:8px 10px;border-radius:6px;white-space:pre-wrap;word-break:break-all}
table{border-collapse:collapse}
.matrix td,.matrix th{border:1px solid #d0d7de;padding:4px 8px;text-align:center}
.matrix .yes{background:#ffd7d5;color:#82071e;font-weight:600}.matrix .no{background:#dafbe1;color:#116329}
.lanes{table-layout:fixed;width:100%}
.lanes th{position:sticky;top:0;background:#1d2433;color:#fff;padding:6px;font-weight:600}
.lanes td{vertical-align:top;padding:2px 6px;border-left:2px solid #d0d7de;height:22px}
.lanes .step{color:#8c959f;text-align:right;border-left:none;width:44px;font:11px ui-monospace,monospace}
.lanes th.step{color:#fff}
.ev{background:#fff;border:1px solid #d0d7de;border-radius:5px;padding:3px 6px}
.ev .fn{font-weight:600;font-family:ui-monospace,monospace}
.ev .site,.ev .eff{font:11px ui-monospace,monospace;color:#57606a}
.ev .cite{font-size:11px;color:#0969da}
.ev.preempted{border-left:4px solid #d4a72c;background:#fff8c5}
.ev.violation{border:2px solid #cf222e;background:#ffebe9}
.mark{font-weight:700;margin-right:4px}.preempted .mark{color:#9a6700}.violation .mark{color:#cf222e}
.legend span{margin-right:16px}
"""


def _matrix_html(matrix: dict[str, Any] | None) -> str:
    if matrix is None:
        return "<p class='meta'>variant matrix not computed</p>"
    heads = "".join(f"<th>{escape(c['variant'])}</th>" for c in matrix["variants"])
    cells = "".join(
        f"<td class='{'yes' if c['exists'] else 'no'}' title='{escape(c['evidence'])}'>"
        f"{'exists' if c['exists'] else 'not found'}<br><small>{escape(c['evidence'])}</small></td>"
        for c in matrix["variants"]
    )
    intro = ", ".join(matrix["introduced_in"]) or "-"
    fixed = ", ".join(matrix["fixed_in"]) or "not fixed in any variant"
    return (f"<table class='matrix' id='matrix'><tr>{heads}</tr><tr>{cells}</tr></table>"
            f"<p>introduced in <b>{escape(intro)}</b>; fixed in <b>{escape(fixed)}</b> "
            f"<span class='meta'>(decided by signature; replays, then DFS ≤1 preemption, "
            f"{matrix['search_executions']} executions per variant)</span></p>")


def _event(row: dict[str, Any]) -> str:
    classes = "ev" + (" violation" if row["violation"] else "") + (" preempted" if row["preempted"] else "")
    mark = "✗" if row["violation"] else ("»" if row["preempted"] else "")
    site = row["site"] if row["site"] not in ("start", "exit") else ""
    function = "(start)" if row["function"] == "?" else row["function"]
    parts = [f"<span class='mark'>{mark}</span>" if mark else "", f"<span class='fn'>{escape(function)}</span>"]
    if site:
        parts.append(f" <span class='site'>{escape(site)}</span>")
    if row["effects"]:
        parts.append(f"<div class='eff'>{escape('; '.join(row['effects']))}</div>")
    if row["citation"]:
        parts.append(f"<div class='cite'>{escape(row['citation'])}</div>")
    anchor = " id='violation'" if row["violation"] else ""
    return f"<div class='{classes}'{anchor} data-step='{row['step']}'>{''.join(parts)}</div>"


def _lanes_html(rows: list[dict[str, Any]], roles: list[str]) -> str:
    col = {role: i for i, role in enumerate(roles)}
    head = "<tr><th class='step'>step</th>" + "".join(f"<th>{escape(r)}</th>" for r in roles) + "</tr>"
    body = []
    for row in rows:
        cells = ["<td></td>"] * len(roles)
        cells[col.get(row["role"], 0)] = f"<td>{_event(row)}</td>"
        body.append(f"<tr><td class='step'>{row['step']}</td>{''.join(cells)}</tr>")
    return f"<table class='lanes' id='swimlane'>{head}{''.join(body)}</table>"


def _legend_svg() -> str:
    return ("<svg width='360' height='22' role='img' aria-label='legend' xmlns='http://www.w3.org/2000/svg'>"
            "<rect x='1' y='4' width='14' height='14' fill='#fff8c5' stroke='#d4a72c' stroke-width='3'/>"
            "<text x='20' y='16' font-size='12'>» preemption</text>"
            "<rect x='120' y='4' width='14' height='14' fill='#ffebe9' stroke='#cf222e' stroke-width='2'/>"
            "<text x='139' y='16' font-size='12'>✗ violating step</text></svg>")


def render_html(detail: dict[str, Any], execution: dict[str, Any], rows: list[dict[str, Any]],
                roles: list[str], matrix: dict[str, Any] | None) -> str:
    """The page for ``triage show --html``: ``detail`` from finding_detail, rows from trace_rows."""
    bug = f" [{detail['known_bug']}]" if detail["known_bug"] else ""
    scenario = " ".join(f"{k}={v}" for k, v in execution["scenario"].items())
    title = escape(f"#{detail['id']}{bug}: {detail['title']}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>oomfuzz finding {title}</title>
<style>{CSS}</style></head><body>
<h1 id="title">{title}</h1>
<p class="meta">invariant <code>{escape(detail['invariant'])}</code> · signature <code>{escape(detail['signature'])}</code>
 · status {escape(detail['status'])} · {detail['hits']} hits on {escape(', '.join(detail['variants']))}</p>
<p class="meaning">{escape(detail['meaning'])}</p>
<h2>Variants</h2>{_matrix_html(matrix)}
<h2>Swimlane</h2>
<p class="meta">variant {escape(execution['variant'])} · {escape(scenario)} · {execution['steps']} steps,
 {preemption_text(execution["preemptions"], execution.get("running_preemptions"))}, outcome {escape(execution['outcome'])}</p>
<p class="legend">{_legend_svg()}</p>
{_lanes_html(rows, roles)}
<h2>Replay</h2><pre id="replay">{escape(execution['replay'])}</pre>
</body></html>
"""
