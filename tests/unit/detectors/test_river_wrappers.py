"""The river wrappers say exactly what river says, and report the numbers behind it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from river import drift
from river.drift import binary

from detectors import (
    ADWIN,
    DDM,
    EDDM,
    FHDDM,
    HDDMA,
    HDDMW,
    KSWIN,
    ADWINParams,
    DDMParams,
    DriftState,
    EDDMParams,
    FHDDMParams,
    HDDMAParams,
    InvalidParameterError,
    KSWINParams,
    PageHinkley,
    PageHinkleyParams,
    SnapshotError,
    restore,
)
from detectors._adwin_state import window_from_data, window_to_data
from detectors._river import RiverDetector

RNG_SEED = 3


def numeric(n: int = 6000) -> list[float]:
    rng = np.random.default_rng(RNG_SEED)
    shift = np.repeat([0.0, 2.0, 0.0, -1.0], n // 4)
    return (rng.normal(0.0, 1.0, n) + shift).tolist()


def errors(n: int = 6000) -> list[int]:
    rng = np.random.default_rng(RNG_SEED)
    rate = np.repeat([0.1, 0.4, 0.1, 0.3], n // 4)
    return (rng.random(n) < rate).astype(int).tolist()


# wrapper, river twin, stream, whether river is fed 1 - value (FHDDM expects 1 = correct)
PAIRS: list[tuple[RiverDetector, Any, Callable[[], list[Any]], bool]] = [
    (ADWIN(), drift.ADWIN(), numeric, False),
    (PageHinkley(), drift.PageHinkley(delta=0.5, threshold=20.0, alpha=1.0), numeric, False),
    (
        KSWIN(KSWINParams(window_size=100, stat_size=30, alpha=1e-4)),
        drift.KSWIN(alpha=1e-4, window_size=100, stat_size=30, seed=42),
        lambda: numeric(1600),
        False,
    ),
    (DDM(), binary.DDM(), errors, False),
    (EDDM(), binary.EDDM(), errors, False),
    (HDDMA(), binary.HDDMA(), errors, False),
    (HDDMW(), binary.HDDMW(), errors, False),
    (FHDDM(), binary.FHDDM(), errors, True),
]


@pytest.mark.parametrize(
    ("wrapper", "twin", "stream", "inverted"), PAIRS, ids=[pair[0].kind for pair in PAIRS]
)
def test_states_match_river(
    wrapper: RiverDetector, twin: Any, stream: Callable[[], list[Any]], inverted: bool
) -> None:
    values = stream()
    states = wrapper.update_many(np.asarray(values))
    expected = []
    for value in values:
        twin.update(1 - value if inverted else value)
        warning = getattr(twin, "warning_detected", False)
        expected.append(2 if twin.drift_detected else (1 if warning else 0))
    np.testing.assert_array_equal(states, np.array(expected, dtype=np.int8))
    assert (states == DriftState.DRIFT).any(), "the stream should make every detector fire"


@pytest.mark.parametrize("mode", ["both", "up", "down"])
@pytest.mark.parametrize("alpha", [1.0, 0.9999])
def test_page_hinkley_batch_loop_is_bit_identical_to_river(mode: str, alpha: float) -> None:
    """The batch loop replaces river's update: every state and every internal float equal."""
    params = {"delta": 0.05, "threshold": 8.0, "alpha": alpha, "mode": mode, "min_instances": 20}
    values = numeric()
    batched = PageHinkley(PageHinkleyParams(**params))
    twin = drift.PageHinkley(**params)
    states: list[int] = []
    for start in range(0, len(values), 777):  # batch boundaries fall anywhere
        states.extend(batched.update_many(np.asarray(values[start : start + 777])).tolist())
    expected = []
    for value in values:
        twin.update(value)
        expected.append(2 if twin.drift_detected else 0)
    assert states == expected
    assert expected.count(2) > 1, "the stream should make the detector fire and reset"
    river = batched._river
    assert (river._x_mean.n, river._x_mean._mean) == (twin._x_mean.n, twin._x_mean._mean)
    assert (river._sum_increase, river._sum_decrease) == (twin._sum_increase, twin._sum_decrease)
    assert (river._min_increase, river._max_decrease) == (twin._min_increase, twin._max_decrease)
    assert river._drift_detected == twin._drift_detected


