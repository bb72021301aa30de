"""Prometheus metrics of the retrain worker, on an injectable registry.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> metrics = RetrainMetrics(registry)
>>> metrics.transition("churn", "received")
>>> registry.get_sample_value(
...     "driftradar_retrain_status_transitions_total", {"model_id": "churn", "status": "received"})
1.0
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["RetrainMetrics"]


class RetrainMetrics:
    """Counters per request status, attempts, action durations, and in-flight requests.

    - ``driftradar_retrain_requests_handled_total{model_id,status}``: messages handled, by
      final status: ``succeeded``, ``failed``, ``duplicate`` (already final: skipped),
      ``invalid`` (not a retrain request: dead-lettered).
    - ``driftradar_retrain_status_transitions_total{model_id,status}``: every status a
      request entered (``received``, ``running``, ``succeeded``, ``failed``).
    - ``driftradar_retrain_attempts_total{model_id,action,outcome}``: ``ok`` / ``error``.
    - ``driftradar_retrain_action_seconds{action}``: duration of each attempt.
    - ``driftradar_retrain_in_progress{model_id}``: requests being worked on now.
    - ``driftradar_retrain_last_success_timestamp_seconds{model_id}``.
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.handled = Counter(
            "driftradar_retrain_requests_handled_total",
            "Retrain request messages handled, by final status",
            ["model_id", "status"],
            registry=registry,
        )
        self.transitions = Counter(
            "driftradar_retrain_status_transitions_total",
            "Status transitions of retrain requests",
            ["model_id", "status"],
            registry=registry,
        )
        self.attempts = Counter(
            "driftradar_retrain_attempts_total",
            "Retrain action attempts, by outcome",
            ["model_id", "action", "outcome"],
            registry=registry,
        )
        self.action_seconds = Histogram(
            "driftradar_retrain_action_seconds",
            "Duration of one retrain action attempt",
            ["action"],
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=registry,
        )
        self.in_progress = Gauge(
            "driftradar_retrain_in_progress",
            "Retrain requests being worked on",
            ["model_id"],
            registry=registry,
        )
        self.last_success = Gauge(
            "driftradar_retrain_last_success_timestamp_seconds",
            "When a retrain request of the model last succeeded",
            ["model_id"],
            registry=registry,
        )

    def transition(self, model_id: str, status: str) -> None:
        self.transitions.labels(model_id=model_id, status=status).inc()

    def handled_as(self, model_id: str, status: str) -> None:
        self.handled.labels(model_id=model_id, status=status).inc()

    def attempt(self, model_id: str, action: str, ok: bool, seconds: float) -> None:
        self.attempts.labels(
            model_id=model_id, action=action, outcome="ok" if ok else "error"
        ).inc()
        self.action_seconds.labels(action=action).observe(seconds)
