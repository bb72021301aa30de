"""Our producers put every key on the partition aiokafka's default partitioner (murmur2) picks.

For partition counts 1-12 and 300 keys, the sync SDK (``TrackedProducer``, also the
simulator's), the monitor's ``Publisher`` (also the retrain worker's) and the Faust client
produce one message per key to a topic with that many partitions; the test reads the topic
back from the real broker and compares each message's partition with
``aiokafka.partitioner.DefaultPartitioner`` — the partitioner of Faust and of the Java
client. A control producer with librdkafka's default (``consistent_random``, CRC32) shows
that the comparison catches a producer that partitions otherwise.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import faust
import msgspec
import pytest
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Producer

from producers import MonitorClient
from producers.faust_client import FaustMonitorClient
from streams.core.events import Alert
from streams.core.kafka import producer_config
from streams.core.publisher import Publisher
from streams.core.settings import TopicsConfig

pytestmark = pytest.mark.integration

MakeTopics = Callable[..., dict[str, str]]
ReadTopic = Callable[..., list[Any]]
COUNTS = range(1, 13)


def model_ids(count: int = 300, seed: int = 5) -> list[str]:
    """Model ids as users name them, plus awkward ones (unicode, long, punctuation)."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_.:/éüß中"
    ids = ["churn", "fraud-v2", "modèle-é", "x" * 256]
    ids += [f"model-{i}" for i in range(count // 3)]
    while len(ids) < count:
        ids.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 40))))
    return list(dict.fromkeys(ids))[:count]


def expected_partition(key: bytes, partitions: int) -> int:
    every = list(range(partitions))
    partition: int = DefaultPartitioner()(key, every, every)
    return partition


def _alert(alert_id: str, model_id: str) -> Alert:
    return Alert(
        alert_id=alert_id,
        type="data_drift",
        severity="warning",
        model_id=model_id,
        signal="feature:x",
        detector="adwin",
        detected_at="2026-01-01T00:00:00Z",
    )


def _produce_with_faust(bootstrap: str, topics: dict[int, str], ids: list[str]) -> None:
    app = faust.App(f"test-partitioner-{uuid.uuid4().hex[:8]}", broker=f"kafka://{bootstrap}")

    async def produce() -> None:
        try:
            for topic in topics.values():
                client = FaustMonitorClient(app, predictions_topic=topic, ground_truth_topic=topic)
                for i, model_id in enumerate(ids):
                    await client.log_prediction(model_id, {}, 0.5, event_id=f"faust-{i}")
                await client.close(timeout=30)
                assert (client.delivered, client.failed) == (len(ids), 0)
        finally:
            await app.producer.stop()

    asyncio.run(produce())


def test_our_producers_choose_the_partition_aiokafka_chooses(
    kafka_bootstrap: str, make_topics: MakeTopics, read_topic: ReadTopic
) -> None:
    ids = model_ids()
    topics = {n: make_topics(f"keys-{n}", partitions=n)[f"keys-{n}"] for n in COUNTS}

    # All clients at once: each one's start-up (~0.5 s) overlaps the others'.
    clients = [MonitorClient(kafka_bootstrap, predictions_topic=t) for t in topics.values()]
    publishers = [Publisher(kafka_bootstrap, TopicsConfig(alerts=t)) for t in topics.values()]
    for sdk, publisher in zip(clients, publishers, strict=True):
        for i, model_id in enumerate(ids):
            sdk.log_prediction(model_id, {}, 0.5, event_id=f"sdk-{i}")
        publisher.alerts(_alert(f"publisher-{i}", model_id) for i, model_id in enumerate(ids))
    for sdk, publisher in zip(clients, publishers, strict=True):
        sdk.close()
        publisher.flush()
    _produce_with_faust(kafka_bootstrap, topics, ids)

    for partitions, topic in topics.items():
        messages = read_topic(topic)
        sources: Counter[str] = Counter()
        for message in messages:
            body = msgspec.json.decode(message.value())
            source = (body.get("event_id") or body["alert_id"]).split("-")[0]
            sources[source] += 1
            key = message.key()
            assert message.partition() == expected_partition(key, partitions), (
                f"{source}: key {key!r} on partition {message.partition()} of {partitions}"
            )
        assert sources == {"sdk": len(ids), "publisher": len(ids), "faust": len(ids)}


def test_librdkafkas_default_partitioner_would_disagree(
    kafka_bootstrap: str, make_topics: MakeTopics, read_topic: ReadTopic
) -> None:
    """The control: the comparison above fails for a producer with librdkafka's default."""
    ids = model_ids()
    topic = make_topics("crc32", partitions=4)["crc32"]
    config = {**producer_config(kafka_bootstrap), "partitioner": "consistent_random"}
    producer = Producer(config)
    for model_id in ids:
        producer.produce(topic, b"{}", model_id.encode())
    assert producer.flush(30) == 0
    messages = read_topic(topic)
    agree = sum(m.partition() == expected_partition(m.key(), 4) for m in messages)
    assert len(messages) == len(ids)
    assert agree < 0.5 * len(ids)  # ~1/4 agree by chance
