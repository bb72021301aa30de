"""Signals, alerts and routing on synthetic streams (no Kafka, no Redis)."""

from __future__ import annotations

import numpy as np
import pytest
from engine_streams import T0, churn_stream, run
from msgspec.structs import replace

from streams.core.events import Alert, GroundTruth, Prediction
from streams.engine import InputRecord, MonitorConfig
from streams.engine.engine import Engine

CONFIG = {"defaults": {"warmup": 500, "alarms": {"min_updates": 500, "clear_after": 1000}}}


def _engine(extra: dict[str, object] | None = None) -> Engine:
    document = {"defaults": {**CONFIG["defaults"], **(extra or {})}}
    return Engine(MonitorConfig.from_mapping(document), clock=lambda: 1_900_000_000.0)


def _key(alert: Alert) -> tuple[str, str, str, str, str | None]:
    return (alert.alert_id, alert.type, alert.signal, alert.detector, alert.event_time)


def test_stable_stream_raises_nothing() -> None:
    alerts, requests = run(_engine(), churn_stream(6000, seed=11))
    assert alerts == []
    assert requests == []


def test_data_drift_is_data_drift_on_that_feature_and_not_concept_drift() -> None:
    engine = _engine()
    alerts, _ = run(engine, churn_stream(6000, seed=12, data_drift_at=3000))
    assert {a.signal for a in alerts} == {"feature:x_unused"}
    assert {a.type for a in alerts} == {"data_drift"}
    (alert,) = alerts  # one alert on entry, although the detectors stay in drift
    assert alert.model_id == "churn"
    assert alert.model_version == "v1"
    assert alert.event_time is not None
    assert alert.event_time >= "2027-01-15T08:05:00"
    signals = engine.status()["models"]["churn"]["signals"]
    assert signals["feature:x_unused"]["psi"]["drift"] is True
    assert not any(d["drift"] for d in signals["error"].values())


def test_concept_drift_is_concept_drift_and_not_data_drift() -> None:
    alerts, requests = run(_engine(), churn_stream(6000, seed=13, concept_drift_at=3000))
    types = {a.type for a in alerts}
    assert "concept_drift" in types or "performance_degradation" in types
    assert "data_drift" not in types
    assert "prediction_drift" not in types
    assert {a.signal for a in alerts if a.type == "concept_drift"} == {"error"}
    assert all(
        a.signal.startswith(("metric:", "estimate:"))
        for a in alerts
        if a.type == "performance_degradation"
    )
    assert requests, "concept drift requests retraining under the default policy"


def test_alert_ids_are_deterministic_and_independent_of_batching() -> None:
    records = churn_stream(6000, seed=14, data_drift_at=2500, concept_drift_at=4000)
    first, first_requests = run(_engine(), records, size=250)
    second, second_requests = run(_engine(), records, size=1000)
    assert first
    assert [_key(a) for a in first] == [_key(a) for a in second]
    assert [r.request_id for r in first_requests] == [r.request_id for r in second_requests]
    third, _ = run(_engine(), records, size=250)
    assert third == first  # same batches, same clock: identical alerts, details included


def test_routing_by_model_and_partition() -> None:
    a = churn_stream(1000, seed=1, model="a", partition=0)
    b = churn_stream(1000, seed=2, model="b", partition=1, labelled=0.5)
    records = sorted(a + b, key=lambda r: r.timestamp)
    engine = _engine()
    run(engine, records)
    status = engine.status()["models"]
    assert status["a"]["predictions"] == 1000
    assert status["a"]["ground_truth"] == 1000
    assert status["b"]["predictions"] == 1000
    assert 400 < status["b"]["ground_truth"] < 600
    assert status["b"]["joined"] == status["b"]["ground_truth"]
    assert engine.partitions() == {0, 1}
    assert [m["model_id"] for m in engine.snapshot_partition(1)["models"]] == ["b"]
    engine.drop_partition(0)
    assert set(engine.status()["models"]) == {"b"}


