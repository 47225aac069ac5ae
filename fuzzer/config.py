"""What a campaign and each of its jobs are told to do: frozen, JSON-serialisable configs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

ENGINES = ("atheris", "random", "pct")
DEFAULT_RSS_LIMIT_MB = 2048


@dataclass(frozen=True)
class CampaignConfig:
    """One ``oomfuzz fuzz`` run: ``variants`` are spread over ``jobs`` processes."""

    variants: tuple[str, ...]
    engine: str = "atheris"
    seconds: float = 60.0
    jobs: int = 1
    seed: int = 0
    db_url: str | None = None  # None: record nothing (benchmarks)
    corpus_dir: str | None = None
    variant_label: str = ""  # what the campaign row says: a variant name or "all"
    minimise_seconds: float = 5.0
    confirm_runs: int = 5
    rss_limit_mb: int = DEFAULT_RSS_LIMIT_MB


@dataclass(frozen=True)
class JobConfig:
    """One fuzzing process: one variant, one engine, until ``seconds`` have passed."""

    job: int
    variant: str
    engine: str
    seconds: float
    seed: int
    work_dir: str
    record: bool = False  # write to the database named by $OOMFUZZ_DATABASE_URL (kept out of argv)
    campaign_id: int | None = None
    corpus_dir: str | None = None
    stats_fd: int | None = None
    rss_limit_mb: int = DEFAULT_RSS_LIMIT_MB
    reference_scenario: bool = False  # fuzz only the engine benchmark's reference scenario
    report_every: float = 0.5

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "JobConfig":
        return cls(**json.loads(text))
