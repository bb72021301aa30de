"""The two input topics aligned by event time, and pending predictions held in Redis, end to
end: a backlog of late labels joins completely, a quiet labels topic does not stall live
monitoring, expiry and recovery after kill -9 are exact, and the estimate is published."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition
from runner_harness import (
    TOPICS,
    kill_repeatedly,
    monitor_env,
    start_monitor,
    status_json,
    wait_for_offsets,
    write_config,
)

from producers.backlog import delayed_labels, publish
from streams.core.events import Prediction, encode
from streams.core.kafka import producer_config

pytestmark = pytest.mark.integration

PARTITIONS = 2


def _config(path: Path, topics: dict[str, str], **join: Any) -> Path:
    write_config(path, topics)
    document = yaml.safe_load(path.read_text())
    document["defaults"] = {"join": {"max_idle_seconds": 5.0, **join}}
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_backlog_of_late_labels_joins_completely_with_little_memory(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    make_topics: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    """All predictions are on the topic before any label (median delay 1 h): every label
    whose prediction exists joins, nothing is evicted, although the monitor may buffer only
    2000 records per topic-partition (it pauses the side that runs ahead)."""
    topics = make_topics(*TOPICS, partitions=PARTITIONS)
    config = _config(tmp_path / "c.yaml", topics, max_buffered=2000, max_lead_seconds=120)
    env = monitor_env(kafka_bootstrap, redis_url, config)
    stream = delayed_labels(20_000, median_delay=3600.0, interval=0.5, seed=3)
    publish(kafka_bootstrap, stream, topics["predictions"], topics["ground-truth"])
    group = topic_prefix + "g"
    monitor = start_monitor(env, group)
    status = _wait_for_counts(env, group, monitor, len(stream.predictions), len(stream.labels))
    assert monitor.stop() == 0, monitor.log()
    model = status["models"]["churn"]
    join = model["join"]
    assert model["joined"] == len(stream.labels)
    assert (join["evicted_predictions"], join["evicted_labels"]) == (0, 0)
    assert join["label_without_prediction"] == 0
    assert join["pending_predictions"] == len(stream.predictions) - len(stream.labels)
    assert 1800 < join["label_delay_p50"] < 7200  # log-normal, median 1 h
    assert sum(p["alignment"]["pauses"] for p in status["partitions"].values()) > 0
    # the estimate is published beside the realised metrics
    assert "estimate:roc_auc" in model["signals"]
    # the pending predictions are in Redis, not in the checkpointed state
    keys = list(redis_client.scan_iter(match=f"driftradar:{{{group}}}:p:*:j:*", count=1000))
    fields = sum(int(redis_client.hlen(k)) for k in keys)
    assert fields == join["pending_predictions"]


def _wait_for_counts(
    env: dict[str, str],
    group: str,
    monitor: Any,
    predictions: int,
    labels: int,
    model_id: str = "churn",
) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        if monitor.process.poll() is not None:
            raise AssertionError(monitor.log())
        try:
            status = status_json(env, group)
        except subprocess.CalledProcessError:  # no checkpoint yet
            status = {"models": {}}
        model = status["models"].get(model_id)
        if model and (model["predictions"], model["ground_truth"]) == (predictions, labels):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"not all consumed: {model}\n{monitor.log()}")
        time.sleep(0.5)


def test_a_quiet_labels_topic_does_not_stall_live_predictions(
    kafka_bootstrap: str,
    redis_url: str,
    make_topics: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    """Live predictions, no label at all: they reach the engine within max_idle_seconds."""
    topics = make_topics(*TOPICS, partitions=PARTITIONS)
    env = monitor_env(
        kafka_bootstrap, redis_url, _config(tmp_path / "c.yaml", topics, max_idle_seconds=1.0)
    )
    group = topic_prefix + "live"
    monitor = start_monitor(env, group)
    monitor.wait_for_log("assigned partitions")
    producer = Producer(producer_config(kafka_bootstrap))
    sent = 0
    started = time.monotonic()
    while time.monotonic() - started < 4.0:  # ~100 predictions/s, live
        prediction = Prediction(f"p{sent}", "live", {"x": 1.0}, 0.4, timestamp=time.time())
        producer.produce(topics["predictions"], encode(prediction), b"live")
        producer.poll(0)
        sent += 1
        time.sleep(0.01)
    producer.flush(10)
    finished = time.monotonic()
    status = _wait_for_counts(env, group, monitor, sent, 0, "live")
    took = time.monotonic() - finished
    assert monitor.stop() == 0, monitor.log()
    assert status["models"]["live"]["predictions"] == sent
    assert took < 10.0  # max_idle 1 s + checkpoint cadence + status polling


@pytest.mark.slow
def test_expiry_and_recovery_of_redis_held_predictions_are_exact_across_kill_9(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    make_topics: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    """Labels up to hours late, a TTL of 2 h (some predictions expire unlabelled), a small
    cap of buckets so sweeps cover them: kill -9 while it catches up, then compare with an
    uninterrupted run: same join counts, same pending, same Redis content."""
    topics = make_topics(*TOPICS, partitions=PARTITIONS)
    config = _config(
        tmp_path / "c.yaml", topics, ttl_seconds=7200, max_pending=6400, max_buffered=3000
    )
    env = monitor_env(kafka_bootstrap, redis_url, config)
    stream = delayed_labels(15_000, median_delay=1800.0, sigma=1.2, interval=1.0, seed=5)
    publish(kafka_bootstrap, stream, topics["predictions"], topics["ground-truth"])
    done = threading.Event()

    class _Finished:
        def is_alive(self) -> bool:
            return not done.is_set()

    crashed, clean = topic_prefix + "crashed", topic_prefix + "clean"
    killer = threading.Timer(25.0, done.set)
    killer.start()
    kills = kill_repeatedly(
        env,
        redis_client,
        crashed,
        _Finished(),
        seed=3,
        max_pause=1.5,
        kills=3,  # type: ignore[arg-type]
    )
    killer.cancel()
    assert kills == 3
    offsets = _final_offsets(kafka_bootstrap, topics)
    after = _run_until(env, redis_client, crashed, offsets)
    uninterrupted = _run_until(env, redis_client, clean, offsets)
    assert after["models"] == uninterrupted["models"]
    join = uninterrupted["models"]["churn"]["join"]
    assert join["expired_unlabelled"] > 0
    assert join["evicted_predictions"] == 0
    # every label joined, or found its prediction expired (then waits one TTL, in memory)
    settled = join["label_without_prediction"] + join["early_labels"]
    assert uninterrupted["models"]["churn"]["joined"] + settled == len(stream.labels)
    assert _redis_entries(redis_client, crashed) == _redis_entries(redis_client, clean)


def _final_offsets(bootstrap: str, topics: dict[str, str]) -> dict[int, dict[str, int]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "offsets-probe"})
    out: dict[int, dict[str, int]] = {}
    try:
        for name in ("predictions", "ground-truth"):
            for p in range(PARTITIONS):
                consumer.assign([TopicPartition(topics[name], p, 0)])
                end = _read_to_end(consumer, topics[name], p)
                if end:
                    out.setdefault(p, {})[topics[name]] = end
    finally:
        consumer.close()
    return out


def _read_to_end(consumer: Any, topic: str, partition: int) -> int:
    last = -1
    idle = 0
    while idle < 3:
        messages = consumer.consume(10_000, 0.5)
        if not messages:
            idle += 1
            continue
        idle = 0
        for message in messages:
            if message.error() is None:
                last = max(last, message.offset())
    return last + 1


def _run_until(
    env: dict[str, str], client: redis.Redis, group: str, offsets: dict[int, Any]
) -> dict[str, Any]:
    monitor = start_monitor(env, group)
    wait_for_offsets(client, group, offsets, monitors=[monitor], timeout=120)
    assert monitor.stop() == 0, monitor.log()
    return status_json(env, group)


def _redis_entries(client: redis.Redis, group: str) -> dict[bytes, dict[bytes, bytes]]:
    prefix = f"driftradar:{{{group}}}:".encode()
    return {
        key[len(prefix) :]: client.hgetall(key)
        for key in client.scan_iter(match=prefix + b"p:*:j:*", count=1000)
    }
