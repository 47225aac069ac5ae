"""`oomfuzz farm`: start a farm campaign, show its status, stop it, or run a worker."""

from __future__ import annotations

import os
import time
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..db.engine import make_engine, upgrade
from ..db.errors import DatabaseError
from ..db.url import resolve_url
from ..fuzzer.config import ENGINES
from ..workers.app import FarmSettings
from ..workers.state import BrokerUnreachable, FarmState, connect
from .common import UserError, emit_json
from .fuzz import _variants

BROKER_HELP = "Redis broker URL (default $OOMFUZZ_BROKER_URL or redis://127.0.0.1:6379/0)"
DB_HELP = "database URL (default $OOMFUZZ_DATABASE_URL or sqlite:///oomfuzz.db)"
PROGRESS_EVERY = 5.0


def _settings_and_state(broker: str | None) -> tuple[FarmSettings, FarmState]:
    settings = FarmSettings.from_env(broker)
    try:
        return settings, FarmState(connect(settings.broker_url))
    except BrokerUnreachable as exc:
        raise UserError(str(exc), exit_code=3) from None


def _db(db: str | None, migrate: bool = False) -> Any:
    try:
        engine = make_engine(resolve_url(db))
        if migrate:
            upgrade(engine)
        return engine
    except DatabaseError as exc:
        raise UserError(str(exc)) from None


@click.group()
def farm() -> None:
    """The fuzz farm: Celery workers on Redis, findings and corpus in one database."""


@farm.command()
@click.option("--variant", "-v", "variant_name", required=True, help="a shipped variant, or all")
@click.option("--shards", type=click.IntRange(min=1, max=4096), default=2, show_default=True, help="shards at once")
@click.option("--hours", type=click.FloatRange(min=0, min_open=True), default=None, help="budget in hours")
@click.option("--seconds", type=click.FloatRange(min=1), default=None, help="budget in seconds")
@click.option("--shard-seconds", type=click.FloatRange(min=2), default=600.0, show_default=True,
              help="longest shard; must stay under the broker's visibility timeout")
@click.option("--engine", "-e", type=click.Choice(ENGINES), default="atheris", show_default=True)
@click.option("--seed", type=click.IntRange(min=0, max=2**31 - 1), default=0, show_default=True)
@click.option("--retries", type=click.IntRange(min=0, max=10), default=2, show_default=True,
              help="times a shard whose attempt failed (an error, a time limit) is queued again")
@click.option("--no-minimise", is_flag=True, help="do not queue triage.minimise for the findings")
@click.option("--empty-corpus", is_flag=True,
              help="shards start from an empty corpus, not the shared one (what they keep is still added)")
@click.option("--broker", default=None, help=BROKER_HELP)
@click.option("--db", default=None, help=DB_HELP)
@click.option("--json", "as_json", is_flag=True)
def start(variant_name: str, shards: int, hours: float | None, seconds: float | None, shard_seconds: float,
          engine: str, seed: int, retries: int, no_minimise: bool, empty_corpus: bool, broker: str | None,
          db: str | None, as_json: bool) -> None:
    """Run a campaign on the farm: keep SHARDS shards queued until the budget is spent."""
    from ..workers.coordinator import Coordinator, FarmPlan

    if (hours is None) == (seconds is None):
        raise UserError("give exactly one of --hours and --seconds")
    budget = seconds if seconds is not None else hours * 3600
    settings, state = _settings_and_state(broker)
    if shard_seconds > settings.longest_shard:
        raise UserError(f"--shard-seconds {shard_seconds:g} must be at most {settings.longest_shard} "
                        f"(visibility timeout {settings.visibility_timeout} s minus margin {settings.shard_margin} s)")
    plan = FarmPlan(_variants(variant_name), variant_name, shards, budget, shard_seconds, engine, seed, not no_minimise,
                    retries, pull_corpus=not empty_corpus)
    err = Console(stderr=True)
    next_line = [time.monotonic() + PROGRESS_EVERY]

    def tick(campaign_id: int, records: dict[int, dict]) -> None:
        if time.monotonic() >= next_line[0]:
            running = [r for r in records.values() if r.get("state") == "running"]
            done = sum(1 for r in records.values() if r.get("state") == "done")
            rate = sum(r.get("exec_per_second", 0.0) for r in running)
            err.print(f"campaign {campaign_id}: {len(running)} running, {done} done, {rate:.0f} exec/s", highlight=False)
            next_line[0] = time.monotonic() + PROGRESS_EVERY

    result = Coordinator(settings, state, _db(db, migrate=True)).run(plan, on_tick=tick)
    if as_json:
        emit_json(result)
        return
    con = Console()
    con.print(f"campaign {result['campaign']} {result['status']}: {result['shards']} shards, {result['executions']} "
              f"executions in {result['seconds']} s ({result['exec_per_second']:.0f}/s)", highlight=False)
    for shard_id, errors in result["shard_errors"].items():
        con.print(f"shard {shard_id} failed: {errors[-1] if errors else 'never finished'}", highlight=False)
    _findings_table(con, result["findings"])


