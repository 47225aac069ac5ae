"""The input format: total decoding, canonical re-encoding, structure for mutators."""

from hypothesis import given, settings, strategies as st

from oomfuzz.engine.runtime.choices import (
    ChoiceInput, Recording, format_input, join_input, parse_input_text, split_input,
)


@given(st.binary(max_size=300), st.lists(st.integers(1, 6), max_size=400))
@settings(max_examples=300, deadline=None)
def test_decoding_is_total_and_in_range(raw, sizes):
    inp = ChoiceInput(raw)
    for i, n in enumerate(sizes):
        assert 0 <= inp.choose(n) < n
        assert 0 <= inp.pick(i, n) <= n


@given(st.lists(st.integers(0, 5), max_size=40), st.lists(st.tuples(st.integers(0, 600), st.integers(1, 4)), max_size=12))
@settings(max_examples=300, deadline=None)
def test_recording_round_trips(data, raw_picks):
    picks, at = [], -1
    for gap, choice in raw_picks:
        at += 1 + gap
        picks.append((at, choice))
    raw = Recording(list(data), picks).to_bytes()
    inp = ChoiceInput(raw)
    assert [inp.choose(6) for _ in data] == data
    decided = [(d, inp.pick(d, 4)) for d in range(at + 2)]
    assert [(d, c) for d, c in decided if c] == picks


def test_missing_bytes_mean_defaults():
    inp = ChoiceInput(b"")
    assert inp.choose(5) == 0
    assert all(inp.pick(d, 3) == 0 for d in range(50))


def test_one_pair_is_one_preemption():
    raw = join_input(b"\x01\x02", [(3, 0), (0, 1)])
    data, pairs = split_input(raw)
    assert data == b"\x01\x02" and pairs == [(3, 0), (0, 1)]
    inp = ChoiceInput(raw)
    inp.choose(4), inp.choose(4)
    assert [d for d in range(10) if inp.pick(d, 2)] == [3, 4]


@given(st.binary(max_size=200))
def test_split_join_is_stable(raw):
    data, pairs = split_input(raw)
    again = join_input(data, pairs)
    assert split_input(again) == (data, pairs)


def test_text_form():
    assert parse_input_text(format_input(b"\x05\x00\xff")) == b"\x05\x00\xff"
