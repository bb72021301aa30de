"""Per-model chunks under load (``streams.runner.chunks``): nothing lost, nothing reordered
within a model, nothing held when the consumer is caught up, nothing held for long."""

from __future__ import annotations

import random
import tracemalloc

import msgspec

from streams.core.events import (
    EPOCH_RANGE,
    MAX_ID_LENGTH,
    Prediction,
    decode_ground_truth,
    decode_prediction,
)
from streams.engine import InputRecord
from streams.runner.chunks import ModelChunks


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(model: str, partition: int, offset: int) -> InputRecord:
    event = Prediction(f"{model}-{offset}", model, {"x": 1.0}, 0.5, "v1", 1.0)
    return InputRecord(event, partition, offset, 1.0)


def test_every_record_comes_out_once_in_its_models_order() -> None:
    rng = random.Random(3)
    clock = Clock()
    chunks = ModelChunks(min_records=50, max_wait=1.0, clock=clock)
    stream = [_record(f"m{rng.randrange(40)}", 0, offset) for offset in range(20_000)]
    out: list[InputRecord] = []
    for start in range(0, len(stream), 500):
        clock.now += 0.05
        out += chunks.take(stream[start : start + 500], under_load=True)
    out += chunks.take([], under_load=False)
    assert sorted(r.offset for r in out) == list(range(20_000))
    for model in {r.event.model_id for r in stream}:
        offsets = [r.offset for r in out if r.event.model_id == model]
        assert offsets == sorted(offsets)
    assert len(chunks) == 0


def test_under_load_small_groups_wait_for_a_chunk_or_max_wait() -> None:
    clock = Clock()
    chunks = ModelChunks(min_records=3, max_records=3, max_wait=1.0, clock=clock)
    assert chunks.take([_record("a", 0, 1)], under_load=True) == []
    clock.now = 0.5
    assert chunks.take([_record("b", 0, 2)], under_load=True) == []
    clock.now = 1.0  # a waited max_wait, b not yet
    assert [r.offset for r in chunks.take([], under_load=True)] == [1]
    assert len(chunks) == 1


def test_with_no_wait_allowed_nothing_waits() -> None:
    chunks = ModelChunks(min_records=1000, max_wait=0.0, clock=Clock())
    records = [_record("a", 0, 1), _record("b", 0, 2)]
    assert chunks.take(records, under_load=True) == records
    assert len(chunks) == 0


def test_caught_up_nothing_waits() -> None:
    chunks = ModelChunks(min_records=1000, clock=Clock())
    records = [_record("a", 0, 1), _record("b", 0, 2)]
    assert chunks.take(records, under_load=False) == records


def _drained(chunks: ModelChunks, partitions: set[int]) -> list[int]:
    return [r.offset for part in chunks.drain(partitions) for r in part]


def test_a_partitions_records_are_drained_or_dropped() -> None:
    chunks = ModelChunks(min_records=10, max_records=10, clock=Clock())
    chunks.take([_record("a", 0, 1), _record("b", 1, 2), _record("a", 0, 3)], under_load=True)
    chunks.take([_record("c", 0, 4), _record("c", 2, 5), _record("b", 1, 6)], under_load=True)
    chunks.drop({2})  # (a model's records on two partitions: only those of the one dropped)
    assert len(chunks) == 5
    assert _drained(chunks, {0}) == [1, 3, 4]
    assert _drained(chunks, {0, 1}) == [2, 6]
    assert len(chunks) == 0


def test_a_drained_part_stays_held_until_the_caller_processed_it() -> None:
    """The checkpoint applies each part, then asks for the next; if applying raises (Redis
    away), that part and the rest are still held, none of them twice."""
    chunks = ModelChunks(min_records=10, max_records=10, release_limit=3, clock=Clock())
    chunks.take([_record(m, 0, k) for k, m in enumerate("aabbccdd")], under_load=True)
    parts = chunks.drain({0})
    assert [r.offset for r in next(parts)] == [0, 1, 2, 3]  # whole models: a, then b
    parts.close()  # the caller raised
    assert len(chunks) == 8
    parts = chunks.drain({0})
    assert [r.offset for r in next(parts)] == [0, 1, 2, 3]
    assert [r.offset for r in next(parts)] == [4, 5, 6, 7]  # a and b are gone now
    assert len(chunks) == 4
    assert list(parts) == []
    assert len(chunks) == 0


def test_fewer_models_get_larger_chunks_within_the_budget() -> None:
    """The records held stay within ``held_budget`` (or ``min_records`` per model): from 256
    models on each waits for 256 records, as before; 100 models for 655; 16 for 4 096."""
    chunks = ModelChunks(clock=Clock())
    sizes = [chunks.chunk_size(n) for n in (1, 16, 100, 256, 300, 1000)]
    assert sizes == [4096, 4096, 655, 256, 256, 256]
    models = [f"m{i}" for i in range(100)]
    out: list[InputRecord] = []
    offset = 0
    for _ in range(6):  # 6 full polls of 100 records per model: 600 held each
        batch = [_record(m, 0, offset + k) for k, m in enumerate(models * 100)]
        offset += len(batch)
        out += chunks.take(batch, under_load=True)
    assert out == []
    assert len(chunks) == 60_000
    batch = [_record(m, 0, offset + k) for k, m in enumerate(models * 60)]
    out = chunks.take(batch, under_load=True)
    assert chunks.release_limit == 20_000
    assert len(out) == 31 * 660  # every model's chunk is due: two polls' worth goes now
    while len(chunks):  # and the rest in the next calls, oldest first
        part = chunks.take([], under_load=True)
        assert 0 < len(part) <= 20_000 + 660
        out += part
    assert len(out) == 66_000  # 660 each
    assert [r.event.model_id for r in out[::660]] == models


