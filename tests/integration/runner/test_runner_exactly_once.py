"""The loop's guarantees with an engine that records what it is fed (counting_monitor.py).

Each model's status holds a digest of the exact (topic, offset, event_id) sequence applied,
so equality with an uninterrupted run proves that no record was lost, none was applied twice
and the order per partition was kept, across kill -9 and rebalances.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
from runner_harness import (
    BAD_MESSAGES,
    TOPICS,
    BackgroundStream,
    kill_repeatedly,
    monitor_env,
    produce_stream,
    run_to_end,
    scale_out_then_fail_over,
    start_monitor,
    status_json,
    wait_for_offsets,
    write_config,
)

pytestmark = pytest.mark.integration

PARTITIONS = 4


@pytest.mark.slow
def test_kill_9_at_random_points_loses_nothing_and_doubles_nothing(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    make_topics: Any,
    read_topic: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    topics = make_topics(*TOPICS, partitions=PARTITIONS)
    env = monitor_env(kafka_bootstrap, redis_url, write_config(tmp_path / "c.yaml", topics))
    background = BackgroundStream(
        kafka_bootstrap, topics, models=4, per_model=900, bad_every=97, rate=600.0
    )
    crashed = topic_prefix + "crashed"
    kills = kill_repeatedly(
        env, redis_client, crashed, background, seed=11, max_pause=0.6, counting=True
    )
    stream = background.join()
    assert kills >= 3, "the stream ended before the monitor could be killed 3 times"

    after_crashes = run_to_end(env, redis_client, crashed, stream, PARTITIONS, counting=True)
    uninterrupted = run_to_end(
        env, redis_client, topic_prefix + "clean", stream, PARTITIONS, counting=True
    )
    assert after_crashes["models"] == uninterrupted["models"]
    counts = uninterrupted["models"]
    assert sum(m["predictions"] + m["ground_truth"] for m in counts.values()) == 2 * 4 * 900
    assert sum(m["dead_letters"] for m in counts.values()) == len(stream.bad) > 0

    # every alert of the uninterrupted run was published despite the crashes (maybe twice)
    alert_ids = {
        msgspec.json.decode(m.value())["alert_id"] for m in read_topic(topics["drift-alerts"])
    }
    expected_ids = {
        f"{model}-{n}"
        for model, status in counts.items()
        for n in range(250, status["predictions"] + 1, 250)
    }
    assert alert_ids == expected_ids


@pytest.mark.slow
def test_records_waiting_compact_for_their_chunk_are_applied_once_in_order_across_kill_9(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    make_topics: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    """Past 256 models the records that wait for their model's chunk are kept as msgpack and
    decoded when it goes, two polls' worth at a time (streams.runner.chunks); here from two
    models on. Killed at random moments while behind (full polls), then catching up, the
    monitor applies each record once, in order, as one that keeps them as they are does,
    its checkpoints draining what waits."""
    topics = make_topics(*TOPICS, partitions=PARTITIONS)
    env = monitor_env(kafka_bootstrap, redis_url, write_config(tmp_path / "c.yaml", topics))
    compact_log = tmp_path / "compact.log"  # the most records each monitor held compact
    compact = {
        **env,
        "COUNTING_MONITOR_CHUNKS": "compact",
        "COUNTING_MONITOR_COMPACT_LOG": str(compact_log),
    }
    stream = produce_stream(
        kafka_bootstrap,
        topics["predictions"],
        topics["ground-truth"],
        models=4,
        per_model=3000,
        bad_every=97,
    )
    group = topic_prefix + "compact"
    kill_repeatedly(  # at random moments of the backlog
        compact, redis_client, group, None, seed=5, max_pause=0.3, counting=True, kills=2
    )
    monitor = start_monitor(compact, group, counting=True)  # the rest
    wait_for_offsets(redis_client, group, stream.expected_offsets(PARTITIONS), monitors=[monitor])
    assert monitor.stop() == 0, monitor.log()
    # some monitor held records compact (the killed ones, while behind, or the last one: on
    # a slow machine the killed ones may leave it no backlog)
    assert compact_log.exists()
    assert max(map(int, compact_log.read_text().split())) > 0
    compacted = status_json(env, group)
    plain = run_to_end(env, redis_client, topic_prefix + "plain", stream, PARTITIONS, counting=True)
    assert compacted["models"] == plain["models"]
    counts = plain["models"]
    assert sum(m["predictions"] + m["ground_truth"] for m in counts.values()) == 2 * 4 * 3000


@pytest.mark.slow
def test_a_second_member_joins_then_one_dies_and_nothing_is_lost(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    make_topics: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    topics = make_topics(*TOPICS, partitions=PARTITIONS)
    env = monitor_env(kafka_bootstrap, redis_url, write_config(tmp_path / "c.yaml", topics))
    background = BackgroundStream(kafka_bootstrap, topics, models=6, per_model=600, rate=1000.0)
    group = topic_prefix + "scaled"
    stream, second = scale_out_then_fail_over(
        env, redis_client, group, background, PARTITIONS, counting=True
    )
    assert second.log().count("assigned partitions") >= 2, second.log()
    scaled = status_json(env, group)
    single = run_to_end(
        env, redis_client, topic_prefix + "single", stream, PARTITIONS, counting=True
    )
    assert scaled["models"] == single["models"]
    assert len(scaled["models"]) == 6


def test_bad_messages_go_to_the_dead_letter_topic_with_their_origin(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    make_topics: Any,
    read_topic: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    topics = make_topics(*TOPICS, partitions=2)
    env = monitor_env(kafka_bootstrap, redis_url, write_config(tmp_path / "c.yaml", topics))
    stream = produce_stream(
        kafka_bootstrap,
        topics["predictions"],
        topics["ground-truth"],
        models=2,
        per_model=40,
        bad_every=5,
    )
    monitor = start_monitor(env, topic_prefix + "g", counting=True)
    wait_for_offsets(
        redis_client,
        topic_prefix + "g",
        stream.expected_offsets(2),
        monitors=[monitor],
    )
    assert monitor.stop() == 0
    letters = [msgspec.json.decode(m.value()) for m in read_topic(topics["dead-letter"])]
    found = {(d["topic"], d["partition"], d["offset"]): d for d in letters}
    assert len(found) == len(stream.bad) == 2 * 40 // 5
    for topic, partition, offset, value in stream.bad:
        letter = found[(topic, partition, offset)]
        assert base64.b64decode(letter["value"]) == value
        assert letter["key"] is not None
        assert letter["reason"]
    reasons = {base64.b64decode(d["value"]): d["reason"] for d in letters}
    assert reasons[BAD_MESSAGES[0]].startswith("$: invalid JSON")
    assert reasons[BAD_MESSAGES[1]] == "$.features: required field is missing"
    assert reasons[BAD_MESSAGES[2]].startswith("$.features.a")
    assert reasons[BAD_MESSAGES[3]].startswith("$:")
    assert reasons[BAD_MESSAGES[4]].startswith("$.model_id: 'not-the-key' does not match")


def test_a_redis_that_lost_the_checkpoints_gets_the_partition_whole(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    make_topics: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    """Checkpoints write only the changed models; when Redis lost the stored ones (restarted
    without its file), the next checkpoint of a partition writes all its models, not only
    the one that received events (m0 and m2 share partition 3 under murmur2)."""
    topics = make_topics(*TOPICS, partitions=PARTITIONS)
    env = monitor_env(kafka_bootstrap, redis_url, write_config(tmp_path / "c.yaml", topics))
    first = produce_stream(
        kafka_bootstrap, topics["predictions"], topics["ground-truth"], models=3, per_model=60
    )
    group = topic_prefix + "lost"
    monitor = start_monitor(env, group, counting=True)
    wait_for_offsets(redis_client, group, first.expected_offsets(PARTITIONS), monitors=[monitor])
    before = status_json(env, group)["models"]
    assert before["m2"]["partition"] == before["m0"]["partition"] == 3
    lost = list(redis_client.scan_iter(match=f"driftradar:{{{group}}}:*", count=1000))
    assert redis_client.delete(*lost) >= 4  # hash, models and status of p3, the index
    second = produce_stream(
        kafka_bootstrap, topics["predictions"], topics["ground-truth"], models=1, per_model=40
    )
    wait_for_offsets(
        redis_client, group, {3: second.expected_offsets(PARTITIONS)[3]}, monitors=[monitor]
    )
    assert monitor.stop() == 0, monitor.log()
    after = status_json(env, group)["models"]
    assert sorted(after) == ["m0", "m2"]  # partition 3, the only one written since
    assert after["m2"] == before["m2"]
    assert after["m0"]["predictions"] == 100
    assert "saving them whole" in monitor.log()
