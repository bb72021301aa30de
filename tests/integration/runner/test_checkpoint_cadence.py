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


class Backlog:
    """A 24 000-record backlog on the test's topics, and monitor environments for it."""

    def __init__(self, bootstrap: str, redis_url: str, topics: dict[str, str], tmp: Path) -> None:
        self.bootstrap, self.redis_url, self.topics, self.tmp = bootstrap, redis_url, topics, tmp
        stream = produce_stream(
            bootstrap, topics["predictions"], topics["ground-truth"], models=4, per_model=3000
        )
        self.expected = stream.expected_offsets(PARTITIONS)

    def env(self, share: float) -> dict[str, str]:
        """A monitor checkpointing every 200 records or 1 s, with ``max_share: share``."""
        config = write_config(
            self.tmp / f"share-{share}.yaml",
            self.topics,
            every_events=200,
            every_seconds=1.0,
            max_share=share,
        )
        return monitor_env(self.bootstrap, self.redis_url, config)


@pytest.fixture
def backlog(kafka_bootstrap: str, redis_url: str, make_topics: Any, tmp_path: Path) -> Backlog:
    return Backlog(
        kafka_bootstrap, redis_url, make_topics(*TOPICS, partitions=PARTITIONS), tmp_path
    )


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
    backlog: Backlog, redis_client: redis.Redis, topic_prefix: str
) -> None:
    runs = {
        # 1: no pause beyond the checkpoint itself; 0.001: 1000x it
        share: _run(
            backlog.env(share), redis_client, f"{topic_prefix}share-{share}", backlog.expected
        )
        for share in (1.0, 0.001)
    }
    (every, status), (paced, paced_status) = runs[1.0], runs[0.001]
    # 24 000 records: one checkpoint per 200 of them, or a pause of ~1000 checkpoints' time
    assert every >= 16, (every, paced)
    assert paced * 4 <= every, (paced, every)
    assert paced_status["models"] == status["models"]


def test_a_kill_during_a_long_pause_replays_more_and_applies_the_same(
    backlog: Backlog, redis_client: redis.Redis, topic_prefix: str
) -> None:
    env = backlog.env(0.001)
    killed = f"{topic_prefix}killed"
    monitor = start_monitor(env, killed, "--log-level", "DEBUG", counting=True)
    monitor.wait_for_log(CHECKPOINTED)  # the first one sets a long pause: kill inside it
    assert monitor.stop(kill=True) == -9
    # some of it is replayed
    assert checkpointed_offsets(redis_client, killed) != backlog.expected
    _, after_kill = _run(env, redis_client, killed, backlog.expected)
    _, uninterrupted = _run(env, redis_client, f"{topic_prefix}clean", backlog.expected)
    assert after_kill["models"] == uninterrupted["models"]
