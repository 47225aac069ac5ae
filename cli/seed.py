"""`oomfuzz seed`: turn OOM episodes in kernel logs into corpus entries, with their fidelity."""

from __future__ import annotations

import sys

import click

from ..corpus.parse import ParseResult, TraceFileError, parse_bytes, parse_file
from ..corpus.seed import FileSeed, record_seeds, seed_parsed
from ..db.engine import make_engine, session_scope, upgrade
from ..db.errors import DatabaseError
from ..db.url import resolve_url
from ..fuzzer.corpus import CorpusError, open_corpus_dir
from .common import UserError, emit_json, variant_or_fail

def _read_stdin() -> ParseResult:
    return parse_bytes(sys.stdin.buffer.read(), source="<stdin>")


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--variant", "-v", "variant_name", default=None, help="replay on this variant instead of the log's")
@click.option("--db", "db", default=None, help="database URL (default $OOMFUZZ_DATABASE_URL or sqlite:///oomfuzz.db)")
@click.option("--corpus", "corpus_dir", default=None, help="also write accepted inputs to this corpus directory")
@click.option("--strict", is_flag=True, help="list every skipped line")
@click.option("--json", "as_json", is_flag=True, help="one JSON object on stdout")
def seed(files: tuple[str, ...], variant_name: str | None, db: str | None, corpus_dir: str | None,
         strict: bool, as_json: bool) -> None:
    """Seed the corpus from kernel logs (FILE may be - for stdin): one input per OOM episode."""
    if variant_name:
        variant_name = variant_or_fail(variant_name).NAME
    try:
        corpus = open_corpus_dir(corpus_dir) if corpus_dir else None
    except CorpusError as exc:
        raise UserError(str(exc)) from None
    try:
        engine = make_engine(resolve_url(db))
        upgrade(engine)
    except DatabaseError as exc:
        raise UserError(str(exc), 3) from None
    results: list[FileSeed] = []
    errors: list[str] = []
    for name in files:
        try:
            parsed = _read_stdin() if name == "-" else parse_file(name)
        except TraceFileError as exc:
            errors.append(str(exc))
            click.echo(f"oomfuzz: error: {exc}", err=True)
            continue
        file_seed = seed_parsed(parsed, variant=variant_name)
        try:
            with session_scope(engine) as session:  # one commit per file: earlier files stay stored
                record_seeds(file_seed, session=session, corpus_dir=corpus)
        except DatabaseError as exc:
            raise UserError(str(exc), 3) from None
        results.append(file_seed)
        if not as_json:
            _render(file_seed, strict)
    engine.dispose()
    if as_json:
        emit_json({"files": [r.as_dict(strict) for r in results], "errors": errors})
    if errors:
        sys.exit(2)


def _render(file_seed: FileSeed, strict: bool) -> None:
    s = file_seed.parse.summary()
    counts = ", ".join(f"{k} {v}" for k, v in sorted(s["event_counts"].items())) or "none"
    fidelity = "n/a" if file_seed.fidelity is None else f"{file_seed.fidelity:.2f}"
    click.echo(f"{file_seed.source}: {s['lines_read']} lines read, {s['skipped_lines']} skipped, "
               f"{s['episodes']} episodes, {file_seed.entries_added} inputs added, fidelity {fidelity}")
    click.echo(f"  events: {counts}")
    for ep in file_seed.episodes:
        verdict = "added" if ep.accepted else "not accepted"
        click.echo(f"  episode {ep.index}: {ep.variant} {ep.scenario.describe()}: "
                   f"{ep.matched}/{len(ep.trace_events)} events in order, fidelity {ep.fidelity:.2f}, {verdict}")
    if strict:
        for skipped in file_seed.parse.skipped:
            click.echo(f"  skipped line {skipped.line}: {skipped.text}")
