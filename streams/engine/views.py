"""Read-only views of a model's state: the ``status --json`` entry and the metrics view
(``streams.metrics.ModelView`` keys plus engine counters), computed on demand."""

from __future__ import annotations

from typing import Any

import msgspec

from streams.engine.model import ModelState
from streams.engine.verification import verification_status

__all__ = ["model_status", "model_trace", "model_view"]


def model_trace(model: ModelState) -> dict[str, Any]:
    """Each detector's statistic and threshold now (current version), for the backtest's
    charts: ``{"predictions", "pairs", "version", "signals": {signal: {detector:
    [statistic, threshold]}}}``; metrics show their value against the baseline limit."""
    version = model.versions.get(model.current) if model.current is not None else None
    signals: dict[str, dict[str, list[float | None]]] = {}
    pairs = 0
    if version is not None:
        for name, signal in version.signals.items():
            signals[name] = {
                label: [result.statistic, result.threshold]
                for label, slot in signal.slots.items()
                for result in (slot.detector.result(),)
            }
        perf = version.performance
        if perf is not None:
            pairs = perf.updates
            for metric in perf.metrics:
                limit = perf.limits.get(metric)
                value = perf.values.get(metric)
                signals[f"metric:{metric}"] = {
                    "baseline": [value, None if limit is None else limit.limit]
                }
    return {
        "predictions": model.counters["predictions"],
        "pairs": pairs,
        "version": model.current,
        "signals": signals,
    }


def model_status(model: ModelState) -> dict[str, Any]:
    """The ``status --json`` entry: counters and the current version's detectors."""
    version = model.versions.get(model.current) if model.current is not None else None
    signals: dict[str, dict[str, Any]] = {}
    if version is not None:
        for name, signal in version.signals.items():
            signals[name] = signal.status()
        perf = version.performance
        if perf is not None:
            for metric in perf.metrics:
                signals[f"metric:{metric}"] = {
                    detector: {
                        "updates": perf.updates,
                        "drift": perf.active.get(f"{metric}/{detector}", False),
                    }
                    for detector in perf.detectors(metric)
                }
        estimate = model.estimates.get(version.name)
        if estimate is not None and estimate.values:
            for metric in estimate.values:
                detectors = list(estimate.limits.limits(metric))
                signals[f"estimate:{metric}"] = {
                    detector: {
                        "updates": estimate.seen,
                        "drift": estimate.limits.active.get(f"{metric}/{detector}", False),
                    }
                    for detector in detectors
                }
    join = model.join.stats()
    out = {
        "predictions": model.counters["predictions"],
        "ground_truth": model.counters["ground_truth"],
        "joined": join["joined"],
        "dead_letters": model.counters["dead_letters"],
        "join": {
            "pending_predictions": join["pending_predictions"],
            "early_labels": join["pending_labels"],
            "label_coverage": join["label_coverage"],
            "label_delay_p50": join["label_delay_p50"],
            "label_delay_p95": join["label_delay_p95"],
            "expired_unlabelled": join["expired_unlabelled"],
            "label_without_prediction": join["label_without_prediction"],
            "evicted_predictions": join["evicted_predictions"],
            "evicted_labels": join["evicted_labels"],
        },
        "model_version": model.current,
        "versions": list(model.versions),
        "task": model.task,
        "partition": model.partition,
        "signals": signals,
        "retrain": _retrain_status(model.policy.stats()),
    }
    if version is not None and version.verify is not None:
        out["verification"] = verification_status(
            version.verify,
            version.performance,
            needed=model.config.retrain.verify_labelled_events,
        )
    return out


def _retrain_status(stats: dict[str, Any]) -> dict[str, Any]:
    """What ``status`` shows of the retrain policy: its state, what a pending request waits
    for, the last request and the worker's last decision on it."""
    return {
        key: stats[key]
        for key in ("state", "waiting", "last_request", "last_decision", "requested")
    }


def model_view(model: ModelState) -> dict[str, Any]:
    """The model's entry of :meth:`Engine.metrics_view` (``streams.metrics.ModelView``
    keys, plus engine counters), computed on demand from the current version."""
    version = model.versions.get(model.current) if model.current is not None else None
    stats = model.join.stats()
    out: dict[str, Any] = {
        "model_version": model.current or "unknown",
        "task": model.task,
        "signals": {},
        "performance": {},
        "join_buffer_entries": model.join.pending_predictions,
        "join_buffer_capacity": model.join.max_pending,
        "join": stats,
        "counters": dict(model.counters),
        "quality": {n: {"missing": c[0], "invalid": c[1]} for n, c in model.quality.items()},
        "retrain": model.policy.stats(),
        "features": {name: info.type for name, info in model.features.items()},
        "ignored_features": list(model.ignored),
        "versions": list(model.versions),
        "throughput": msgspec.to_builtins(model.throughput),
    }
    if version is not None and version.verify is not None:
        out["verification"] = verification_status(
            version.verify,
            version.performance,
            needed=model.config.retrain.verify_labelled_events,
        )
    if stats["label_coverage"] is not None:
        out["label_coverage"] = stats["label_coverage"]
    if stats["label_lag_mean"] is not None:
        out["label_lag_seconds"] = stats["label_lag_mean"]
    if model.last_event_time is not None:
        out["last_event_timestamp_seconds"] = model.last_event_time
    if version is None:
        return out
    for name, signal in version.signals.items():
        out["signals"][name] = signal.results()
    band = out["signals"].get("prediction", {}).get("prediction_band", {}).get("details", {})
    if band.get("band_low") is not None:
        out["prediction_band"] = (band["band_low"], band["band_high"])
    if band.get("mean_after") is not None:
        out["prediction_mean"] = band["mean_after"]
    error = out["signals"].get("error", {}).get("adwin", {}).get("details", {})
    if error.get("mean") is not None and model.task != "regression":
        out["error_rate"] = error["mean"]
    estimate = model.estimates.get(version.name)
    if estimate is not None and estimate.values:
        out["estimates"] = estimate.view()
    perf = version.performance
    if perf is not None:
        for metric, higher in perf.metrics.items():
            value = perf.values.get(metric)
            if value is None:
                continue
            limit = perf.thresholds.get(metric)
            calibrated = perf.limits.get(metric)
            if limit is None and calibrated is not None:
                limit = calibrated.limit  # the baseline check's limit (bootstrap + budget)
            out["performance"][metric] = {
                "value": value,
                "threshold": limit,
                "higher_is_better": higher,
            }
    return out
