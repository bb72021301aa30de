"""`driftradar run --metrics-port 0` serves its metrics and health while it consumes a stream."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from runner_harness import (
    TOPICS,
    Monitor,
    monitor_env,
    produce_stream,
    start_monitor,
    wait_for_offsets,
    write_config,
)

pytestmark = pytest.mark.integration

PARTITIONS = 2
PER_MODEL = 1200
BAD_EVERY = 100

Samples = dict[str, list[tuple[dict[str, str], float]]]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _scrape(base: str) -> Samples:
    status, body = _get(base + "/metrics")
    assert status == 200
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    matches = [v for got, v in samples[name] if labels.items() <= got.items()]
    assert matches, f"no {name}{labels} in {samples[name]}"
    return sum(matches)


def _eventually(what: str, check: Callable[[], bool], monitor: Monitor, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if monitor.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s\n{monitor.log()}")
        time.sleep(0.1)


def test_run_serves_metrics_health_and_readiness(
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
    env["DRIFTRADAR_METRICS_PORT"] = "1"  # the flag wins over the environment (0 there)
    started = time.time()
    monitor = start_monitor(env, topic_prefix + "g", "--metrics-port", "0")
    try:
        monitor.wait_for_log("serving /metrics", timeout=30)
        found = re.search(r"serving /metrics, /healthz, /readyz on \S+:(\d+)", monitor.log())
        assert found, monitor.log()
        base = f"http://127.0.0.1:{found.group(1)}"
        assert _get(base + "/healthz")[0] == 200

        _eventually("/readyz 200", lambda: _get(base + "/readyz")[0] == 200, monitor, 30)
        ready = _get(base + "/readyz")[1]
        assert b'"partitions": "ok"' in ready
        assert b'"kafka": "ok"' in ready
        assert b'"redis": "ok"' in ready

        stream = produce_stream(
            kafka_bootstrap,
            topics["predictions"],
            topics["ground-truth"],
            models=2,
            per_model=PER_MODEL,
            bad_every=BAD_EVERY,
        )
        wait_for_offsets(
            redis_client,
            topic_prefix + "g",
            stream.expected_offsets(PARTITIONS),
            monitors=[monitor],
        )
        # librdkafka statistics (lag) come every 5 s; the engine view about once a second.
        # The last labels (30 s of event time after the last prediction) wait for the quiet
        # predictions topic for max_idle_seconds first, so a statistic may still count them.
        _eventually(
            "lag and model statistics",
            lambda: bool(
                (s := _scrape(base))["driftradar_consumer_lag"]
                and s["driftradar_drift_active"]
                and _value(s, "driftradar_consumer_lag") == 0
            ),
            monitor,
            20,
        )
        samples = _scrape(base)
        assert _get(base + "/healthz")[0] == 200
    finally:
        code = monitor.stop()
    assert code == 0, monitor.log()

    pred, truth = topics["predictions"], topics["ground-truth"]
    bad = len(stream.bad)
    assert bad == 2 * PER_MODEL // BAD_EVERY
    for model in ("m0", "m1"):
        processed = {"model_id": model, "outcome": "processed"}
        assert _value(samples, "driftradar_events_total", topic=pred, **processed) == PER_MODEL
        assert _value(samples, "driftradar_events_total", topic=truth, **processed) == PER_MODEL
        assert _value(samples, "driftradar_predictions_total", model_id=model) == PER_MODEL
        seen = _value(samples, "driftradar_last_event_timestamp_seconds", model_id=model)
        assert started <= seen <= time.time()  # wall-clock processing time, not event time
        assert _value(samples, "driftradar_model_info", model_id=model, model_version="v1") == 1
        joined = _value(samples, "driftradar_join_outcomes_total", model_id=model, outcome="joined")
        assert joined == PER_MODEL
    dead = {"topic": pred, "outcome": "dead_letter"}
    assert _value(samples, "driftradar_events_total", **dead) == bad
    assert _value(samples, "driftradar_dead_letters_total", topic=pred) == bad
    assert _value(samples, "driftradar_event_latency_seconds_count", topic=pred) == 2 * PER_MODEL
    assert _value(samples, "driftradar_assigned_partitions") == 2 * PARTITIONS
    consumed = {pred, truth, topics["retrain-results"]}
    assert {labels["topic"] for labels, _ in samples["driftradar_consumer_lag"]} <= consumed
    assert _value(samples, "driftradar_consumer_lag") == 0  # everything consumed
    assert _value(samples, "driftradar_checkpoint_duration_seconds_count") >= 1
    assert _value(samples, "driftradar_last_checkpoint_timestamp_seconds") >= started
    assert _value(samples, "driftradar_batches_total") >= 1
    assert _value(samples, "driftradar_ready", check="partitions") == 1
    assert _value(samples, "driftradar_loop_heartbeat_timestamp_seconds") >= started
    # the engine's view: one drift flag per model, signal and detector (f0..f3, plan, …)
    for model in ("m0", "m1"):
        signals = {
            labels["signal"]
            for labels, _ in samples["driftradar_drift_active"]
            if labels["model_id"] == model
        }
        assert {"feature:f0", "feature:plan", "prediction", "error"} <= signals
    # the stream changes after 60 %: alerts (and retrain requests), counted as published
    for model in ("m0", "m1"):
        assert _value(samples, "driftradar_alerts_total", model_id=model) >= 1
    assert _value(samples, "driftradar_alerts_total") <= len(read_topic(topics["drift-alerts"]))
    retrains = _value(samples, "driftradar_retrain_requests_total")
    assert retrains <= len(read_topic(topics["retrain-requests"]))
    assert _value(samples, "process_resident_memory_bytes") > 0
    assert samples["process_cpu_seconds_total"]
