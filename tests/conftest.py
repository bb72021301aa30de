"""Shared fixtures: the broker and Redis for integration tests, and per-test isolation.

Where the services come from:
    ``kafka_bootstrap`` (session, str) is ``$KAFKA_BOOTSTRAP_SERVERS`` when set, else the
    address of ONE tansu broker started for the whole session, lazily (only when a test asks)
    and stopped at the end. ``redis_url`` (session, str) is ``$REDIS_URL`` or a Redis started
    the same way. Tests never touch a broker or Redis they did not start unless these
    variables are set explicitly (then the suite runs against that real Kafka / Redis).

Isolation per test:
    ``redis_client`` (function): ``redis.Redis`` on ``redis_url``; its database is FLUSHED
    on teardown (so do not point ``REDIS_URL`` at data you care about).
    ``topic_prefix`` (function, str): unique per test, e.g. ``t-test_roundtrip-1a2b3c4d-``;
    use it for topic and consumer-group names.
    ``make_topics`` (function): ``make_topics("predictions", "ground-truth", partitions=4)``
    creates fresh topics named ``topic_prefix + name``, all with the same partition count
    (co-partitioned), returns ``{"predictions": "<real name>", ...}``, and deletes them
    after the test.
    ``read_topic`` (function): ``read_topic(name)`` returns every message of a topic, from
    the beginning to the current end, without joining a group.

Broker quirks to design tests around (tansu): ``delete_records`` and ``create_partitions``
are unsupported; ListOffsets/``get_watermark_offsets`` are wrong, so read to the end with
``enable.partition.eof`` (as ``read_topic`` does); a group join takes ~1 s with
``streams.core.kafka.TEST_GROUP`` timings; auto-created topics get 4 partitions.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from streams.core.kafka import admin_config, consumer_config
from streams.core.topics import DEFAULT_PARTITIONS, ensure_topics, partition_counts
from streams.stack import LocalStack

MakeTopics = Callable[..., dict[str, str]]
ReadTopic = Callable[..., list[Message]]


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    """``$KAFKA_BOOTSTRAP_SERVERS``, else a tansu broker started once for the session."""
    explicit = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if explicit:
        return explicit
    stack: LocalStack = request.getfixturevalue("_session_broker")
    return stack.bootstrap


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """``$REDIS_URL``, else a Redis started once for the session."""
    explicit = os.environ.get("REDIS_URL")
    if explicit:
        return explicit
    stack: LocalStack = request.getfixturevalue("_session_redis")
    return stack.redis_url


@pytest.fixture(scope="session")
def _session_broker() -> Iterator[LocalStack]:
    with LocalStack(redis=False) as stack:
        yield stack


@pytest.fixture(scope="session")
def _session_redis() -> Iterator[LocalStack]:
    with LocalStack(kafka=False) as stack:
        yield stack


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on ``redis_url``; the database is flushed after the test."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def topic_prefix(request: pytest.FixtureRequest) -> str:
    """A prefix no other test (or run) uses: ``t-<test name>-<8 hex>-``."""
    name = re.sub(r"[^a-zA-Z0-9._-]", "_", request.node.name)[:60]
    return f"t-{name}-{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def make_topics(kafka_bootstrap: str, topic_prefix: str) -> Iterator[MakeTopics]:
    """Factory: fresh topics ``topic_prefix + name``, one partition count; deleted afterwards."""
    created: list[str] = []

    def make(*names: str, partitions: int = DEFAULT_PARTITIONS) -> dict[str, str]:
        real = {name: topic_prefix + name for name in names}
        ensure_topics(kafka_bootstrap, real.values(), partitions)
        created.extend(real.values())
        return real

    yield make
    if created:  # best effort: keeps a shared real Kafka tidy; a failure here is not the test's
        admin = AdminClient(admin_config(kafka_bootstrap))  # keep it alive until answered
        futures = admin.delete_topics(created, operation_timeout=10)
        for future in futures.values():
            with contextlib.suppress(TimeoutError):
                future.exception(timeout=15)


@pytest.fixture
def read_topic(kafka_bootstrap: str, topic_prefix: str) -> ReadTopic:
    """Reader: every message of a topic from the beginning to its current end (no group)."""

    def read(topic: str, *, timeout: float = 10.0) -> list[Message]:
        count = partition_counts(kafka_bootstrap, [topic])[topic]
        if count is None:
            raise LookupError(f"topic {topic!r} does not exist")
        config = consumer_config(
            kafka_bootstrap, f"{topic_prefix}reader", {"enable.partition.eof": True}
        )
        consumer = Consumer(config)
        try:
            # Offset 0, not OFFSET_BEGINNING: skips a ListOffsets round trip (0.5 s on tansu);
            # auto.offset.reset=earliest covers a log whose start was trimmed on real Kafka.
            consumer.assign([TopicPartition(topic, p, 0) for p in range(count)])
            return _read_until_eof(consumer, count, timeout)
        finally:
            consumer.close()

    return read


def _read_until_eof(consumer: Consumer, partitions: int, timeout: float) -> list[Message]:
    deadline = time.monotonic() + timeout
    messages: list[Message] = []
    at_end: set[int] = set()
    while len(at_end) < partitions:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(at_end)}/{partitions} partitions read to the end")
        for message in consumer.consume(1000, 0.05):
            error = message.error()
            if error is None:
                messages.append(message)
                at_end.discard(message.partition() or 0)
            elif error.code() == KafkaError._PARTITION_EOF:
                at_end.add(message.partition() or 0)
            else:
                raise RuntimeError(f"reading {message.topic()}: {error}")
    return messages
