"""`driftradar retrain-worker --action local` killed with SIGKILL while it trains: after a
restart the request has exactly one result and at most one deployment; meanwhile the
worker answers /healthz and /readyz beside /metrics."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message
from retrain_harness import publish, results
from test_retrain_local_trainer import DRIFTED_WORLD, START, churn_events

from producers.retrain.state import RequestStore, Status
from streams.core.events import decode_deployment

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ReadTopic = Callable[..., list[Message]]
MODEL = "churn-kill"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_kill_9_while_training_then_restart_gives_one_result_and_one_deployment(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: Any,
    make_topics: Callable[..., dict[str, str]],
    read_topic: ReadTopic,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    topics = make_topics(
        "predictions",
        "ground-truth",
        "model-deployments",
        "retrain-requests",
        "retrain-results",
        "drift-alerts",
        "dead-letter",
        partitions=1,
    )
    predictions, labels = churn_events(
        6000, seed=21, start=START, model_id=MODEL, label_rule=DRIFTED_WORLD
    )
    publish(kafka_bootstrap, topics["predictions"], predictions)
    publish(kafka_bootstrap, topics["ground-truth"], labels)
    raw = (
        f'{{"request_id": "r-kill", "model_id": "{MODEL}", "model_version": "v3",'
        ' "requested_at": "2026-11-27T11:00:00Z", "reasons": [],'
        ' "window": {"start": "2026-11-27T09:00:00Z", "end": "2026-11-27T11:00:00Z"},'
        ' "detected_at": "2026-11-27T09:00:30Z", "labelled_pairs": 6000, "complete": true}'
    ).encode()
    publish(kafka_bootstrap, topics["retrain-requests"], [(MODEL, raw)])
    config = tmp_path / "driftradar.yaml"
    config.write_text(
        "topics:\n"
        + "".join(
            f"  {key}: {topics[name]}\n"
            for key, name in (
                ("predictions", "predictions"),
                ("ground_truth", "ground-truth"),
                ("retrain_requests", "retrain-requests"),
                ("retrain_results", "retrain-results"),
                ("alerts", "drift-alerts"),
                ("dead_letter", "dead-letter"),
            )
        )
        + "retrain_worker:\n"
        "  action: local\n"
        f"  deployments_topic: {topics['model-deployments']}\n"
        f"  group_id: {topic_prefix}worker\n"
        "  lease_seconds: 5\n"
        "  backoff_base: 0.2\n"
        "  backoff_max_delay: 1\n"
    )
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "REDIS_URL": redis_url,
        "DRIFTRADAR_CONFIG": str(config),
    }

    def start(log: Path, port: int) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "streams.cli", "retrain-worker"]
        command += ["--metrics-port", str(port)]
        with log.open("wb") as out:
            return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)

    first_log = tmp_path / "first.log"
    first = start(first_log, _free_port())
    try:
        _wait_for(
            "the first attempt", lambda: b"attempt 1 with action local" in first_log.read_bytes()
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    store = RequestStore(redis_client)
    state = store.get("r-kill")
    assert state is not None
    # killed while reading and fitting 6000 rows: the request is left running, undecided
    assert (state.status, state.attempts, state.decision) == (Status.RUNNING, 1, None)
    assert read_topic(topics["retrain-results"]) == []

    port = _free_port()
    second_log = tmp_path / "second.log"
    second = start(second_log, port)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for("a result", lambda: bool(read_topic(topics["retrain-results"])), timeout=90)
        # alive and ready: the loop beats, a partition is assigned, Redis answers
        _wait_for("readiness", lambda: _get(url + "/readyz")[0] == 200)
        status, body = _get(url + "/readyz")
        assert body == {"ok": True, "reasons": {"partitions": "ok", "redis": "ok"}}
        status, body = _get(url + "/healthz")
        assert (status, body) == (200, {"ok": True, "reasons": {"loop": "ok"}})
        with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
            exposition = response.read().decode()
        assert f'driftradar_retrain_results_total{{model_id="{MODEL}",outcome="deployed"}} 1.0' in (
            exposition
        )
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    output = second_log.read_text()
    assert second.returncode == 0, output

    [result] = results(read_topic, topics["retrain-results"])
    deployments = [
        decode_deployment(m.value() or b"") for m in read_topic(topics["model-deployments"])
    ]
    assert len(deployments) == 1, deployments
    assert (result.result_id, result.outcome) == ("o-r-kill", "deployed")
    assert result.deployed_version == deployments[0].model_version == "v4"
    assert result.evaluation["window_rows"] == 6000
    # the decision is one log line of the restarted worker
    lines = [line for line in output.splitlines() if "retrain r-kill for churn-kill: " in line]
    assert len(lines) == 1, output
    assert "deployed v4 (roc_auc " in lines[0]
    assert "held-out post-change rows)" in lines[0]
    final = store.get("r-kill")
    assert final is not None
    assert (final.status, final.attempts, result.attempts) == (Status.SUCCEEDED, 2, 2)
