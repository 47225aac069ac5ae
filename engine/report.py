"""Render a traced execution: a swimlane (one column per thread role) and a JSON form.

Each step shows the kernel function the thread was in when it reached its scheduling point,
what the step did (the primitives' effects), a ``»`` where the scheduler preempted the
previous thread, and ``✗`` on the step that violated the invariant. The citations of the
functions that appear (``file:function() @ version``) are listed under the lanes.
"""

from __future__ import annotations

import textwrap
from typing import Any

from .execute import Execution, replay_command

RUNTIME_FUNCTIONS = frozenset(
    {
        "preempt_point", "read_once", "write_once", "cmpxchg", "atomic_read", "atomic_inc", "atomic_dec",
        "atomic_dec_return", "atomic_dec_and_test", "atomic_inc_not_zero", "spin_lock", "spin_trylock",
        "spin_unlock", "down_read", "down_read_trylock", "up_read", "down_write", "up_write", "wait_event",
        "wait_event_timeout", "schedule_timeout", "block_forever", "retry_point", "<lambda>",
    }
)
WORKLOAD_FUNCTIONS = frozenset({"user_thread", "return_to_user", "allocator", "freezer", "kthread_user"})


def kernel_function(stack: tuple[str, ...]) -> str:
    """The innermost model function in a stack (primitives and workload glue skipped)."""
    for name in reversed(stack):
        if name not in RUNTIME_FUNCTIONS and name not in WORKLOAD_FUNCTIONS and not name.startswith("check_"):
            return name
    for name in reversed(stack):
        if name in WORKLOAD_FUNCTIONS:
            return name
    return stack[-1] if stack else "start"


def trace_rows(ex: Execution) -> list[dict[str, Any]]:
    """The trace as plain rows (also the JSON form)."""
    rows = []
    last = len(ex.run.trace) - 1
    for i, st in enumerate(ex.run.trace):
        func = kernel_function(st.stack)
        rows.append(
            {
                "step": st.step,
                "role": st.role,
                "function": func,
                "citation": ex.kernel.CITATIONS.get(func, "") if ex.kernel is not None else "",
                "site": st.site if isinstance(st.site, str) else str(st.site),
                "effects": list(st.effects),
                "preempted": st.preempted,
                "violation": ex.finding is not None and i == last and ex.run.outcome.name == "VIOLATION",
            }
        )
    return rows


def render_swimlane(ex: Execution, width: int = 30) -> str:
    """A text swimlane of a traced execution."""
    rows = trace_rows(ex)
    roles = [t.role for t in ex.kernel.m.threads] if ex.kernel is not None else sorted({r["role"] for r in rows})
    col = {role: i for i, role in enumerate(roles)}
    header = "step  " + "".join(role.ljust(width) for role in roles)
    out = [header, "-" * len(header)]
    for row in rows:
        text = row["function"]
        if row["site"] not in ("start", "exit") and not row["site"].startswith(row["function"]):
            text += f" {row['site']}"
        if row["effects"]:
            text += " [" + "; ".join(row["effects"]) + "]"
        mark = "✗" if row["violation"] else ("»" if row["preempted"] else " ")
        cells = [""] * len(roles)
        cells[col.get(row["role"], 0)] = f"{mark}{text}"
        wrapped = [textwrap.wrap(c, width - 1) or [""] for c in cells]
        height = max(len(w) for w in wrapped)
        for line in range(height):
            prefix = f"{row['step']:>4}  " if line == 0 else "      "
            out.append(prefix + "".join((w[line] if line < len(w) else "").ljust(width) for w in wrapped).rstrip())
    return "\n".join(out)


def running_preemptions(ex: Execution) -> int | None:
    """How many of the deviations switched away from a thread that could run on (the ``»``
    steps of the swimlane); the others chose who runs after a block or a yield. None when the
    execution was not traced."""
    if not ex.run.trace:
        return None
    return sum(1 for st in ex.run.trace if st.preempted)


def preemption_text(count: int, running: int | None) -> str:
    """"13 preemptions (4 of a running thread, marked »)": the count findings are minimised by,
    and how many of them the swimlane marks (when known and fewer)."""
    text = f"{count} preemption{'' if count == 1 else 's'}"
    if running is None or running == count:
        return text
    return f"{text} ({running} of a running thread, marked »)"


def render_report(ex: Execution) -> str:
    """Header, swimlane, citations and the replay command of one execution."""
    lines = [f"variant {ex.variant}: {ex.scenario.describe()}"]
    counts = preemption_text(ex.preemptions, running_preemptions(ex))
    lines.append(f"{ex.steps} steps, {counts}, outcome {ex.run.outcome.name.lower()}")
    if ex.finding is not None:
        f = ex.finding
        bug = f" [{f.known_bug}]" if f.known_bug else ""
        lines.append(f"FINDING{bug}: {f.title}")
        lines.append(f"  invariant {f.invariant}: {f.detail}")
        lines.append(f"  signature {f.signature}")
    elif ex.status == "engine_error":
        lines.append("ENGINE ERROR (a bug in oomfuzz, not in the kernel):")
        lines.append(textwrap.indent(ex.run.error or "step limit reached", "  "))
    lines.append("")
    if ex.run.trace:
        lines.append(render_swimlane(ex))
        lines.append("")
        used = sorted({r["function"] for r in trace_rows(ex)})
        cites = [ex.kernel.CITATIONS[name] for name in used if name in ex.kernel.CITATIONS]
        if cites:
            lines.append("kernel functions:")
            lines.extend(f"  {c}" for c in cites)
            lines.append("")
    lines.append("replay: " + replay_command(ex.variant, ex.input))
    return "\n".join(lines)


def execution_json(ex: Execution) -> dict[str, Any]:
    f = ex.finding
    return {
        "variant": ex.variant,
        "scenario": ex.scenario.as_dict(),
        "status": ex.status,
        "outcome": ex.run.outcome.name.lower(),
        "steps": ex.steps,
        "preemptions": ex.preemptions,
        "running_preemptions": running_preemptions(ex),
        "input": ex.input.hex(),
        "replay": replay_command(ex.variant, ex.input),
        "finding": None if f is None else {
            "invariant": f.invariant, "title": f.title, "detail": f.detail, "roles": list(f.roles),
            "where": f.where, "known_bug": f.known_bug, "signature": f.signature,
        },
        "error": ex.run.error,
        "trace": trace_rows(ex) if ex.run.trace else [],
    }
