"""The seeding benchmark: time to bug from an empty corpus and from one seeded from real traces.

For each target (variant, bug) the shared trace samples are seeded on that variant (every
accepted input, whatever its fidelity, goes into one corpus directory). Then the fuzzer's own
campaign machinery (``fuzzer.campaign.run_jobs``, one single-process job, no database) runs
once per seed from an empty corpus and once from a fresh copy of the seeded one (the job
writes what it keeps into its corpus directory, so runs must not share it), stopping at the
bug's first hit or the budget. Times are measured as ``fuzzer/ttb.py`` measures them: from
the start of the job's fuzzing loop to the first hit. The median over the seeds is reported;
a run that misses counts as the budget, as in ``oomfuzz bench ttb``.
"""

from __future__ import annotations

import math
import shutil
import statistics
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..fuzzer.campaign import run_jobs
from ..fuzzer.config import CampaignConfig
from ..fuzzer.corpus import write_input
from .parse import parse_text
from .samples import load_samples, traces_dir
from .seed import SeedConfig, seed_parsed

TARGETS = (("seed-3of2", "BZ-03"), ("v4.6-rc1", "BZ-09"))


@dataclass(frozen=True)
class SeedBenchConfig:
    targets: tuple[tuple[str, str], ...] = TARGETS
    seeds: int = 5
    budget: float = 20.0
    parallel: int = 2
    engine: str = "atheris"
    seeding: SeedConfig = SeedConfig()


@dataclass
class SeedBenchResult:
    config: SeedBenchConfig
    corpus_sizes: dict[str, int] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"budget": self.config.budget, "seeds": self.config.seeds, "engine": self.config.engine,
                "corpus_sizes": self.corpus_sizes, "rows": self.rows}


def build_seeded_corpus(variant: str, directory: Path, config: SeedConfig, samples_dir: Path | None = None) -> int:
    """Seed every shared sample on ``variant`` into ``directory``; the number of inputs."""
    added = 0
    for sample in load_samples(samples_dir or traces_dir()):
        parsed = parse_text(sample.body, source=sample.name, first_line=sample.body_first_line)
        for ep in seed_parsed(parsed, variant=variant, config=config).episodes:
            if ep.accepted and ep.input is not None:
                added += write_input(directory, ep.input)
    return added


def time_to_bug(variant: str, bug: str, seed: int, config: SeedBenchConfig, corpus: Path | None) -> float | None:
    """Seconds to the first hit of ``bug`` in one campaign, or None within the budget."""
    with tempfile.TemporaryDirectory(prefix="oomfuzz-seedbench-") as tmp:
        corpus_dir = None
        if corpus is not None:
            corpus_dir = str(Path(tmp) / "corpus")
            shutil.copytree(corpus, corpus_dir)
        campaign = CampaignConfig(variants=(variant,), engine=config.engine, seconds=config.budget, seed=seed,
                                  db_url=None, corpus_dir=corpus_dir)
        progress = run_jobs(campaign, stop_when=lambda p: bug in set(p.known_bugs))
    first = math.inf
    for snap in progress.snapshots:
        for f in snap.get("findings", []):
            if f.get("known_bug") == bug:
                first = min(first, f["first_seconds"])
    return None if first == math.inf else first


def bench_seeding(config: SeedBenchConfig, on_run: Callable[..., None] | None = None) -> SeedBenchResult:
    """Every (target, corpus, seed) run, summarised as medians per target and corpus."""
    result = SeedBenchResult(config)
    with tempfile.TemporaryDirectory(prefix="oomfuzz-seeded-") as tmp:
        corpora: dict[str, Path] = {}
        for variant in dict.fromkeys(v for v, _ in config.targets):
            corpora[variant] = Path(tmp) / variant
            corpora[variant].mkdir()
            result.corpus_sizes[variant] = build_seeded_corpus(variant, corpora[variant], config.seeding)
        plan = [(v, b, kind, s) for v, b in config.targets for kind in ("empty", "seeded")
                for s in range(1, config.seeds + 1)]
        times: dict[tuple[str, str, str], list[float | None]] = {}

        def one(p: tuple[str, str, str, int]) -> tuple[tuple[str, str, str, int], float | None]:
            v, b, kind, s = p
            return p, time_to_bug(v, b, s, config, corpora[v] if kind == "seeded" else None)

        with ThreadPoolExecutor(max_workers=max(1, config.parallel)) as pool:
            for done, (p, t) in enumerate(pool.map(one, plan), start=1):
                times.setdefault(p[:3], []).append(t)
                if on_run is not None:
                    on_run(p, t, done, len(plan))
    for variant, bug in config.targets:
        row: dict[str, Any] = {"variant": variant, "bug": bug}
        for kind in ("empty", "seeded"):
            runs = times.get((variant, bug, kind), [])
            found = [t for t in runs if t is not None]
            median = statistics.median([config.budget if t is None else t for t in runs]) if runs else config.budget
            row[kind] = {"median": round(median, 3), "found": len(found), "runs": len(runs),
                         "unfound": len(found) < len(runs) and median >= config.budget}
        result.rows.append(row)
    return result
