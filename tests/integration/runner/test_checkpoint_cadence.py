"""While behind, a member's checkpoints keep to their share of its time (checkpoint.max_share),
and what it checkpoints less often is still exactly what an uninterrupted run applies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
from runner_harness import (
    TOPICS,
    checkpointed_offsets,
    monitor_env,
    produce_stream,
    start_monitor,
    status_json,
    wait_for_offsets,
    write_config,
)

pytestmark = pytest.mark.integration

PARTITIONS = 2
CHECKPOINTED = "checkpointed partitions"


def _run(
    env: dict[str, str], client: redis.Redis, group: str, expected: Any
) -> tuple[int, dict[str, Any]]:
    """(checkpoints made while the backlog was read, the final status) of one monitor."""
    monitor = start_monitor(env, group, "--log-level", "DEBUG", counting=True)
    wait_for_offsets(client, group, expected, monitors=[monitor])
    checkpoints = monitor.log().count(CHECKPOINTED)
    assert monitor.stop() == 0, monitor.log()
    return checkpoints, status_json(env, group)


def test_a_backlog_checkpoints_at_most_its_share_of_the_time_and_applies_the_same(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    make_topics: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    topics = make_topics(*TOPICS, partitions=PARTITIONS)
    stream = produce_stream(
        kafka_bootstrap, topics["predictions"], topics["ground-truth"], models=4, per_model=3000
    )
    expected = stream.expected_offsets(PARTITIONS)
    runs = {}
    for share in (1.0, 0.001):  # 1: no pause beyond the checkpoint itself; 0.001: 1000x it
        config = write_config(
            tmp_path / f"share-{share}.yaml",
            topics,
            every_events=200,
            every_seconds=1.0,
            max_share=share,
        )
        env = monitor_env(kafka_bootstrap, redis_url, config)
        runs[share] = _run(env, redis_client, f"{topic_prefix}share-{share}", expected)
    (every, status), (paced, paced_status) = runs[1.0], runs[0.001]
    # 24 000 records: one checkpoint per 200 of them, or a pause of ~1000 checkpoints' time
    assert every >= 16, (every, paced)
    assert paced * 4 <= every, (paced, every)
    assert paced_status["models"] == status["models"]


def test_a_kill_during_a_long_pause_replays_more_and_applies_the_same(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    make_topics: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    topics = make_topics(*TOPICS, partitions=PARTITIONS)
    stream = produce_stream(
        kafka_bootstrap, topics["predictions"], topics["ground-truth"], models=4, per_model=3000
    )
    expected = stream.expected_offsets(PARTITIONS)
    config = write_config(
        tmp_path / "paced.yaml", topics, every_events=200, every_seconds=1.0, max_share=0.001
    )
    env = monitor_env(kafka_bootstrap, redis_url, config)
    killed = f"{topic_prefix}killed"
    monitor = start_monitor(env, killed, "--log-level", "DEBUG", counting=True)
    monitor.wait_for_log(CHECKPOINTED)  # the first one sets a long pause: kill inside it
    assert monitor.stop(kill=True) == -9
    assert checkpointed_offsets(redis_client, killed) != expected  # some of it is replayed
    _, after_kill = _run(env, redis_client, killed, expected)
    _, uninterrupted = _run(env, redis_client, f"{topic_prefix}clean", expected)
    assert after_kill["models"] == uninterrupted["models"]