def _findings_table(con: Console, findings: list[dict]) -> None:
    table = Table(title=f"{len(findings)} findings")
    for col in ("id", "title", "known bug", "hits", "first seen (s)", "replay"):
        table.add_column(col, overflow="fold")
    for f in findings:
        table.add_row(str(f["id"]), f["title"], f["known_bug"] or "-", str(f["hits"]), str(f["first_seen_s"]),
                      f["replay"] or "")
    con.print(table)


@farm.command()
@click.option("--campaign", type=int, default=None, help="campaign id (default: the latest started)")
@click.option("--broker", default=None, help=BROKER_HELP)
@click.option("--db", default=None, help=DB_HELP)
@click.option("--json", "as_json", is_flag=True)
def status(campaign: int | None, broker: str | None, db: str | None, as_json: bool) -> None:
    """Workers alive, shards running and done, exec/s per worker and in total, corpus, findings."""
    from ..workers.coordinator import status as farm_status

    settings, state = _settings_and_state(broker)
    result = farm_status(settings, state, _db(db), campaign)
    if as_json:
        emit_json(result)
        return
    con = Console()
    shards = result["shards"]
    con.print(f"campaign {result['campaign'] or '-'} ({(result['plan'] or {}).get('status', '-')}); "
              f"workers alive: {len(result['workers'])}; shards: {shards['queued']} queued, {shards['running']} "
              f"running, {shards['done']} done, {shards['failed']} failed ({result['requeued']} re-queued); "
              f"corpus {result['corpus']}", highlight=False)
    for f in result["failed"]:
        last = f["errors"][-1] if f["errors"] else "?"
        con.print(f"  shard {f['shard']} ({f['variant']}) failed after {f['attempts']} attempts: {last}",
                  highlight=False)
    con.print(f"exec/s: {result['exec_per_second']['total']:.0f} total", highlight=False)
    for worker, rate in result["exec_per_second"]["per_worker"].items():
        con.print(f"  {worker}: {rate:.0f}/s", highlight=False)
    _findings_table(con, result["findings"])


@farm.command()
@click.option("--campaign", type=int, default=None, help="campaign id (default: the latest started)")
@click.option("--broker", default=None, help=BROKER_HELP)
def stop(campaign: int | None, broker: str | None) -> None:
    """Stop the campaign: no new shards; running shards end at their next report and are kept."""
    from ..workers.coordinator import stop as farm_stop

    _, state = _settings_and_state(broker)
    stopped = farm_stop(state, campaign)
    if stopped is None:
        raise UserError("no farm campaign has been started on this broker")
    click.echo(f"campaign {stopped}: stop requested")


@farm.command()
@click.option("--name", default=None, help="Celery node name (default farm@HOST; unique per worker)")
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True, help="shards at once")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--broker", default=None, help=BROKER_HELP)
@click.option("--db", default=None, help=DB_HELP)
def worker(name: str | None, concurrency: int, loglevel: str, broker: str | None, db: str | None) -> None:
    """Run a Celery worker for the farm (what compose runs, and what the tests start)."""
    from ..workers.worker import run_worker

    settings, _ = _settings_and_state(broker)
    url = resolve_url(db).render_as_string(hide_password=False) if db else None
    _db(url).dispose()
    if url:
        os.environ["OOMFUZZ_DATABASE_URL"] = url  # shards and their children read it, never argv
    run_worker(settings, name, concurrency, loglevel)


@farm.command()
@click.option("--db", default=None, help=DB_HELP)
def migrate(db: str | None) -> None:
    """Bring the database schema up to date (the compose file's one-shot migration)."""
    engine = _db(db, migrate=True)
    engine.dispose()
    click.echo("database schema is current")
