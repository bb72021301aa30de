"""Data-quality expectations: per-value failing masks and windowed failing fractions."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from detectors._windowing import WindowedDetector
from detectors.base import DriftState, InvalidParameterError
from detectors.profile import build_profile
from detectors.quality import (
    AllowedCategories,
    AllowedCategoriesParams,
    MissingRate,
    MissingRateParams,
    TypeExpectation,
    TypeExpectationParams,
    ValueRange,
    ValueRangeParams,
)
from detectors.registry import create, restore

MIXED: list[Any] = [1, 2.5, True, "x", None, math.nan, math.inf, -3, "3", [1]]


@pytest.mark.parametrize(
    ("detector", "expected"),
    [
        (MissingRate(), [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]),
        (TypeExpectation(), [0, 0, 1, 1, 0, 0, 0, 0, 1, 1]),
        (TypeExpectation(TypeExpectationParams(expected="string")), [1, 1, 1, 0, 0, 0, 1, 1, 0, 1]),
        (TypeExpectation(TypeExpectationParams(expected="bool")), [1, 1, 0, 1, 0, 0, 1, 1, 1, 1]),
        (ValueRange(ValueRangeParams(min_value=-5, max_value=2)), [0, 1, 1, 1, 0, 0, 1, 0, 1, 1]),
        (
            AllowedCategories(AllowedCategoriesParams(categories=("1", "x", "3"))),
            [0, 1, 1, 0, 0, 0, 1, 1, 0, 1],
        ),
    ],
)
def test_failing_mask_per_value(detector: Any, expected: list[int]) -> None:
    assert detector.failing_mask(MIXED).astype(int).tolist() == expected


@pytest.mark.parametrize("kind", ["missing_rate", "type", "value_range", "allowed_categories"])
def test_vectorised_numpy_path_matches_the_per_value_path(kind: str) -> None:
    detector: Any = create(kind)
    rng = np.random.default_rng(0)
    floats = rng.normal(0.5, 1, 1000)
    floats[::7] = math.nan
    for array in (floats, rng.integers(-2, 3, 1000), rng.random(1000) < 0.5):
        np.testing.assert_array_equal(
            detector.failing_mask(array), detector.failing_mask(array.tolist()), err_msg=kind
        )


@pytest.mark.parametrize(
    "detector",
    [
        MissingRate(),
        TypeExpectation(),
        TypeExpectation(TypeExpectationParams(expected="string")),
        TypeExpectation(TypeExpectationParams(expected="bool")),
        ValueRange(),
        AllowedCategories(AllowedCategoriesParams(categories=("basic", "pro"))),
    ],
)
def test_string_list_path_matches_the_per_value_path(detector: Any) -> None:
    names = ["basic", "pro", "trial", "", "true", "3"] * 50
    expected = np.array([detector._fails(v) for v in names], dtype=np.bool_)
    np.testing.assert_array_equal(detector.failing_mask(names), expected)


def test_missing_values_are_counted_not_rejected() -> None:
    detector = MissingRate(MissingRateParams(window_size=100, mode="tumbling"))
    values: list[Any] = [0.1] * 300 + [None] * 6 + [0.2] * 94
    states = detector.update_many(values)
    assert detector.rejected == 0
    assert detector.updates == 400
    assert states[299] == DriftState.NONE
    assert states[399] == DriftState.DRIFT  # 6 % missing > 5 %
    assert detector.result().statistic == pytest.approx(0.06)


def test_failing_fraction_over_a_sliding_window_with_a_warning() -> None:
    params = ValueRangeParams(
        window_size=200, stride=10, max_failing_fraction=0.05, warning_fraction=0.02
    )
    detector = ValueRange(params)
    rng = np.random.default_rng(1)
    values = rng.random(2000)
    values[1000::10] += 1.0  # 10 % above the range from index 1000
    states = detector.update_many(values)
    first_warning = int(np.argmax(states == DriftState.WARNING))
    first_drift = int(np.argmax(states == DriftState.DRIFT))
    assert 1000 < first_warning < first_drift
    assert first_drift == 1109  # the first window end with 11 of 200 failing
    assert detector.result().details["failing"] == 20


def test_unseen_category_rate_raises_a_quality_alert() -> None:
    params = AllowedCategoriesParams(
        categories=("basic", "premium"), window_size=100, mode="tumbling"
    )
    detector = AllowedCategories(params)
    states = detector.update_many(["basic"] * 100 + ["basic"] * 97 + ["trial"] * 3)
    assert states[99] == DriftState.NONE
    assert states[199] == DriftState.DRIFT
    assert "basic, premium" in detector.result().details["expectation"]


@pytest.mark.parametrize(
    ("params_type", "values", "parameter"),
    [
        (ValueRangeParams, {"min_value": 2.0, "max_value": 1.0}, "max_value"),
        (AllowedCategoriesParams, {"categories": []}, "categories"),
        (AllowedCategoriesParams, {"categories": "abc"}, "categories"),
        (TypeExpectationParams, {"expected": "date"}, "expected"),
        (
            MissingRateParams,
            {"max_failing_fraction": 0.1, "warning_fraction": 0.2},
            "warning_fraction",
        ),
    ],
)
def test_bad_params_name_the_parameter(
    params_type: Any, values: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(InvalidParameterError) as info:
        params_type.from_mapping(values)
    assert info.value.parameter == parameter


def test_categories_from_config_lists_round_trip() -> None:
    params = AllowedCategoriesParams.from_mapping({"categories": ["a", "b"]})
    assert params.categories == ("a", "b")
    assert params.to_dict()["categories"] == ["a", "b"]
    with pytest.raises(InvalidParameterError):
        create("missing_rate", reference=build_profile("x", [1.0]))


class _DenseMissingRate(MissingRate):
    """A missing-value check keeping a byte per value in a ring, as every check did before."""

    def _init_state(self) -> None:
        WindowedDetector._init_state(self)

    _ordered_window = WindowedDetector._ordered_window
    _keep = WindowedDetector._keep
    _store = WindowedDetector._store


@pytest.mark.parametrize("window_size", [10, 256, 1000])
@pytest.mark.parametrize("failing", [0.0, 0.003, 0.05, 0.6, 1.0])
def test_a_check_keeps_only_where_its_window_fails(window_size: int, failing: float) -> None:
    """The window is the ring positions of its failing values (issue 15: a healthy check
    held 1 KB, now none): every state, result and snapshot is the byte ring's, through
    chunks shorter and longer than the window, single updates and restores."""
    rng = np.random.default_rng(int(failing * 1000) + window_size)
    params = {"window_size": window_size, "stride": max(1, window_size // 4)}
    sparse: Any = create("missing_rate", params)
    dense = _DenseMissingRate(sparse.params)
    values = np.where(rng.random(6000) < failing, np.nan, 1.0).tolist()
    start = 0
    while start < len(values):
        size = int(rng.choice([1, 1, 7, window_size - 1, window_size, 3 * window_size + 5]))
        chunk = values[start : start + size]
        if size == 1:
            assert sparse.update(chunk[0]) == dense.update(chunk[0])
        else:
            np.testing.assert_array_equal(sparse.update_many(chunk), dense.update_many(chunk))
        assert sparse.result() == dense.result()
        start += size
        if rng.random() < 0.1:
            sparse = restore(json.loads(json.dumps(sparse.snapshot())))
    assert sparse.snapshot() == dense.snapshot()
    in_window = int(np.count_nonzero(np.isnan(values[-window_size:])))
    assert len(sparse._failing) == in_window
    assert sparse._failing.nbytes == in_window * (1 if window_size <= 256 else 2)
    assert sparse._ring.nbytes == 0
