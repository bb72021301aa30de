"""MonitorMetrics: every value read back from a fresh registry per test."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.core.events import ALERT_TYPES, Alert, AlertReason, RetrainRequest, TimeWindow
from streams.metrics import BatchObservation, EngineView, MonitorMetrics

CONTRACT_NAMES = {
    # DESIGN.md "Metrics (contract: names)"
    "driftradar_events",
    "driftradar_predictions",
    "driftradar_processing_seconds",
    "driftradar_consumer_lag",
    "driftradar_alerts",
    "driftradar_drift_active",
    "driftradar_model_performance",
    "driftradar_retrain_requests",
    "driftradar_last_event_timestamp_seconds",
    "process_cpu_seconds",
    "process_resident_memory_bytes",
}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> MonitorMetrics:
    return MonitorMetrics(registry, max_features=3, max_models=4, clock=lambda: 5000.0)


def _families(registry: CollectorRegistry) -> dict[str, object]:
    text = generate_latest(registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def _batch(at: float = 1000.0) -> BatchObservation:
    batch = BatchObservation(duration_seconds=0.02, processed_at=at)
    for i in range(5):
        batch.add_event(
            "predictions", "churn", event_time=at - 0.1 * i, prediction=True, model_version="v3"
        )
    batch.add_event("ground-truth", "churn", event_time=at - 120.0)
    batch.add_event("predictions", "", outcome="dead_letter")
    batch.add_join("churn", "joined", 1)
    return batch


def test_every_contract_metric_is_exposed_once_the_monitor_has_seen_data(
    metrics: MonitorMetrics, registry: CollectorRegistry
) -> None:
    metrics.observe_batch(_batch())
    metrics.set_lag({("predictions", 0): 12})
    metrics.update_from_engine(
        {
            "models": {
                "churn": {
                    "signals": {"prediction": {"adwin": {"state": 0, "updates": 9}}},
                    "performance": {"auc": {"value": 0.8, "threshold": 0.7}},
                }
            }
        }
    )
    names = set(_families(registry))
    assert names >= CONTRACT_NAMES, CONTRACT_NAMES - names


def test_observe_batch_counts_events_predictions_joins_and_latency(
    metrics: MonitorMetrics,
) -> None:
    metrics.observe_batch(_batch())
    metrics.observe_batch(_batch(at=1001.0))
    value = metrics.value
    assert (
        value("driftradar_events_total", topic="predictions", model_id="churn", outcome="processed")
        == 10
    )
    assert (
        value("driftradar_events_total", topic="predictions", model_id="", outcome="dead_letter")
        == 2
    )
    assert value("driftradar_predictions_total", model_id="churn", model_version="v3") == 10
    assert value("driftradar_join_outcomes_total", model_id="churn", outcome="joined") == 2
    assert value("driftradar_processing_seconds_count") == 2
    assert value("driftradar_batches_total") == 2
    # 5 prediction latencies per batch, all <= 0.5 s; ground truth 120 s late.
    assert value("driftradar_event_latency_seconds_bucket", topic="predictions", le="0.5") == 10
    assert value("driftradar_event_latency_seconds_bucket", topic="ground-truth", le="60.0") == 0
    assert value("driftradar_event_latency_seconds_count", topic="ground-truth") == 2
    assert value("driftradar_last_event_timestamp_seconds", model_id="churn") == 1001.0


def test_first_sight_of_a_model_initialises_alert_and_retrain_counters_to_zero(
    metrics: MonitorMetrics,
) -> None:
    metrics.observe_batch(_batch())
    for kind in ALERT_TYPES:
        assert (
            metrics.value(
                "driftradar_alerts_total", model_id="churn", type=kind, severity="warning"
            )
            == 0
        )
    assert metrics.value("driftradar_retrain_requests_total", model_id="churn") == 0
    assert (
        metrics.value("driftradar_dead_letters_total", topic="predictions", reason_kind="schema")
        == 0
    )


def test_record_alert_retrain_and_dead_letter(metrics: MonitorMetrics) -> None:
    alert = Alert(
        alert_id="a1",
        type="concept_drift",
        severity="critical",
        model_id="churn",
        signal="error",
        detector="adwin",
        detected_at="2026-11-27T10:05:00Z",
    )
    metrics.record_alert(alert)
    metrics.record_alert({"model_id": "churn", "type": "concept_drift", "severity": "critical"})
    metrics.record_retrain(
        RetrainRequest(
            request_id="r1",
            model_id="churn",
            requested_at="2026-11-27T10:05:00Z",
            reasons=[AlertReason(alert_id="a1", type="concept_drift", signal="error")],
            window=TimeWindow(start="a", end="b"),
        )
    )
    metrics.record_dead_letter("predictions", "$: invalid JSON (JSON is malformed)")
    metrics.record_dead_letter("predictions", "$.features: required field is missing", count=3)
    assert (
        metrics.value(
            "driftradar_alerts_total", model_id="churn", type="concept_drift", severity="critical"
        )
        == 2
    )
    assert metrics.value("driftradar_retrain_requests_total", model_id="churn") == 1
    assert (
        metrics.value(
            "driftradar_dead_letters_total", topic="predictions", reason_kind="invalid_json"
        )
        == 1
    )
    assert (
        metrics.value("driftradar_dead_letters_total", topic="predictions", reason_kind="schema")
        == 3
    )


def test_an_unknown_alert_type_is_refused_by_name(metrics: MonitorMetrics) -> None:
    with pytest.raises(ValueError, match="alert type 'cpu'"):
        metrics.record_alert({"model_id": "m", "type": "cpu", "severity": "warning"})


def test_model_ids_beyond_the_cap_fold_into_other_and_count_the_drop(
    metrics: MonitorMetrics,
) -> None:
    batch = BatchObservation(duration_seconds=0.01, processed_at=10.0)
    for i in range(6):
        batch.add_event("predictions", f"model-{i}", prediction=True)
    metrics.observe_batch(batch)
    assert (
        metrics.value("driftradar_predictions_total", model_id="_other", model_version="unknown")
        == 2
    )  # model-0..3 are admitted, model-4 and model-5 fold into _other
    assert metrics.value("driftradar_metric_samples_dropped_total", label="model_id") >= 2
    assert metrics.value("driftradar_last_event_timestamp_seconds", model_id="_other") is None


def _engine_view(features: int, model: str = "churn") -> EngineView:
    signals = {
        f"feature:f{i}": {
            "psi": {"state": "none", "updates": 100, "statistic": 0.05 * i, "threshold": 0.2}
        }
        for i in range(features)
    }
    signals["prediction"] = {
        "adwin": {
            "state": "drift",
            "updates": 400,
            "window_size": 250,
            "details": {
                "mean_before": 0.31,
                "mean_after": 0.52,
                "bins": [1, 2],
                "note": "text",
                "flag": True,
                "bad": math.nan,
            },
        },
        "page_hinkley": {"state": 1, "updates": 400, "statistic": 3.5, "threshold": 50.0},
    }
    return {
        "models": {
            model: {
                "model_version": "v3",
                "signals": signals,
                "performance": {
                    "auc": {"value": 0.71, "threshold": 0.75},
                    "log_loss": {"value": 0.52, "threshold": 0.6, "higher_is_better": False},
                },
                "prediction_mean": 0.41,
                "prediction_band": (0.2, 0.6),
                "error_rate": 0.18,
                "label_coverage": 0.93,
                "label_lag_seconds": 42.0,
                "join_buffer_entries": 17,
                "join_buffer_capacity": 100_000,
            }
        }
    }


def test_update_from_engine_exports_the_statistics_behind_each_decision(
    metrics: MonitorMetrics,
) -> None:
    metrics.update_from_engine(_engine_view(2))
    v = metrics.value
    key = {"model_id": "churn", "signal": "prediction"}
    assert v("driftradar_drift_active", detector="adwin", **key) == 1
    assert v("driftradar_detector_state", detector="page_hinkley", **key) == 1
    assert v("driftradar_drift_active", detector="page_hinkley", **key) == 0
    stat = "driftradar_detector_statistic"
    assert v(stat, detector="adwin", stat="window_size", **key) == 250
    assert v(stat, detector="adwin", stat="mean_after", **key) == 0.52
    assert v(stat, detector="adwin", stat="updates", **key) == 400
    for skipped in ("bins", "note", "flag", "bad"):  # lists, text, bools, NaN are not stats
        assert v(stat, detector="adwin", stat=skipped, **key) is None
    assert v(
        stat, model_id="churn", signal="feature:f1", detector="psi", stat="statistic"
    ) == pytest.approx(0.05)
    assert v("driftradar_model_performance", model_id="churn", metric="auc") == 0.71
    assert (
        v("driftradar_performance_threshold", model_id="churn", metric="auc", direction="min")
        == 0.75
    )
    assert (
        v("driftradar_performance_threshold", model_id="churn", metric="log_loss", direction="max")
        == 0.6
    )
    assert v("driftradar_prediction_band", model_id="churn", bound="upper") == 0.6
    assert v("driftradar_prediction_mean", model_id="churn") == 0.41
    assert v("driftradar_error_rate", model_id="churn") == 0.18
    assert v("driftradar_label_coverage", model_id="churn") == 0.93
    assert v("driftradar_label_lag_seconds", model_id="churn") == 42.0
    assert v("driftradar_join_buffer_entries", model_id="churn") == 17
    assert v("driftradar_model_info", model_id="churn", model_version="v3") == 1


def test_features_beyond_max_features_are_dropped_and_counted(metrics: MonitorMetrics) -> None:
    metrics.update_from_engine(_engine_view(5))  # cap is 3 features
    kept = [
        f"feature:f{i}"
        for i in range(5)
        if metrics.value(
            "driftradar_drift_active", model_id="churn", signal=f"feature:f{i}", detector="psi"
        )
        is not None
    ]
    assert kept == ["feature:f0", "feature:f1", "feature:f2"]
    assert metrics.value("driftradar_metric_samples_dropped_total", label="signal") == 2
    # Non-feature signals have their own budget: the prediction signal is still exported.
    assert (
        metrics.value(
            "driftradar_drift_active", model_id="churn", signal="prediction", detector="adwin"
        )
        == 1
    )


def test_a_new_view_replaces_the_old_one_whole(metrics: MonitorMetrics) -> None:
    metrics.observe_batch(_batch())
    metrics.update_from_engine(_engine_view(1))
    metrics.update_from_engine({"models": {"fraud": {"error_rate": 0.01}}})
    assert metrics.value("driftradar_error_rate", model_id="churn") is None
    assert (
        metrics.value(
            "driftradar_drift_active", model_id="churn", signal="prediction", detector="adwin"
        )
        is None
    )
    assert metrics.value("driftradar_last_event_timestamp_seconds", model_id="churn") is None
    assert metrics.value("driftradar_error_rate", model_id="fraud") == 0.01


def test_a_bad_detector_state_names_the_value(metrics: MonitorMetrics) -> None:
    view: EngineView = {
        "models": {"m": {"signals": {"error": {"ddm": {"state": "drifting", "updates": 1}}}}}
    }
    with pytest.raises(ValueError, match="state 'drifting'"):
        metrics.update_from_engine(view)


def test_lag_assignment_checkpoint_and_heartbeat(metrics: MonitorMetrics) -> None:
    metrics.set_lag({("predictions", 0): 10, ("predictions", 1): 0, ("ground-truth", 0): 3})
    metrics.set_lag({("predictions", 1): 7})  # after a rebalance partition 0 is gone
    assert metrics.value("driftradar_consumer_lag", topic="predictions", partition="0") is None
    assert metrics.value("driftradar_consumer_lag", topic="predictions", partition="1") == 7
    metrics.set_assignment([("predictions", 1), ("ground-truth", 1), ("ground-truth", 2)])
    assert metrics.assigned_partitions == 3
    assert metrics.value("driftradar_assigned_partitions", topic="ground-truth") == 2
    metrics.observe_checkpoint(0.004, at=123.0)
    metrics.observe_checkpoint(0.2)  # "at" defaults to the injected clock
    metrics.record_checkpoint_failure()
    assert metrics.value("driftradar_checkpoint_duration_seconds_count") == 2
    assert metrics.value("driftradar_checkpoint_duration_seconds_bucket", le="0.005") == 1
    assert metrics.value("driftradar_last_checkpoint_timestamp_seconds") == 5000.0
    assert metrics.value("driftradar_checkpoint_failures_total") == 1
    assert metrics.last_heartbeat is None
    metrics.heartbeat()
    assert metrics.last_heartbeat == 5000.0
    assert metrics.value("driftradar_loop_heartbeat_timestamp_seconds") == 5000.0


def test_process_collectors_are_on_the_private_registry() -> None:
    registry = CollectorRegistry()
    MonitorMetrics(registry)
    assert registry.get_sample_value("process_resident_memory_bytes") > 0
    assert (
        registry.get_sample_value(
            "python_info",
            {
                "implementation": "CPython",
                "major": "3",
                "minor": "11",
                "patchlevel": __import__("platform").python_version_tuple()[2],
                "version": __import__("platform").python_version(),
            },
        )
        == 1
    )


def test_two_monitors_on_fresh_registries_do_not_interfere() -> None:
    a, b = (MonitorMetrics(CollectorRegistry(), process_collectors=False) for _ in range(2))
    a.record_dead_letter("predictions", "schema")
    assert a.value("driftradar_dead_letters_total", topic="predictions", reason_kind="schema") == 1
    assert (
        b.value("driftradar_dead_letters_total", topic="predictions", reason_kind="schema") is None
    )


def test_max_features_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_features"):
        MonitorMetrics(CollectorRegistry(), max_features=0)


def test_gated_active_flag_wins_over_the_raw_state(metrics: MonitorMetrics) -> None:
    view: EngineView = {"models": {"m": {"signals": {"error": {
        "adwin": {"state": "none", "updates": 5, "active": True},
        "ddm": {"state": "drift", "updates": 5, "active": False},
    }}}}}  # fmt: skip
    metrics.update_from_engine(view)
    key = {"model_id": "m", "signal": "error"}
    assert metrics.value("driftradar_drift_active", detector="adwin", **key) == 1
    assert metrics.value("driftradar_drift_active", detector="ddm", **key) == 0
    assert metrics.value("driftradar_detector_state", detector="ddm", **key) == 2


def test_join_totals_add_their_growth_after_a_baseline(metrics: MonitorMetrics) -> None:
    def view(joined: int, expired: int) -> EngineView:
        return {"models": {"m": {"join_totals": {"joined": joined, "expired": expired}}}}

    metrics.update_from_engine(view(500, 3))  # restored totals: the baseline, not counted
    assert metrics.value("driftradar_join_outcomes_total", model_id="m", outcome="joined") is None
    metrics.update_from_engine(view(520, 3))
    metrics.update_from_engine(view(530, 5))
    assert metrics.value("driftradar_join_outcomes_total", model_id="m", outcome="joined") == 30
    assert metrics.value("driftradar_join_outcomes_total", model_id="m", outcome="expired") == 2


def test_a_model_that_leaves_and_returns_starts_a_new_join_baseline(
    metrics: MonitorMetrics,
) -> None:
    def view(joined: int) -> EngineView:
        return {"models": {"m": {"join_totals": {"joined": joined}}}}

    metrics.update_from_engine(view(100))  # baseline
    metrics.update_from_engine(view(110))  # +10 counted here
    metrics.update_from_engine({"models": {}})  # the model moved to another replica
    metrics.update_from_engine(view(400))  # back, restored: 290 joins were counted elsewhere
    metrics.update_from_engine(view(405))
    assert metrics.value("driftradar_join_outcomes_total", model_id="m", outcome="joined") == 15


def test_a_future_last_event_time_is_clamped_to_now(metrics: MonitorMetrics) -> None:
    metrics.update_from_engine({"models": {"m": {"last_event_timestamp_seconds": 9e9}}})
    assert metrics.value("driftradar_last_event_timestamp_seconds", model_id="m") == 5000.0
