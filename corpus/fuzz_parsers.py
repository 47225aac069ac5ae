"""Atheris fuzz target for the trace parsers: totality plus self-consistency of the results.

Run it directly (libFuzzer flags pass through):

    python -m oomfuzz.corpus.fuzz_parsers -max_total_time=20 -atheris_runs=100000 [CORPUS_DIR]

or bounded from CI with `run_bounded(seconds)`, which seeds a temporary corpus with the shared
samples. Any exception escaping `parse_text`, or any property of `consistency.check_consistency`
that breaks (determinism, line bounds, summary/event agreement, episodes re-parsed alone keep
their kills, unrelated appended lines change nothing), is a crash. The properties live in their
own module so tests can check them without importing Atheris.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import atheris

from oomfuzz.corpus.samples import load_samples


def test_one_input(data: bytes) -> None:
    # Imported here, after main() imported it under instrumentation; importing this module for
    # run_bounded() therefore leaves the parsers uninstrumented in the caller's process.
    from oomfuzz.corpus.consistency import check_consistency

    check_consistency(data.decode("utf-8", errors="replace"))


_DONE = re.compile(r"Done (\d+)(?: runs)? in")  # libFuzzer, or atheris with -atheris_runs


def run_bounded_report(seconds: float, extra_args: tuple[str, ...] = ()) -> tuple[int, int, str]:
    """Run the target in a subprocess for `seconds`; return (exit code, runs done, output)."""
    with tempfile.TemporaryDirectory(prefix="oomfuzz-corpus-") as tmp:
        seeds = Path(tmp)
        for sample in load_samples():
            (seeds / sample.name).write_text(sample.body, encoding="utf-8")
        cmd = [
            sys.executable, "-m", "oomfuzz.corpus.fuzz_parsers",
            f"-max_total_time={max(1, int(seconds))}", "-timeout=20", "-rss_limit_mb=2048",
            *extra_args, str(seeds),
        ]
        env = dict(os.environ, PYTHONHASHSEED="0")
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=seconds + 120, env=env, check=False
        )
    output = proc.stdout + proc.stderr
    done = _DONE.search(output)
    return proc.returncode, int(done.group(1)) if done else 0, output


def run_bounded(seconds: float) -> int:
    """Fuzz for about `seconds` in a subprocess (for CI) and return its exit code."""
    return run_bounded_report(seconds)[0]


def main(argv: list[str]) -> None:
    with atheris.instrument_imports():
        import oomfuzz.corpus.consistency  # noqa: F401  (and with it every parser module)
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
