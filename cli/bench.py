"""Benchmarks: `oomfuzz bench engine` (more to come with the fuzzer and the farm)."""

from __future__ import annotations

import click
from rich.console import Console

from ..engine.bench import bench_engine
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
