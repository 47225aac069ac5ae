"""Keeping the shared corpus minimal: ``corpus.merge`` replays it and merges out what is redundant.

Design
======

A variant's shared corpus only grows while shards run: every shard adds what its libFuzzer
kept, and two shards often keep inputs that do the same thing. A merge, like libFuzzer's
``-merge=1`` and syzkaller's corpus minimisation, replays the variant's live entries, takes the
fuzzer's own interleaving features of each (``fuzzer/coverage.py``, the figure campaigns report
as coverage), and keeps a set cover of them: greedily the entry that adds the most features not
yet covered, ties to the shorter input, then the earlier one. Every other entry is marked
merged out (``corpus_entry.merged_out_at``): shards no longer pull it, worker caches delete
it, and the row stays so a shard that finds the same bytes again does not add them back. The
live features never shrink: an entry leaves only when the entries that stay cover it.

The cover is computed over the variant's whole live corpus, not only the campaign's own
entries: a campaign's new input can make an old one redundant and the other way round. A
campaign only chooses which variants to merge (those its shards fuzzed or added to).

Safety under concurrency comes from the corpus's sequence numbers. The merge reads one
snapshot (live entries up to seq ``S``), replays it outside any transaction, and marks in one
short transaction that takes the lock ``add_corpus_entry`` takes: an entry a shard adds while
the merge runs gets a seq above ``S`` and is never touched. If another merge merged out part of
the snapshot in the meantime, the marking writes nothing and the cover is recomputed on what
is still live (features are cached), so two concurrent merges cannot each drop the other's
keeper. Replay is deterministic, so a second merge of an unchanged corpus keeps every entry
(greedy set cover, run on its own output with the same tie order, picks the same entries).

MODEL: the cover is of interleaving features only. libFuzzer also kept inputs for new line
coverage of the instrumented model and for new hit-count buckets; a merge does not replay
under Atheris, so an input kept only for those is merged out.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from ..db.engine import session_scope
from ..db.models import Campaign, CorpusEntry
from ..db.store import live_corpus, merge_out_corpus_entries
from ..engine.execute import replay
from ..engine.variants import VariantError, load_variant
from ..fuzzer.coverage import interleaving_features

MARK_ATTEMPTS = 5


@dataclass(frozen=True)
class Candidate:
    """One live corpus entry as the cover sees it."""

    id: int
    seq: int
    size: int
    features: frozenset[int]


def greedy_cover(candidates: list[Candidate]) -> list[Candidate]:
    """A set cover of the candidates' features: most new features first, then shorter, then earlier.

    Lazy greedy: a candidate's gain only shrinks as features get covered, so its stored gain is
    an upper bound; a popped candidate whose gain is still its bound is the true maximum.
    """
    heap = [(-len(c.features), c.size, c.seq, i) for i, c in enumerate(candidates) if c.features]
    heapq.heapify(heap)
    covered: set[int] = set()
    kept: list[Candidate] = []
    while heap:
        bound, size, seq, i = heapq.heappop(heap)
        gain = len(candidates[i].features - covered)
        if gain == 0:
            continue
        if gain < -bound:
            heapq.heappush(heap, (-gain, size, seq, i))
            continue
        kept.append(candidates[i])
        covered |= candidates[i].features
    return kept


def entry_features(variant: Any, data: bytes) -> frozenset[int]:
    """The interleaving features of one replayed input (none for an engine error)."""
    ex = replay(variant, data)
    return frozenset() if ex.status == "engine_error" else frozenset(interleaving_features(ex))


def merge_variant(db: Engine, variant_name: str) -> dict[str, Any]:
    """Merge out the redundant live entries of one variant's corpus; what was kept and dropped."""
    variant = load_variant(variant_name)
    features: dict[str, frozenset[int]] = {}  # by sha256, across retries
    for _ in range(MARK_ATTEMPTS):
        with session_scope(db) as session:
            snapshot = [(e.id, e.seq, e.sha256, e.data) for e in live_corpus(session, variant_name)]
        if not snapshot:
            return {"live_before": 0, "kept": 0, "merged_out": 0, "features": 0, "upto_seq": 0}
        candidates = []
        for entry_id, seq, sha256, data in snapshot:
            if sha256 not in features:
                features[sha256] = entry_features(variant, data)
            candidates.append(Candidate(entry_id, seq, len(data), features[sha256]))
        kept = {c.id for c in greedy_cover(candidates)}
        replayed = {c.id for c in candidates}
        upto_seq = max(c.seq for c in candidates)
        with session_scope(db) as session:
            done = merge_out_corpus_entries(session, variant_name, upto_seq, replayed, replayed - kept)
        if done:
            covered = frozenset().union(*(c.features for c in candidates))
            return {"live_before": len(candidates), "kept": len(kept), "merged_out": len(replayed - kept),
                    "features": len(covered), "upto_seq": upto_seq}
    return {"status": "contended", "attempts": MARK_ATTEMPTS}


def campaign_variants(db: Engine, campaign_id: int) -> list[str]:
    """Variants a campaign fuzzed (its farm shards' ledger rows) or added corpus entries to."""
    with session_scope(db) as session:
        shards = session.scalars(select(Campaign.variant).where(Campaign.worker.like(f"farm-shard {campaign_id}/%")))
        added = session.scalars(select(CorpusEntry.variant).where(CorpusEntry.campaign_id == campaign_id))
        return sorted(set(shards) | set(added))


def merge_corpus(db: Engine, campaign_id: int) -> dict[str, Any]:
    """Keep the corpus of each of a campaign's variants minimal (idempotent)."""
    result: dict[str, Any] = {}
    for name in campaign_variants(db, campaign_id):
        try:
            result[name] = merge_variant(db, name)
        except VariantError as exc:  # entries of a variant this worker's oomfuzz does not ship
            result[name] = {"status": "skipped", "reason": str(exc)}
    return {"campaign": campaign_id, "variants": result}
