"""Golden files for every shared trace sample, plus hand counts a golden file cannot bless."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oomfuzz.corpus.events import EventKind
from oomfuzz.corpus.parse import ParseResult, parse_text
from oomfuzz.corpus.samples import ENV_SHARED_DIR, load_sample, traces_dir

GOLDEN_DIR = Path(__file__).parent / "golden" / "traces"
# Beside the clone (CI copies shared/ next to it) or $OOMFUZZ_SHARED_DIR/traces.
TRACES = traces_dir(Path(__file__))
SAMPLES = sorted(TRACES.glob("*.txt")) if TRACES else []
_MISSING = (
    f"shared trace samples not found (looked in ${ENV_SHARED_DIR}/traces and "
    f"{Path(__file__).resolve().parents[2] / 'shared' / 'traces'}); set {ENV_SHARED_DIR}"
)


def _parse(path: Path) -> ParseResult:
    sample = load_sample(path)
    return parse_text(sample.body, source=sample.name, first_line=sample.body_first_line)


def _dump(data: dict[str, object]) -> str:
    """Summary indented; one episode / one event per line, so a diff shows exactly what moved."""

    def one(value: object) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))

    summary = json.dumps(data["summary"], indent=1, ensure_ascii=False).replace("\n", "\n ")
    parts = ['{\n "summary": ' + summary]
    for key in ("episodes", "events"):
        items = data[key]
        assert isinstance(items, list)
        body = ",\n".join(f"  {one(item)}" for item in items)
        parts.append(f' "{key}": [\n{body}\n ]' if items else f' "{key}": []')
    return ",\n".join(parts) + "\n}\n"


def _golden_path(path: Path) -> Path:
    return GOLDEN_DIR / f"{path.stem}.json"


@pytest.mark.parametrize("path", SAMPLES or [None], ids=lambda p: p.stem if p else "no-samples")
def test_sample_matches_golden(path: Path | None, update_golden: bool) -> None:
    if path is None:
        pytest.skip(_MISSING)
    actual = _parse(path).to_json()
    golden = _golden_path(path)
    if update_golden:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(_dump(actual), encoding="utf-8")
        return
    if not golden.exists():
        pytest.fail(f"no golden file {golden}: run `pytest --update-golden`, then review the diff")
    expected = json.loads(golden.read_text(encoding="utf-8"))
    assert actual["summary"] == expected["summary"]
    assert actual["episodes"] == expected["episodes"]
    assert actual["events"] == expected["events"]


def test_every_golden_file_has_its_sample() -> None:
    if TRACES is None:
        pytest.skip(_MISSING)
    orphans = {p.stem for p in GOLDEN_DIR.glob("*.json")} - {p.stem for p in SAMPLES}
    assert not orphans, f"golden files without a sample (delete them): {sorted(orphans)}"


# Counted by hand with grep on each sample (see the report that added this file); they pin what
# the golden files say, so `--update-golden` cannot silently bless a parser that loses records.
# kills are (pid, comm); rows = task-table rows; tp = tracepoint lines kept; memcg = `Task in` and
# `memory: usage` lines kept; dup = lines pasted twice (19: the whole Task in/memory group).
HAND_COUNTED = {
    "01-dmesg-oom-steamos-fixture": dict(
        episodes=1, kills=[(27345, "gotg.exe")], reaped=0, unable=0, tp=0, rows=101, memcg=0, dup=0,
        version="6.1.52-valve19-2-neptune-61-00002-g985d0b7eb257",
    ),
    "02-dmesg-reaper-lkml-machek-5.8": dict(
        episodes=1, kills=[(27368, "chromium")], reaped=1, unable=0, tp=0, rows=4, memcg=0, dup=0,
        version=None,
    ),
    "05-ftrace-oom-gushchin-reaper-tracepoints": dict(
        episodes=1, kills=[], reaped=0, unable=0, tp=6, rows=0, memcg=0, dup=0, version=None
    ),
    "06-ftrace-oom-hocko-reclaim-retry-zone": dict(
        episodes=1, kills=[], reaped=0, unable=0, tp=9, rows=0, memcg=0, dup=0,
        version="4.8.0-oomtrace3-00006-gb21338b386d2",
    ),
    "10-lkml-race-tetsuo-20160225-memdie": dict(
        episodes=2, kills=[(2020, "a.out"), (1562, "a.out")], reaped=1, unable=1, tp=0, rows=0,
        memcg=0, dup=0, version="4.5.0-rc5-next-20160224+",
    ),
    "13-dmesg-oom-rhel6-2.6.32-syslog": dict(
        episodes=1, kills=[(20557, "haproxy")], reaped=0, unable=0, tp=0, rows=33, memcg=0, dup=0,
        version="2.6.32-279.19.1.el6.x86_64",
    ),
    "19-dmesg-oom-docker-cgv1-4.4-ubuntu": dict(
        episodes=1, kills=[(11344, "main")], reaped=0, unable=0, tp=0, rows=2, memcg=2, dup=2,
        version="4.4.0-130-generic",
    ),
    "20-dmesg-reaper-k8s-cgv1-4.15-dmesgT": dict(
        episodes=1, kills=[(32308, "stress")], reaped=1, unable=0, tp=0, rows=6, memcg=2, dup=0,
        version="4.15.0-46-generic",
    ),
    "24-dmesg-reaper-lkml-hyperv-5.13-journalctl": dict(
        episodes=1, kills=[(662, "baloo_file")], reaped=1, unable=0, tp=0, rows=76, memcg=0, dup=0,
        version="5.13.0-rc5-next-20210611-llvm",
    ),
    "25-ftrace-oom-lkml-sigkill-exit-free-wrapped": dict(
        episodes=0, kills=[], reaped=0, unable=0, tp=2, rows=0, memcg=0, dup=0, version=None
    ),
    "30-ftrace-oom-steamos-mark-victim-testlines": dict(
        episodes=1, kills=[], reaped=0, unable=0, tp=1, rows=0, memcg=0, dup=1, version=None
    ),
}


@pytest.mark.parametrize("path", SAMPLES or [None], ids=lambda p: p.stem if p else "no-samples")
def test_sample_hand_counts(path: Path | None) -> None:
    if path is None:
        pytest.skip(_MISSING)
    if path.stem not in HAND_COUNTED:
        pytest.fail(f"new sample {path.name}: count its records by hand and add it to HAND_COUNTED")
    want = HAND_COUNTED[path.stem]
    result = _parse(path)
    summary = result.summary()
    assert summary["episodes"] == want["episodes"]
    assert [(k["pid"], k["comm"]) for k in summary["kills"]] == want["kills"]
    assert summary["reaped"] == want["reaped"]
    assert summary["unable_to_reap"] == want["unable"]
    assert len(summary["tracepoints"]) == want["tp"]
    assert summary["event_counts"].get("task_table_row", 0) == want["rows"]
    assert summary["event_counts"].get("memcg_oom", 0) == want["memcg"]
    assert summary["duplicate_lines"] == want["dup"]
    assert summary["kernel_version"] == want["version"]


def test_sample_details_that_matter() -> None:
    """A few facts per sample that a reader of the golden files should not have to dig for."""
    if TRACES is None:
        pytest.skip(_MISSING)
    by_name = {p.stem: _parse(p) for p in SAMPLES}
    tetsuo = by_name["10-lkml-race-tetsuo-20160225-memdie"]
    reaped = next(e for e in tetsuo.events if e.kind is EventKind.REAPED)
    assert reaped.fields["shmem_rss_kb"] == "0lB"  # the typo survives verbatim, not as 0
    score = next(e for e in tetsuo.events if e.kind is EventKind.KILL_SELECT)
    assert score.fields["score"] == 1003
    wrapped = by_name["25-ftrace-oom-lkml-sigkill-exit-free-wrapped"]
    assert [(e.kind.value, e.line, e.end_line) for e in wrapped.events] == [
        ("sched_process_exit", 21, 22),
        ("sched_process_free", 27, 28),
    ]
    steam = by_name["30-ftrace-oom-steamos-mark-victim-testlines"]
    assert steam.events[0].fields["ctx_comm"] == "GamepadUI-Input"
    rhel = by_name["13-dmesg-oom-rhel6-2.6.32-syslog"]
    kill = next(e for e in rhel.events if e.kind is EventKind.KILLED)
    assert kill.fields["uid"] == 188 and kill.fields["file_rss_kb"] == 264
    k8s = by_name["20-dmesg-reaper-k8s-cgv1-4.15-dmesgT"]
    assert k8s.episodes[0].memcg and k8s.episodes[0].invoker_pid == 32332
