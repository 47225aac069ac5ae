"""The input format: total decoding, canonical re-encoding, structure for mutators."""

import pytest
from hypothesis import given, settings, strategies as st

from oomfuzz.engine.runtime.choices import (
    MAX_CHANGE_POINTS, MAX_DATA_CHOICES, PRIORITY_FORM, ChoiceInput, PriorityInput, Recording, format_input,
    input_data, is_priority_form, join_input, parse_input_text, split_input, with_data,
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


# -- the priority form -----------------------------------------------------------------------


@given(st.binary(max_size=80))
@settings(max_examples=300, deadline=None)
def test_priority_form_decodes_any_bytes(raw):
    raw = bytes([0x80 | (raw[0] if raw else 0)]) + raw[1:]
    assert is_priority_form(raw)
    schedule = PriorityInput.decode(raw)
    assert len(schedule.change_points) <= MAX_CHANGE_POINTS
    assert all(0 <= p < 2**16 for p in schedule.change_points)
    assert 0 <= schedule.timer < 256
    assert PriorityInput.decode(schedule.to_bytes()) == schedule


def test_priority_form_is_marked_by_the_top_bit_and_canonical_inputs_never_have_it():
    assert not is_priority_form(b"") and not is_priority_form(b"\x05\x01\x02")
    assert is_priority_form(PriorityInput(b"\x01", [3], 9, b"\x01\x02").to_bytes())
    with pytest.raises(ValueError):
        Recording(list(range(MAX_DATA_CHOICES + 1)), []).to_bytes()
    assert MAX_DATA_CHOICES < PRIORITY_FORM


def test_data_bytes_are_read_and_replaced_in_either_form():
    deviations = join_input(b"\x01\x02", [(3, 1)])
    priorities = PriorityInput(b"\x01\x02", [7, 40], 5, b"\x09\x08").to_bytes()
    assert input_data(deviations) == input_data(priorities) == b"\x01\x02"
    assert split_input(with_data(deviations, b"\x04"))[1] == [(3, 1)]
    moved = PriorityInput.decode(with_data(priorities, b"\x04\x00\x03"))
    assert moved.data == b"\x04\x00\x03" and moved.change_points == [7, 40] and moved.threads == b"\x09\x08"
