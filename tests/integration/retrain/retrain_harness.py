"""Pieces for the retrain worker's integration tests: a fake clock and a scripted action.

(Not a conftest.py: with ``--doctest-modules`` two conftest.py files in the tree clash.)

The broker and Redis are real (the project's fixtures); only time and the action's outcome
are scripted, so that backoff waits and lease expiry take no wall-clock time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from producers.retrain.backoff import BackoffPolicy
from producers.retrain.decision import Decision
from producers.retrain.errors import ActionError
from producers.retrain.metrics import RetrainMetrics
from producers.retrain.state import RequestStore
from producers.retrain.worker import RetrainWorker, WorkerSettings
from streams.core.events import RetrainRequest, RetrainResult, decode_retrain_result
from streams.core.kafka import TEST_GROUP, producer_config
from streams.core.settings import TopicsConfig


class Crash(BaseException):
    """Stands for the process dying: nothing in the worker catches a BaseException."""


@dataclass
class FakeTime:
    now: float = 1_800_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class ScriptedAction:
    """Fails (or crashes) as scripted, then decides ``decision``; records every call."""

    script: list[ActionError | BaseException] = field(default_factory=list)
    calls: list[tuple[str, int]] = field(default_factory=list)
    decision: Decision = field(
        default_factory=lambda: Decision.declined("scripted: not better", {"gain": -0.1})
    )
    name: str = "scripted"

    def run(self, request: RetrainRequest, raw: bytes, attempt: int) -> Decision:
        self.calls.append((request.request_id, attempt))
        if self.script:
            raise self.script.pop(0)
        return self.decision


def request_bytes(request_id: str, model_id: str = "churn") -> bytes:
    return (
        f'{{"request_id": "{request_id}", "model_id": "{model_id}", "model_version": "v3",'
        ' "requested_at": "2026-11-27T10:05:00Z",'
        ' "reasons": [{"alert_id": "a1", "type": "concept_drift", "signal": "error"}],'
        ' "window": {"start": "2026-11-27T09:00:00Z", "end": "2026-11-27T10:00:00Z"}}'
    ).encode()


def publish(bootstrap: str, topic: str, messages: list[tuple[str, bytes]]) -> None:
    producer = Producer(producer_config(bootstrap))
    for key, value in messages:
        producer.produce(topic, value=value, key=key)
    assert producer.flush(10) == 0


@dataclass
class Harness:
    bootstrap: str
    store: RequestStore
    topics: dict[str, str]
    group_id: str
    time: FakeTime = field(default_factory=FakeTime)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.metrics = RetrainMetrics(self.registry)

    def worker(
        self,
        action: Any,
        *,
        owner: str = "worker-a",
        max_attempts: int = 3,
        lease_seconds: float = 60.0,
        cls: type[RetrainWorker] = RetrainWorker,
    ) -> RetrainWorker:
        settings = WorkerSettings(
            bootstrap=self.bootstrap,
            group_id=self.group_id,
            topics=TopicsConfig(
                retrain_requests=self.topics["retrain-requests"],
                alerts=self.topics["drift-alerts"],
                dead_letter=self.topics["dead-letter"],
                retrain_results=self.topics["retrain-results"],
            ),
            lease_seconds=lease_seconds,
            poll_timeout=0.1,
            group_timings=TEST_GROUP,
            owner=owner,
        )
        backoff = BackoffPolicy(
            base=0.5, factor=2.0, max_delay=30.0, max_attempts=max_attempts, jitter=False
        )
        return cls(
            settings,
            action,
            self.store,
            backoff=backoff,
            metrics=self.metrics,
            clock=self.time.clock,
            sleep=self.time.sleep,
        )

    def decided(self, outcome: str, model_id: str = "churn") -> float:
        value = self.registry.get_sample_value(
            "driftradar_retrain_results_total", {"model_id": model_id, "outcome": outcome}
        )
        return value or 0.0

    def handled(self, status: str, model_id: str = "churn") -> float:
        value = self.registry.get_sample_value(
            "driftradar_retrain_requests_handled_total", {"model_id": model_id, "status": status}
        )
        return value or 0.0


def make_harness(
    kafka_bootstrap: str,
    redis_client: Any,
    make_topics: Callable[..., dict[str, str]],
    topic_prefix: str,
) -> Harness:
    topics = make_topics(
        "retrain-requests", "drift-alerts", "dead-letter", "retrain-results", partitions=1
    )
    store = RequestStore(redis_client, prefix=f"{topic_prefix}retrain")
    return Harness(kafka_bootstrap, store, topics, f"{topic_prefix}worker")


def results(read_topic: Callable[..., list[Any]], topic: str) -> list[RetrainResult]:
    """Every retrain result on ``topic``, in order; each keyed by its model id."""
    found = []
    for message in read_topic(topic):
        result = decode_retrain_result(message.value() or b"")
        assert message.key() == result.model_id.encode()
        found.append(result)
    return found
