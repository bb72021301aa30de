"""``trace_many``: the statistics as they were at a value inside a batch, equal to those of
a detector fed one value at a time up to that value; the detector keeps none of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from detectors.base import DetectionResult, Detector, DriftState
from detectors.registry import create


def _shifted(seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    values: list[Any] = np.concatenate((rng.normal(0, 1, 3000), rng.normal(1.5, 1, 3000))).tolist()
    return values


def _categories(seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    before = rng.choice(["a", "b", "c"], 3000, p=[0.6, 0.3, 0.1])
    after = rng.choice(["a", "b", "c"], 3000, p=[0.4, 0.3, 0.3])
    values: list[Any] = np.concatenate((before, after)).tolist()
    return values


def _errors(seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    errors = np.concatenate((rng.random(3000) < 0.1, rng.random(3000) < 0.5))
    values: list[Any] = errors.astype(int).tolist()
    return values


CASES: list[tuple[str, dict[str, Any], Callable[[int], list[Any]]]] = [
    ("ks", {"window_size": 300, "stride": 50, "warmup": 1000}, _shifted),
    ("psi", {"window_size": 300, "stride": 50, "warmup": 1000}, _shifted),
    ("chi_square", {"window_size": 300, "stride": 50, "warmup": 1000}, _categories),
    ("adwin", {}, _shifted),
    ("page_hinkley", {"threshold": 20.0}, _shifted),
    ("ddm", {}, _errors),
]


def _one_by_one(kind: str, params: dict[str, Any], values: list[Any]) -> list[DetectionResult]:
    """The result after each value, one ``update`` at a time."""
    detector = create(kind, params)
    out = []
    for value in values:
        detector.update(value)
        out.append(detector.result())
    return out


def _with_gaps(values: list[Any]) -> list[Any]:
    """Every 7th value replaced by one the detector rejects."""
    return [None if i % 7 == 3 else v for i, v in enumerate(values)]


@pytest.mark.parametrize("gaps", [False, True], ids=["clean", "rejected values"])
@pytest.mark.parametrize(("kind", "params", "stream"), CASES, ids=[c[0] for c in CASES])
def test_the_result_at_each_drift_is_the_one_by_one_result(
    kind: str, params: dict[str, Any], stream: Any, gaps: bool
) -> None:
    values = stream(5)
    if gaps:
        values = _with_gaps(values)
    expected = _one_by_one(kind, params, values)
    detector: Detector = create(kind, params)
    detector.update_many(values[:2500])
    states, trace = detector.trace_many(values[2500:])
    assert np.array_equal(states, create(kind, params).update_many(values)[2500:])
    drifts = np.flatnonzero(states == DriftState.DRIFT).tolist()
    assert len(drifts) >= 1, "the stream must drift inside the batch"
    assert drifts[0] < len(states) - 1, "and before its end, or the test proves nothing"
    for i in drifts:
        got = trace.result_at(i)
        assert got.state is DriftState.DRIFT
        assert got.to_dict() == expected[2500 + i].to_dict()


@pytest.mark.parametrize("kind", ["ks", "chi_square"])
def test_window_tests_know_every_position_after_their_first_window(kind: str) -> None:
    params, stream = next((p, s) for k, p, s in CASES if k == kind)
    values = stream(9)
    expected = _one_by_one(kind, params, values)
    detector = create(kind, params)
    detector.update_many(values[:1500])  # warm-up and the first windows
    states, trace = detector.trace_many(values[1500:])
    assert set(states.tolist()) >= {0, 2}
    for i in range(0, len(states), 37):
        assert trace.result_at(i).to_dict() == expected[1500 + i].to_dict()


def test_outside_the_batch_it_is_the_current_result_and_what_it_kept_stays() -> None:
    adwin = create("adwin", {})
    values = _shifted(5)
    states, trace = adwin.trace_many(values)
    i = int(np.argmax(states == DriftState.DRIFT))
    kept = trace.result_at(i)
    assert kept.drift
    for outside in (-1, len(values), -5):
        assert trace.result_at(outside) == adwin.result()
    adwin.update_many(values[:100])  # later updates do not change what the trace kept
    assert trace.result_at(i) == kept


def test_no_window_evaluated_yet_gives_the_current_result() -> None:
    ks = create("ks", {"window_size": 300, "stride": 50, "warmup": 1000})
    _, trace = ks.trace_many([0.5] * 900)
    result = trace.result_at(99)
    assert result == ks.result()
    assert result.details["warmup_seen"] == 900


@pytest.mark.parametrize(("kind", "params", "stream"), CASES, ids=[c[0] for c in CASES])
def test_the_detector_keeps_nothing_of_a_traced_batch(
    kind: str, params: dict[str, Any], stream: Any
) -> None:
    values = stream(5)
    traced, single = create(kind, params), create(kind, params)
    traced.trace_many(values)
    for value in values:
        single.update(value)
    assert traced.snapshot() == single.snapshot()
    assert sorted(vars(traced)) == sorted(vars(single))
