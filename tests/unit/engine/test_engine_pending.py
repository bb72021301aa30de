"""The join with its pending predictions outside the process (streams.engine.pending): the
store sees only deltas, lookups answer what memory cannot, expiry and caps are exact and
counted, results do not depend on batch or checkpoint boundaries, old snapshots migrate."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.events import GroundTruth, Prediction
from streams.engine import InputRecord, MonitorConfig
from streams.engine.engine import Engine
from streams.engine.join import DUPLICATE, JoinBuffer
from streams.engine.pending import PendingJoin
from streams.engine.pending_memory import MemoryPendingStore


def _p(event_id: str, t: float, score: float | str = 0.7, model: str = "m") -> InputRecord:
    return InputRecord(Prediction(event_id, model, {"x": 1.0}, score, "v1", t), 0, 0, t)


def _g(event_id: str, t: float, label: float | str = 1.0, model: str = "m") -> InputRecord:
    return InputRecord(GroundTruth(event_id, model, label, t), 0, 0, t)


def _engine(**join: Any) -> Engine:
    config = {"defaults": {"join": {"ttl_seconds": 100.0, **join}, "warmup": 10}}
    return Engine(MonitorConfig.from_mapping(config), clock=lambda: 0.0)


def _run(engine: Engine, store: MemoryPendingStore, records: list[InputRecord]) -> None:
    store.prefetch(engine, records)
    engine.process(records)


def _join(engine: Engine, model: str = "m") -> dict[str, Any]:
    return dict(
        engine.status()["models"][model]["join"], joined=engine.status()["models"][model]["joined"]
    )


def test_a_checkpointed_prediction_is_found_in_the_store_and_deleted_when_joined() -> None:
    engine, store = _engine(), MemoryPendingStore()
    _run(engine, store, [_p("a", 1.0), _p("b", 2.0)])
    store.checkpoint(engine, 0)
    assert len(store) == 2  # the process keeps no copy
    assert engine.pending_delta(0).count(b"a") <= 1  # nothing new to write
    _run(engine, store, [_g("a", 50.0)])
    assert _join(engine)["joined"] == 1
    assert _join(engine)["pending_predictions"] == 1
    store.checkpoint(engine, 0)
    assert len(store) == 1  # "a" deleted with the checkpoint


def test_a_duplicate_prediction_is_recognised_through_the_store() -> None:
    engine, store = _engine(), MemoryPendingStore()
    _run(engine, store, [_p("a", 1.0)])
    store.checkpoint(engine, 0)
    _run(engine, store, [_p("a", 1.5)])
    status = engine.status()["models"]["m"]
    assert status["predictions"] == 2
    assert _join(engine)["pending_predictions"] == 1


def test_expiry_is_exact_per_entry_and_counted_per_slot() -> None:
    join = PendingJoin("m", ttl_seconds=32.0, max_pending=1000)  # slots of 1 s
    join.add_prediction("a", "v1", 0.5, 0.5, True)
    join.add_prediction("b", "v1", 0.5, 3.2, True)
    join.advance(32.6)  # "a" (0.5 + 32 < 32.6) is gone ...
    assert join.add_label("a", 1.0, 32.6) is None  # too late: it waits as an early label
    assert join.counts()["expired_unlabelled"] == 0
    join.advance(33.0)  # ... and counted once its whole slot [0, 1) is past the TTL
    assert join.counts()["expired_unlabelled"] == 1
    pair = join.add_label("b", 0.0, 32.7)
    assert pair is not None
    assert pair is not DUPLICATE
    join.advance(1000.0)
    counts = join.counts()
    assert (counts["expired_unlabelled"], counts["label_without_prediction"]) == (1, 1)
    assert join.pending == 0


def test_beyond_the_cap_the_oldest_slot_is_evicted_and_counted() -> None:
    join = PendingJoin("m", ttl_seconds=3200.0, max_pending=3)  # slots of 100 s
    for k, t in enumerate((10.0, 20.0, 150.0, 250.0)):
        join.add_prediction(f"e{k}", "v1", 0.5, t, True)
    assert join.counts()["evicted_predictions"] == 2  # the slot [0, 100) held two
    assert join.pending_predictions == 2
    assert join.add_label("e0", 1.0, 300.0) is None  # evicted: not joined
    pair = join.add_label("e2", 1.0, 300.0)
    assert pair is not None
    assert pair is not DUPLICATE


def test_labels_before_their_prediction_wait_in_memory_within_their_cap() -> None:
    join = PendingJoin("m", ttl_seconds=100.0, max_pending=100, max_early_labels=2)
    for k in range(3):
        join.add_label(f"e{k}", 1.0, float(k))
    assert join.counts()["evicted_labels"] == 1
    assert join.add_prediction("e0", "v1", 0.4, 5.0, True) is None  # its label was evicted
    pair = join.add_prediction("e2", "v1", 0.4, 5.0, True)
    assert pair is not None
    assert pair is not DUPLICATE
    assert pair.lag == -3.0


def test_class_label_predictions_and_versions_survive_the_store() -> None:
    engine, store = _engine(), MemoryPendingStore()
    _run(engine, store, [_p("a", 1.0, "cat"), _p("b", 2.0, "dog")])
    store.checkpoint(engine, 0)
    restored = _engine()
    restored.restore_partition(
        0, msgspec.msgpack.decode(msgspec.msgpack.encode(engine.snapshot_partition(0)))
    )
    _run(restored, store, [_g("a", 10.0, "cat"), _g("b", 11.0, "cat")])
    status = restored.status()["models"]["m"]
    assert status["joined"] == 2
    assert status["task"] == "multiclass"


def test_the_store_sweeps_expired_fields() -> None:
    engine, store = _engine(max_pending=640), MemoryPendingStore()  # 10 buckets
    _run(engine, store, [_p(f"e{k}", float(k)) for k in range(50)])
    store.checkpoint(engine, 0)
    assert len(store) == 50
    _run(engine, store, [_p("late", 400.0)])  # everything before 300 s expired
    store.checkpoint(engine, 0)
    assert _join(engine)["expired_unlabelled"] == 50
    assert len(store) == 1


def _stream(seed: int, n: int = 300) -> list[InputRecord]:
    rng = np.random.default_rng(seed)
    records = []
    for k in range(n):
        t = float(k)
        records.append(_p(f"e{k}", t, float(rng.random())))
        if rng.random() < 0.8:  # labelled, up to 150 s late (the TTL is 100 s)
            records.append(_g(f"e{k}", t + float(rng.uniform(-3, 150)), float(rng.random() < 0.5)))
        if rng.random() < 0.05:
            records.append(_p(f"e{k}", t))  # a duplicate
    records.sort(key=lambda r: r.timestamp)  # what the runner's alignment hands over
    return records


@given(
    st.integers(0, 5),
    st.lists(st.integers(1, 80), min_size=1, max_size=8),
    st.lists(st.booleans(), min_size=1, max_size=8),
)
@settings(max_examples=25, deadline=None)
def test_results_do_not_depend_on_batches_or_checkpoints(
    seed: int, sizes: list[int], checkpoints: list[bool]
) -> None:
    records = _stream(seed)
    reference = _engine()
    reference.process(records)  # one batch, never checkpointed: all in memory
    engine, store = _engine(), MemoryPendingStore()
    start, k = 0, 0
    while start < len(records):
        size = sizes[k % len(sizes)]
        _run(engine, store, records[start : start + size])
        if checkpoints[k % len(checkpoints)]:
            state = store.checkpoint(engine, 0)
            engine = _engine()
            engine.restore_partition(0, msgspec.msgpack.decode(msgspec.msgpack.encode(state)))
        start += size
        k += 1
    assert engine.status() == reference.status()


def test_a_format_1_snapshot_is_migrated_into_the_store() -> None:
    old = JoinBuffer(ttl_seconds=100.0, max_pending=100)
    old.add_prediction("a", "v1", 0.3, 1.0, True)
    old.add_label("z", 1.0, 2.0)
    old.add_prediction("b", "v1", 0.6, 3.0, True)
    old.add_label("b", 0.0, 4.0)
    join = PendingJoin.restore("m", old.snapshot(), 100.0, 100)
    assert (join.pending_predictions, join.counts()["joined"]) == (1, 1)
    pair = join.add_prediction("z", "v1", 0.9, 5.0, True)  # the waiting label
    assert pair is not None
    assert pair is not DUPLICATE
    assert join.delta()  # "a" goes to the store with the next checkpoint
    pair = join.add_label("a", 1.0, 6.0)
    assert pair is not None
    assert pair is not DUPLICATE


def test_engine_restores_format_1_and_refuses_unknown_formats() -> None:
    engine = _engine()
    data = engine.snapshot_partition(0)
    data["format"] = 1
    engine.restore_partition(0, data)
    with pytest.raises(ValueError, match="restores formats 1, 2 and 3"):
        engine.restore_partition(0, {"format": 4, "models": []})
