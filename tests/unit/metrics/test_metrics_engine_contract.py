"""The real engine's ``metrics_view()``, fed by the simulator, is what MonitorMetrics reads."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from producers.simulator import Kind, Outgoing, Simulation, SimulationConfig
from streams.core.events import decode_ground_truth, decode_prediction
from streams.engine import InputRecord, MonitorConfig
from streams.engine.engine import Engine
from streams.metrics import MonitorMetrics


@pytest.fixture(scope="module")
def metrics() -> MonitorMetrics:
    simulation = Simulation(SimulationConfig(scenario="data-drift", events=4000, seed=3))
    records = []
    for offset, item in enumerate(simulation):
        if not isinstance(item, Outgoing):
            continue
        decode = decode_prediction if item.kind is Kind.PREDICTION else decode_ground_truth
        event = decode(item.value)
        records.append(InputRecord(event, 0, offset, event.event_time()))
    engine = Engine(MonitorConfig())
    for start in range(0, len(records), 1000):
        engine.process(records[start : start + 1000])
    monitor = MonitorMetrics(CollectorRegistry(), process_collectors=False)
    monitor.update_from_engine(engine.metrics_view())  # type: ignore[arg-type]
    return monitor


def _samples(metrics: MonitorMetrics, name: str) -> list[dict[str, str]]:
    return [
        s.labels for family in metrics.registry.collect() for s in family.samples if s.name == name
    ]


def test_detector_statistics_reach_the_registry(metrics: MonitorMetrics) -> None:
    stats = _samples(metrics, "driftradar_detector_statistic")
    signals = {s["signal"] for s in stats}
    assert "feature:tenure_months" in signals
    detectors = {s["detector"] for s in stats}
    assert {"psi", "ks", "adwin"} <= detectors
    psi = metrics.value(
        "driftradar_detector_statistic",
        model_id="churn",
        signal="feature:tenure_months",
        detector="psi",
        stat="statistic",
    )
    assert psi is not None
    assert psi >= 0


def test_data_drift_shows_as_an_active_drift_flag(metrics: MonitorMetrics) -> None:
    active = [
        s
        for s in _samples(metrics, "driftradar_drift_active")
        if metrics.value("driftradar_drift_active", **s) == 1
    ]
    assert any(s["signal"].startswith("feature:") for s in active)


def test_model_levels_reach_the_registry(metrics: MonitorMetrics) -> None:
    assert metrics.value("driftradar_model_info", model_id="churn", model_version="v1") == 1
    assert 0 < metrics.value("driftradar_label_coverage", model_id="churn") <= 1
    assert metrics.value("driftradar_join_buffer_capacity", model_id="churn") > 0
    assert _samples(metrics, "driftradar_model_performance")
    last = metrics.value("driftradar_last_event_timestamp_seconds", model_id="churn")
    assert last is not None
    assert last <= time.time()


def test_the_estimate_is_a_gauge_beside_the_realised_metric(metrics: MonitorMetrics) -> None:
    for metric in ("accuracy", "roc_auc"):
        estimated = metrics.value(
            "driftradar_model_performance_estimate", model_id="churn", metric=metric
        )
        realised = metrics.value("driftradar_model_performance", model_id="churn", metric=metric)
        assert estimated is not None
        assert realised is not None
        assert abs(estimated - realised) < 0.1


def test_the_retrain_state_is_one_gauge_per_model(metrics: MonitorMetrics) -> None:
    states = [s for s in _samples(metrics, "driftradar_retrain_state") if s["model_id"] == "churn"]
    assert [s["state"] for s in states] == ["idle"]  # data drift never asks for a retrain
    assert metrics.value("driftradar_retrain_state", model_id="churn", state="idle") == 1
    assert metrics.value("driftradar_retrain_pending", model_id="churn") == 0
