"""The time-to-bug benchmark: seconds to the first hit of every listed bug, per engine.

Each run is one single-process campaign (one core) of one variant with one engine and one
seed, from an empty corpus and no database, stopped when every bug the variant lists
(``KNOWN_BUGS``) has been hit or the budget is spent. The time of a bug is when its first hit
happened, measured from the start of the job's fuzzing loop (process start-up and
instrumentation excluded). Per (variant, bug, engine) the median over the seeds is reported;
a bug not found within the budget counts as the budget and is marked. ``parallel`` runs go at
once (one per core). The same module also measures Atheris's executions per second on the
engine benchmark's reference scenario.
"""

from __future__ import annotations

import math
import statistics
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.bench import REFERENCE, REFERENCE_VARIANT
from ..engine.variants import load_variant, variant_names
from .campaign import Campaign, run_jobs
from .config import ENGINES, CampaignConfig, JobConfig

VARIANTS_2016 = ("v4.5", "mmotm-2016-01", "seed-3of2", "v4.6-rc1", "v4.6", "v4.7")


@dataclass(frozen=True)
class TTBConfig:
    seeds: int = 5
    budget: float = 15.0
    parallel: int = 2
    engines: tuple[str, ...] = ENGINES
    variants: tuple[str, ...] = ()  # empty: the 2016 variants that are shipped
    reference_seconds: float = 10.0


@dataclass
class RunResult:
    variant: str
    engine: str
    seed: int
    first: dict[str, float]  # bug -> seconds to its first hit
    executions: int
    seconds: float


@dataclass
class TTBResult:
    budget: float
    seeds: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    geomean: dict[str, float] = field(default_factory=dict)
    exec_per_second: dict[str, float] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "seeds": self.seeds, "rows": self.rows, "geomean": self.geomean,
                "exec_per_second": self.exec_per_second, "reference": self.reference}


def one_run(variant: str, engine: str, seed: int, budget: float) -> RunResult:
    """One campaign until every listed bug of ``variant`` was hit, or ``budget`` seconds."""
    bugs = set(load_variant(variant).KNOWN_BUGS)
    config = CampaignConfig(variants=(variant,), engine=engine, seconds=budget, seed=seed, db_url=None)
    progress = run_jobs(config, stop_when=lambda p: bugs <= set(p.known_bugs))
    first: dict[str, float] = {}
    for snap in progress.snapshots:
        for f in snap.get("findings", []):
            bug = f.get("known_bug")
            if bug in bugs and f["first_seconds"] < first.get(bug, math.inf):
                first[bug] = f["first_seconds"]
    return RunResult(variant, engine, seed, first, progress.executions, progress.fuzz_seconds)


def _rows(runs: list[RunResult], variants: list[str], config: TTBConfig) -> list[dict[str, Any]]:
    rows = []
    for variant in variants:
        for bug in sorted(load_variant(variant).KNOWN_BUGS):
            row: dict[str, Any] = {"variant": variant, "bug": bug}
            for engine in config.engines:
                times = [r.first.get(bug, config.budget) for r in runs if r.variant == variant and r.engine == engine]
                found = sum(1 for r in runs if r.variant == variant and r.engine == engine and bug in r.first)
                median = statistics.median(times) if times else config.budget
                row[engine] = {"median": round(median, 3), "found": found, "runs": len(times),
                               "unfound": median >= config.budget and found < len(times)}
            rows.append(row)
    return rows


def reference_rate(seconds: float) -> dict[str, Any]:
    """Atheris executions per second, one core, fuzzing only the reference scenario."""
    with tempfile.TemporaryDirectory(prefix="oomfuzz-ref-") as tmp:
        config = CampaignConfig(variants=(REFERENCE_VARIANT,), engine="atheris", seconds=seconds, db_url=None)
        campaign = Campaign(config, None, Path(tmp))
        run = campaign.start_run(0, REFERENCE_VARIANT)
        campaign.run_child(run, JobConfig(job=0, variant=REFERENCE_VARIANT, engine="atheris", seconds=seconds,
                                          seed=1, work_dir=str(campaign.work_dir(0, REFERENCE_VARIANT)),
                                          reference_scenario=True))
        snap = run.latest
    rate = snap.get("executions", 0) / snap["seconds"] if snap.get("seconds") else 0.0
    return {"scenario": f"{REFERENCE_VARIANT}: {REFERENCE.describe()}", "executions": snap.get("executions", 0),
            "seconds": snap.get("seconds", 0.0), "exec_per_second": round(rate, 1), "error": run.error}


def bench_ttb(config: TTBConfig, on_run: Any = None) -> TTBResult:
    """Run every (variant, engine, seed) and summarise medians and geometric means."""
    shipped = set(variant_names())
    variants = [v for v in (config.variants or VARIANTS_2016) if v in shipped]
    plan = [(v, e, s) for v in variants for s in range(1, config.seeds + 1) for e in config.engines]
    runs: list[RunResult] = []
    with ThreadPoolExecutor(max_workers=max(1, config.parallel)) as pool:
        for run in pool.map(lambda p: one_run(p[0], p[1], p[2], config.budget), plan):
            runs.append(run)
            if on_run is not None:
                on_run(run, len(runs), len(plan))
    result = TTBResult(config.budget, config.seeds, _rows(runs, variants, config))
    for engine in config.engines:
        medians = [max(row[engine]["median"], 1e-3) for row in result.rows]
        result.geomean[engine] = round(math.exp(sum(map(math.log, medians)) / len(medians)), 3) if medians else 0.0
        mine = [r for r in runs if r.engine == engine]
        seconds = sum(r.seconds for r in mine)
        result.exec_per_second[engine] = round(sum(r.executions for r in mine) / seconds, 1) if seconds else 0.0
    if config.reference_seconds > 0:
        result.reference = reference_rate(config.reference_seconds)
    return result
