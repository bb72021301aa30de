"""One alert per change: metric hysteresis, significant quality breaches, and an error
signal that concept drift moves but data drift does not (found by the scenario tests)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.base import DriftState
from detectors.quality import MissingRate, MissingRateParams
from streams.engine.config import DEFAULT_QUALITY, ConfigError, MonitorConfig
from streams.engine.performance import RollingPerformance
from streams.engine.tasks import excess_error


def _hovering(rng: np.random.Generator, n: int, accuracy: float) -> tuple[np.ndarray, ...]:
    """``n`` binary pairs whose accuracy at 0.5 is ``accuracy`` on average."""
    label = (rng.random(n) < 0.5).astype(float)
    right = rng.random(n) < accuracy
    score = np.where(right == (label == 1.0), 0.8, 0.2)
    return score, label


def _entries(perf: RollingPerformance, score: np.ndarray, label: np.ndarray) -> list[int]:
    changes = []
    for start in range(0, score.size, 250):
        changes += perf.update(score[start : start + 250], label[start : start + 250])
    return [c.position for c in changes if c.metric == "accuracy" and c.entered]


def test_a_metric_hovering_around_its_limit_alerts_once() -> None:
    rng = np.random.default_rng(3)
    good = _hovering(rng, 2000, 0.80)
    near = _hovering(rng, 8000, 0.68)  # just below the limit: some windows are above it
    score, label = (np.concatenate(pair) for pair in zip(good, near, strict=True))
    common = {"window": 1000, "every": 100, "thresholds": {"accuracy": 0.70}}
    flapping = RollingPerformance("binary", relative_drop=None, **common)  # type: ignore[arg-type]
    assert len(_entries(flapping, score, label)) > 1  # without hysteresis: a storm
    steady = RollingPerformance("binary", relative_drop=None, clear_after=1000, **common)  # type: ignore[arg-type]
    assert len(_entries(steady, score, label)) == 1


def test_metric_hysteresis_survives_snapshot_and_restore() -> None:
    rng = np.random.default_rng(5)
    score, label = _hovering(rng, 6000, 0.70)
    params = {"window": 1000, "every": 100, "thresholds": {"accuracy": 0.70}}
    original = RollingPerformance("binary", relative_drop=None, clear_after=1000, **params)  # type: ignore[arg-type]
    original.update(score[:3000], label[:3000])
    revived = RollingPerformance("binary", relative_drop=None, clear_after=1000, **params)  # type: ignore[arg-type]
    revived.restore(original.snapshot())
    assert revived.update(score[3000:], label[3000:]) == original.update(score[3000:], label[3000:])


def test_excess_error_ignores_data_drift_and_follows_concept_drift() -> None:
    rng = np.random.default_rng(7)

    def mean_excess(p: np.ndarray, truth: np.ndarray) -> float:
        label = (rng.random(p.size) < truth).astype(float)
        return float(excess_error(p, label, 0.5).mean())

    before = rng.beta(2, 5, 200_000)  # a calibrated model on the old population
    shifted = rng.beta(4, 4, 200_000)  # the inputs moved: predictions near 0.5, more errors
    assert abs(mean_excess(before, before)) < 0.005
    assert abs(mean_excess(shifted, shifted)) < 0.005  # data drift: no excess error
    assert mean_excess(before, 1.0 - before) > 0.3  # the world's rule flipped: concept drift


def test_a_binary_model_refuses_0_1_detectors_on_its_error_stream() -> None:
    document = {"models": {"churn": {"task": "binary", "detectors": {"error": {"ddm": {}}}}}}
    with pytest.raises(ConfigError, match=r"models\.churn\.detectors\.error\.ddm"):
        MonitorConfig.from_mapping(document)
    multiclass = {"models": {"m": {"task": "multiclass", "detectors": {"error": {"ddm": {}}}}}}
    MonitorConfig.from_mapping(multiclass)  # 0/1 errors: DDM fits


def test_quality_alerts_need_a_significant_breach_then_hold() -> None:
    # the parameters a default model's missing-rate check gets (its share of the budget)
    policy = MonitorConfig().model("m").alarms
    params = policy.detector_params(
        "missing_rate", 40, {**DEFAULT_QUALITY["missing_rate"], "max_failing_fraction": 0.05}
    )
    rng = np.random.default_rng(11)
    within = MissingRate(MissingRateParams.from_mapping(params))
    values = np.where(rng.random(20_000) < 0.04, np.nan, 1.0)  # 4 % missing, limit 5 %
    assert not (within.update_many(values) == DriftState.DRIFT).any()

    breached = MissingRate(MissingRateParams.from_mapping(params))
    values = np.where(rng.random(20_000) < 0.08, np.nan, 1.0)  # above the limit
    drift = breached.update_many(values) == DriftState.DRIFT
    entries = np.flatnonzero(drift[1:] & ~drift[:-1])
    assert drift.any()
    assert entries.size <= 1  # enters once, holds while above the limit
