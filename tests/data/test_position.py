"""The training stream's position across process counts: the states of two processes' real
Grain pipelines start one or four processes on exactly the records that come next."""

import functools
from collections import Counter

import pytest

from emollm_jax.data import pipeline, position


def test_global_position_and_what_is_read_again():
    # every process read as many records: the first 24, nothing read twice
    read = {0: 12, 1: 12}
    assert position.global_position(read, 2) == 24
    assert position.records_read_past(read, 2, 24) == 0
    assert [position.state_for(24, q, 3) for q in range(3)] == [{"next_index": 8}] * 3
    # process 0 read one more (process 1 skipped a refused record): still a prefix, 0..24
    assert position.global_position({0: 13, 1: 12}, 2) == 25
    assert position.records_read_past({0: 13, 1: 12}, 2, 25) == 0
    # process 0 two more: its record 26 is past the position, read again after the resume
    assert position.global_position({0: 14, 1: 12}, 2) == 25
    assert position.records_read_past({0: 14, 1: 12}, 2, 25) == 1
    # a new process starts at the first record of its share at or after the position
    for count in (1, 3, 4):
        for q in range(count):
            k = position.state_for(25, q, count)["next_index"]
            assert q + count * k >= 25 > q + count * (k - 1)


def test_states_that_name_no_position_are_refused():
    with pytest.raises(ValueError, match="process 1's data state"):
        position.records_read({0: {"next_index": 3}, 1: {"workers_state": {}}})
    with pytest.raises(ValueError, match=r"processes \[0\], expected 0..1"):
        position.global_position({0: 3}, 2)
    assert position.unsupported({"worker_count": 8, "pack": True}) == [
        "data.worker_count=8",
        "data.pack=True",
    ]
    assert position.unsupported({"worker_count": 0, "pack": False}) == []


def _rows(iterators, steps):
    """Every row of ``steps`` batches from each iterator, as hashable token tuples."""
    batches = [next(it) for it in iterators for _ in range(steps)]
    return Counter(tuple(row.tolist()) for batch in batches for row in batch["input_ids"])


def _iterators(config, tokenizer, count):
    make = functools.partial(pipeline.train_dataset, config, tokenizer=tokenizer)
    return [iter(make(process_index=p, process_count=count)) for p in range(count)]


def test_two_processes_state_starts_one_or_four_on_the_next_records(data_config, tokenizer):
    d = data_config.data
    d.seq_buckets, d.frame_buckets = d.seq_buckets[-1:], d.frame_buckets[-1:]  # one row shape
    two = _iterators(data_config, tokenizer, 2)
    _rows(two, 3)  # three global batches of 4
    states = {p: it.get_state() for p, it in enumerate(two)}
    read = position.records_read(states)
    at = position.global_position(read, 2)
    assert at == 12 and position.records_read_past(read, 2, at) == 0
    expected = _rows(two, 2)
    assert sum(expected.values()) == 8
    for count in (1, 4):
        fresh = _iterators(data_config, tokenizer, count)
        for q, it in enumerate(fresh):
            it.set_state(position.state_for(at, q, count))
        assert _rows(fresh, 2) == expected, count
