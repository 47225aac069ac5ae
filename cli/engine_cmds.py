"""Engine commands: list variants, replay one input, explore with a strategy."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..engine.execute import replay as replay_input
from ..engine.explore import STRATEGIES, check_jobs, explore as run_explore
from ..engine.explore_jobs import JobCrashed
from ..engine.report import execution_json, render_report
from ..engine.variants import load_variant, variant_names
from .common import emit_json, read_input, scenario_or_fail, variant_or_fail


@click.command()
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
def variants(as_json: bool) -> None:
    """List the shipped kernel variants."""
    rows = []
    for name in variant_names():
        v = load_variant(name)
        rows.append({"name": v.NAME, "parent": v.PARENT, "summary": v.SUMMARY, "known_bugs": sorted(v.KNOWN_BUGS)})
    if as_json:
        emit_json({"variants": rows})
        return
    table = Table(title="kernel variants (each is its parent plus one patch)")
    for col in ("name", "parent", "known bugs", "summary"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["parent"] or "-", ", ".join(r["known_bugs"]) or "-", r["summary"])
    Console().print(table)


@click.command()
@click.option("--variant", "-v", "variant_name", required=True, help="shipped variant name or path/to/patch.py")
@click.argument("input_text", metavar="INPUT")
@click.option("--json", "as_json", is_flag=True, help="one JSON object with the trace")
def replay(variant_name: str, input_text: str, as_json: bool) -> None:
    """Replay INPUT (hex:<digits>, a file, or - for stdin) and show its swimlane."""
    variant = variant_or_fail(variant_name)
    raw = read_input(input_text)
    ex = replay_input(variant, raw, tracing=True)
    if as_json:
        emit_json(execution_json(ex))
    else:
        click.echo(render_report(ex))
    if ex.status == "engine_error":
        sys.exit(3)


def _pass_progress(result: Any) -> str:
    if result.pass_scenarios is None:
        return ""
    done, total = result.pass_scenarios
    return f", pass over ≤ {len(result.passes)}: {done} of {total} scenarios done"


def dfs_coverage(result: Any, bound: int, scenario: Any) -> str:
    """What a DFS run guarantees: the bounds it finished, over which scenarios."""
    where = f"scenario {scenario.describe()}" if scenario is not None else "every scenario"
    if result.complete_bound is None:
        return f"no pass finished: not even every schedule with 0 preemptions of {where} ran"
    ends = ", ".join(f"≤ {b} after {n}" for b, n in result.passes)
    done = result.complete_bound
    text = (f"complete up to {done} preemption{'' if done == 1 else 's'}: every such schedule of {where} "
            f"ran (passes ended: {ends} executions)")
    if done < bound:
        text += f"; the pass over ≤ {done + 1} did not finish"
        if result.pass_scenarios is not None:
            text += f" ({result.pass_scenarios[0]} of {result.pass_scenarios[1]} scenarios done)"
    return text


@click.command()
@click.option("--variant", "-v", "variant_name", required=True, help="shipped variant name or path/to/patch.py")
@click.option("--strategy", "-s", type=click.Choice(STRATEGIES), default="dfs", show_default=True)
@click.option("--seconds", type=click.FloatRange(min=0), default=None, help="time budget")
@click.option("--executions", type=click.IntRange(min=1), default=None, help="execution budget")
@click.option("--preemptions", type=click.IntRange(min=0, max=8), default=2, show_default=True,
              help="DFS bound on deviations from the default schedule")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--scenario", "scenario_path", type=click.Path(dir_okay=False), default=None,
              help="fix the scenario from a TOML/JSON file instead of exploring scenarios")
@click.option("--jobs", "-j", type=click.IntRange(min=1, max=256), default=1, show_default=True,
              help="DFS only: split the scenarios across this many processes")
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
def explore(variant_name: str, strategy: str, seconds: float | None, executions: int | None, preemptions: int,
            seed: int, scenario_path: str | None, jobs: int, as_json: bool) -> None:
    """Explore schedules of a variant and report every distinct finding."""
    try:
        check_jobs(strategy, scenario_path is not None, jobs)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    variant = variant_or_fail(variant_name)
    scenario = scenario_or_fail(scenario_path)
    if seconds is None and executions is None and strategy != "dfs":
        seconds = 30.0
    console = Console(stderr=True)
    progress = None
    if not as_json and console.is_terminal:
        progress = lambda r: console.print(  # noqa: E731
            f"  {r.executions} executions, {len(r.findings)} findings{_pass_progress(r)}", end="\r",
            highlight=False)
    try:
        result = run_explore(variant, strategy, seconds=seconds, executions=executions, preemptions=preemptions,
                             seed=seed, scenario=scenario, on_progress=progress, jobs=jobs)
    except JobCrashed as exc:
        raise click.ClickException(f"{exc} (an oomfuzz bug: please report it with this command line)") from None
    if as_json:
        emit_json(result.as_dict())
        return
    out = Console()
    rate = result.executions / result.seconds if result.seconds else 0.0
    jobs_text = f" ({result.jobs} jobs)" if result.jobs > 1 else ""
    out.print(f"{result.variant} / {result.strategy}{jobs_text}: {result.executions} executions in "
              f"{result.seconds:.1f} s ({rate:.0f}/s){', search space exhausted' if result.exhausted else ''}")
    if strategy == "dfs":
        out.print(dfs_coverage(result, preemptions, scenario), highlight=False)
    table = Table(title=f"{len(result.findings)} distinct findings")
    for col in ("#", "title", "invariant", "known bug", "preemptions", "hits"):
        table.add_column(col, overflow="fold")
    ordered = sorted(result.findings.values(), key=lambda f: f.first_execution)
    for i, f in enumerate(ordered, 1):
        table.add_row(str(i), f.title, f.invariant, f.known_bug or "-", str(f.preemptions), str(f.hits))
    out.print(table)
    for i, f in enumerate(ordered, 1):
        out.print(f"#{i}: {f.replay}", soft_wrap=True, highlight=False)
    if result.engine_errors:
        out.print(f"[red]{len(result.engine_errors)} engine errors (bugs in oomfuzz): replay with[/red]")
        for e in result.engine_errors[:3]:
            out.print("  " + f"oomfuzz replay --variant {e.variant} hex:{e.input.hex()}")
