"""Seeding from real traces: mapping, fidelity, determinism, the `oomfuzz seed` command, storage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.engine import URL

from oomfuzz.cli import cli
from oomfuzz.corpus.parse import ParseResult, parse_text
from oomfuzz.corpus.samples import load_sample, traces_dir
from oomfuzz.corpus.seed import SeedConfig, lcs_length, scenario_for, seed_episode, seed_parsed, variant_for
from oomfuzz.db.engine import make_engine, session_scope
from oomfuzz.db.models import CorpusEntry
from oomfuzz.db.testing import empty_db, scratch_postgres  # noqa: F401  (fixtures)
from oomfuzz.engine.execute import replay
from oomfuzz.engine.variants import load_variant, variant_names
from oomfuzz.fuzzer.corpus import scan_corpus

TRACES = traces_dir(Path(__file__))
SAMPLES = sorted(TRACES.glob("*.txt")) if TRACES else []
FAST = SeedConfig(dfs_executions=150, random_executions=150)
TETSUO = "10-lkml-race-tetsuo-20160225-memdie.txt"
MACHEK = "02-dmesg-reaper-lkml-machek-5.8.txt"
needs_samples = pytest.mark.skipif(not SAMPLES, reason="shared trace samples not found: set OOMFUZZ_SHARED_DIR")


def _parse(name: str) -> ParseResult:
    sample = load_sample(TRACES / name)
    return parse_text(sample.body, source=sample.name, first_line=sample.body_first_line)


def _body_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text(load_sample(TRACES / name).body, encoding="utf-8")
    return path


def test_lcs_counts_in_order_matches_only() -> None:
    assert lcs_length(["killed", "reaped"], ["oom_invoked", "killed", "exit", "reaped"]) == 2
    assert lcs_length(["reaped", "killed"], ["killed", "reaped"]) == 1
    assert lcs_length([], ["killed"]) == 0


@needs_samples
@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_every_sample_with_a_kill_maps_to_a_scenario_and_variant(path: Path) -> None:
    parsed = _parse(path.name)
    for episode in parsed.episodes:
        if not episode.kills:
            continue
        scenario, notes = scenario_for(episode)
        name, reason = variant_for(episode)
        assert name in variant_names() and reason
        assert all(isinstance(n, str) for n in notes)
        load_variant(name)  # the scenario is valid by construction (Scenario validates itself)
        assert scenario.describe()


@needs_samples
@pytest.mark.parametrize(
    ("name", "variant"),
    [
        ("13-dmesg-oom-rhel6-2.6.32-syslog.txt", "v4.5"),  # older than every model
        ("19-dmesg-oom-docker-cgv1-4.4-ubuntu.txt", "v4.5"),
        ("06-ftrace-oom-hocko-reclaim-retry-zone.txt", "v4.8"),
        ("20-dmesg-reaper-k8s-cgv1-4.15-dmesgT.txt", "v4.9"),  # 4.10+ reads as v4.9
        (TETSUO, "seed-3of2"),  # 4.5 linux-next with reaper lines
        (MACHEK, "v4.6"),  # no version, reaper line
        ("05-ftrace-oom-gushchin-reaper-tracepoints.txt", "v4.9"),  # no version, oom:* tracepoints
    ],
)
def test_variant_follows_the_logs_kernel_version(name: str, variant: str) -> None:
    episode = _parse(name).episodes[0]
    assert variant_for(episode)[0] == variant
    assert variant_for(episode, "v4.7") == ("v4.7", "--variant")


@needs_samples
def test_unable_to_reap_maps_to_a_stuck_writer() -> None:
    episodes = _parse(TETSUO).episodes
    assert scenario_for(episodes[1])[0].shape == "run,stuck_writer"
    assert scenario_for(episodes[0])[0].shape == "run"


@needs_samples
def test_fidelity_is_positive_checked_by_replay_and_deterministic() -> None:
    parsed = _parse(TETSUO)
    first = seed_parsed(parsed, config=FAST)
    second = seed_parsed(parsed, config=FAST)
    assert [e.input for e in first.episodes] == [e.input for e in second.episodes]
    for ep in first.episodes:
        assert ep.accepted and ep.fidelity > 0 and ep.input is not None
        again = replay(load_variant(ep.variant), ep.input)
        assert again.scenario == ep.scenario  # the stored input carries the mapped scenario
    unable = first.episodes[1]
    assert unable.trace_events == ["kill_select", "killed", "unable_to_reap"]
    assert unable.fidelity == 1.0


@needs_samples
def test_a_variant_without_the_reaper_matches_part_of_the_episode() -> None:
    episode = _parse(TETSUO).episodes[0]
    seeded = seed_episode(episode, variant="v4.5", config=FAST)  # no reaper on v4.5: 1 of 2
    assert seeded.trace_events == ["killed", "reaped"]
    assert seeded.matched == 1 and seeded.accepted


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'seed.db'}"


def _entries(url: str | URL) -> list[tuple[str, str, str | None, bytes]]:
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            rows = session.scalars(select(CorpusEntry).order_by(CorpusEntry.seq)).all()
            return [(r.variant, r.source, r.source_detail, r.data) for r in rows]
    finally:
        engine.dispose()


@needs_samples
def test_cli_json_shape_db_entries_and_corpus_dir(tmp_path: Path) -> None:
    log = _body_file(tmp_path, TETSUO)
    corpus = tmp_path / "corpus"
    result = CliRunner().invoke(cli, ["seed", "--db", _sqlite(tmp_path), "--corpus", str(corpus), "--json", str(log)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    (one,) = out["files"]
    assert one["episodes"] == 2
    assert one["kills"] == [{"pid": 2020, "comm": "a.out"}, {"pid": 1562, "comm": "a.out"}]
    assert (one["reaped"], one["unable_to_reap"], one["tracepoints"]) == (1, 1, [])
    assert isinstance(one["skipped_lines"], int) and one["skipped_lines"] > 0
    assert one["entries_added"] == 2 and one["fidelity"] == 1.0
    entries = _entries(_sqlite(tmp_path))
    assert [(v, s, d) for v, s, d, _ in entries] == [
        ("seed-3of2", "trace", f"{log}:episode 0"), ("seed-3of2", "trace", f"{log}:episode 1"),
    ]
    assert sorted(scan_corpus(corpus).inputs) == sorted(data for *_, data in entries)
    again = CliRunner().invoke(cli, ["seed", "--db", _sqlite(tmp_path), "--json", str(log)])
    assert json.loads(again.output)["files"][0]["entries_added"] == 0  # same bytes: stored once


@needs_samples
def test_cli_reads_stdin_and_strict_lists_skipped_lines(tmp_path: Path) -> None:
    whole = (TRACES / MACHEK).read_text(encoding="utf-8")  # the header's lines are skipped lines
    result = CliRunner().invoke(cli, ["seed", "--db", _sqlite(tmp_path), "--strict", "-"], input=whole)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("<stdin>: 13 lines read, 6 skipped, 1 episodes, 1 inputs added")
    assert result.output.count("skipped line ") == 6
    assert _entries(_sqlite(tmp_path))[0][2] == "<stdin>:episode 0"


@needs_samples
def test_cli_stdin_with_a_byte_order_mark_and_crlf_seeds_like_plain_text(tmp_path: Path) -> None:
    body = load_sample(TRACES / MACHEK).body
    plain = CliRunner().invoke(cli, ["seed", "--db", _sqlite(tmp_path), "--json", "-"], input=body)
    windows = "\ufeff" + body.replace("\n", "\r\n")
    (tmp_path / "w").mkdir()
    other_db = _sqlite(tmp_path / "w")
    result = CliRunner().invoke(cli, ["seed", "--db", other_db, "--json", "-"], input=windows)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads(plain.output)


def _oomfuzz(*args: str) -> subprocess.CompletedProcess[str]:
    """The real entry point, which turns user errors into one line and an exit status."""
    code = "from oomfuzz.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_cli_errors_are_one_line_and_keep_what_was_stored(tmp_path: Path) -> None:
    binary = tmp_path / "core"
    binary.write_bytes(b"\x7fELF\x00\x00\x00")
    good = tmp_path / "ok.log"
    good.write_text("[  1.0] Out of memory: Kill process 7 (a) score 9 or sacrifice child\n"
                    "[  1.0] Killed process 7 (a) total-vm:4kB, anon-rss:4kB, file-rss:0kB\n")
    proc = _oomfuzz("seed", "--db", _sqlite(tmp_path), str(tmp_path / "missing"), str(binary), str(good))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"oomfuzz: error: {tmp_path / 'missing'}: no such file",
                                        f"oomfuzz: error: {binary}: binary data, not a text log"]
    assert len(_entries(_sqlite(tmp_path))) == 1  # the readable file was still seeded
    bad_db = _oomfuzz("seed", "--db", "mysql://me@host/db", str(good))
    assert bad_db.returncode == 3 and len(bad_db.stderr.splitlines()) == 1
    assert "unsupported database URL scheme" in bad_db.stderr


@needs_samples
def test_entries_land_in_postgresql(scratch_postgres) -> None:  # noqa: F811
    url = scratch_postgres.create()
    text_url = url.render_as_string(hide_password=False)
    body = load_sample(TRACES / MACHEK).body
    result = CliRunner().invoke(cli, ["seed", "--db", text_url, "--json", "-"], input=body)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["files"][0]["entries_added"] == 1
    ((variant, source, detail, _),) = _entries(url)
    assert (variant, source, detail) == ("v4.6", "trace", "<stdin>:episode 0")


SUSPEND_LOG = """[  100.000000] {invoker} invoked oom-killer: gfp_mask=0x24000c0, order=0, oom_score_adj=0
[  100.000100] CPU: 1 PID: 123 Comm: {invoker} Not tainted 4.6.0 #1
[  100.000200] Out of memory: Kill process 456 (memhog) score 900 or sacrifice child
[  100.000300] Killed process 456 (memhog) total-vm:100kB, anon-rss:50kB, file-rss:0kB
[  100.100000] OOM killer disabled.
"""


@pytest.mark.parametrize(("invoker", "drivers"), [("kworker/u8:2", "kalloc,freezer"), ("memhog", "alloc,freezer")])
def test_a_kernel_thread_invoking_the_oom_killer_during_suspend_maps_to_kalloc(invoker: str, drivers: str) -> None:
    parsed = parse_text(SUSPEND_LOG.format(invoker=invoker), source="suspend.txt")
    side = [e for e in parsed.events if e.kind.value in ("oom_disabled", "oom_enabled")]
    scenario, notes = scenario_for(parsed.episodes[0], side)
    assert scenario.drivers == drivers
    assert any(note.startswith(f"drivers {drivers}") for note in notes)
    assert scenario_for(parsed.episodes[0])[0].drivers == "alloc"  # no freezer line: no freezer