def test_a_model_that_filled_a_whole_poll_never_waits() -> None:
    """With ``--batch-size 500`` one model's full polls of 500 records go at once (the
    closed loop needs its decisions between them), as with 256-record chunks before."""
    chunks = ModelChunks(clock=Clock(), batch_size=500)
    assert chunks.chunk_size(1) == 500
    batch = [_record("a", 0, offset) for offset in range(500)]
    assert chunks.take(batch, under_load=True) == batch
    assert ModelChunks(clock=Clock(), batch_size=100).chunk_size(1) == 256  # min_records wins


def _decoded(model: str, offset: int) -> InputRecord:
    """A record as the runner's decoder makes it, of every kind of value a message holds."""
    if offset % 3 == 2:
        label = [1.0, "cat", True][offset % 9 // 3]
        data = {"event_id": f"e{offset - 1}", "model_id": model, "label": label}
        if offset % 2:
            data["timestamp"] = "2026-12-07T10:00:00.123456+02:00"
        return InputRecord(decode_ground_truth(msgspec.json.encode(data)), 1, offset, 7.5)
    features = {"x": offset * 0.1, "n": offset, "flag": offset % 2 == 0, "gone": None}
    features["city"] = "Zürich" if offset % 2 else "Valparaíso"
    data = {
        "event_id": f"e{offset}",
        "model_id": model,
        "features": features,
        "prediction": 0.25 if offset % 4 else "cat",
        "model_version": "v2",
        "timestamp": 1.8e9 + offset if offset % 4 else "2026-12-07T10:00:00-03:30",
    }
    if offset % 7 == 6:  # the contract's limits: the longest ids, the first and last times
        data["event_id"] = f"{offset}".rjust(MAX_ID_LENGTH, "e")
        data["model_version"] = "v" * MAX_ID_LENGTH
        data["timestamp"] = EPOCH_RANGE[offset % 2]
    return InputRecord(decode_prediction(msgspec.json.encode(data)), 1, offset, 1.8e9)


def test_with_many_models_waiting_records_are_kept_compact_and_come_back_equal() -> None:
    """Past ``held_budget / min_records`` models a waiting record is msgpack in its model's
    buffer (a few hundred bytes instead of ~20 objects); it comes back equal, with the same
    event time (an aware timestamp as the same instant in UTC), in its model's order."""
    chunks = ModelChunks(min_records=10, max_records=10, held_budget=20, clock=Clock())
    stream = [_decoded(f"m{offset % 3}", offset) for offset in range(27)]
    out = chunks.take(stream[:18], under_load=True)  # 6 each: none due
    assert out == []
    assert all(group.plain is None for group in chunks._held.values())
    out = chunks.take(stream[18:], under_load=True)  # 9 each
    out += chunks.take([], under_load=False)
    assert len(chunks) == 0
    assert sorted(out, key=lambda r: r.offset) == stream
    for record in out:
        original = stream[record.offset]
        assert record is not original
        assert record.event.event_time(7.5) == original.event.event_time(7.5)
        assert type(record.event) is type(original.event)
        assert [type(v) for v in getattr(record.event, "features", {}).values()] == [
            type(v) for v in getattr(original.event, "features", {}).values()
        ]
    for model in ("m0", "m1", "m2"):
        offsets = [r.offset for r in out if r.event.model_id == model]
        assert offsets == sorted(offsets)


def test_a_compact_waiting_record_takes_a_few_hundred_bytes() -> None:
    """Issue 15: 1 000 models held 256 000 decoded records (~1 200 bytes in 22 objects each);
    kept compact they take ~300 bytes each, in no object of their own."""
    chunks = ModelChunks(min_records=5000, max_records=5000, held_budget=5000, clock=Clock())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for start in range(0, 4000, 500):  # (the records go when taken: only chunks has them)
            batch = [_decoded(f"m{k % 4}", k) for k in range(start, start + 500)]
            chunks.take(batch, under_load=True)
            del batch
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(chunks) == 4000
    assert held < 4000 * 400, held / 4000
    assert sorted(r.offset for r in chunks.take([], under_load=False)) == list(range(4000))


def test_with_few_models_waiting_records_are_kept_as_they_are() -> None:
    """Within ``held_budget`` nothing is encoded: the records that come out are those that
    went in (few models pay nothing for what many models need)."""
    chunks = ModelChunks(min_records=10, max_records=10, held_budget=30, clock=Clock())
    stream = [_decoded(f"m{offset % 3}", offset) for offset in range(30)]
    assert chunks.take(stream[:15], under_load=True) == []
    out = chunks.take(stream[15:], under_load=True)
    assert sorted(map(id, out)) == sorted(map(id, stream))


def test_an_event_msgpack_cannot_carry_waits_as_it_is() -> None:
    """A record no decoder made (an integer beyond 64 bits) is kept as the object it is."""
    chunks = ModelChunks(min_records=10, max_records=10, held_budget=1, clock=Clock())
    odd = InputRecord(Prediction("e1", "m", {"n": 10**30}, 0.5), 0, 1, 1.0)
    stream = [odd, _decoded("m", 2), _decoded("m", 3)]
    assert chunks.take(stream[:1], under_load=True) == []
    assert chunks.take(stream[1:], under_load=True) == []
    out = chunks.take([], under_load=False)
    assert out == stream
    assert out[0] is odd
