"""Every ``driftradar_*`` metric, owned by one object on an injectable registry.

The runner calls a handful of methods once per batch (:meth:`MonitorMetrics.observe_batch`,
:meth:`~MonitorMetrics.set_lag`, :meth:`~MonitorMetrics.update_from_engine`…), never one per
event, so the metrics cost stays flat as throughput grows. Labels are bounded: model ids,
topics, signals and statistic names each pass a :class:`~streams.metrics.labels.LabelCap`;
beyond a cap counters fold into ``_other`` and gauges drop the sample and count the drop in
``driftradar_metric_samples_dropped_total{label}``.

>>> from prometheus_client import CollectorRegistry
>>> metrics = MonitorMetrics(CollectorRegistry(), process_collectors=False)
>>> batch = BatchObservation(duration_seconds=0.01, processed_at=1000.0)
>>> batch.add_event("predictions", "churn", event_time=999.0, prediction=True, model_version="v3")
>>> metrics.observe_batch(batch)
>>> metrics.update_from_engine({"models": {"churn": {"signals": {"feature:tenure": {
...     "psi": {"state": "drift", "updates": 500, "statistic": 0.31, "threshold": 0.2}}}}}})
>>> metrics.value("driftradar_predictions_total", model_id="churn", model_version="v3")
1.0
>>> metrics.value("driftradar_drift_active", model_id="churn", signal="feature:tenure",
...               detector="psi")
1.0
>>> metrics.value("driftradar_detector_statistic", model_id="churn", signal="feature:tenure",
...               detector="psi", stat="statistic")
0.31
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import Any, Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from streams.core.events import ALERT_TYPES, Alert, RetrainRequest
from streams.metrics.histogram import BatchHistogram
from streams.metrics.labels import OTHER, REASON_KINDS, LabelCap, clip, reason_kind
from streams.metrics.snapshots import Sample, SnapshotGauges
from streams.metrics.views import BatchObservation, DetectorView, EngineView, ModelView

__all__ = [
    "CHECKPOINT_BUCKETS",
    "DEPENDENCIES",
    "LATENCY_BUCKETS",
    "PROCESSING_BUCKETS",
    "MonitorMetrics",
]

#: Batch processing time (poll → committed), seconds.
PROCESSING_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Event time → processed, seconds: sub-second for live traffic, hours for a backlog.
LATENCY_BUCKETS: Final = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip
#: Redis checkpoint (state + offsets) duration, seconds.
CHECKPOINT_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

#: The services whose outages the monitor rides out (``driftradar_dependency_up``).
DEPENDENCIES: Final = ("kafka", "redis")

_STATE_VALUES: Final = {"none": 0, "warning": 1, "drift": 2}
_MAX_TOPICS: Final = 32
_MAX_VERSIONS: Final = 16
_MAX_OUTCOMES: Final = 16
_MAX_OTHER_SIGNALS: Final = 32
_MAX_DETECTORS: Final = 32
_MAX_STATS: Final = 64
_DETECTOR_FIELDS: Final = ("statistic", "threshold", "p_value", "window_size", "updates")

#: Families rebuilt whole from the engine view / consumer state (see SnapshotGauges).
_SNAPSHOT_FAMILIES: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = {
    "driftradar_drift_active": (
        "1 while the detector reports drift on the signal, else 0.",
        ("model_id", "signal", "detector"),
    ),
    "driftradar_detector_state": (
        "Detector state: 0 none, 1 warning, 2 drift.",
        ("model_id", "signal", "detector"),
    ),
    "driftradar_detector_statistic": (
        "Statistics behind each detector's decision (psi, ks, adwin width/means, ph sum…).",
        ("model_id", "signal", "detector", "stat"),
    ),
    "driftradar_model_performance": (
        "Rolling model performance by metric (accuracy, auc, log_loss, mae…).",
        ("model_id", "metric"),
    ),
    "driftradar_model_performance_estimate": (
        "Performance estimated from the scores before labels arrive (CBPE; binary models).",
        ("model_id", "metric"),
    ),
    "driftradar_performance_threshold": (
        "Limit of a performance metric: a minimum (direction=min) or a maximum (direction=max).",
        ("model_id", "metric", "direction"),
    ),
    "driftradar_prediction_mean": ("Recent mean of the model's predictions.", ("model_id",)),
    "driftradar_prediction_band": (
        "Expected range of the prediction mean (bound=lower|upper).",
        ("model_id", "bound"),
    ),
    "driftradar_error_rate": ("Recent error rate (share of wrong predictions).", ("model_id",)),
    "driftradar_label_coverage": (
        "Share (0..1) of predictions whose ground truth has joined.",
        ("model_id",),
    ),
    "driftradar_label_lag_seconds": (
        "Typical delay from a prediction to its ground truth, seconds.",
        ("model_id",),
    ),
    "driftradar_join_buffer_entries": ("Predictions waiting for ground truth.", ("model_id",)),
    "driftradar_join_buffer_capacity": ("Configured cap of the join buffer.", ("model_id",)),
    "driftradar_retrain_pending": (
        "1 while a retrain request waits for labelled pairs of the new regime, else 0.",
        ("model_id",),
    ),
    "driftradar_retrain_state": (
        "1 for the model's retrain state: idle, retrain_pending, requested (awaiting the "
        "worker), deployed, declined or failed (the worker's last decision).",
        ("model_id", "state"),
    ),
    "driftradar_model_info": (
        "1 for each model this replica owns, with its current version.",
        ("model_id", "model_version"),
    ),
    "driftradar_consumer_lag": (
        "Messages behind the high watermark, per assigned partition.",
        ("topic", "partition"),
    ),
    "driftradar_assigned_partitions": ("Partitions assigned to this replica.", ("topic",)),
}
#: Those of them the engine view fills, kept per model (the rest are the consumer's).
_MODEL_FAMILIES: Final = tuple(
    name
    for name in _SNAPSHOT_FAMILIES
    if name not in ("driftradar_consumer_lag", "driftradar_assigned_partitions")
)


def _version() -> str:
    try:
        return metadata.version("driftradar")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def _state_value(state: str | int) -> int:
    if isinstance(state, int):
        return state
    try:
        return _STATE_VALUES[state.lower()]
    except KeyError:
        raise ValueError(
            f"detector view: state {state!r} is not one of {sorted(_STATE_VALUES)}"
        ) from None


def _finite(value: object) -> float | None:
    """``value`` as a float if it is a finite real number (bools excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class MonitorMetrics:
    """The monitor's metrics on ``registry`` (a new private registry when None).

    ``max_features`` caps distinct ``feature:*`` signals per model and ``max_models`` distinct
    model ids. ``process_collectors`` adds CPU, memory, GC and platform collectors, so the
    registry alone is everything ``/metrics`` serves. ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        max_features: int = 100,
        max_models: int = 1000,
        process_collectors: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_features < 1:
            raise ValueError(f"max_features must be >= 1, got {max_features}")
        self.registry = registry if registry is not None else CollectorRegistry()
        self.max_features = max_features
        self._clock = clock
        self._lock = threading.Lock()
        self._models = LabelCap("model_id", max_models)
        self._topics = LabelCap("topic", _MAX_TOPICS)
        self._outcomes = LabelCap("outcome", _MAX_OUTCOMES)
        self._versions: dict[str, LabelCap] = {}
        self._features: dict[str, LabelCap] = {}
        self._other_signals: dict[str, LabelCap] = {}
        self._detectors = LabelCap("detector", _MAX_DETECTORS)
        self._stats = LabelCap("stat", _MAX_STATS)
        self._known_models: set[str] = set()
        self._join_totals: dict[str, dict[str, int]] = {}
        self._last_events: dict[str, float] = {}  # what last_event holds, per model
        self._initialised_topics: set[str] = set()
        self._last_heartbeat: float | None = None
        self._assigned = 0
        self._dependency_up: dict[str, bool] = {}
        if process_collectors:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self._build(self.registry)

    def _build(self, r: CollectorRegistry) -> None:
        Gauge("driftradar_build_info", "driftradar version.", ["version"], registry=r).labels(
            _version()
        ).set(1)
        self.events = Counter(
            "driftradar_events_total",
            "Messages consumed, by topic, model and outcome (processed, dead_letter…).",
            ["topic", "model_id", "outcome"],
            registry=r,
        )
        self.predictions = Counter(
            "driftradar_predictions_total",
            "Predictions processed, by model and model version.",
            ["model_id", "model_version"],
            registry=r,
        )
        self.processing = Histogram(
            "driftradar_processing_seconds",
            "Time to process one consumed batch (decode → detectors → checkpoint), seconds.",
            buckets=PROCESSING_BUCKETS,
            registry=r,
        )
        self.batches = Counter("driftradar_batches_total", "Batches processed.", registry=r)
        self.latency = BatchHistogram(
            "driftradar_event_latency_seconds",
            "Event time → processed, seconds, by topic.",
            ["topic"],
            buckets=LATENCY_BUCKETS,
        )
        r.register(self.latency)
        self.joins = Counter(
            "driftradar_join_outcomes_total",
            "Prediction/ground-truth join outcomes (joined, expired, evicted, duplicate…).",
            ["model_id", "outcome"],
            registry=r,
        )
        self.alerts = Counter(
            "driftradar_alerts_total",
            "Alerts published, by model, type and severity.",
            ["model_id", "type", "severity"],
            registry=r,
        )
        self.retrains = Counter(
            "driftradar_retrain_requests_total",
            "Retrain requests published, by model.",
            ["model_id"],
            registry=r,
        )
        self.dead_letters = Counter(
            "driftradar_dead_letters_total",
            "Messages sent to the dead-letter topic, by source topic and kind of reason.",
            ["topic", "reason_kind"],
            registry=r,
        )
        self.checkpoint = Histogram(
            "driftradar_checkpoint_duration_seconds",
            "Time to checkpoint state and offsets to Redis, seconds.",
            buckets=CHECKPOINT_BUCKETS,
            registry=r,
        )
        self.checkpoint_failures = Counter(
            "driftradar_checkpoint_failures_total", "Checkpoints that failed.", registry=r
        )
        self.last_checkpoint = Gauge(
            "driftradar_last_checkpoint_timestamp_seconds",
            "Unix time of the last successful checkpoint.",
            registry=r,
        )
        self.last_event = Gauge(
            "driftradar_last_event_timestamp_seconds",
            "Unix time (wall clock) at which an event of the model was last processed.",
            ["model_id"],
            registry=r,
        )
        self.heartbeat_gauge = Gauge(
            "driftradar_loop_heartbeat_timestamp_seconds",
            "Unix time of the consumer loop's last iteration (stuck loop → stale).",
            registry=r,
        )
        self.dependency_up = Gauge(
            "driftradar_dependency_up",
            "1 while the dependency (redis, kafka) answers the monitor, 0 during an outage.",
            ["dependency"],
            registry=r,
        )
        self.outages = Counter(
            "driftradar_dependency_outages_total",
            "Outages of a dependency that blocked a checkpoint (consumption paused).",
            ["dependency"],
            registry=r,
        )
        for dependency in DEPENDENCIES:
            self.dependency_up.labels(dependency).set(1)
            self.outages.labels(dependency)
        self.dropped = Counter(
            "driftradar_metric_samples_dropped_total",
            "Samples dropped or folded into _other because a label hit its cap.",
            ["label"],
            registry=r,
        )
        self.snapshots = SnapshotGauges(_SNAPSHOT_FAMILIES)
        r.register(self.snapshots)

    # -- label guards ----------------------------------------------------------------------

    def _model(self, model_id: str) -> str:
        """Bounded model label; first sight initialises its alert and retrain counters."""
        label = self._models.fold(clip(model_id))
        if label == OTHER:
            self.dropped.labels("model_id").inc()
        if label not in self._known_models:
            with self._lock:
                if label not in self._known_models:
                    self._known_models.add(label)
                    for kind in sorted(ALERT_TYPES):
                        self.alerts.labels(label, kind, "warning")
                    self.retrains.labels(label)
        return label

    def _topic(self, topic: str) -> str:
        label = self._topics.fold(clip(topic))
        if label == OTHER:
            self.dropped.labels("topic").inc()
        if label not in self._initialised_topics:
            self._initialised_topics.add(label)
            for kind in REASON_KINDS:
                self.dead_letters.labels(label, kind)
        return label

    def _version_label(self, model: str, version: str) -> str:
        cap = self._versions.get(model)
        if cap is None:
            cap = self._versions.setdefault(model, LabelCap("model_version", _MAX_VERSIONS))
        label = cap.fold(clip(version))
        if label == OTHER:
            self.dropped.labels("model_version").inc()
        return label

    def _signal_admitted(self, model: str, signal: str) -> bool:
        if signal.startswith("feature:"):
            caps, limit = self._features, self.max_features
        else:
            caps, limit = self._other_signals, _MAX_OTHER_SIGNALS
        cap = caps.get(model)
        if cap is None:
            cap = caps.setdefault(model, LabelCap("signal", limit))
        if cap.admit(clip(signal)):
            return True
        self.dropped.labels("signal").inc()
        return False

    # -- what the runner calls -------------------------------------------------------------

    def heartbeat(self, at: float | None = None) -> None:
        """Mark one iteration of the consumer loop (call it even when a poll returns nothing)."""
        now = self._clock() if at is None else at
        self._last_heartbeat = now
        self.heartbeat_gauge.set(now)

    @property
    def last_heartbeat(self) -> float | None:
        """Unix time of the last :meth:`heartbeat`, None before the first."""
        return self._last_heartbeat

    @property
    def assigned_partitions(self) -> int:
        """Number of partitions last given to :meth:`set_assignment`."""
        return self._assigned

    def observe_batch(self, batch: BatchObservation) -> None:
        """Add what one batch did: events, predictions, joins, latencies, processing time."""
        self.processing.observe(batch.duration_seconds)
        self.batches.inc()
        for (topic, model_id, outcome), n in batch.events.items():
            model = self._model(model_id) if model_id else ""
            self.events.labels(self._topic(topic), model, self._outcomes.fold(outcome)).inc(n)
        for (model_id, version), n in batch.predictions.items():
            model = self._model(model_id)
            self.predictions.labels(model, self._version_label(model, version)).inc(n)
        for (model_id, outcome), n in batch.joins.items():
            self.joins.labels(self._model(model_id), self._outcomes.fold(outcome)).inc(n)
        for topic, values in batch.latencies.items():
            self.latency.observe_many((self._topic(topic),), values)
        for model_id, seen in batch.last_seen.items():
            model = self._model(model_id)
            if model != OTHER:
                self._set_last_event(model, seen)

    def _set_last_event(self, model: str, seen: float) -> None:
        self._last_events[model] = seen
        self.last_event.labels(model).set(seen)

    def set_lag(self, lags: Mapping[tuple[str, int], float]) -> None:
        """Replace the consumer lag: ``{(topic, partition): messages behind}``."""
        self.snapshots.replace(
            "driftradar_consumer_lag",
            [((self._topic(t), str(p)), float(lag)) for (t, p), lag in sorted(lags.items())],
        )

    def set_assignment(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Replace the partitions assigned to this replica (after a rebalance)."""
        per_topic: dict[str, int] = {}
        for topic, _partition in partitions:
            label = self._topic(topic)
            per_topic[label] = per_topic.get(label, 0) + 1
        self._assigned = sum(per_topic.values())
        self.snapshots.replace(
            "driftradar_assigned_partitions",
            [((t,), float(n)) for t, n in sorted(per_topic.items())],
        )

    def observe_checkpoint(self, duration: float, at: float | None = None) -> None:
        """Record a successful checkpoint that took ``duration`` seconds and ended at ``at``."""
        self.checkpoint.observe(duration)
        self.last_checkpoint.set(self._clock() if at is None else at)

    def record_checkpoint_failure(self) -> None:
        """Count a checkpoint that failed (the stream retries; the age alert watches)."""
        self.checkpoint_failures.inc()

    def set_dependency(self, dependency: str, up: bool) -> None:
        """Whether ``dependency`` (one of :data:`DEPENDENCIES`) answers; a fall counts one
        outage."""
        if dependency not in DEPENDENCIES:
            raise ValueError(f"dependency {dependency!r} is not one of {DEPENDENCIES}")
        if not up and self._dependency_up.get(dependency, True):
            self.outages.labels(dependency).inc()
        self._dependency_up[dependency] = up
        self.dependency_up.labels(dependency).set(1 if up else 0)

    def record_alert(self, alert: Alert | Mapping[str, Any]) -> None:
        """Count one published alert (an :class:`~streams.core.events.Alert` or its dict form)."""
        model_id, kind, severity = (
            (alert.model_id, alert.type, alert.severity)
            if isinstance(alert, Alert)
            else (str(alert["model_id"]), str(alert["type"]), str(alert["severity"]))
        )
        if kind not in ALERT_TYPES:
            raise ValueError(f"alert type {kind!r} is not one of {sorted(ALERT_TYPES)}")
        self.alerts.labels(self._model(model_id), kind, clip(severity)).inc()

    def record_retrain(self, request: RetrainRequest | Mapping[str, Any]) -> None:
        """Count one published retrain request."""
        model_id = (
            request.model_id if isinstance(request, RetrainRequest) else str(request["model_id"])
        )
        self.retrains.labels(self._model(model_id)).inc()

    def record_dead_letter(self, topic: str, reason: str | BaseException, count: int = 1) -> None:
        """Count messages sent to dead-letter; ``reason`` is folded by ``reason_kind``."""
        self.dead_letters.labels(self._topic(topic), reason_kind(reason)).inc(count)

    def update_from_engine(self, view: EngineView) -> None:
        """Per-model levels from ``view``. Without ``model_ids`` the view is whole: its models
        replace every model's series (models absent from it disappear). With ``model_ids``
        (every model the engine holds) it carries only the models that changed since the
        previous view: those are recomputed, the others keep their series, and models in
        neither disappear — an update costs what changed."""
        owned: set[str] = set()
        for model_id, model_view in view["models"].items():
            model = self._model(model_id)
            if model == OTHER:
                continue
            owned.add(model)
            out: dict[str, list[Sample]] = {name: [] for name in _MODEL_FAMILIES}
            self._model_samples(model, model_view, out)
            self.snapshots.set_owner(model, out)
        for model_id in view.get("model_ids", ()):
            model = self._models.fold(clip(model_id))
            if model != OTHER:
                owned.add(model)
        self.snapshots.keep_owners(owned)
        for model in [m for m in self._last_events if m not in owned]:
            del self._last_events[model]
            self.last_event.remove(model)
        for model in self._join_totals.keys() - owned:
            # gone (e.g. to another replica): if it comes back, its restored totals include
            # the joins made elsewhere, so its next view must be a fresh baseline
            del self._join_totals[model]

    def _model_samples(self, model: str, mv: ModelView, out: dict[str, list[Sample]]) -> None:
        version = mv.get("model_version", "unknown")
        out["driftradar_model_info"].append(((model, self._version_label(model, version)), 1.0))
        for signal, detectors in mv.get("signals", {}).items():
            if not self._signal_admitted(model, signal):
                continue
            for detector, dv in detectors.items():
                if not self._detectors.admit(detector):
                    self.dropped.labels("detector").inc()
                    continue
                self._detector_samples((model, clip(signal), detector), dv, out)
        for metric, perf in mv.get("performance", {}).items():
            value = _finite(perf["value"])
            if value is not None:
                out["driftradar_model_performance"].append(((model, metric), value))
            threshold = _finite(perf.get("threshold"))
            if threshold is not None:
                direction = "min" if perf.get("higher_is_better", True) else "max"
                out["driftradar_performance_threshold"].append(
                    ((model, metric, direction), threshold)
                )
        for metric, estimate in mv.get("estimates", {}).items():
            value = _finite(estimate["value"])
            if value is not None:
                out["driftradar_model_performance_estimate"].append(((model, metric), value))
        band = mv.get("prediction_band")
        if band is not None:
            out["driftradar_prediction_band"] += [
                ((model, "lower"), float(band[0])),
                ((model, "upper"), float(band[1])),
            ]
        for key in (
            "prediction_mean",
            "error_rate",
            "label_coverage",
            "label_lag_seconds",
            "join_buffer_entries",
            "join_buffer_capacity",
        ):
            value = _finite(mv.get(key))
            if value is not None:
                out[f"driftradar_{key}"].append(((model,), value))
        retrain = mv.get("retrain")
        if retrain is not None:
            out["driftradar_retrain_pending"].append(
                ((model,), 1.0 if retrain.get("retrain_pending") else 0.0)
            )
            out["driftradar_retrain_state"].append(((model, str(retrain.get("state"))), 1.0))
        self._join_increments(model, mv.get("join_totals"))
        seen = _finite(mv.get("last_event_timestamp_seconds"))
        if seen is not None:  # never in the future: a skewed event clock must not hide silence
            seen = min(seen, self._clock())
            self._set_last_event(model, max(seen, self._last_events.get(model, 0.0)))

    def _join_increments(self, model: str, totals: Mapping[str, int] | None) -> None:
        """Add the growth of cumulative join totals since the previous view."""
        if totals is None:
            return
        previous = self._join_totals.get(model)
        self._join_totals[model] = dict(totals)
        if previous is None:
            return  # baseline: restored totals were counted by whoever had the model before
        for outcome, total in totals.items():
            grown = total - previous.get(outcome, 0)
            if grown > 0:
                self.joins.labels(model, self._outcomes.fold(outcome)).inc(grown)

    def _detector_samples(
        self, key: tuple[str, str, str], dv: DetectorView, out: dict[str, list[Sample]]
    ) -> None:
        state = _state_value(dv["state"])
        active = dv.get("active", state == 2)
        out["driftradar_drift_active"].append((key, 1.0 if active else 0.0))
        out["driftradar_detector_state"].append((key, float(state)))
        stats: dict[str, object] = {f: dv.get(f) for f in _DETECTOR_FIELDS}
        for name, value in dv.get("details", {}).items():
            stats.setdefault(name, value)
        for name, raw in stats.items():
            value = _finite(raw)
            if value is None:
                continue
            if not self._stats.admit(name):
                self.dropped.labels("stat").inc()
                continue
            out["driftradar_detector_statistic"].append(((*key, clip(name)), value))

    # -- reading values back (tests, health) ------------------------------------------------

    def value(self, name: str, **labels: str) -> float | None:
        """The current value of sample ``name`` with exactly ``labels``, or None."""
        return self.registry.get_sample_value(name, labels)
