"""Prometheus metrics of the retrain worker, on an injectable registry.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> metrics = RetrainMetrics(registry)
>>> metrics.transition("churn", "received")
>>> registry.get_sample_value(
...     "driftradar_retrain_status_transitions_total", {"model_id": "churn", "status": "received"})
1.0

While a request is being acted on the loop cannot beat, so it counts as alive until the
attempt's lease runs out (after that another worker may take the request over):

>>> now = [100.0]
>>> metrics = RetrainMetrics(CollectorRegistry(), clock=lambda: now[0])
>>> metrics.heartbeat()
>>> metrics.busy(until=400.0)
>>> now[0] = 350.0
>>> metrics.last_heartbeat
350.0
>>> now[0] = 500.0
>>> metrics.last_heartbeat
400.0
>>> metrics.heartbeat(); metrics.last_heartbeat
500.0
"""

from __future__ import annotations

import time
from collections.abc import Callable

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
    - ``driftradar_retrain_results_total{model_id,outcome}``: decisions, ``deployed``,
      ``declined``, ``failed`` (each published to ``retrain-results``) or ``handed_over``
      (an external pipeline reports it).
    - ``driftradar_retrain_heartbeat_timestamp_seconds``: the consumer loop's last beat.
    - ``driftradar_retrain_assigned_partitions``: partitions of ``retrain-requests`` held.

    ``last_heartbeat`` and ``assigned_partitions`` are what ``/healthz`` and ``/readyz``
    read (:class:`streams.metrics.server.MetricsServer`).
    """

    def __init__(
        self, registry: CollectorRegistry = REGISTRY, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.registry = registry
        self._clock = clock
        self._last_heartbeat: float | None = None
        self._busy_until: float | None = None
        self._assigned = 0
        self.results = Counter(
            "driftradar_retrain_results_total",
            "Decisions on retrain requests, by outcome",
            ["model_id", "outcome"],
            registry=registry,
        )
        self.heartbeat_gauge = Gauge(
            "driftradar_retrain_heartbeat_timestamp_seconds",
            "When the retrain worker's consumer loop last went round",
            registry=registry,
        )
        self.assigned = Gauge(
            "driftradar_retrain_assigned_partitions",
            "Partitions of the retrain-request topic assigned to this worker",
            registry=registry,
        )
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

    def heartbeat(self) -> None:
        """One turn of the consumer loop; ends a :meth:`busy` period."""
        self._busy_until = None
        self._last_heartbeat = self._clock()
        self.heartbeat_gauge.set(self._last_heartbeat)

    def busy(self, until: float) -> None:
        """An action runs and may take until ``until`` (its lease) without a beat."""
        self._busy_until = until

    @property
    def last_heartbeat(self) -> float | None:
        """The last beat; while busy, now (or the busy deadline, once it has passed)."""
        if self._busy_until is not None:
            return min(self._clock(), self._busy_until)
        return self._last_heartbeat

    def set_assignment(self, partitions: int) -> None:
        self._assigned = partitions
        self.assigned.set(partitions)

    @property
    def assigned_partitions(self) -> int:
        return self._assigned

    def decided(self, model_id: str, outcome: str) -> None:
        self.results.labels(model_id=model_id, outcome=outcome).inc()

    def attempt(self, model_id: str, action: str, ok: bool, seconds: float) -> None:
        self.attempts.labels(
            model_id=model_id, action=action, outcome="ok" if ok else "error"
        ).inc()
        self.action_seconds.labels(action=action).observe(seconds)
