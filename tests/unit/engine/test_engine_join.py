"""The prediction / ground-truth join: order, lateness, expiry, duplicates, cap."""

from __future__ import annotations

import json

import msgspec
import pytest

from streams.core.events import GroundTruth, Prediction
from streams.engine import InputRecord, MonitorConfig
from streams.engine.engine import Engine
from streams.engine.join import DUPLICATE, JoinBuffer


def _p(event_id: str, t: float, model: str = "m") -> InputRecord:
    return InputRecord(Prediction(event_id, model, {"x": 1.0}, 0.7, "v1", t), 0, 0, t)


def _g(event_id: str, t: float, label: float = 1.0, model: str = "m") -> InputRecord:
    return InputRecord(GroundTruth(event_id, model, label, t), 0, 0, t)


def test_label_after_and_before_its_prediction_join_once() -> None:
    join = JoinBuffer(ttl_seconds=100.0, max_pending=10)
    assert join.add_prediction("a", "v1", 0.2, 0.0, True) is None
    pair = join.add_label("a", 0.0, 5.0)
    assert pair is not None
    assert pair is not DUPLICATE
    assert (pair.event_id, pair.lag) == ("a", 5.0)
    assert join.add_label("b", 1.0, 6.0) is None
    pair = join.add_prediction("b", "v1", 0.9, 7.0, True)
    assert pair is not None
    assert pair is not DUPLICATE
    assert pair.lag == -1.0
    assert join.counts()["joined"] == 2
    assert join.stats()["label_lag_mean"] == 2.0


def test_duplicates_are_counted_not_joined_twice() -> None:
    join = JoinBuffer(ttl_seconds=100.0, max_pending=10)
    join.add_prediction("a", "v1", 0.2, 0.0, True)
    assert join.add_prediction("a", "v1", 0.2, 0.0, True) is DUPLICATE
    join.add_label("a", 1.0, 1.0)
    assert join.add_label("a", 1.0, 2.0) is DUPLICATE  # after the join
    assert join.add_prediction("a", "v1", 0.2, 3.0, True) is DUPLICATE
    join.add_label("z", 1.0, 1.0)
    assert join.add_label("z", 1.0, 1.5) is DUPLICATE  # while waiting
    counts = join.counts()
    assert (counts["joined"], counts["duplicate_predictions"], counts["duplicate_labels"]) == (
        1,
        2,
        2,
    )


def test_entries_expire_by_event_time_watermark() -> None:
    join = JoinBuffer(ttl_seconds=10.0, max_pending=10)
    join.add_prediction("never-labelled", "v1", 0.3, 0.0, True)
    join.add_label("orphan", 1.0, 1.0)
    join.advance(9.5)
    assert join.pending == 2  # not yet: an entry expires once watermark - ttl passes it
    join.advance(11.5)
    counts = join.counts()
    assert (counts["expired_unlabelled"], counts["label_without_prediction"]) == (1, 1)
    assert join.pending == 0
    assert join.add_label("never-labelled", 1.0, 12.0) is None  # too late: waits as orphan
    assert join.stats()["label_coverage"] == 0.0


def test_cap_evicts_oldest_first() -> None:
    join = JoinBuffer(ttl_seconds=1e9, max_pending=3)
    for i in range(5):
        join.add_prediction(f"p{i}", "v1", 0.5, float(i), True)
    assert join.pending == 3
    assert join.counts()["evicted_predictions"] == 2
    assert join.add_label("p0", 1.0, 9.0) is None  # evicted: no join
    assert join.add_label("p4", 1.0, 9.0) is not None


