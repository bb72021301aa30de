"""The label-free performance estimate (CBPE, streams.engine.estimate): the expected metrics
against brute force and against realised metrics, batch independence, the estimate:* signal
and its alert, and why concept drift makes it wrong."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from engine_streams import churn_stream, run

from streams.core.events import GroundTruth, Prediction
from streams.engine import ConfigError, MonitorConfig
from streams.engine.engine import Engine
from streams.engine.estimate import (
    PerformanceEstimate,
    calibrated,
    calibration,
    expected_accuracy,
    expected_roc_auc,
)
from streams.engine.performance import compute_metric


def test_expected_roc_auc_is_the_weighted_pairwise_probability() -> None:
    rng = np.random.default_rng(2)
    scores = np.round(rng.random(40), 1)  # ties included
    q = rng.random(40)
    num = den = 0.0
    for i, j in itertools.product(range(40), repeat=2):
        weight = q[i] * (1 - q[j])
        den += weight
        num += weight * (1.0 if scores[i] > scores[j] else 0.5 if scores[i] == scores[j] else 0.0)
    assert expected_roc_auc(scores, q) == pytest.approx(num / den)
    assert expected_roc_auc(scores, np.ones(40)) is None


def test_calibration_is_monotone_and_tracks_the_label_rate() -> None:
    rng = np.random.default_rng(3)
    scores = rng.random(20_000)
    labels = (rng.random(20_000) < scores**2).astype(float)  # an over-confident model
    xs, ys = calibration(scores, labels)
    assert np.all(np.diff(ys) >= 0)
    grid = np.array([0.2, 0.5, 0.8])
    assert calibrated((xs, ys), grid) == pytest.approx(grid**2, abs=0.05)


def test_estimates_follow_realised_metrics_of_a_calibrated_model() -> None:
    rng = np.random.default_rng(5)
    errors = []
    for _ in range(20):
        cal_scores, new = rng.random(2000), rng.beta(2, 2, 1000)
        cal_labels = (rng.random(2000) < cal_scores).astype(float)
        truth = (rng.random(1000) < new).astype(float)
        q = calibrated(calibration(cal_scores, cal_labels), new)
        errors.append(expected_roc_auc(new, q) - compute_metric("roc_auc", new, truth, 0.5))
        errors.append(expected_accuracy(new, q, 0.5) - compute_metric("accuracy", new, truth, 0.5))
    assert np.mean(np.abs(errors)) < 0.025


def _engine(**estimate: int) -> Engine:
    config = {
        "defaults": {
            "warmup": 200,
            "performance": {"window": 500, "every": 100},
            "estimate": {"every": 250, "calibration_pairs": 1000, "min_pairs": 200, **estimate},
        }
    }
    return Engine(MonitorConfig.from_mapping(config), clock=lambda: 0.0)


def test_the_estimate_does_not_depend_on_batches() -> None:
    records = churn_stream(4000, seed=8, label_delay=120.0)
    results = []
    for size in (37, 500, 4000):
        engine = _engine()
        alerts, _ = run(engine, records, size=size)
        estimate = engine._models["churn"].estimates["v1"]
        results.append((estimate.values, estimate.evaluated_at, [a.alert_id for a in alerts]))
    assert results[0] == results[1] == results[2]
    assert results[0][0]["roc_auc"] is not None


def _estimator() -> PerformanceEstimate:
    return PerformanceEstimate(
        window=1000,
        every=500,
        calibration_pairs=2000,
        min_pairs=500,
        threshold=0.5,
        thresholds={},
        clear_after=1,
    )


def test_the_estimator_keeps_a_byte_per_label_and_estimates_from_the_float_labels() -> None:
    """A binary label is kept as one byte (it is 0.0 or 1.0); the estimate is the one the
    module's functions give on the float labels, and a snapshot still writes floats."""
    rng = np.random.default_rng(21)
    scores = rng.random(3000)
    labels = (rng.random(3000) < scores).astype(np.float64)
    labels[::7] = -0.0  # the join admits -0.0 as a 0 label: it is one
    new = rng.random(1000)
    estimate = _estimator()
    estimate.add_pairs(scores, labels, np.arange(3000, dtype=np.int64))
    estimate.add_scores(new, np.arange(3000, 4000, dtype=np.int64), np.zeros(1000))
    estimate.evaluate()
    assert estimate.pair_labels.nbytes == 2000  # the last calibration_pairs, a byte each
    q = calibrated(calibration(scores[-2000:], labels[-2000:]), new)
    assert estimate.values == {
        "accuracy": expected_accuracy(new, q, 0.5),
        "roc_auc": expected_roc_auc(new, q),
    }
    data = estimate.snapshot()
    assert data["pairs"][1] == np.abs(labels[-2000:]).tolist()
    restored = _estimator()
    restored.restore(data)
    assert restored.snapshot() == data
    assert restored.pair_labels.dtype == np.bool_


def test_concept_drift_leaves_the_estimate_confident_while_the_realised_metric_falls() -> None:
    """The documented failure: P(label | score) changed, the scores did not. The labels of
    the drifted predictions have not come yet (that is when an estimate is read)."""
    engine = _engine()
    records = churn_stream(6000, seed=9, concept_drift_at=4000, label_delay=30.0)
    change = records[0].timestamp + 400.0  # event 4000 at 10 events/s
    before = [r for r in records if r.timestamp < change]
    after = [r for r in records if r.timestamp >= change and isinstance(r.event, Prediction)]
    truth = {
        r.event.event_id: float(r.event.label)
        for r in records
        if r.timestamp >= change and isinstance(r.event, GroundTruth)
    }
    run(engine, before, size=1000)
    estimate = engine._models["churn"].estimates["v1"]
    estimated_before = estimate.values["roc_auc"]
    run(engine, after, size=1000)
    window = [r.event for r in after[-500:]]
    realised = compute_metric(
        "roc_auc",
        np.array([float(p.prediction) for p in window]),
        np.array([truth[p.event_id] for p in window]),
        0.5,
    )
    estimated = estimate.values["roc_auc"]
    assert estimated is not None
    assert estimated_before is not None
    assert realised is not None
    assert abs(estimated - estimated_before) < 0.05  # the scores look as good as before
    assert estimated - realised > 0.3  # the labels will say otherwise


def test_estimate_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"models\.m\.estimate\.min_pairs"):
        MonitorConfig.from_mapping({"models": {"m": {"estimate": {"min_pairs": 1}}}})


def test_alignment_settings_are_per_partition_only() -> None:
    with pytest.raises(ConfigError, match=r"models\.m\.join\.max_lead_seconds: applies to a whole"):
        MonitorConfig.from_mapping({"models": {"m": {"join": {"max_lead_seconds": 5}}}})
    config = MonitorConfig.from_mapping({"defaults": {"join": {"max_lead_seconds": 5}}})
    assert config.defaults.join.max_lead_seconds == 5.0
