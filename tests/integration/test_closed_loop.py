"""The closed loop, end to end, on the local stack: `driftradar demo --headless --duration 150`
runs the monitor, the retrain worker and the simulator (stable -> data drift -> concept
drift); then the topics it wrote are read back and checked.

One demo run (module fixture, ~150 s) serves every test here, to keep CI short. It runs on
the session's broker and Redis (the demo then uses topics and groups of its own).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import numpy as np
import pytest
import redis
from confluent_kafka import Message

from streams.core.events import (
    decode_alert,
    decode_deployment,
    decode_ground_truth,
    decode_prediction,
    decode_retrain_request,
)
from streams.demo.plan import FIRST_VERSION, MIN_ROC_AUC, DemoTopics
from streams.engine.config import RetrainConfig
from streams.engine.performance import compute_metric
from streams.engine.retrain import VERIFICATION

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ReadTopic = Callable[..., list[Message]]
T = TypeVar("T")
DURATION = 150
#: Event-time cooldown of the default retrain policy the demo runs (RetrainConfig).
COOLDOWN = RetrainConfig().cooldown_seconds


@dataclass(frozen=True)
class DemoRun:
    returncode: int
    output: str
    topics: DemoTopics


@pytest.fixture(scope="module")
def demo(kafka_bootstrap: str, redis_url: str) -> Iterator[DemoRun]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "REDIS_URL": redis_url}
    env.pop("DRIFTRADAR_CONFIG", None)
    command = [sys.executable, "-m", "streams.cli", "demo", "--headless", "--duration", "150"]
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=DURATION + 90, check=False
        )
        match = re.search(r"topics (demo-[0-9a-f]{8}-)", done.stdout)
        assert match is not None, f"no topic prefix in the demo output:\n{done.stdout}"
        yield DemoRun(done.returncode, done.stdout + done.stderr, DemoTopics(match.group(1)))
    finally:
        # the retrain worker records deployed versions per model id in Redis
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter("driftradar:retrain:*"):
            client.delete(key)
        client.close()


def _t(text: str | None) -> float:
    """Epoch seconds of an RFC 3339 timestamp of an alert or request."""
    assert text is not None
    return datetime.fromisoformat(text).timestamp()


def _decoded(read_topic: ReadTopic, topic: str, decode: Callable[[bytes], T]) -> list[T]:
    return [decode(message.value() or b"") for message in read_topic(topic)]


def test_demo_exits_0_and_its_summary_tells_the_story(demo: DemoRun) -> None:
    assert demo.returncode == 0, demo.output
    out = demo.output
    assert "story: complete" in out
    assert re.search(r"alerts by type: .*data_drift [1-9]", out), out
    assert re.search(r"alerts by type: .*(concept_drift|performance_degradation) [1-9]", out)
    assert "retrain requests: 1\n" in out
    assert "deployments: 1\n" in out
    assert re.search(r"verification: churn@v\d+ info", out), out
    for segment in ("stable", "data drift", "concept drift", "after retrain"):
        assert re.search(rf"^{segment} +\d+ +0\.\d{{3}} +0\.\d{{3}}$", out, re.M), segment


def test_concept_drift_retrains_once_and_the_new_version_recovers(
    demo: DemoRun, read_topic: ReadTopic
) -> None:
    topics = demo.topics
    requests = _decoded(read_topic, topics.retrain_requests, decode_retrain_request)
    deployments = _decoded(read_topic, topics.deployments, decode_deployment)
    alerts = _decoded(read_topic, topics.alerts, decode_alert)

    # exactly one retrain request (ids dedupe an at-least-once redelivery), for the old
    # version, because of model problems (the concept drift; the performance limit may or
    # may not be crossed by then), with its labelled pairs; none in the cooldown after it
    unique = {r.request_id: r for r in requests}
    assert len(unique) == 1, [r.requested_at for r in requests]
    (request,) = unique.values()
    assert request.model_version == FIRST_VERSION
    assert {r.type for r in request.reasons} <= {"concept_drift", "performance_degradation"}
    assert request.complete
    assert request.labelled_pairs is not None
    assert request.labelled_pairs >= RetrainConfig().min_labelled

    # one deployment answering it, and the verification of that version
    assert len({d.model_version for d in deployments}) == 1
    deployment = deployments[0]
    assert deployment.request_id == request.request_id
    assert deployment.previous_version == FIRST_VERSION
    new = deployment.model_version
    verifications = [a for a in alerts if a.detector == VERIFICATION]
    assert [(a.model_version, a.severity) for a in verifications] == [(new, "info")]
    assert verifications[0].details["request_id"] == request.request_id
    assert verifications[0].details["value"] >= MIN_ROC_AUC

    # the data drift came first and did not request retraining; the drift alerts carry v1
    drift = [a for a in alerts if a.type == "data_drift"]
    assert drift
    assert min(_t(a.event_time) for a in drift) < _t(request.requested_at)
    assert all(a.model_version == FIRST_VERSION for a in alerts if a.type == "concept_drift")

    # predictions carry the new version after the switch, and its performance recovers
    predictions = [decode_prediction(m.value() or b"") for m in read_topic(topics.predictions)]
    labels = {
        g.event_id: float(g.label)
        for g in (decode_ground_truth(m.value() or b"") for m in read_topic(topics.ground_truth))
    }
    versions = [p.model_version for p in predictions]
    switch = versions.index(new)
    assert set(versions[switch:]) == {new}, "once switched, the model server stays on it"
    assert set(versions[:switch]) == {FIRST_VERSION}

    def auc(chosen: list[float]) -> float:
        pairs = np.asarray(chosen, dtype=np.float64).reshape(-1, 2)
        value = compute_metric("roc_auc", pairs[:, 0], pairs[:, 1], 0.5)
        assert value is not None
        return value

    # every prediction after the request is within its cooldown: no second request
    assert predictions[-1].event_time() - _t(request.requested_at) < COOLDOWN
    window_start = _t(request.window.start)  # in the changed world
    served_in_drift = [
        v
        for p in predictions[:switch]
        if p.event_id in labels and p.event_time() >= window_start
        for v in (float(p.prediction), labels[p.event_id])
    ]
    after = [
        v
        for p in predictions[switch:]
        if p.event_id in labels
        for v in (float(p.prediction), labels[p.event_id])
    ]
    assert len(after) // 2 > 2000
    assert auc(served_in_drift) < MIN_ROC_AUC <= auc(after)