def test_adwin_reports_means_around_the_cut() -> None:
    detector = ADWIN()
    states = detector.update_many(np.asarray(numeric()))
    first = int(np.flatnonzero(states == DriftState.DRIFT)[0])
    replay = ADWIN()
    replay.update_many(np.asarray(numeric()[: first + 1]))
    result = replay.result()
    assert result.drift
    assert result.details["mean_before"] == pytest.approx(0.0, abs=0.25)
    assert result.details["mean_after"] > result.details["mean_before"] + 0.5
    assert result.statistic == pytest.approx(
        result.details["mean_after"] - result.details["mean_before"]
    )
    assert result.window_size == result.details["width"] > 0


def test_adwin_window_codec_is_exact() -> None:
    detector = ADWIN()
    detector.update_many(np.asarray(numeric(3000)))
    helper = detector._river._helper
    data = window_to_data(helper)
    p = ADWINParams()
    copy = window_from_data(
        data, p.delta, p.clock, p.max_buckets, p.min_window_length, p.grace_period
    )
    assert copy.__getstate__() == helper.__getstate__()


@pytest.mark.parametrize(
    ("field", "value"),
    [("width", 1.0), ("total", float("nan")), ("tick", -1), ("buckets", []), ("buckets", "x")],
)
def test_adwin_inconsistent_window_is_refused(field: str, value: Any) -> None:
    detector = ADWIN()
    detector.update_many(np.asarray(numeric(3000)))
    snapshot = detector.snapshot()
    snapshot["data"]["window"][field] = value
    with pytest.raises(SnapshotError):
        restore(snapshot)


def test_verdict_statistics_cross_their_thresholds_on_drift() -> None:
    for detector, stream in [(PageHinkley(), numeric), (DDM(), errors)]:
        for value in stream():
            if detector.update(value) is DriftState.DRIFT:
                break
        result = detector.result()
        assert result.drift
        assert result.statistic is not None
        assert result.threshold is not None
        assert result.statistic > result.threshold


def test_binary_detectors_take_0_1_and_bools_only() -> None:
    detector = DDM()
    for value in [0, 1, True, False, 0.0, 1.0, np.int8(1), np.float32(0.0)]:
        detector.update(value)
    for value in [0.5, 2, -1, "1", None, float("nan")]:
        detector.update(value)
    assert (detector.updates, detector.rejected) == (8, 6)
    states = detector.update_many(np.array([0.0, 0.5, 1.0, np.nan, 2.0]))
    assert (detector.updates, detector.rejected) == (10, 9)
    assert len(states) == 5


def test_update_many_refuses_a_2d_batch() -> None:
    with pytest.raises(ValueError, match="1-D"):
        ADWIN().update_many(np.zeros((2, 2)))


@pytest.mark.parametrize(
    ("params_type", "values", "parameter"),
    [
        (ADWINParams, {"delta": 1.5}, "delta"),
        (ADWINParams, {"clock": 0}, "clock"),
        (PageHinkleyParams, {"mode": "sideways"}, "mode"),
        (PageHinkleyParams, {"threshold": 0}, "threshold"),
        (KSWINParams, {"window_size": 100, "stat_size": 60}, "stat_size"),
        (KSWINParams, {"alpha": 0}, "alpha"),
        (DDMParams, {"warning_threshold": 3.0, "drift_threshold": 2.0}, "drift_threshold"),
        (EDDMParams, {"alpha": 0.8, "beta": 0.9}, "beta"),
        (
            HDDMAParams,
            {"drift_confidence": 0.01, "warning_confidence": 0.001},
            "warning_confidence",
        ),
        (HDDMAParams, {"two_sided_test": "yes"}, "two_sided_test"),
        (FHDDMParams, {"sliding_window_size": 10, "short_window_size": 20}, "short_window_size"),
    ],
)
def test_parameter_errors_name_the_parameter(
    params_type: Any, values: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(InvalidParameterError) as info:
        params_type.from_mapping(values)
    assert info.value.parameter == parameter
    assert repr(parameter) in str(info.value)
