"""corpus.merge on SQLite and PostgreSQL: a set cover of the features stays live, idempotent,
and nothing a shard adds while a merge runs is ever merged out."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.engine import URL

from oomfuzz.db.engine import make_engine, session_scope, upgrade
from oomfuzz.db.models import CorpusEntry
from oomfuzz.db.store import add_corpus_entry, corpus_since, live_corpus, merge_out_corpus_entries, start_campaign
from oomfuzz.db.testing import empty_db, scratch_postgres  # noqa: F401  (fixtures)
from oomfuzz.engine.variants import load_variant
from oomfuzz.fuzzer.corpus import scenario_seeds
from oomfuzz.workers.merge import Candidate, entry_features, greedy_cover, merge_corpus, merge_variant
from oomfuzz.workers.shard import WorkerCorpus

VARIANT, OTHER = "seed-3of2", "v4.6"


@pytest.fixture
def engine(empty_db: URL) -> Iterator[Engine]:  # noqa: F811
    engine = make_engine(empty_db)
    upgrade(engine)
    yield engine
    engine.dispose()


def random_inputs(rng: random.Random, n: int) -> list[bytes]:
    """n distinct random inputs (the corpus keeps one row per content: a repeat would be one short)."""
    inputs: dict[bytes, None] = {}
    while len(inputs) < n:
        inputs[bytes(rng.randrange(256) for _ in range(rng.randrange(1, 48)))] = None
    return list(inputs)


def fill(engine: Engine, variant: str, inputs: list[bytes], campaign_id: int | None) -> None:
    with session_scope(engine) as session:
        for data in inputs:
            add_corpus_entry(session, variant, data, "fuzz", campaign_id=campaign_id)


def a_campaign(engine: Engine) -> int:
    with session_scope(engine) as session:
        return start_campaign(session, variant=VARIANT, engine="atheris", seed=0, jobs=1, worker="test")


def rows(engine: Engine, variant: str = VARIANT) -> list[CorpusEntry]:
    with session_scope(engine) as session:
        return list(session.scalars(select(CorpusEntry).where(CorpusEntry.variant == variant)
                                    .order_by(CorpusEntry.seq)))


def features_of(entries: list[CorpusEntry]) -> set[int]:
    variant = load_variant(VARIANT)
    return set().union(*(entry_features(variant, e.data) for e in entries))


def test_greedy_cover_prefers_more_features_then_shorter_then_earlier() -> None:
    c = [Candidate(1, 1, 9, frozenset({1, 2})), Candidate(2, 2, 3, frozenset({1, 2})),
         Candidate(3, 3, 3, frozenset({1, 2})), Candidate(4, 4, 50, frozenset({1, 2, 3, 4})),
         Candidate(5, 5, 1, frozenset({4, 5})), Candidate(6, 6, 1, frozenset())]
    assert [k.id for k in greedy_cover(c)] == [4, 5]
    assert [k.id for k in greedy_cover(c[:3])] == [2]  # equal features: the shorter, then the earlier
    assert [k.id for k in greedy_cover(greedy_cover(c))] == [4, 5]


def test_merge_keeps_a_cover_and_is_idempotent(engine: Engine, seed: int) -> None:
    rng = random.Random(seed)
    campaign_id = a_campaign(engine)
    inputs = scenario_seeds() + random_inputs(rng, 250)
    fill(engine, VARIANT, inputs + [data + bytes(8) for data in inputs[:40]], campaign_id)
    fill(engine, OTHER, random_inputs(rng, 20), None)  # not this campaign's variant: untouched
    before = rows(engine)

    result = merge_corpus(engine, campaign_id)["variants"]
    assert list(result) == [VARIANT]
    live = [e for e in rows(engine) if e.merged_out_at is None]
    assert result[VARIANT]["merged_out"] > 0 and result[VARIANT]["kept"] == len(live) < len(before)
    assert features_of(live) == features_of(before)  # the live corpus still covers every feature
    assert len(features_of(before)) == result[VARIANT]["features"]
    with session_scope(engine) as session:
        assert [e.id for e in corpus_since(session, 0, 10_000, VARIANT)] == [e.id for e in live]
    variant = load_variant(VARIANT)
    groups: dict[frozenset[int], list[CorpusEntry]] = {}
    for e in before:
        groups.setdefault(entry_features(variant, e.data), []).append(e)
    live_ids = {e.id for e in live}
    for same in groups.values():  # of inputs doing the same thing, at most the shortest, earliest stays
        kept = [e for e in same if e.id in live_ids]
        assert len(kept) <= 1
        assert not kept or kept[0] == min(same, key=lambda e: (len(e.data), e.seq))

    again = merge_corpus(engine, campaign_id)["variants"][VARIANT]
    assert again["merged_out"] == 0 and again["kept"] == len(live)
    assert [e.id for e in rows(engine) if e.merged_out_at is None] == [e.id for e in live]
    assert all(e.merged_out_at is None for e in rows(engine, OTHER))
    with session_scope(engine) as session:  # a shard that finds merged-out bytes again adds nothing
        dropped = next(e for e in before if e.id not in live_ids)
        assert not add_corpus_entry(session, VARIANT, dropped.data, "fuzz")


def test_marking_is_refused_when_another_merge_got_there_first(engine: Engine, seed: int) -> None:
    fill(engine, VARIANT, random_inputs(random.Random(seed), 60), None)
    with session_scope(engine) as session:
        snapshot = {e.id: e.seq for e in live_corpus(session, VARIANT)}
    upto, ids = max(snapshot.values()), set(snapshot)
    late = b"\x05\x01\x00\x00\x00\x00" + bytes(40)  # added after the snapshot: never touched
    fill(engine, VARIANT, [late], None)
    first = sorted(ids)[:3]
    with session_scope(engine) as session:
        assert merge_out_corpus_entries(session, VARIANT, upto, ids, set(first))
    with session_scope(engine) as session:  # the same stale snapshot again: refused, nothing written
        assert not merge_out_corpus_entries(session, VARIANT, upto, ids, set(sorted(ids)[3:6]))
    after = {e.id: e for e in rows(engine)}
    assert {i for i, e in after.items() if e.merged_out_at is not None} == set(first)
    assert all(e.merged_out_at is None for e in after.values() if e.seq > upto)


def test_concurrent_merges_and_a_shard_adding_entries(engine: Engine, seed: int) -> None:
    rng = random.Random(seed)
    campaign_id = a_campaign(engine)
    base = scenario_seeds() + random_inputs(rng, 400)
    fill(engine, VARIANT, base, campaign_id)
    original = features_of(rows(engine))
    start, results, errors = threading.Barrier(3), [], []

    def merge() -> None:
        start.wait()
        results.append(merge_variant(engine, VARIANT))

    def shard_adds() -> None:  # copies padded with zeros: mostly redundant, so a merge that saw them drops them
        start.wait()
        for data in base[:150]:
            fill(engine, VARIANT, [data + bytes(rng.randrange(1, 9))], campaign_id)

    threads = [threading.Thread(target=_catching(f, errors)) for f in (merge, merge, shard_adds)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and len(results) == 2, (errors, results)
    upto = max(r["upto_seq"] for r in results)
    after = rows(engine)
    assert all(e.seq <= upto for e in after if e.merged_out_at is not None)  # later entries all live
    assert features_of([e for e in after if e.merged_out_at is None]) == features_of(after) >= original
    print(f"merges: {results}; entries after: {len(after)}")
    final = merge_variant(engine, VARIANT)
    again = merge_variant(engine, VARIANT)
    assert (again["live_before"], again["kept"], again["merged_out"]) == (final["kept"], final["kept"], 0)


def test_worker_cache_deletes_what_a_merge_dropped(engine: Engine, tmp_path: Any, seed: int) -> None:
    campaign_id = a_campaign(engine)
    fill(engine, VARIANT, random_inputs(random.Random(seed), 80), campaign_id)
    cache = WorkerCorpus(tmp_path / "farm", VARIANT)
    assert cache.pull(engine) == 80 and len(cache.names()) == 80
    kept = merge_corpus(engine, campaign_id)["variants"][VARIANT]["kept"]
    assert cache.pull(engine) == 0
    with session_scope(engine) as session:
        assert cache.names() == {e.sha256 for e in live_corpus(session, VARIANT)} and len(cache.names()) == kept


def _catching(target: Any, errors: list[BaseException]) -> Any:
    def run() -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001  (reported by the test)
            errors.append(exc)
    return run
