"""Plain-data inputs of :class:`~streams.metrics.MonitorMetrics`: what the runner hands over.

Two shapes, so the metrics module never reaches into the engine:

* :class:`BatchObservation` — what one consumed batch *did* (increments: events by outcome,
  predictions, joins, event-time latencies). The runner fills one per batch.
* :class:`EngineView` — what the engine *is* now (levels: per model, signal and detector
  statistics, performance against its threshold, label coverage and lag). The engine's
  ``metrics_view()`` returns one; a model missing from it (and from its ``model_ids``, when
  the view carries only the models that changed) disappears from this replica's
  ``/metrics``: its partition moved to another replica.

>>> batch = BatchObservation(duration_seconds=0.004, processed_at=100.0)
>>> batch.add_event("predictions", "churn", event_time=99.5, prediction=True, model_version="v3")
>>> batch.add_event("ground-truth", "churn", event_time=40.0)
>>> batch.add_join("churn", "joined")
>>> batch.events[("predictions", "churn", "processed")], batch.predictions[("churn", "v3")]
(1, 1)
>>> batch.latencies["predictions"], batch.latencies["ground-truth"]
([0.5], [60.0])
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NotRequired, TypedDict

__all__ = [
    "OUTCOME_PROCESSED",
    "BatchObservation",
    "DetectorView",
    "EngineView",
    "ModelView",
    "PerformanceView",
]

#: Outcome of a message that reached the engine (the normal case).
OUTCOME_PROCESSED: Final = "processed"
#: Events on this topic are predictions: they count in ``driftradar_predictions_total``.


class DetectorView(TypedDict):
    """One detector on one signal, as :meth:`detectors.base.DetectionResult.to_dict` gives it.

    ``state`` is ``"none" | "warning" | "drift"`` (or the ``DriftState`` int 0/1/2).
    ``statistic``/``threshold``/``p_value``/``window_size`` and every *numeric scalar* in
    ``details`` (e.g. ``psi``, ``ks``, ``mean_before``, ``mean_after``, ``width``) are exported
    as ``driftradar_detector_statistic{stat=<name>}``; lists and strings are skipped.
    ``active`` (optional) is the engine's gated drift flag; when given it, not ``state``,
    decides ``driftradar_drift_active``.
    """

    state: str | int
    updates: int
    statistic: NotRequired[float | None]
    threshold: NotRequired[float | None]
    p_value: NotRequired[float | None]
    window_size: NotRequired[int | None]
    details: NotRequired[Mapping[str, object]]
    active: NotRequired[bool]


class PerformanceView(TypedDict):
    """A rolling performance metric and the level it must not cross.

    ``higher_is_better`` (default True: accuracy, AUC) decides whether ``threshold`` is a
    minimum (``direction="min"``) or, for losses such as log-loss or RMSE, a maximum.
    """

    value: float
    threshold: NotRequired[float | None]
    higher_is_better: NotRequired[bool]


class ModelView(TypedDict, total=False):
    """Everything the engine knows about one model; every key is optional.

    ``signals`` maps a signal (``feature:<name>``, ``prediction``, ``error``,
    ``metric:<name>``…) to its detectors by kind (``adwin``, ``psi``, ``page_hinkley``…).
    ``prediction_band`` is the expected ``(lower, upper)`` range of the prediction mean.
    ``label_coverage`` is the share (0..1) of predictions whose ground truth has joined;
    ``label_lag_seconds`` the typical delay from prediction to ground truth.
    ``estimates`` are metrics estimated without labels (CBPE), beside ``performance``.
    ``retrain`` is the retrain policy's state (``state``, ``retrain_pending``…).
    ``join_totals`` are the engine's cumulative join outcome counts: the increase since the
    previous view is added to ``driftradar_join_outcomes_total`` (the first view of a model
    is its baseline, so totals restored from a checkpoint are not counted again).
    """

    model_version: str
    signals: Mapping[str, Mapping[str, DetectorView]]
    performance: Mapping[str, PerformanceView]
    estimates: Mapping[str, PerformanceView]
    prediction_mean: float
    prediction_band: tuple[float, float]
    error_rate: float
    label_coverage: float
    label_lag_seconds: float
    join_buffer_entries: int
    join_buffer_capacity: int
    join_totals: Mapping[str, int]
    last_event_timestamp_seconds: float
    retrain: Mapping[str, Any]


class EngineView(TypedDict):
    """The engine's state for the models this replica owns: ``{"models": {model_id: …}}``;
    with ``model_ids`` (every model it holds), ``models`` carries only those that changed
    since the previous view."""

    models: Mapping[str, ModelView]
    model_ids: NotRequired[Sequence[str]]


@dataclass(slots=True)
class BatchObservation:
    """What one consumed batch did; counts are increments, not totals.

    ``events`` is keyed ``(topic, model_id, outcome)``; ``model_id`` is ``""`` for a message
    that could not be decoded. ``predictions`` is keyed ``(model_id, model_version)``.
    ``latencies`` holds, per topic, ``processed_at - event_time`` for each event (seconds).
    ``last_seen`` maps each model to the wall-clock time it was last seen (``processed_at``).
    """

    duration_seconds: float
    processed_at: float
    events: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    predictions: Counter[tuple[str, str]] = field(default_factory=Counter)
    joins: Counter[tuple[str, str]] = field(default_factory=Counter)
    latencies: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    last_seen: dict[str, float] = field(default_factory=dict)

    def add_event(
        self,
        topic: str,
        model_id: str,
        *,
        outcome: str = OUTCOME_PROCESSED,
        event_time: float | None = None,
        prediction: bool = False,
        model_version: str = "unknown",
    ) -> None:
        """Count one consumed message (whatever the topic is named); a processed
        ``prediction`` also counts in ``driftradar_predictions_total``. The runner fills
        the same fields for a whole batch at once (``streams.runner.observe``)."""
        self.events[(topic, model_id, outcome)] += 1
        if outcome != OUTCOME_PROCESSED or not model_id:
            return
        self.last_seen[model_id] = self.processed_at
        if prediction:
            self.predictions[(model_id, model_version)] += 1
        if event_time is not None:
            self.latencies[topic].append(self.processed_at - event_time)

    def add_join(self, model_id: str, outcome: str, count: int = 1) -> None:
        """Count join outcomes (``joined``, ``expired``, ``evicted``, ``duplicate``…)."""
        self.joins[(model_id, outcome)] += count
