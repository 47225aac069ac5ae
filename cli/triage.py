"""`oomfuzz triage`: list, show, replay, minimise, lifecycle, matrix, verify, export, stats."""

from __future__ import annotations

import getpass
import json
import socket
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click
from rich.console import Console
from rich.table import Table

from ..db.engine import make_engine, session_scope, upgrade
from ..db.errors import DatabaseError
from ..db.models import FINDING_STATUSES, Finding
from ..db.store import get_finding, mark_duplicate, set_status, unmark_duplicate
from ..db.url import resolve_url
from ..engine.report import render_report, trace_rows
from ..fuzzer import triage as lib
from ..fuzzer.html import render_html
from .common import UserError, emit_json

DB_HELP = "database URL (default $OOMFUZZ_DATABASE_URL or sqlite:///oomfuzz.db)"
SEARCH_HELP = "DFS executions per variant where no stored input shows the finding (0: replays only)"
LIFECYCLE = tuple(s for s in FINDING_STATUSES if s != "duplicate")


def _db_option(f: Any) -> Any:
    f = click.option("--json", "as_json", is_flag=True, help="one JSON object on stdout")(f)
    return click.option("--db", "db", default=None, help=DB_HELP)(f)


def actor() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


@contextmanager
def database(db: str | None) -> Iterator[Any]:
    """A session on the database, committed at the end; database problems exit with status 3."""
    try:
        engine = make_engine(resolve_url(db))
        upgrade(engine)
    except DatabaseError as exc:
        raise UserError(str(exc), 3) from None
    try:
        with session_scope(engine) as session:
            yield session
    except DatabaseError as exc:
        raise UserError(str(exc), 3) from None
    finally:
        engine.dispose()


def finding_or_fail(session: Any, finding_id: int) -> Finding:
    finding = get_finding(session, finding_id)
    if finding is None:
        raise UserError(f"no finding #{finding_id}")
    return finding


@contextmanager
def usage_errors() -> Iterator[None]:
    """Refusals of the library (bad transition, unknown variant) are usage errors, status 2."""
    try:
        yield
    except (DatabaseError, lib.TriageError) as exc:
        raise UserError(str(exc)) from None


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """A rich table on a terminal; aligned plain columns when piped."""
    cells = [["-" if v is None else str(v) for v in row] for row in rows]
    if sys.stdout.isatty():
        t = Table(title=title)
        for col in columns:
            t.add_column(col, overflow="fold")
        for row in cells:
            t.add_row(*row)
        Console().print(t)
        return
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    click.echo(title)
    for row in [columns, *cells]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


@click.group()
def triage() -> None:
    """Triage stored findings: inspect, replay, classify, bisect over variants, export."""


@triage.command("list")
@click.option("--status", type=click.Choice(FINDING_STATUSES), default=None)
@click.option("--variant", default=None, help="only findings seen on this variant")
@click.option("--invariant", default=None)
@click.option("--sort", type=click.Choice(["hits", "last-seen", "preemptions"]), default="hits", show_default=True)
@_db_option
def list_cmd(status: str | None, variant: str | None, invariant: str | None, sort: str, db: str | None,
             as_json: bool) -> None:
    """List findings."""
    with database(db) as session:
        rows = lib.list_rows(session, status=status, variant=variant, invariant=invariant,
                             sort=sort.replace("-", "_"))
    if as_json:
        emit_json({"findings": rows})
        return
    table(f"{len(rows)} findings", ["id", "title", "invariant", "bug", "status", "variants", "hits", "first seen",
                                    "last seen", "preemptions"],
          [[r["id"], r["title"], r["invariant"], r["known_bug"],
            r["status"] + (f" of #{r['duplicate_of']}" if r["duplicate_of"] else ""), ",".join(r["variants"]),
            r["hits"], r["first_seen"][:19], r["last_seen"][:19], r["preemptions"]] for r in rows])


def _matrix_lines(m: dict[str, Any]) -> list[str]:
    lines = [f"  {c['variant']:<28} {'EXISTS' if c['exists'] else 'not found':<10} "
             f"{c['evidence']:<10} {c['replay'] or ''}" for c in m["variants"]]
    lines.append(f"  introduced in: {', '.join(m['introduced_in']) or '-'}; "
                 f"fixed in: {', '.join(m['fixed_in']) or 'not fixed in any variant'}")
    return lines


