"""The parsers' Atheris target runs bounded in a subprocess, executes inputs and finds nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from oomfuzz.corpus.consistency import check_consistency
from oomfuzz.corpus.fuzz_parsers import run_bounded_report
from oomfuzz.corpus.parse import ParseResult
from oomfuzz.corpus.samples import Sample, load_samples, traces_dir


def test_fuzz_target_runs_ten_seconds_cleanly() -> None:
    code, runs, output = run_bounded_report(10)
    assert code == 0, f"fuzz target failed (exit {code}):\n{output[-4000:]}"
    assert runs > 0, f"fuzz target executed no inputs:\n{output[-4000:]}"


TRACES = traces_dir(Path(__file__))  # beside the clone, or $OOMFUZZ_SHARED_DIR/traces
SAMPLES = load_samples(TRACES) if TRACES else []


@pytest.mark.parametrize("sample", SAMPLES or [None], ids=lambda s: s.name if s else "none")
def test_every_sample_passes_the_fuzz_properties(sample: Sample | None) -> None:
    if sample is None:
        pytest.skip("shared trace samples not found: set OOMFUZZ_SHARED_DIR")
    check_consistency(sample.body)


def test_the_properties_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker itself must reject an inconsistent result, or the fuzzer proves nothing."""
    original = ParseResult.summary

    def lying_summary(self: ParseResult) -> dict[str, object]:
        summary = original(self)
        summary["reaped"] = int(summary["reaped"]) + 1  # type: ignore[call-overload]
        return summary

    monkeypatch.setattr(ParseResult, "summary", lying_summary)
    with pytest.raises(AssertionError):
        check_consistency("[ 1.0] oom_reaper: reaped process 1 (x), now anon-rss:0kB, "
                          "file-rss:0kB, shmem-rss:0kB\n")
