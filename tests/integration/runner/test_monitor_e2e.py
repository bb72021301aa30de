"""`driftradar run`, `status` and `alerts` end to end, with the real engine, broker and Redis."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
import yaml
from runner_harness import (
    ROOT,
    TOPICS,
    BackgroundStream,
    kill_repeatedly,
    monitor_env,
    produce_stream,
    run_to_end,
    scale_out_then_fail_over,
    status_json,
    write_config,
)

pytestmark = pytest.mark.integration

PARTITIONS = 4


def _cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_run_then_status_and_alerts(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    make_topics: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    topics = make_topics(*TOPICS, partitions=PARTITIONS)
    env = monitor_env(kafka_bootstrap, redis_url, write_config(tmp_path / "c.yaml", topics))
    stream = produce_stream(
        kafka_bootstrap,
        topics["predictions"],
        topics["ground-truth"],
        models=3,
        per_model=1200,
        bad_every=100,
    )
    group = topic_prefix + "g"
    status = run_to_end(env, redis_client, group, stream, PARTITIONS)

    models = status["models"]
    assert sorted(models) == ["m0", "m1", "m2"]
    for model in models.values():
        assert (model["predictions"], model["ground_truth"], model["joined"]) == (1200, 1200, 1200)
        assert model["dead_letters"] == 12
        assert model["signals"]["prediction"]["adwin"]["updates"] == 1200
    # the features shift after 60 % of the stream: drift must show somewhere
    assert any(
        state["drift"]
        for model in models.values()
        for per_detector in model["signals"].values()
        for state in per_detector.values()
    )
    assert set(status["partitions"]) <= {str(p) for p in range(PARTITIONS)}

    table = _cli(env, "status", "--group-id", group)
    assert table.returncode == 0, table.stderr
    assert "m1" in table.stdout
    assert "1200" in table.stdout

    tail = _cli(
        env,
        "alerts",
        "--from-beginning",
        "--json",
        "--max",
        "3",
        "--timeout",
        "10",
        "--topic",
        topics["drift-alerts"],
    )
    assert tail.returncode == 0, tail.stderr
    alerts = [msgspec.json.decode(line) for line in tail.stdout.splitlines()]
    assert len(alerts) == 3
    assert all(alert["model_id"] in models for alert in alerts)
    readable = _cli(
        env,
        "alerts",
        "--from-beginning",
        "--max",
        "1",
        "--timeout",
        "10",
        "--topic",
        topics["drift-alerts"],
    )
    assert readable.returncode == 0, readable.stderr
    line = readable.stdout.strip()
    assert not line.startswith("{")  # a readable line, not the JSON
    model_version = line.split()[2]
    assert model_version in {f"{m}@v1" for m in models}


@pytest.mark.slow
def test_kill_9_and_restart_gives_the_status_of_an_uninterrupted_run(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    make_topics: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    topics = make_topics(*TOPICS, partitions=PARTITIONS)
    env = monitor_env(kafka_bootstrap, redis_url, write_config(tmp_path / "c.yaml", topics))
    background = BackgroundStream(
        kafka_bootstrap, topics, models=4, per_model=800, bad_every=90, rate=500.0
    )
    group = topic_prefix + "crashed"
    kills = kill_repeatedly(env, redis_client, group, background, seed=5, max_pause=0.8)
    stream = background.join()
    assert kills >= 3, "the stream ended before the monitor could be killed 3 times"
    after_crashes = run_to_end(env, redis_client, group, stream, PARTITIONS)
    uninterrupted = run_to_end(env, redis_client, topic_prefix + "clean", stream, PARTITIONS)
    assert after_crashes["models"] == uninterrupted["models"]
    assert sum(m["joined"] for m in uninterrupted["models"].values()) == 4 * 800


@pytest.mark.slow
def test_scale_out_and_failover_keep_every_event_once(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    make_topics: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    topics = make_topics(*TOPICS, partitions=PARTITIONS)
    env = monitor_env(kafka_bootstrap, redis_url, write_config(tmp_path / "c.yaml", topics))
    background = BackgroundStream(kafka_bootstrap, topics, models=6, per_model=500, rate=800.0)
    group = topic_prefix + "scaled"
    stream, second = scale_out_then_fail_over(env, redis_client, group, background, PARTITIONS)
    # it got a share when it joined, then the dead member's partitions too
    assert second.log().count("assigned partitions") >= 2, second.log()
    scaled = status_json(env, group)
    single = run_to_end(env, redis_client, topic_prefix + "single", stream, PARTITIONS)
    assert scaled["models"] == single["models"]
    assert len(scaled["models"]) == 6


def test_refuses_to_start_when_inputs_are_not_co_partitioned(
    kafka_bootstrap: str, redis_url: str, make_topics: Any, tmp_path: Path
) -> None:
    topics = make_topics(*(t for t in TOPICS if t != "predictions"))
    topics.update(make_topics("predictions", partitions=2))
    env = monitor_env(kafka_bootstrap, redis_url, write_config(tmp_path / "c.yaml", topics))
    done = _cli(env, "run", "--group-id", "never-joins")
    assert done.returncode == 1
    assert f"'{topics['predictions']}' has 2 partitions" in done.stderr
    assert f"'{topics['ground-truth']}' has 4" in done.stderr


def test_bad_configuration_names_the_key(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"checkpoint": {"every_events": 0}}), encoding="utf-8")
    env = monitor_env(kafka_bootstrap, redis_url, config)
    done = _cli(env, "run")
    assert done.returncode == 2
    assert "checkpoint.every_events" in done.stderr


def test_unreachable_redis_is_reported(
    kafka_bootstrap: str, make_topics: Any, tmp_path: Path
) -> None:
    topics = make_topics(*TOPICS)
    env = monitor_env(
        kafka_bootstrap, "redis://127.0.0.1:1/0", write_config(tmp_path / "c.yaml", topics)
    )
    done = _cli(env, "run")
    assert done.returncode == 1
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in done.stderr
    status = _cli(env, "status")
    assert status.returncode == 1
    assert "cannot reach Redis" in status.stderr