def _event(
    i: int, features: dict[str, object], prediction: float | str, label: object, model: str = "m"
) -> list[InputRecord]:
    t = T0 + i
    return [
        InputRecord(Prediction(f"e{i}", model, features, prediction, "v1", t), 0, 2 * i, t),  # type: ignore[arg-type]
        InputRecord(GroundTruth(f"e{i}", model, label, t + 1), 0, 2 * i + 1, t + 1),  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize(
    ("prediction", "label", "task"),
    [
        (0.8, 1.0, "binary"),
        (0.8, True, "binary"),
        (12.5, 11.0, "regression"),
        (0.3, 0.7, "regression"),
        ("gold", "gold", "multiclass"),
    ],
)
def test_task_is_inferred_from_predictions_and_labels(
    prediction: float | str, label: object, task: str
) -> None:
    engine = _engine()
    engine.process(_event(0, {"x": 1.0}, prediction, label))
    assert engine.status()["models"]["m"]["task"] == task


def test_feature_types_are_inferred_from_first_values() -> None:
    engine = _engine()
    records = _event(0, {"age": None, "plan": "gold", "vip": True}, 0.5, 1.0)
    records += _event(1, {"age": 30.0, "plan": "basic", "vip": False}, 0.5, 1.0)
    engine.process(records)
    features = engine.metrics_view()["models"]["m"]["features"]
    assert features == {"plan": "categorical", "vip": "categorical", "age": "numeric"}


def test_configured_types_win_over_inference() -> None:
    config = MonitorConfig.from_mapping(
        {"models": {"m": {"features": {"code": {"type": "categorical"}}}}}
    )
    engine = Engine(config)
    engine.process(_event(0, {"code": 3.0}, 0.5, 1.0))
    assert engine.metrics_view()["models"]["m"]["features"] == {"code": "categorical"}


def test_quality_faults_are_counted_and_kept_out_of_drift_statistics() -> None:
    records = churn_stream(6000, seed=15)
    rng = np.random.default_rng(0)
    broken = 0
    out: list[InputRecord] = []
    for record in records:
        event = record.event
        if isinstance(event, Prediction) and 3000 <= int(event.event_id.rsplit("-", 1)[1]) < 4500:
            value = ("n/a", None, -999.0)[int(rng.choice(3, p=[0.4, 0.4, 0.2]))]
            event = replace_features(event, monthly_charges=value)
            broken += 1
        out.append(replace(record, event=event))
    engine = _engine({"features": {"monthly_charges": {"type": "numeric", "range": [0, 500]}}})
    alerts, _ = run(engine, out)
    assert {(a.type, a.signal) for a in alerts} == {("data_quality", "quality:monthly_charges")}
    view = engine.metrics_view()["models"]["churn"]
    assert view["counters"]["excluded_events"] == broken
    quality = view["quality"]["monthly_charges"]
    assert quality["missing"] + quality["invalid"] == broken
    signals = engine.status()["models"]["churn"]["signals"]
    assert signals["feature:monthly_charges"]["adwin"]["updates"] == 6000 - broken
    assert signals["prediction"]["adwin"]["updates"] == 6000 - broken  # whole event excluded
    assert signals["quality:monthly_charges"]["missing_rate"]["updates"] == 6000


def replace_features(event: Prediction, **changes: object) -> Prediction:
    return Prediction(
        event.event_id,
        event.model_id,
        {**event.features, **changes},  # type: ignore[dict-item]
        event.prediction,
        event.model_version,
        event.timestamp,
    )


def test_feature_cap_ignores_excess_features_with_one_quality_alert() -> None:
    engine = _engine({"max_features": 2})
    records: list[InputRecord] = []
    for i in range(3):
        records += _event(i, {"a": 1.0, "b": 2.0, "c": 3.0, "d": "x"}, 0.5, 1.0)
    alerts, _ = run(engine, records, size=2)
    assert [(a.type, a.signal, a.detector) for a in alerts] == [
        ("data_quality", "quality:schema", "max_features")
    ]
    view = engine.metrics_view()["models"]["m"]
    assert view["features"] == {"a": "numeric", "b": "numeric"}
    assert view["ignored_features"] == ["c", "d"]
    assert view["counters"]["ignored_feature_values"] == 6


def test_new_version_gets_fresh_detectors_and_old_one_retires() -> None:
    engine = _engine({"versions": {"retire_after_events": 1000}})
    v1 = churn_stream(3000, seed=16, version="v1")
    v2 = churn_stream(3000, seed=17, version="v2", first=3000, data_drift_at=0)
    alerts, _ = run(engine, v1 + v2)
    # v2 is shifted compared with v1 but has its own baseline: no drift; only the
    # deployment verification reports (info: v2 performs like v1)
    assert [(a.severity, a.detector) for a in alerts] == [("info", "verification")]
    status = engine.status()["models"]["churn"]
    assert status["model_version"] == "v2"
    assert status["versions"] == ["v2"]
    assert status["signals"]["feature:x_unused"]["adwin"]["updates"] == 3000
    assert engine.metrics_view()["models"]["churn"]["counters"]["retired_versions"] == 1


def test_alerts_carry_their_version() -> None:
    engine = _engine()
    v1 = churn_stream(2000, seed=18, version="v1")
    v2 = churn_stream(6000, seed=19, version="v2", first=2000, data_drift_at=5000)
    alerts, _ = run(engine, v1 + v2)
    assert [(a.model_version, a.signal) for a in alerts] == [
        ("v2", "metric:accuracy"),  # v2 replaced v1: its verification (info)
        ("v2", "feature:x_unused"),
    ]
    assert (alerts[0].detector, alerts[0].severity) == ("verification", "info")


def test_reference_file_replaces_the_warm_up(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    rng = np.random.default_rng(5)
    path = tmp_path / "reference.csv"
    rows = ["x_unused,plan,prediction"] + [
        f"{x:.4f},{p},{q:.4f}"
        for x, p, q in zip(
            rng.normal(3.0, 1.0, 2000),
            rng.choice(["basic", "premium", "pro"], 2000),
            rng.random(2000),
            strict=True,
        )
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    engine = _engine({"reference": str(path)})
    # live x_unused ~ N(0, 1) against a N(3, 1) reference: drift from the first window
    alerts, _ = run(engine, churn_stream(3000, seed=20))
    first = [a for a in alerts if a.signal == "feature:x_unused"]
    assert first
    assert first[0].details["position"] <= 1500
    signals = engine.status()["models"]["churn"]["signals"]
    assert signals["feature:x_unused"]["psi"]["updates"] == 3000


def test_missing_reference_file_is_a_config_error(tmp_path: object) -> None:
    from streams.engine.config import ConfigError

    with pytest.raises(ConfigError, match=r"^models\.m\.reference: "):
        Engine(MonitorConfig.from_mapping({"models": {"m": {"reference": f"{tmp_path}/no.csv"}}}))


def _task_stream(n: int, kind: str, shift_at: int, seed: int) -> list[InputRecord]:
    """Regression (value + noisy label) or multiclass (class labels) with a concept change."""
    rng = np.random.default_rng(seed)
    records: list[InputRecord] = []
    for i in range(n):
        x = float(rng.normal())
        if kind == "regression":
            prediction: float | str = 10.0 + 2.0 * x
            label: float | str = (
                prediction + float(rng.normal(0, 0.5)) + (3.0 if i >= shift_at else 0)
            )
        else:
            prediction = "gold" if x > 0 else "silver"
            right = rng.random() < (0.9 if i < shift_at else 0.5)
            label = prediction if right else ("silver" if prediction == "gold" else "gold")
        records += _event(i, {"x": x}, prediction, label)
    return records


@pytest.mark.parametrize("kind", ["regression", "multiclass"])
def test_concept_drift_for_regression_and_multiclass(kind: str) -> None:
    engine = _engine()
    alerts, _ = run(engine, _task_stream(5000, kind, 2500, seed=3))
    types = {(a.type, a.signal) for a in alerts}
    assert ("concept_drift", "error") in types
    assert not any(t == "data_drift" for t, _ in types)
    status = engine.status()["models"]["m"]
    assert status["task"] == kind
    metrics = {"regression": {"metric:mae", "metric:rmse"}, "multiclass": {"metric:accuracy"}}
    assert metrics[kind] <= set(status["signals"])


def test_versions_are_bounded() -> None:
    from streams.engine.model import MAX_VERSIONS

    engine = _engine()
    records = [
        InputRecord(Prediction(f"e{i}", "m", {"x": 1.0}, 0.5, f"v{i}", T0 + i), 0, i, T0 + i)
        for i in range(MAX_VERSIONS + 5)
    ]
    engine.process(records)
    status = engine.status()["models"]["m"]
    assert len(status["versions"]) == MAX_VERSIONS
    assert status["model_version"] == f"v{MAX_VERSIONS + 4}"
