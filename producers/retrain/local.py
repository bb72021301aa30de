"""The built-in trainer (``--action local``): refit the churn model on the request's window.

Steps: read the labelled events of the window back from the input topics
(:func:`~producers.retrain.dataset.read_window`) — the window starts where the monitor
located the change, so these are rows of the new regime; compare a candidate with the
*current* model on the same held-out rows (:func:`~producers.retrain.evaluation.compare`:
the oldest ``1 - holdout`` train, the newest ``holdout`` are held out); deploy only when
the candidate is better by the margin. Every other end is a :class:`Decision` to decline
(too few rows, training failed, no better than chance, not better by the margin).

The current model is the version this worker deployed last for the model (its parameters
are in Redis, below) when that is at least the request's ``model_version``; otherwise —
the first version, which nobody deployed through this worker — it is scored by the
predictions it served for the held-out events. For the simulator's first version those
are exactly :data:`producers.churn.MODEL_COEFFICIENTS` applied to each event
(:func:`producers.churn.model_parameters` is the same model as parameters).

Deploying publishes a :class:`~streams.core.events.Deployment` to ``model-deployments`` (key:
``model_id``) and records the version in Redis under ``<prefix>:model:<model_id>``
(fields ``version``, ``number``, ``request_id``, ``deployed_at``, ``deployment``). The
deployment of a request is stored first under ``<prefix>:deployment:<request_id>``, so a
retried or redelivered request answers with the *same* version instead of a second one,
and does not publish it again once it is recorded.

What is not about the data — a topic that cannot be read, a deployment that cannot be
published — is an :class:`ActionError` that the worker retries.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import redis
from confluent_kafka import KafkaError, Message, Producer

from producers.retrain.dataset import parse_time, read_window
from producers.retrain.decision import Decision
from producers.retrain.errors import ActionError
from producers.retrain.evaluation import (
    DEFAULT_MIN_ROWS,
    CurrentModel,
    DecisionRules,
    binary_label,
    compare,
)
from streams.core.events import (
    Deployment,
    LogisticParameters,
    RetrainRequest,
    decode_deployment,
    encode,
    rfc3339,
)
from streams.core.kafka import producer_config
from streams.core.settings import DEPLOYMENTS_TOPIC, TOPICS

__all__ = ["LocalTrainerAction", "binary_label", "next_version"]

_VERSION: Final = re.compile(r"^v?(\d+)$")


def next_version(current: str, recorded_number: int) -> tuple[str, int]:
    """The version after ``current`` (``"v3"`` → ``"v4"``), past any number already recorded.

    >>> next_version("v3", 0), next_version("unknown", 0), next_version("v2", 7)
    (('v4', 4), ('v1', 1), ('v8', 8))
    """
    number = max(_number(current), recorded_number) + 1
    return f"v{number}", number


def _number(version: str) -> int:
    match = _VERSION.match(version)
    return int(match.group(1)) if match else 0


@dataclass
class LocalTrainerAction:
    """Fit, compare with the current model on the same held-out rows, deploy only if better."""

    bootstrap: str
    redis_client: redis.Redis
    predictions_topic: str = TOPICS.predictions
    ground_truth_topic: str = TOPICS.ground_truth
    deployments_topic: str = DEPLOYMENTS_TOPIC
    prefix: str = "driftradar:retrain"
    holdout: float = 0.25
    min_rows: int = DEFAULT_MIN_ROWS
    min_improvement: float = 0.0
    confidence: float = 0.99
    l2: float = 1.0
    max_rows: int = 500_000
    read_timeout: float = 120.0
    kafka_extra: Mapping[str, Any] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    name: str = "local"

    def __post_init__(self) -> None:
        self.rules = DecisionRules(
            min_rows=self.min_rows,
            holdout=self.holdout,
            min_improvement=self.min_improvement,
            confidence=self.confidence,
            l2=self.l2,
        )
        self._producer: Producer | None = None

    def model_key(self, model_id: str) -> str:
        return f"{self.prefix}:model:{model_id}"

    def deployment_key(self, request_id: str) -> str:
        return f"{self.prefix}:deployment:{request_id}"

    def run(self, request: RetrainRequest, raw: bytes, attempt: int) -> Decision:
        stored = self.redis_client.get(self.deployment_key(request.request_id))
        if stored is not None:  # a retry after the deployment was decided: same version again
            deployment = decode_deployment(stored)
            return self._deployed(deployment, replayed=self._publish_and_record(deployment))
        current = self.current_model(request)
        events = read_window(
            self.bootstrap,
            predictions_topic=self.predictions_topic,
            ground_truth_topic=self.ground_truth_topic,
            model_id=request.model_id,
            start=parse_time("window.start", request.window.start),
            end=parse_time("window.end", request.window.end),
            consumer_extra=self.kafka_extra,
            timeout=self.read_timeout,
            max_rows=self.max_rows,
        )
        comparison = compare(events, current, self.rules)
        evaluation = comparison.evaluation | {
            "reason": comparison.reason,
            "window_start": request.window.start,
            "window_end": request.window.end,
            "detected_at": request.detected_at,
            "labelled_pairs": request.labelled_pairs,
            "complete": request.complete,
        }
        if comparison.candidate is None:
            return Decision.declined(comparison.reason, evaluation, {"action": self.name})
        deployment = self._deployment(request, comparison.candidate, evaluation, current)
        # SET NX: if a concurrent/earlier attempt stored one, that one wins.
        key = self.deployment_key(request.request_id)
        if not self.redis_client.set(key, encode(deployment), nx=True):
            deployment = decode_deployment(self.redis_client.get(key) or b"")
        return self._deployed(deployment, replayed=self._publish_and_record(deployment))

    def current_model(self, request: RetrainRequest) -> CurrentModel:
        """The model a candidate must beat: the version this worker deployed last, if it is
        not older than the request's; else the request's version, by what it served."""
        raw = self.redis_client.hget(self.model_key(request.model_id), "deployment")
        if raw is not None:
            deployed = decode_deployment(raw)
            if _number(deployed.model_version) >= _number(request.model_version):
                return CurrentModel(deployed.model_version, deployed.parameters)
        return CurrentModel(request.model_version)

    def _deployed(self, deployment: Deployment, *, replayed: bool) -> Decision:
        evaluation = dict(deployment.evaluation)
        reason = str(evaluation.get("reason") or "better than the current model by the margin")
        details = {"action": self.name, "replayed": replayed}
        return Decision.deployed(deployment.model_version, reason, evaluation, details)

    def _deployment(
        self,
        request: RetrainRequest,
        params: LogisticParameters,
        evaluation: dict[str, Any],
        current: CurrentModel,
    ) -> Deployment:
        recorded = self.redis_client.hget(self.model_key(request.model_id), "number")
        version, _ = next_version(current.version, int(recorded or 0))
        return Deployment(
            model_id=request.model_id,
            model_version=version,
            parameters=params,
            evaluation=evaluation,
            deployed_at=rfc3339(self.clock()),
            request_id=request.request_id,
            previous_version=current.version,
        )

    def _publish_and_record(self, deployment: Deployment) -> bool:
        """Publish ``deployment`` and record it as the model's, unless that was done before
        (a replay after both): then return True.

        Never goes backwards: a deployment older than the recorded version is not published
        again. (A model's requests share a partition, so one worker handles them in order
        and a request is final before the next one starts.)
        """
        key = self.model_key(deployment.model_id)
        number, request_id = self.redis_client.hmget(key, ["number", "request_id"])
        target = _number(deployment.model_version)
        if request_id is not None and _text(request_id) == deployment.request_id:
            return True  # published, then recorded: nothing left to do
        if number is not None and int(number) > target:
            return True  # a later version is live already
        self._publish(deployment)
        self.redis_client.hset(
            key,
            mapping={
                "version": deployment.model_version,
                "number": str(target),
                "request_id": deployment.request_id,
                "deployed_at": deployment.deployed_at,
                "deployment": encode(deployment),
            },
        )
        return False

    def _publish(self, deployment: Deployment) -> None:
        if self._producer is None:
            self._producer = Producer(producer_config(self.bootstrap, self.kafka_extra))
        failures: list[str] = []
        lock = threading.Lock()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                with lock:
                    failures.append(err.str())

        self._producer.produce(
            self.deployments_topic,
            value=encode(deployment),
            key=deployment.model_id,
            on_delivery=on_delivery,
        )
        remaining = self._producer.flush(30.0)
        if failures or remaining:
            reason = failures[0] if failures else "not acknowledged within 30 s"
            raise ActionError(
                f"publishing the deployment to {self.deployments_topic!r} failed: {reason}",
                retryable=True,
            )

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(10.0)
            self._producer = None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
