"""The Faust client against real brokers: what an app logs is what Kafka holds; failures surface.

Each test drives a Faust app's own producer in-process (``asyncio.run``), without a worker:
``FaustMonitorClient`` starts the producer on first use, as it would inside a running app.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import faust
import pytest

from producers import DeliveryError, DeliveryFailure
from producers.faust_client import FaustMonitorClient
from streams.core.events import decode_ground_truth, decode_prediction
from streams.core.topics import ensure_topics
from streams.stack import LocalStack

pytestmark = pytest.mark.integration

MakeTopics = Callable[..., dict[str, str]]
ReadTopic = Callable[..., list[Any]]
T = TypeVar("T")


def _app(bootstrap: str, **settings: Any) -> faust.App:
    return faust.App(
        f"test-faust-client-{uuid.uuid4().hex[:8]}", broker=f"kafka://{bootstrap}", **settings
    )


def _run(app: faust.App, scenario: Callable[[], Awaitable[T]]) -> T:
    """Run ``scenario`` in a fresh event loop; the app's producer is stopped afterwards."""

    async def main() -> T:
        try:
            return await scenario()
        finally:
            await app.producer.stop()

    return asyncio.run(main())


def test_logged_events_arrive_exactly_keyed_by_model_id(
    kafka_bootstrap: str, make_topics: MakeTopics, read_topic: ReadTopic
) -> None:
    topics = make_topics("predictions", "ground-truth")
    app = _app(kafka_bootstrap)
    sent: dict[str, dict[str, Any]] = {}
    client = FaustMonitorClient(
        app, predictions_topic=topics["predictions"], ground_truth_topic=topics["ground-truth"]
    )

    async def report() -> None:
        async with client:
            for i in range(300):
                model_id = f"model-{i % 3}"
                features = {"tenure_months": i, "plan": ["basic", "premium"][i % 2], "age": None}
                event_id = await client.log_prediction(
                    model_id, features, i / 300, model_version="v2", timestamp=1_800_000_000 + i
                )
                sent[event_id] = {"model_id": model_id, "features": features}
                if i % 2 == 0:
                    await client.log_ground_truth(event_id, model_id, i % 3 == 0, timestamp=1.9e9)

    _run(app, report)
    assert (client.sent, client.delivered, client.failed, client.pending) == (450, 450, 0, 0)

    messages = read_topic(topics["predictions"])
    assert len(messages) == 300
    order: dict[bytes, list[int]] = defaultdict(list)
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for message in messages:
        event = decode_prediction(message.value())
        assert message.key() == event.model_id.encode()
        expected = sent.pop(event.event_id)
        assert (event.model_id, event.features) == (expected["model_id"], expected["features"])
        assert event.model_version == "v2"
        order[message.key()].append(int(event.event_time()) - 1_800_000_000)
        partitions[message.key()].add(message.partition())
    assert sent == {}
    assert all(ticks == sorted(ticks) for ticks in order.values())  # per-model order kept
    assert all(len(used) == 1 for used in partitions.values())

    labels = read_topic(topics["ground-truth"])
    assert len(labels) == 150
    for message in labels:
        label = decode_ground_truth(message.value())
        assert message.key() == label.model_id.encode()
        assert message.partition() in partitions[message.key()]  # co-partitioned with its model


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_broker_is_a_failure_never_swallowed() -> None:
    """The first report fails to bootstrap the producer; the next one waits for metadata
    that never comes, until ``send_timeout``: both are failures, neither hangs the app."""
    failures: list[DeliveryFailure] = []
    app = _app(f"127.0.0.1:{_closed_port()}")
    client = FaustMonitorClient(app, on_delivery_error=failures.append, send_timeout=1.0)

    async def report() -> None:
        event_id = await client.log_prediction("churn", {"x": 1.0}, 0.5)
        await client.log_ground_truth(event_id, "churn", 1)
        with pytest.raises(DeliveryError) as caught:
            await client.flush(timeout=10)
        assert caught.value.failed == 2
        assert "2 message(s) failed" in str(caught.value)
        await client.close(timeout=1)  # raised once: nothing new

    _run(app, report)
    assert (client.sent, client.failed, client.delivered, client.pending) == (2, 2, 0, 0)
    assert [f.topic for f in failures] == ["predictions", "ground-truth"]
    assert all(f.key == b"churn" and f.value for f in failures)
    assert "Unable to bootstrap" in str(failures[0])
    assert "not queued within 1 s (is the broker reachable?)" in str(failures[1])


def test_messages_lost_after_queueing_are_failures(tmp_path: Path) -> None:
    """A broker that dies after the app's producer connected: the queued reports time out
    (``producer_request_timeout``) and reach the callback, the counters and ``flush``."""
    failures: list[DeliveryFailure] = []
    with LocalStack(redis=False, state_dir=tmp_path) as stack:
        ensure_topics(stack.bootstrap, ["predictions", "ground-truth"], 2)
        app = _app(stack.bootstrap, producer_request_timeout=1.0)
        client = FaustMonitorClient(app, on_delivery_error=failures.append)

        async def connect() -> None:
            await client.log_prediction("churn", {"x": 1.0}, 0.5)
            await client.flush(timeout=10)

        loop = asyncio.new_event_loop()
        loop.run_until_complete(connect())
    assert client.delivered == 1  # the broker is gone from here on

    async def report() -> None:
        try:
            await client.log_prediction("churn", {"x": 2.0}, 0.5)
            await client.log_ground_truth("e1", "churn", 0)
            assert client.pending == 2  # queued: the failure comes later
            with pytest.raises(DeliveryError, match="2 message"):
                await client.flush(timeout=15)
        finally:
            await app.producer.stop()

    loop.run_until_complete(report())
    loop.close()
    assert (client.sent, client.delivered, client.failed, client.pending) == (3, 1, 2, 0)
    assert len(failures) == 2
