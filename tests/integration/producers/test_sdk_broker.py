"""The SDK against the real local broker: what a model server logs is exactly what Kafka holds."""

from __future__ import annotations

import socket
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from producers import DeliveryError, DeliveryFailure, MonitorClient
from streams.core.events import decode_ground_truth, decode_prediction

pytestmark = pytest.mark.integration

MakeTopics = Callable[..., dict[str, str]]
ReadTopic = Callable[..., list[Any]]


def test_logged_events_arrive_exactly_keyed_by_model_id(
    kafka_bootstrap: str, make_topics: MakeTopics, read_topic: ReadTopic
) -> None:
    topics = make_topics("predictions", "ground-truth")
    sent: dict[str, dict[str, Any]] = {}
    with MonitorClient(
        kafka_bootstrap,
        predictions_topic=topics["predictions"],
        ground_truth_topic=topics["ground-truth"],
    ) as client:
        for i in range(300):
            model_id = f"model-{i % 3}"
            features = {"tenure_months": i, "plan": ["basic", "premium"][i % 2], "age": None}
            event_id = client.log_prediction(
                model_id, features, i / 300, model_version="v2", timestamp=1_800_000_000 + i
            )
            sent[event_id] = {"model_id": model_id, "features": features, "prediction": i / 300}
            if i % 2 == 0:
                client.log_ground_truth(event_id, model_id, i % 3 == 0, timestamp=1.9e9 + i)
    assert (client.delivered, client.failed, client.pending) == (450, 0, 0)

    messages = read_topic(topics["predictions"])
    assert len(messages) == 300
    order: dict[bytes, list[int]] = defaultdict(list)
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for message in messages:
        event = decode_prediction(message.value())
        assert message.key() == event.model_id.encode()
        expected = sent.pop(event.event_id)
        assert event.model_id == expected["model_id"]
        assert event.features == expected["features"]
        assert event.prediction == expected["prediction"]
        assert event.model_version == "v2"
        order[message.key()].append(int(event.event_time()) - 1_800_000_000)
        partitions[message.key()].add(message.partition())
    assert sent == {}
    assert all(ticks == sorted(ticks) for ticks in order.values())  # per-model order kept
    assert all(len(used) == 1 for used in partitions.values())

    labels = [decode_ground_truth(m.value()) for m in read_topic(topics["ground-truth"])]
    assert len(labels) == 150
    assert {label.label for label in labels} == {True, False}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_delivery_failure_is_surfaced_never_swallowed() -> None:
    failures: list[DeliveryFailure] = []
    client = MonitorClient(
        f"127.0.0.1:{_closed_port()}",
        config={"message.timeout.ms": 300, "log_level": 0},
        on_delivery_error=failures.append,
    )
    event_id = client.log_prediction("churn", {"x": 1.0}, 0.5)
    client.log_ground_truth(event_id, "churn", 1)
    with pytest.raises(DeliveryError) as caught:
        client.flush(timeout=10)
    assert (client.failed, client.delivered, client.pending) == (2, 0, 0)
    assert caught.value.failed == 2
    assert caught.value.pending == 0
    assert "2 message(s) failed" in str(caught.value)
    assert sorted(f.topic for f in failures) == ["ground-truth", "predictions"]
    assert all(f.key == b"churn" and f.value for f in failures)
    assert event_id.encode() in failures[0].value  # type: ignore[operator]
    client.close(timeout=1)  # the failures were raised once; nothing new is pending
