"""A model split across partitions by a producer with another partitioner (issue 13): its
predictions come from a librdkafka producer left on CRC32 (``consistent_random``), its
labels from one on the contract's murmur2. The monitor must not lose the pairs silently:
one ``infrastructure`` alert names the model, both partitions and the cause, the events of
the second partition are dead-lettered and counted, and ``status`` shows the split."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Producer
from runner_harness import TOPICS, monitor_env, start_monitor, status_json, wait_for_offsets
from runner_harness import write_config as write_monitor_config

from streams.core.events import GroundTruth, Prediction, decode_alert, encode
from streams.core.kafka import producer_config

pytestmark = pytest.mark.integration

PARTITIONS = 4
EVENTS = 300


def _split_model_id() -> tuple[str, int, int]:
    """A model id that CRC32 and murmur2 put on different partitions, and both partitions."""
    every = list(range(PARTITIONS))
    for n in range(100):
        model_id = f"churn-{n}"
        crc = zlib.crc32(model_id.encode()) % PARTITIONS
        murmur = DefaultPartitioner()(model_id.encode(), every, every)
        if crc != murmur:
            return model_id, crc, murmur
    raise AssertionError("no key splits")  # pragma: no cover


def test_a_model_split_by_another_partitioner_is_alerted_counted_and_shown(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    make_topics: Any,
    read_topic: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    topics = make_topics(*TOPICS, partitions=PARTITIONS)
    model_id, crc_partition, murmur_partition = _split_model_id()
    ends: dict[tuple[str, int], int] = {}

    def delivered(err: Any, msg: Any) -> None:
        assert err is None, err
        key = (msg.topic(), msg.partition())
        ends[key] = max(ends.get(key, 0), msg.offset() + 1)

    crc32 = Producer({"bootstrap.servers": kafka_bootstrap, "partitioner": "consistent_random"})
    murmur2 = Producer(producer_config(kafka_bootstrap))
    key = model_id.encode()
    for i in range(EVENTS):
        t = 1_790_000_000.0 + i
        prediction = Prediction(
            event_id=f"e{i}",
            model_id=model_id,
            model_version="v1",
            timestamp=t,
            features={"x": float(i % 7)},
            prediction=0.3,
        )
        label = GroundTruth(event_id=f"e{i}", model_id=model_id, timestamp=t + 5, label=i % 2)
        crc32.produce(topics["predictions"], encode(prediction), key, on_delivery=delivered)
        murmur2.produce(topics["ground-truth"], encode(label), key, on_delivery=delivered)
    assert crc32.flush(30) == 0
    assert murmur2.flush(30) == 0
    assert (topics["predictions"], crc_partition) in ends
    assert (topics["ground-truth"], murmur_partition) in ends

    env = monitor_env(kafka_bootstrap, redis_url, write_monitor_config(tmp_path / "c.yaml", topics))
    group = topic_prefix + "g"
    monitor = start_monitor(env, group)
    expected: dict[int, dict[str, int]] = {p: {} for p in range(PARTITIONS)}
    for (topic, partition), end in ends.items():
        expected[partition][topic] = end
    try:
        wait_for_offsets(redis_client, group, expected, monitors=[monitor])
    finally:
        assert monitor.stop() == 0, monitor.log()

    alerts = [decode_alert(m.value()) for m in read_topic(topics["drift-alerts"])]
    split = [a for a in alerts if a.detector == "split_model"]
    assert len({a.alert_id for a in split}) == 1, split
    alert = split[0]
    assert (alert.type, alert.model_id) == ("infrastructure", model_id)
    assert alert.details["partitions"] == sorted([crc_partition, murmur_partition])
    assert "murmur2" in alert.details["cause"]

    # the refused side is in the dead-letter topic, whole, with the reason
    refused_partition = alert.details["other_partition"]
    letters = [msgspec.json.decode(m.value()) for m in read_topic(topics["dead-letter"])]
    assert len(letters) == EVENTS
    assert {letter["partition"] for letter in letters} == {refused_partition}
    assert all("split across partitions" in letter["reason"] for letter in letters)

    status = status_json(env, group)
    model = status["models"][model_id]
    assert model["joined"] == 0
    assert model["dead_letters"] == EVENTS
    assert model["split"] == {
        "partitions": sorted([crc_partition, murmur_partition]),
        "refused_events": {str(refused_partition): EVENTS},
    }
