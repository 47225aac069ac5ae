"""The findings database schema: campaigns, deduplicated findings, raw hits, history, corpus."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    LargeBinary,
    MetaData,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

FINDING_STATUSES = ("new", "confirmed", "fixed", "invalid", "wontfix", "duplicate")
EVENT_ACTIONS = ("status", "dup", "undup", "reopen", "minimise")
CORPUS_SOURCES = ("fuzz", "seed", "trace")
CAMPAIGN_STATUSES = ("running", "finished", "failed", "interrupted")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would hand them back naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store aware UTC datetimes")
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    listed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {str: Text(), bytes: LargeBinary(), datetime: UTCDateTime()}


class Campaign(Base):
    __tablename__ = "campaign"
    __table_args__ = (_one_of("status", CAMPAIGN_STATUSES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    variant: Mapped[str]
    engine: Mapped[str]
    seed: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    executions: Mapped[int] = mapped_column(BigInteger, default=0)
    exec_per_second: Mapped[float] = mapped_column(default=0.0)
    coverage: Mapped[int] = mapped_column(default=0)
    jobs: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(default="running")
    host: Mapped[str | None]
    worker: Mapped[str | None]
    corpus_dir: Mapped[str | None]


class Finding(Base):
    __tablename__ = "finding"
    __table_args__ = (_one_of("status", FINDING_STATUSES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    signature: Mapped[str] = mapped_column(unique=True)
    invariant: Mapped[str]
    title: Mapped[str]
    known_bug: Mapped[str | None]
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    hits: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(default="new")
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("finding.id", ondelete="SET NULL"))
    reproducer: Mapped[bytes]
    reproducer_variant: Mapped[str]
    preemptions: Mapped[int]
    steps: Mapped[int]
    trace: Mapped[str]
    replay: Mapped[str]
    flaky: Mapped[bool] = mapped_column(default=False)
    minimised: Mapped[bool] = mapped_column(default=False)

    variants: Mapped[list[FindingVariant]] = relationship(
        order_by="FindingVariant.variant", lazy="selectin", passive_deletes=True
    )


class FindingVariant(Base):
    __tablename__ = "finding_variant"

    finding_id: Mapped[int] = mapped_column(
        ForeignKey("finding.id", ondelete="CASCADE"), primary_key=True
    )
    variant: Mapped[str] = mapped_column(primary_key=True)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    hits: Mapped[int] = mapped_column(BigInteger, default=0)


class Hit(Base):
    __tablename__ = "hit"

    id: Mapped[int] = mapped_column(primary_key=True)
    finding_id: Mapped[int] = mapped_column(
        ForeignKey("finding.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign.id", ondelete="SET NULL")
    )
    variant: Mapped[str]
    input: Mapped[bytes]
    preemptions: Mapped[int]
    steps: Mapped[int]
    seen_at: Mapped[datetime]


class FindingEvent(Base):
    __tablename__ = "finding_event"
    __table_args__ = (_one_of("action", EVENT_ACTIONS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    finding_id: Mapped[int] = mapped_column(
        ForeignKey("finding.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    actor: Mapped[str]
    action: Mapped[str]
    old_value: Mapped[str | None]
    new_value: Mapped[str | None]
    note: Mapped[str | None]


class CorpusEntry(Base):
    __tablename__ = "corpus_entry"
    __table_args__ = (
        UniqueConstraint("sha256", "variant"),
        _one_of("source", CORPUS_SOURCES),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    sha256: Mapped[str]
    variant: Mapped[str]
    source: Mapped[str]
    source_detail: Mapped[str | None]
    data: Mapped[bytes]
    added_at: Mapped[datetime]
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign.id", ondelete="SET NULL")
    )
    merged_out_at: Mapped[datetime | None]  # a corpus merge found it redundant; kept so it is not re-added
