"""Per-model chunks under load (``streams.runner.chunks``): nothing lost, nothing reordered
within a model, nothing held when the consumer is caught up, nothing held for long."""

from __future__ import annotations

import random

from streams.core.events import Prediction
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


def test_caught_up_nothing_waits() -> None:
    chunks = ModelChunks(min_records=1000, clock=Clock())
    records = [_record("a", 0, 1), _record("b", 0, 2)]
    assert chunks.take(records, under_load=False) == records


def test_a_partitions_records_are_peeked_then_dropped() -> None:
    chunks = ModelChunks(min_records=10, max_records=10, clock=Clock())
    chunks.take([_record("a", 0, 1), _record("b", 1, 2), _record("a", 0, 3)], under_load=True)
    assert [r.offset for r in chunks.peek({0})] == [1, 3]
    chunks.drop({0})
    assert [r.offset for r in chunks.peek({0, 1})] == [2]
    assert len(chunks) == 1


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
    assert len(out) == 66_000  # 660 each: every model's chunk went
    assert len(chunks) == 0


def test_a_model_that_filled_a_whole_poll_never_waits() -> None:
    """With ``--batch-size 500`` one model's full polls of 500 records go at once (the
    closed loop needs its decisions between them), as with 256-record chunks before."""
    chunks = ModelChunks(clock=Clock(), batch_size=500)
    assert chunks.chunk_size(1) == 500
    batch = [_record("a", 0, offset) for offset in range(500)]
    assert chunks.take(batch, under_load=True) == batch
    assert ModelChunks(clock=Clock(), batch_size=100).chunk_size(1) == 256  # min_records wins