def test_snapshot_round_trip_continues_identically() -> None:
    join = JoinBuffer(ttl_seconds=10.0, max_pending=100)
    for i in range(20):
        join.add_prediction(f"p{i}", "v1", 0.5, float(i), i % 3 == 0)
        if i % 2:
            join.add_label(f"p{i - 1}", 1.0, float(i))
    data = msgspec.msgpack.decode(msgspec.msgpack.encode(join.snapshot()))
    twin = JoinBuffer.restore(data, 10.0, 100)
    for copy in (join, twin):
        copy.advance(25.0)
        copy.add_label("p19", 0.0, 25.0)
    assert twin.snapshot() == join.snapshot()
    assert twin.stats() == join.stats()


def _mixed_buffer() -> JoinBuffer:
    """Pending predictions and labels, and remembered joins."""
    join = JoinBuffer(ttl_seconds=10.0, max_pending=100)
    for i in range(12):
        join.add_prediction(f"p{i}", "v1" if i < 6 else "v2", i / 12, float(i), i % 4 != 0)
        join.add_label(f"early{i}", i % 2, float(i))
        if i % 3 == 0:
            join.add_label(f"p{i}", 1, float(i) + 0.5)
    return join


def test_snapshot_is_columnar_and_restores_labels_first_entries() -> None:
    join = _mixed_buffer()
    data = json.loads(json.dumps(join.snapshot()))
    assert data["predictions"]["ids"][:2] == ["p1", "p2"]
    assert data["labels"]["ids"][0] == "early0"
    twin = JoinBuffer.restore(data, 10.0, 100)
    for copy in (join, twin):
        assert copy.add_prediction("early3", "v2", 0.4, 12.0, True) is not None
        assert copy.add_label("p7", 0, 12.5) is not None
        copy.advance(30.0)
    assert twin.snapshot() == join.snapshot()
    assert twin.stats() == join.stats()


def test_restore_reads_the_row_layout_of_older_checkpoints() -> None:
    join = _mixed_buffer()
    columns = join.snapshot()
    rows = {
        **columns,
        "predictions": [[key, *entry] for key, entry in join._predictions.items()],
        "labels": [[key, *entry] for key, entry in join._labels.items()],
        "done": [[key, at] for key, at in join._done.items()],
    }
    del rows["layout"]
    assert JoinBuffer.restore(rows, 10.0, 100).snapshot() == columns


def test_restore_refuses_columns_of_unequal_length() -> None:
    data = _mixed_buffer().snapshot()
    data["predictions"]["times"].pop()
    with pytest.raises(ValueError, match="zip"):
        JoinBuffer.restore(data, 10.0, 100)


def test_engine_reports_join_outcomes_per_model() -> None:
    engine = Engine(MonitorConfig.from_mapping({"defaults": {"join": {"ttl_seconds": 60}}}))
    records = [
        _g("early", 0.0),  # label before its prediction
        _p("early", 1.0),
        _p("late", 2.0),
        _g("late", 30.0),  # label after its prediction
        _p("never", 3.0),  # never labelled -> expires
        _p("late", 31.0),  # duplicate prediction
        _g("orphan", 32.0),  # label without prediction -> expires
        _p("tick", 200.0),  # moves the watermark past every TTL
    ]
    engine.process(records)
    model = engine.status()["models"]["m"]
    assert (model["predictions"], model["ground_truth"], model["joined"]) == (5, 3, 2)
    join = engine.metrics_view()["models"]["m"]["join"]
    assert join["expired_unlabelled"] == 1
    assert join["label_without_prediction"] == 1
    assert join["duplicate_predictions"] == 1
    assert join["label_lag_mean"] == (-1.0 + 28.0) / 2
    assert join["label_coverage"] == 2 / 3


def test_joined_ids_are_remembered_up_to_a_cap() -> None:
    join = JoinBuffer(ttl_seconds=1e9, max_pending=10, remember_joined=2)
    for i in range(3):
        join.add_prediction(f"p{i}", "v1", 0.5, float(i), True)
        join.add_label(f"p{i}", 1.0, float(i))
    assert join.add_label("p2", 1.0, 5.0) is DUPLICATE
    assert join.add_label("p0", 1.0, 5.0) is None  # forgotten: waits as an orphan label
