"""The ids of recent joins (streams.engine.joined_ids): the same answers as an ordered dict
of the id strings, whatever the batches, the index rebuilds and the checkpoints, at a
fraction of its memory; keys are stable across processes and releases."""

from __future__ import annotations

import tracemalloc
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine import joined_ids
from streams.engine.joined_ids import JoinedIds, id_keys

# one step: ("add", id, time) | ("in", id) | ("expire", limit) | ("batch",) | ("save",)
_ID = st.sampled_from([f"e{k}" for k in range(40)] + ["é-ü", "e1\x00", "", "x" * 300])
_STEP = st.one_of(
    st.tuples(st.just("add"), _ID, st.floats(0, 100)),
    st.tuples(st.just("in"), _ID),
    st.tuples(st.just("expire"), st.floats(0, 100)),
    st.tuples(st.just("batch")),
    st.tuples(st.just("save")),
)


class _Reference:
    """What the join kept before: an ordered dict of the id strings."""

    __slots__ = ("capacity", "done")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.done: OrderedDict[str, float] = OrderedDict()

    def add(self, event_id: str, time: float) -> None:
        self.done[event_id] = time
        if len(self.done) > self.capacity:
            self.done.popitem(last=False)

    def __len__(self) -> int:
        return len(self.done)

    def expire(self, limit: float) -> None:
        while self.done and next(iter(self.done.values())) < limit:
            self.done.popitem(last=False)


@given(st.integers(0, 12), st.lists(_STEP, max_size=120), st.booleans())
@settings(max_examples=200, deadline=None)
def test_answers_as_the_ordered_dict_of_ids_did(
    capacity: int, steps: list[tuple[object, ...]], announce: bool
) -> None:
    old_min_fresh = joined_ids._MIN_FRESH
    joined_ids._MIN_FRESH = 2  # rebuild the index often
    try:
        joined, reference = JoinedIds(capacity), _Reference(capacity)
        batch_ids = [s[1] for s in steps if s[0] in ("add", "in")]
        if announce:
            joined.expect(batch_ids)  # type: ignore[arg-type]
        for step in steps:
            match step:
                case ("add", str(event_id), float(time)):
                    # an id joins once while remembered (the join checks before adding)
                    if event_id not in reference.done:
                        joined.add(event_id, time)
                        reference.add(event_id, time)
                case ("in", str(event_id)):
                    assert (event_id in joined) == (event_id in reference.done)
                case ("expire", float(limit)):
                    joined.expire(limit)
                    reference.expire(limit)
                case ("batch",):
                    joined.flush()
                    if announce:
                        joined.expect(batch_ids)  # type: ignore[arg-type]
                case ("save",):
                    data = msgspec.msgpack.decode(msgspec.msgpack.encode(joined.to_data()))
                    joined = JoinedIds.from_data(data, capacity)
                    if announce:
                        joined.expect(batch_ids)  # type: ignore[arg-type]
            assert len(joined) == len(reference.done)
            first = next(iter(reference.done.values()), float("inf"))
            assert joined.oldest_time() == first
        for event_id in set(batch_ids):
            assert (event_id in joined) == (event_id in reference.done)
    finally:
        joined_ids._MIN_FRESH = old_min_fresh


def test_keys_are_fixed_numbers() -> None:
    """Keys are checkpointed: a change of the function would forget every joined id."""
    keys = id_keys(["e1", "3f2a9c1e-7b4d-4e8a-9c1f-000000000042", "é", "e1\x00"])
    assert keys.tolist() == [
        10741727047828673426,
        8759237803193122888,
        8473884925318162716,
        3695697793442320295,
    ]


def test_keys_of_many_similar_ids_do_not_collide() -> None:
    ids = [f"{a}-{b:06d}" for a in ("ev", "ew", "fv") for b in range(200_000)]
    assert len(np.unique(id_keys(ids))) == len(ids)


def test_an_older_snapshot_of_id_strings_is_read() -> None:
    joined = JoinedIds.from_data({"ids": ["a", "b", "c"], "times": [1.0, 2.0, 3.0]}, capacity=2)
    joined.expect(["a", "b", "c"])
    assert ("a" in joined, "b" in joined, "c" in joined) == (False, True, True)
    assert joined.oldest_time() == 2.0


def test_a_snapshot_with_keys_and_times_of_different_lengths_is_refused() -> None:
    with pytest.raises(ValueError, match="2 keys but 1 times"):
        JoinedIds.from_data({"keys": bytes(16), "times": bytes(8)}, capacity=10)


def _bytes_per_id(make: Callable[[int], Any], add: Callable[[Any, str, float], None]) -> float:
    """Memory per id once 10 000 are remembered out of 30 000 joins (batches of 100), the
    ids made (as a decoder makes them) and dropped by the caller."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    joined = make(10_000)
    for start in range(0, 30_000, 100):
        for k in range(start, start + 100):
            add(joined, f"3f2a9c1e-7b4d-4e8a-9c1f-{k:012d}", float(k))
        if isinstance(joined, JoinedIds):
            joined.flush()
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(joined) == 10_000
    return size / 10_000


def test_ten_thousand_joined_ids_take_a_fraction_of_the_ordered_dict() -> None:
    compact = _bytes_per_id(JoinedIds, JoinedIds.add)
    reference = _bytes_per_id(_Reference, _Reference.add)
    assert compact < 48, f"{compact:.1f} bytes per joined id"  # a sorted copy of keys: 54
    assert compact < reference / 2.5, (compact, reference)
