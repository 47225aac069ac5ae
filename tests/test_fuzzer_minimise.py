"""Minimisation: fewer preemptions, the same signature, confirmed by replays."""

from __future__ import annotations

from oomfuzz.engine.execute import replay
from oomfuzz.engine.runtime.choices import join_input, split_input
from oomfuzz.engine.variants import load_variant
from oomfuzz.fuzzer.minimise import minimise

BZ03 = bytes.fromhex("0501000000001101")
VARIANT = "seed-3of2"


def test_the_known_bz03_input_is_already_minimal() -> None:
    variant = load_variant(VARIANT)
    signature = replay(variant, BZ03).finding.signature
    result = minimise(variant, BZ03, signature)
    assert result.signature == signature and result.deterministic
    assert result.preemptions == 1


def test_a_padded_bz03_input_shrinks_back_to_one_preemption() -> None:
    variant = load_variant(VARIANT)
    data, [(gap, target)] = split_input(BZ03)
    padded = join_input(data + b"\3\7", [(2, 5), (gap - 3, target), (3, 7), (1, 2), (9, 9)])
    before = replay(variant, padded)
    assert before.finding is not None and before.finding.known_bug == "BZ-03"
    assert before.preemptions > 1
    result = minimise(variant, padded, before.finding.signature)
    assert result.preemptions == 1 and result.preemptions < before.preemptions
    assert result.steps <= before.steps
    assert result.deterministic
    again = replay(variant, result.input)
    assert again.finding.signature == before.finding.signature and again.input == result.input


def test_an_input_without_the_finding_is_reported_not_reproduced() -> None:
    variant = load_variant(VARIANT)
    result = minimise(variant, bytes([5, 1, 0, 0, 0, 0]), "memdie_unpaired_exit|exit_oom_victim")
    assert not result.reproduced and not result.deterministic
