"""Benchmarks: `oomfuzz bench engine`, `bench ttb` (time to bug, per engine) and `bench seed` (seeding)."""

from __future__ import annotations

import os
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..engine.bench import bench_engine
from ..fuzzer.ttb import TTBConfig, bench_ttb
from .common import emit_json


@click.group()
def bench() -> None:
    """Measure speed: figures for the README, reproducible with these commands."""


@bench.command("engine")
@click.option("--seconds", type=click.FloatRange(min=0.5), default=10.0, show_default=True)
@click.option("--profile", is_flag=True, help="also print where the time goes (cProfile)")
@click.option("--json", "as_json", is_flag=True)
def engine(seconds: float, profile: bool, as_json: bool) -> None:
    """Executions per second on one core for the reference scenario (seed-3of2, invariants on)."""
    result = bench_engine(seconds=seconds, profile=profile)
    if as_json:
        emit_json({k: v for k, v in result.items() if k != "profile"})
        return
    con = Console()
    con.print(f"reference: {result['reference']}")
    con.print(f"executions: {result['executions']} in {result['seconds']:.2f} s on one core")
    con.print(f"[bold]{result['exec_per_second']:.0f} executions/s[/bold] "
              f"({result['steps_per_execution']:.1f} steps/execution, {result['findings']} executions with a finding)")
    if profile:
        con.print(result["profile"])


@bench.command("ttb")
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True, help="runs per (bug, engine)")
@click.option("--budget", type=click.FloatRange(min=1), default=15.0, show_default=True,
              help="seconds per run; a bug not found counts as the budget")
@click.option("--parallel", type=click.IntRange(min=1), default=2, show_default=True, help="runs at once (one core each)")
@click.option("--reference-seconds", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="atheris exec/s on the engine's reference scenario (0: skip)")
@click.option("--json", "as_json", is_flag=True)
def ttb(seeds: int, budget: float, parallel: int, reference_seconds: float, as_json: bool) -> None:
    """Time to the first hit of every listed bug of the 2016 variants: atheris, random, pct."""
    config = TTBConfig(seeds=seeds, budget=budget, parallel=parallel, reference_seconds=reference_seconds)
    err = Console(stderr=True)
    result = bench_ttb(config, on_run=lambda r, done, total: err.print(
        f"[{done}/{total}] {r.variant} {r.engine} seed {r.seed}: "
        + (", ".join(f"{b} {t:.2f}s" for b, t in sorted(r.first.items())) or "nothing"), highlight=False))
    if as_json:
        emit_json(result.as_dict())
        return
    Console().print(render_ttb(result))


def render_ttb(result: Any) -> Table:
    """The time-to-bug table: median seconds per engine, '>' where the budget ran out."""
    engines = list(result.geomean)
    table = Table(title=f"time to first hit, median of {result.seeds} seeds, one core, budget {result.budget:g} s")
    for col in ("variant", "bug", *engines):
        table.add_column(col, justify="right" if col in engines else "left")
    for row in result.rows:
        cells = []
        for engine in engines:
            c = row[engine]
            mark = ">" if c["unfound"] else ""
            cells.append(f"{mark}{c['median']:.2f} ({c['found']}/{c['runs']})")
        table.add_row(row["variant"], row["bug"], *cells)
    table.add_row("geomean", "", *[f"{result.geomean[e]:.2f}" for e in engines], end_section=True)
    table.add_row("exec/s", "", *[f"{result.exec_per_second[e]:.0f}" for e in engines])
    if result.reference:
        table.caption = (f"atheris on the reference scenario ({result.reference['scenario']}): "
                         f"{result.reference['exec_per_second']:.0f} exec/s")
    return table


@bench.command("seed")
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True, help="runs per (bug, corpus)")
@click.option("--budget", type=click.FloatRange(min=1), default=20.0, show_default=True,
              help="seconds per run; a bug not found counts as the budget")
@click.option("--parallel", type=click.IntRange(min=1), default=2, show_default=True, help="runs at once (one core each)")
@click.option("--json", "as_json", is_flag=True)
def seed(seeds: int, budget: float, parallel: int, as_json: bool) -> None:
    """Time to bug from an empty corpus vs a corpus seeded from the shared trace samples."""
    from ..corpus.seedbench import SeedBenchConfig, bench_seeding

    err = Console(stderr=True)
    result = bench_seeding(SeedBenchConfig(seeds=seeds, budget=budget, parallel=parallel),
                           on_run=lambda p, t, done, total: err.print(
                               f"[{done}/{total}] {p[0]} {p[1]} {p[2]} seed {p[3]}: "
                               + ("not found" if t is None else f"{t:.2f}s"), highlight=False))
    if as_json:
        emit_json(result.as_dict())
        return
    table = Table(title=f"time to first hit ({result.config.engine}), median of {seeds} seeds, budget {budget:g} s")
    for col in ("variant", "bug", "empty corpus", "seeded corpus"):
        table.add_column(col, justify="left" if col in ("variant", "bug") else "right")
    for row in result.rows:
        cells = [f"{'>' if row[k]['unfound'] else ''}{row[k]['median']:.2f} ({row[k]['found']}/{row[k]['runs']})"
                 for k in ("empty", "seeded")]
        table.add_row(row["variant"], row["bug"], *cells)
    table.caption = "seeded inputs per variant: " + ", ".join(f"{v} {n}" for v, n in result.corpus_sizes.items())
    Console().print(table)


@bench.command("farm")
@click.option("--seconds", type=click.FloatRange(min=5), default=30.0, show_default=True, help="budget per run")
@click.option("--broker", default=None, help="Redis broker URL (default $OOMFUZZ_BROKER_URL); use an idle farm")
@click.option("--db", default=None, help="database URL (default $OOMFUZZ_DATABASE_URL or sqlite:///oomfuzz.db)")
@click.option("--json", "as_json", is_flag=True)
def farm(seconds: float, broker: str | None, db: str | None, as_json: bool) -> None:
    """Farm exec/s with one and two workers, and one worker against a local `oomfuzz fuzz` job."""
    from ..db.url import resolve_url
    from ..workers.bench import bench_farm
    from ..workers.state import BrokerUnreachable, connect
    from .common import UserError

    try:
        connect(broker or os.environ.get("OOMFUZZ_BROKER_URL") or "redis://127.0.0.1:6379/0")
    except BrokerUnreachable as exc:
        raise UserError(str(exc), exit_code=3) from None
    result = bench_farm(seconds, broker, resolve_url(db).render_as_string(hide_password=False))
    if as_json:
        emit_json(result)
        return
    con = Console()
    for key, label in (("local", "local oomfuzz fuzz, 1 job"), ("farm_1", "farm, 1 worker"), ("farm_2", "farm, 2 workers")):
        r = result[key]
        con.print(f"{label:28} {r['exec_per_second']:8.0f} exec/s ({r['executions']} in {r['seconds']} s)", highlight=False)
    con.print(f"scaling 2/1 workers: {result['scaling']} (target >= 1.8); farm overhead vs local: "
              f"{result['overhead']:.1%} (target <= 10%); load average {result['load_average'][0]:.1f}", highlight=False)
