"""What a campaign reports: live progress, merged findings and the final result (plain data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import CampaignConfig


@dataclass
class Progress:
    """Totals over every job so far (``snapshots``: the latest report of each child)."""

    elapsed: float
    budget: float
    executions: int
    coverage: int
    corpus: int
    findings: int
    known_bugs: list[str]
    engine_errors: int
    inconclusive: int
    fuzz_seconds: float  # summed over children: exec/s per job is executions / this
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_snapshots(cls, elapsed: float, budget: float, snapshots: list[dict[str, Any]], errors: list[str]) -> "Progress":
        signatures = {f["signature"]: f.get("known_bug") for s in snapshots for f in s.get("findings", [])}
        return cls(
            elapsed=elapsed, budget=budget,
            executions=sum(s.get("executions", 0) for s in snapshots),
            coverage=sum(s.get("coverage", 0) for s in snapshots),
            corpus=sum(s.get("corpus", 0) for s in snapshots),
            findings=len(signatures),
            known_bugs=sorted({bug for bug in signatures.values() if bug}),
            engine_errors=sum(s.get("engine_errors", 0) for s in snapshots),
            inconclusive=sum(s.get("inconclusive", 0) for s in snapshots),
            fuzz_seconds=sum(s.get("seconds", 0.0) for s in snapshots),
            snapshots=snapshots, errors=errors,
        )

    @property
    def exec_per_second(self) -> float:
        """Executions per second of wall time, over all jobs (start-up included)."""
        return self.executions / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def exec_per_job_second(self) -> float:
        """Executions per second of one job's own fuzzing time (one core)."""
        return self.executions / self.fuzz_seconds if self.fuzz_seconds > 0 else 0.0


@dataclass
class MergedFinding:
    """One signature over every job: total hits, variants, the smallest input seen."""

    signature: str
    invariant: str
    title: str
    known_bug: str | None
    variants: list[str]
    hits: int
    input: bytes
    variant: str  # the variant the smallest input was seen on
    preemptions: int
    steps: int
    first_seconds: float


def merge_findings(snapshots: list[dict[str, Any]]) -> list[MergedFinding]:
    """Deduplicate by signature across jobs, smallest (preemptions, steps) input kept."""
    merged: dict[str, MergedFinding] = {}
    for snap in snapshots:
        for f in snap.get("findings", []):
            raw = bytes.fromhex(f["input"])
            m = merged.get(f["signature"])
            if m is None:
                merged[f["signature"]] = MergedFinding(
                    f["signature"], f["invariant"], f["title"], f["known_bug"], [f["variant"]], f["hits"], raw,
                    f["variant"], f["preemptions"], f["steps"], f["first_seconds"],
                )
                continue
            m.hits += f["hits"]
            m.first_seconds = min(m.first_seconds, f["first_seconds"])
            if f["variant"] not in m.variants:
                m.variants.append(f["variant"])
            if (f["preemptions"], f["steps"]) < (m.preemptions, m.steps):
                m.input, m.variant, m.preemptions, m.steps = raw, f["variant"], f["preemptions"], f["steps"]
    return sorted(merged.values(), key=lambda m: (m.known_bug is None, m.known_bug or "", m.first_seconds))


@dataclass
class FindingSummary:
    """A row of the findings table: merged, minimised, confirmed."""

    signature: str
    invariant: str
    title: str
    known_bug: str | None
    variants: list[str]
    hits: int
    preemptions: int
    steps: int
    input: bytes
    replay: str
    deterministic: bool
    first_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "signature": self.signature, "invariant": self.invariant, "title": self.title,
            "known_bug": self.known_bug, "variants": sorted(self.variants), "hits": self.hits,
            "preemptions": self.preemptions, "steps": self.steps, "input": self.input.hex(),
            "replay": self.replay, "flaky": not self.deterministic, "first_seconds": round(self.first_seconds, 3),
        }


@dataclass
class CampaignResult:
    campaign: int | None
    variant: str
    engine: str
    seconds: float
    executions: int
    exec_per_second: float
    coverage: int
    corpus: int
    findings: list[FindingSummary]
    engine_errors: int
    error_samples: list[dict[str, str]]
    inconclusive: int
    job_errors: list[str]
    warnings: list[str]

    @classmethod
    def build(cls, config: CampaignConfig, campaign_id: int | None, progress: Progress,
              findings: list[FindingSummary], warnings: list[str]) -> "CampaignResult":
        samples = [e for s in progress.snapshots for e in s.get("error_samples", [])]
        return cls(
            campaign_id, config.variant_label or ",".join(config.variants), config.engine,
            round(progress.elapsed, 3), progress.executions, round(progress.exec_per_second, 1),
            progress.coverage, progress.corpus, findings, progress.engine_errors, samples[:10],
            progress.inconclusive, progress.errors, warnings,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign, "variant": self.variant, "engine": self.engine, "seconds": self.seconds,
            "executions": self.executions, "exec_per_second": self.exec_per_second, "coverage": self.coverage,
            "corpus": self.corpus, "findings": [f.as_dict() for f in self.findings],
            "engine_errors": {"count": self.engine_errors, "samples": self.error_samples},
            "inconclusive": self.inconclusive, "job_errors": self.job_errors, "warnings": self.warnings,
        }
