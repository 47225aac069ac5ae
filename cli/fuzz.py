"""`oomfuzz fuzz`: run a fuzz campaign, show live progress, end with the findings table."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..db.errors import DatabaseError
from ..db.url import resolve_url
from ..engine.variants import variant_names
from ..fuzzer.campaign import run_campaign
from ..fuzzer.config import ENGINES, CampaignConfig
from ..fuzzer.corpus import CorpusError
from ..fuzzer.results import CampaignResult
from .common import UserError, emit_json, variant_or_fail

PLAIN_EVERY = 5.0


def _variants(name: str) -> tuple[str, ...]:
    if name == "all":
        return tuple(variant_names())
    variant_or_fail(name)
    return (name,)


def _status(p: Any) -> str:
    bugs = f" ({', '.join(p.known_bugs)})" if p.known_bugs else ""
    return (f"{p.executions} execs, {p.exec_per_second:.0f}/s, coverage {p.coverage}, corpus {p.corpus}, "
            f"findings {p.findings}{bugs}" + (f", ENGINE ERRORS {p.engine_errors}" if p.engine_errors else ""))


def _plain_progress(err: Console) -> Callable[[Any], None]:
    state = {"next": time.monotonic() + PLAIN_EVERY}

    def show(p: Any) -> None:
        if time.monotonic() >= state["next"]:
            err.print(f"[{p.elapsed:5.0f}s] {_status(p)}", highlight=False, soft_wrap=True)
            state["next"] = time.monotonic() + PLAIN_EVERY
    return show


def _render(result: CampaignResult, out: Console) -> None:
    out.print(f"campaign {result.campaign or '-'}: {result.variant} / {result.engine}, {result.executions} executions "
              f"in {result.seconds:.1f} s ({result.exec_per_second:.0f}/s), coverage {result.coverage}, "
              f"corpus {result.corpus}", highlight=False)
    table = Table(title=f"{len(result.findings)} distinct findings")
    for col in ("#", "title", "invariant", "known bug", "variants", "hits", "preemptions"):
        table.add_column(col, overflow="fold")
    for i, f in enumerate(result.findings, 1):
        flaky = " [red]FLAKY[/red]" if not f.deterministic else ""
        table.add_row(str(i), f.title + flaky, f.invariant, f.known_bug or "-", ", ".join(sorted(f.variants)),
                      str(f.hits), str(f.preemptions))
    out.print(table)
    if result.findings:
        out.print("replay:")
        for i, f in enumerate(result.findings, 1):
            out.print(f"  {i}. {f.replay}", highlight=False, soft_wrap=True)
    if any(not f.deterministic for f in result.findings):
        out.print("[bold red]FLAKY: a finding did not replay deterministically: a bug in oomfuzz's engine[/bold red]")
    if result.engine_errors:
        out.print(f"[bold red]{result.engine_errors} ENGINE ERRORS (bugs in oomfuzz, not kernel findings):[/bold red]")
        for e in result.error_samples[:5]:
            out.print(f"  {e['error']}\n    {e['replay']}", highlight=False, soft_wrap=True)


@click.command()
@click.option("--variant", "-v", "variant_name", required=True, help="a shipped variant, a path/to/patch.py, or all")
@click.option("--seconds", type=click.FloatRange(min=1), default=60.0, show_default=True, help="time budget")
@click.option("--jobs", "-j", type=click.IntRange(min=1, max=256), default=1, show_default=True,
              help="fuzzing processes")
@click.option("--engine", "-e", "engine", type=click.Choice(ENGINES), default="atheris", show_default=True)
@click.option("--db", "db", default=None, help="database URL (default $OOMFUZZ_DATABASE_URL or sqlite:///oomfuzz.db)")
@click.option("--corpus", "corpus_dir", default=None, help="corpus directory: read at start, kept inputs added")
@click.option("--seed", type=click.IntRange(min=0, max=2**31 - 1), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON object on stdout (progress still on stderr)")
def fuzz(variant_name: str, seconds: float, jobs: int, engine: str, db: str | None, corpus_dir: str | None,
         seed: int, as_json: bool) -> None:
    """Fuzz a variant (or all) and report every distinct finding, minimised, with its replay command."""
    try:
        url = resolve_url(db).render_as_string(hide_password=False)
    except DatabaseError as exc:
        raise UserError(str(exc)) from None
    config = CampaignConfig(variants=_variants(variant_name), engine=engine, seconds=seconds, jobs=jobs, seed=seed,
                            db_url=url, corpus_dir=corpus_dir, variant_label=variant_name)
    err = Console(stderr=True)
    warn = lambda w: err.print(f"oomfuzz: warning: {w}", highlight=False, soft_wrap=True)  # noqa: E731
    try:
        if err.is_terminal:
            result = _with_bar(config, err, warn)
        else:
            result = run_campaign(config, on_progress=_plain_progress(err), on_warning=warn)
    except (DatabaseError, CorpusError) as exc:
        raise UserError(str(exc)) from None
    if as_json:
        emit_json(result.as_dict())
    else:
        _render(result, Console(width=None if sys.stdout.isatty() else 150))
    for error in result.job_errors:
        err.print(f"oomfuzz: error: {error}", highlight=False, soft_wrap=True)
    if result.job_errors:
        sys.exit(1)


def _with_bar(config: CampaignConfig, err: Console, warn: Callable[[str], None]) -> CampaignResult:
    columns = (TextColumn("fuzzing"), BarColumn(), TimeElapsedColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("starting", total=config.seconds)
        return run_campaign(
            config, on_warning=warn,
            on_progress=lambda p: bar.update(task, completed=min(p.elapsed, config.seconds), description=_status(p)),
        )