@triage.command()
@click.argument("finding_id", type=int)
@click.option("--html", "html_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="also write a self-contained HTML page here")
@click.option("--search", type=click.IntRange(min=0), default=lib.DEFAULT_SEARCH, show_default=True, help=SEARCH_HELP)
@click.option("--no-matrix", is_flag=True, help="skip the variant matrix (it replays on every variant)")
@_db_option
def show(finding_id: int, html_path: str | None, search: int, no_matrix: bool, db: str | None,
         as_json: bool) -> None:
    """Show a finding: title, meaning, variants matrix, swimlane, replay command."""
    with database(db) as session, usage_errors():
        finding = finding_or_fail(session, finding_id)
        detail = lib.finding_detail(session, finding)
        ex, reproduced = lib.replay_finding(finding)
        matrix = None if no_matrix else lib.variant_matrix(session, finding, search=search).as_dict()
    rows = trace_rows(ex)
    if html_path:
        roles = [t.role for t in ex.kernel.m.threads]
        execution = lib.execution_summary(ex)
        Path(html_path).write_text(render_html(detail, execution, rows, roles, matrix), encoding="utf-8")
    if as_json:
        emit_json({**detail, "reproduced": reproduced, "matrix": matrix, "execution": lib.execution_summary(ex),
                   "trace": rows, "html": html_path})
    else:
        bug = f" [{detail['known_bug']}]" if detail["known_bug"] else ""
        click.echo(f"#{finding.id}{bug}: {detail['title']}\n  status {detail['status']}, {detail['hits']} hits on "
                   f"{', '.join(detail['variants'])}\n  invariant {detail['invariant']}: {detail['meaning']}\n")
        if matrix is not None:
            click.echo("variants (by signature):\n" + "\n".join(_matrix_lines(matrix)) + "\n")
        click.echo(render_report(ex))
        if html_path:
            click.echo(f"html: {html_path}")
    if not reproduced:
        raise UserError(f"finding #{finding_id} does not reproduce on {finding.reproducer_variant}: "
                        "a bug in oomfuzz, not in the kernel", 1)


@triage.command()
@click.argument("finding_id", type=int)
@click.option("--variant", "-v", "variant_name", default=None, help="replay on this variant instead of its own")
@_db_option
def replay(finding_id: int, variant_name: str | None, db: str | None, as_json: bool) -> None:
    """Replay a finding's reproducer deterministically and print the trace."""
    with database(db) as session, usage_errors():
        finding = finding_or_fail(session, finding_id)
        ex, reproduced = lib.replay_finding(finding, variant_name)
        own = variant_name in (None, finding.reproducer_variant)
    if as_json:
        emit_json({"finding": finding_id, "reproduced": reproduced, **lib.execution_summary(ex),
                   "trace": trace_rows(ex)})
    else:
        click.echo(render_report(ex))
        click.echo(f"\nfinding #{finding_id} {'reproduces' if reproduced else 'does NOT reproduce'} on {ex.variant}")
    if ex.status == "engine_error":
        raise UserError(f"replay of finding #{finding_id} hit an engine error (a bug in oomfuzz)", 3)
    if own and not reproduced:
        raise UserError(f"finding #{finding_id} no longer reproduces on its variant {ex.variant}: "
                        "a bug in oomfuzz, not in the kernel", 1)


@triage.command()
@click.argument("finding_id", type=int)
@click.option("--seconds", type=click.FloatRange(min=0.1), default=5.0, show_default=True)
@_db_option
def minimise(finding_id: int, seconds: float, db: str | None, as_json: bool) -> None:
    """Shrink a finding's reproducer again; store it if smaller."""
    with database(db) as session, usage_errors():
        result = lib.reminimise(session, finding_or_fail(session, finding_id), actor=actor(), seconds=seconds)
    if as_json:
        emit_json(result)
    else:
        b, a = result["before"], result["after"]
        click.echo(f"#{finding_id}: {b['preemptions']}p/{b['steps']}s -> {a['preemptions']}p/{a['steps']}s "
                   f"({'stored' if result['stored'] else 'not stored: not smaller'})\nreplay: {result['replay']}")
    if not result["deterministic"]:
        raise UserError(f"finding #{finding_id} replays nondeterministically: a bug in oomfuzz's engine", 1)


def _event_out(event: Any, as_json: bool, finding_id: int) -> None:
    if event is None:
        payload = {"finding": finding_id, "changed": False}
    else:
        payload = {"finding": finding_id, "changed": True, "action": event.action, "old": event.old_value,
                   "new": event.new_value, "actor": event.actor, "note": event.note, "at": event.at.isoformat()}
    if as_json:
        emit_json(payload)
    elif event is None:
        click.echo(f"#{finding_id}: unchanged")
    else:
        click.echo(f"#{finding_id}: {event.action} {event.old_value} -> {event.new_value} by {event.actor}")


@triage.command()
@click.argument("finding_id", type=int)
@click.argument("new_status", type=click.Choice(LIFECYCLE))
@click.option("--note", default=None)
@_db_option
def status(finding_id: int, new_status: str, note: str | None, db: str | None, as_json: bool) -> None:
    """Set a finding's status (logged with who and when)."""
    with database(db) as session, usage_errors():
        finding_or_fail(session, finding_id)
        event = set_status(session, finding_id, new_status, actor(), note)
    _event_out(event, as_json, finding_id)


@triage.command()
@click.argument("finding_id", type=int)
@click.option("--of", "of_id", type=int, required=True, help="the canonical finding")
@click.option("--note", default=None)
@_db_option
def dup(finding_id: int, of_id: int, note: str | None, db: str | None, as_json: bool) -> None:
    """Mark a finding a duplicate of another."""
    with database(db) as session, usage_errors():
        finding_or_fail(session, finding_id)
        finding_or_fail(session, of_id)
        event = mark_duplicate(session, finding_id, of_id, actor(), note)
    _event_out(event, as_json, finding_id)


@triage.command()
@click.argument("finding_id", type=int)
@click.option("--note", default=None)
@_db_option
def undup(finding_id: int, note: str | None, db: str | None, as_json: bool) -> None:
    """Make a duplicate a finding of its own again (status new)."""
    with database(db) as session, usage_errors():
        finding_or_fail(session, finding_id)
        event = unmark_duplicate(session, finding_id, actor(), note)
    _event_out(event, as_json, finding_id)


@triage.command()
@click.argument("finding_id", type=int)
@click.option("--search", type=click.IntRange(min=0), default=lib.DEFAULT_SEARCH, show_default=True, help=SEARCH_HELP)
@_db_option
def matrix(finding_id: int, search: int, db: str | None, as_json: bool) -> None:
    """Where the finding exists among the variants; where it was introduced and fixed."""
    with database(db) as session, usage_errors():
        m = lib.variant_matrix(session, finding_or_fail(session, finding_id), search=search).as_dict()
    if as_json:
        emit_json(m)
        return
    table(f"finding #{finding_id} by variant (signature {m['signature']})",
          ["variant", "exists", "evidence", "stored reproducer gives", "witness replay"],
          [[c["variant"], "yes" if c["exists"] else "no", c["evidence"], c["reproducer_result"], c["replay"]]
           for c in m["variants"]])
    click.echo(f"introduced in: {', '.join(m['introduced_in']) or '-'}; "
               f"fixed in: {', '.join(m['fixed_in']) or 'not fixed in any variant'}")


@triage.command()
@click.argument("finding_id", type=int)
@click.option("--variant", "-v", "variant_name", required=True)
@click.option("--search", type=click.IntRange(min=0), default=lib.DEFAULT_SEARCH, show_default=True, help=SEARCH_HELP)
@_db_option
def verify(finding_id: int, variant_name: str, search: int, db: str | None, as_json: bool) -> None:
    """Does VARIANT fix the finding? Exit 1 if the finding still exists there."""
    with database(db) as session, usage_errors():
        cell = lib.verify(session, finding_or_fail(session, finding_id), variant_name, search=search)
    if as_json:
        emit_json({"finding": finding_id, "fixed": not cell.exists, **cell.as_dict()})
    elif cell.exists:
        click.echo(f"#{finding_id} still exists on {variant_name} ({cell.evidence}): {cell.as_dict()['replay']}")
    else:
        how = f"reproducer and stored hits replayed, {cell.searched} DFS executions"
        click.echo(f"#{finding_id} not found on {variant_name}: looks fixed ({how})")
    if cell.exists:
        sys.exit(1)


@triage.command()
@click.argument("finding_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["pytest", "json", "input"]), required=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="write here instead of standard output")
@click.option("--db", "db", default=None, help=DB_HELP)
def export(finding_id: int, fmt: str, output: str | None, db: str | None) -> None:
    """Export a finding: a pytest regression test, JSON with its schedule, or the raw input."""
    with database(db) as session, usage_errors():
        finding = finding_or_fail(session, finding_id)
        if fmt == "input":
            data: bytes = finding.reproducer
        elif fmt == "json":
            data = (json.dumps(lib.export_json(session, finding)) + "\n").encode()
        else:
            data = lib.export_pytest(finding).encode()
    if output:
        Path(output).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


@triage.command()
@_db_option
def stats(db: str | None, as_json: bool) -> None:
    """Campaigns, executions, exec/s, coverage, and findings over time."""
    with database(db) as session:
        s = lib.stats(session)
    if as_json:
        emit_json(s)
        return
    click.echo(f"{s['campaigns']} campaigns, {s['executions']} executions, mean {s['exec_per_second']}/s, "
               f"max coverage {s['max_coverage']}; {s['findings']} findings "
               f"({', '.join(f'{k} {v}' for k, v in s['by_status'].items()) or 'none'}); "
               f"known bugs: {', '.join(s['known_bugs']) or '-'}")
    table("campaigns", ["id", "variant", "engine", "status", "started", "seconds", "executions", "exec/s", "coverage"],
          [[r["id"], r["variant"], r["engine"], r["status"], (r["started_at"] or "")[:19], r["seconds"],
            r["executions"], r["exec_per_second"], r["coverage"]] for r in s["campaign_rows"]])
    table("findings over time", ["day", "new", "total"],
          [[r["day"], r["new"], r["total"]] for r in s["findings_over_time"]])
