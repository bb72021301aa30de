"""Prediction band: hard range with a tolerance, and a learned band for the mean."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from detectors.band import PredictionBand, PredictionBandParams
from detectors.base import DriftState, InvalidParameterError
from detectors.profile import build_profile
from detectors.registry import create


def first_drift(states: np.ndarray[Any, Any]) -> int | None:
    hits = np.flatnonzero(states == DriftState.DRIFT)
    return int(hits[0]) if len(hits) else None


def churn_scores(seed: int, n: int) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).beta(2, 5, n)


def test_isolated_outliers_are_tolerated() -> None:
    values = churn_scores(1, 20_000)
    values[::250] = 1.5  # 0.4 % out of range, under the 1 % tolerance
    detector = PredictionBand(PredictionBandParams(low=0.0, high=1.0))
    assert first_drift(detector.update_many(values)) is None
    assert detector.result().details["outside_fraction"] == pytest.approx(0.004)


def test_too_many_values_out_of_range_is_drift() -> None:
    values = churn_scores(2, 6000)
    values[4000::20] = -0.2  # 5 % below zero from index 4000
    detector = PredictionBand(PredictionBandParams(low=0.0, high=1.0))
    states = detector.update_many(values)
    # windows of 500 every 50 values: the first with > 1 % (6 of 500) outside ends at 4149
    assert first_drift(states) == 4149
    assert detector.result().details["reason"] == "hard_range"


def test_a_moving_mean_leaves_the_band() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate((rng.beta(2, 5, 4000), rng.beta(2.6, 5, 2000)))  # mean .286 -> .342
    detector = PredictionBand()
    states = detector.update_many(values)
    assert first_drift(states) == 4249
    result = detector.result()
    assert result.details["reason"] == "mean_band"
    assert result.details["mean_after"] > result.details["band_high"]
    assert result.statistic is not None
    assert result.threshold is not None
    assert result.statistic > result.threshold


def test_band_from_a_reference_profile() -> None:
    reference = build_profile("prediction", churn_scores(4, 50_000))
    detector = create("prediction_band", {"k": 4.0, "warning_k": 3.0}, reference=reference)
    calm = detector.update_many(churn_scores(5, 5000))
    assert first_drift(calm) is None
    assert detector.update_many(churn_scores(6, 500) + 0.1)[-1] == DriftState.DRIFT


@pytest.mark.parametrize(
    ("values", "parameter"),
    [
        ({"low": 1.0, "high": 0.0}, "high"),
        ({"k": 2.0, "warning_k": 3.0}, "warning_k"),
        ({"max_outside_fraction": 1.5}, "max_outside_fraction"),
        ({"low": "zero"}, "low"),
    ],
)
def test_bad_params_name_the_parameter(values: dict[str, Any], parameter: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        PredictionBandParams.from_mapping(values)
    assert info.value.parameter == parameter
