"""A model whose events arrive on two partitions (a producer with another partitioner) is
refused on the second with one ``infrastructure`` alert, counted, and shown by ``status``."""

from __future__ import annotations

from engine_streams import churn_stream
from msgspec import msgpack

from streams.checkpoint import StoredStatus
from streams.commands.status import status_document
from streams.core.dead_letter import reason_kind
from streams.engine import MonitorConfig
from streams.engine.engine import Engine


def _engine() -> Engine:
    return Engine(MonitorConfig(), clock=lambda: 1e9)


def test_events_of_a_model_on_another_partition_are_refused_with_one_alert() -> None:
    engine = _engine()
    assert engine.admit("churn", 0) is None
    engine.process(churn_stream(20, partition=0))
    refused = [engine.admit("churn", 3) for _ in range(5)]
    assert all(r is not None and "split across partitions" in r for r in refused)
    reason = refused[0] or ""
    assert reason_kind(reason) == "split_model"
    assert "its events are on partition 0, this one is on partition 3" in reason
    assert engine.admit("churn", 0) is None  # its own partition still goes in
    alerts = engine.tick().alerts
    (alert,) = [a for a in alerts if a.detector == "split_model"]
    assert (alert.type, alert.model_id, alert.signal) == ("infrastructure", "churn", "partitioning")
    assert alert.details["partitions"] == [0, 3]
    assert "murmur2" in alert.details["cause"]
    assert engine.status()["partitions"][3]["split_events"] == {"churn": 5}
    # another foreign partition: one more alert, with its own deterministic id
    engine.admit("churn", 1)
    (again,) = [a for a in engine.tick().alerts if a.detector == "split_model"]
    assert again.alert_id != alert.alert_id
    assert again.details["other_partition"] == 1


def test_the_split_count_and_its_alert_survive_a_restart() -> None:
    engine = _engine()
    engine.admit("churn", 0)
    engine.process(churn_stream(20, partition=0))
    engine.admit("churn", 2)
    first = [a for a in engine.tick().alerts if a.detector == "split_model"]
    # through msgpack, as the checkpoint stores it
    saved = {p: msgpack.decode(msgpack.encode(engine.snapshot_partition(p))) for p in (0, 2)}
    restarted = _engine()
    for partition, data in saved.items():
        restarted.restore_partition(partition, data)
    assert restarted.admit("churn", 2) is not None
    assert restarted.status()["partitions"][2]["split_events"] == {"churn": 2}
    assert not [a for a in restarted.tick().alerts if a.detector == "split_model"]
    assert len(first) == 1


def test_status_shows_a_model_seen_on_several_partitions() -> None:
    churn = {"predictions": 3}
    stored = [
        StoredStatus(0, {}, {"churn": churn, "fraud": churn}, 1.0),
        StoredStatus(1, {}, {}, 1.0, summary={"split_events": {"churn": 7}}),
        # another member created the model on its own partition (cross-member split)
        StoredStatus(2, {}, {"churn": churn}, 1.0),
    ]
    models = status_document(stored)["models"]
    assert models["churn"]["split"] == {"partitions": [0, 1, 2], "refused_events": {"1": 7}}
    assert "split" not in models["fraud"]
