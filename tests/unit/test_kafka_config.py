"""The consumer settings every driftradar consumer starts from (streams.core.kafka)."""

from __future__ import annotations

from streams.core.kafka import PREFETCH_KBYTES, consumer_config


def test_a_full_prefetch_queue_does_not_stop_fetching_for_a_second() -> None:
    """librdkafka's default ``fetch.queue.backoff.ms`` (1 000) idles a consumer that is
    behind for up to a second each time its prefetch queue fills: a bare consume + decode
    ran at 120 000 instead of 267 000 events/s (``python -m benchmarks.throughput``)."""
    config = consumer_config("127.0.0.1:9092", "g")
    assert config["queued.max.messages.kbytes"] == PREFETCH_KBYTES
    assert config["fetch.queue.backoff.ms"] <= 100


def test_the_users_properties_win() -> None:
    config = consumer_config("b:9092", "g", {"fetch.queue.backoff.ms": 1000})
    assert config["fetch.queue.backoff.ms"] == 1000
