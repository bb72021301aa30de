"""The built-in trainer (``--action local``): refit the churn model on the request's window.

Steps: read the labelled events of the window back from the input topics
(:func:`~producers.retrain.dataset.read_window`); split by event time — the oldest
``1 - holdout`` for training, the most recent ``holdout`` held out; fit a logistic
regression (:mod:`~producers.retrain.trainer`); score it and the *current* model (the
predictions it actually served for those held-out events) by log-loss, accuracy and AUC;
deploy only if the candidate's log-loss is lower by more than ``min_improvement``.

Deploying publishes a :class:`~streams.events.Deployment` to ``model-deployments`` (key:
``model_id``) and records the version in Redis under ``<prefix>:model:<model_id>``
(fields ``version``, ``number``, ``request_id``, ``deployed_at``, ``deployment``). The
deployment of a request is stored first under ``<prefix>:deployment:<request_id>``, so a
retried or redelivered request republishes the *same* version instead of a second one.

Too few labelled events (labels may still be arriving) is a retryable error; labels that
are not binary, or served predictions that are not probabilities, are not.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import redis
from confluent_kafka import KafkaError, Message, Producer

from producers.retrain.dataset import LabelledEvent, parse_time, read_window
from producers.retrain.errors import ActionError, ConfigError
from producers.retrain.trainer import fit_logistic, predict_many, score
from streams.core.settings import DEPLOYMENTS_TOPIC, TOPICS
from streams.events import Deployment, Label, RetrainRequest, decode_deployment, encode, rfc3339
from streams.kafka_config import producer_config

__all__ = ["LocalTrainerAction", "binary_label", "next_version"]

_VERSION: Final = re.compile(r"^v?(\d+)$")


def binary_label(value: Label) -> float:
    """0/1 from a contract label: 0/1 numbers, booleans, or the strings "0"/"1"/"true"/"false".

    >>> [binary_label(v) for v in (1, 0.0, True, "false")]
    [1.0, 0.0, 1.0, 0.0]
    >>> binary_label(0.3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    producers.retrain.errors.ActionError: label 0.3 is not binary (0/1, true/false): ...
    """
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and value in (0, 1):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in {"0", "1", "true", "false"}:
        return 1.0 if value.strip().lower() in {"1", "true"} else 0.0
    raise ActionError(
        f"label {value!r} is not binary (0/1, true/false): the local trainer fits binary "
        "classifiers only",
        retryable=False,
    )


def next_version(current: str, recorded_number: int) -> tuple[str, int]:
    """The version after ``current`` (``"v3"`` → ``"v4"``), past any number already recorded.

    >>> next_version("v3", 0), next_version("unknown", 0), next_version("v2", 7)
    (('v4', 4), ('v1', 1), ('v8', 8))
    """
    match = _VERSION.match(current)
    number = max(int(match.group(1)) if match else 0, recorded_number) + 1
    return f"v{number}", number


@dataclass
class LocalTrainerAction:
    """Fit, evaluate against the current model, and deploy only if better."""

    bootstrap: str
    redis_client: redis.Redis
    predictions_topic: str = TOPICS.predictions
    ground_truth_topic: str = TOPICS.ground_truth
    deployments_topic: str = DEPLOYMENTS_TOPIC
    prefix: str = "driftradar:retrain"
    holdout: float = 0.25
    min_rows: int = 100
    min_improvement: float = 0.0
    l2: float = 1.0
    max_rows: int = 500_000
    read_timeout: float = 120.0
    kafka_extra: Mapping[str, Any] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    name: str = "local"

    def __post_init__(self) -> None:
        if not 0.0 < self.holdout < 1.0:
            raise ConfigError("--holdout", f"must be between 0 and 1, got {self.holdout}")
        if self.min_rows < 4:
            raise ConfigError("--min-rows", f"must be >= 4, got {self.min_rows}")
        if self.min_improvement < 0:
            raise ConfigError("--min-improvement", f"must be >= 0, got {self.min_improvement}")
        self._producer: Producer | None = None

    def model_key(self, model_id: str) -> str:
        return f"{self.prefix}:model:{model_id}"

    def deployment_key(self, request_id: str) -> str:
        return f"{self.prefix}:deployment:{request_id}"

    def run(self, request: RetrainRequest, raw: bytes, attempt: int) -> dict[str, Any]:
        stored = self.redis_client.get(self.deployment_key(request.request_id))
        if stored is not None:  # a retry after the deployment was decided: same version again
            deployment = decode_deployment(stored)
            self._publish_and_record(deployment)
            return self._summary(deployment.evaluation, deployment, replayed=True)
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
        evaluation, candidate = self._fit_and_evaluate(events)
        if not evaluation["better"]:
            return self._summary(evaluation, None)
        deployment = self._deployment(request, candidate, evaluation)
        # SET NX: if a concurrent/earlier attempt stored one, that one wins.
        key = self.deployment_key(request.request_id)
        if not self.redis_client.set(key, encode(deployment), nx=True):
            deployment = decode_deployment(self.redis_client.get(key) or b"")
        self._publish_and_record(deployment)
        return self._summary(evaluation, deployment)

    def _fit_and_evaluate(self, events: Sequence[LabelledEvent]) -> tuple[dict[str, Any], Any]:
        if len(events) < self.min_rows:
            raise ActionError(
                f"only {len(events)} labelled events in the window, need --min-rows "
                f"{self.min_rows} (labels may still be arriving)",
                retryable=True,
            )
        labels = [binary_label(e.label) for e in events]
        served = [_probability(e) for e in events]
        split = len(events) - max(1, round(len(events) * self.holdout))
        train_y, hold_y = labels[:split], labels[split:]
        if len(set(train_y)) < 2:
            raise ActionError("the training part of the window has one class only", retryable=True)
        params = fit_logistic([e.features for e in events[:split]], train_y, l2=self.l2)
        candidate = score(hold_y, predict_many(params, [e.features for e in events[split:]]))
        current = score(hold_y, served[split:])
        better = candidate.log_loss < current.log_loss - self.min_improvement
        evaluation = {
            "metric": "log_loss",
            "better": better,
            "min_improvement": self.min_improvement,
            "candidate": candidate.as_dict(),
            "current": current.as_dict(),
            "train_rows": split,
            "holdout_rows": len(events) - split,
            "holdout_start": rfc3339(events[split].event_time),
            "holdout_end": rfc3339(events[-1].event_time),
        }
        return evaluation, params

    def _deployment(
        self, request: RetrainRequest, params: Any, evaluation: dict[str, Any]
    ) -> Deployment:
        model = self.redis_client.hgetall(self.model_key(request.model_id))
        fields = {_text(k): _text(v) for k, v in model.items()}
        current = fields.get("version", request.model_version)
        version, _ = next_version(current, int(fields.get("number", "0")))
        return Deployment(
            model_id=request.model_id,
            model_version=version,
            parameters=params,
            evaluation=evaluation,
            deployed_at=rfc3339(self.clock()),
            request_id=request.request_id,
            previous_version=current,
        )

    def _publish_and_record(self, deployment: Deployment) -> None:
        self._publish(deployment)
        number = _VERSION.match(deployment.model_version)
        key = self.model_key(deployment.model_id)
        recorded = self.redis_client.hget(key, "number")
        if recorded is not None and int(recorded) > int(number.group(1) if number else 0):
            return  # a later version is already live: never move backwards
        self.redis_client.hset(
            key,
            mapping={
                "version": deployment.model_version,
                "number": number.group(1) if number else "0",
                "request_id": deployment.request_id,
                "deployed_at": deployment.deployed_at,
                "deployment": encode(deployment),
            },
        )

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

    def _summary(
        self,
        evaluation: Mapping[str, Any],
        deployment: Deployment | None,
        *,
        replayed: bool = False,
    ) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "action": self.name,
            "deployed": deployment is not None,
            "evaluation": dict(evaluation),
        }
        if deployment is not None:
            summary["model_version"] = deployment.model_version
            summary["replayed"] = replayed
        return summary

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(10.0)
            self._producer = None


def _probability(event: LabelledEvent) -> float:
    value = event.prediction
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ActionError(
            f"event {event.event_id!r}: served prediction {value!r} is not a probability; "
            "the local trainer compares binary probability models only",
            retryable=False,
        )
    return float(value)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
