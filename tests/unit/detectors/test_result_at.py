"""``result_at``: the statistics as they were at a value inside the last batch, equal to
those of a detector fed one value at a time up to that value."""

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
def test_result_at_each_drift_is_the_one_by_one_result(
    kind: str, params: dict[str, Any], stream: Any, gaps: bool
) -> None:
    values = stream(5)
    if gaps:
        values = _with_gaps(values)
    expected = _one_by_one(kind, params, values)
    detector: Detector = create(kind, params)
    detector.update_many(values[:2500])
    first = detector.updates + 1
    states = detector.update_many(values[2500:])
    drifts = np.flatnonzero(states == DriftState.DRIFT).tolist()
    assert len(drifts) >= 1, "the stream must drift inside the batch"
    assert drifts[0] < len(states) - 1, "and before its end, or the test proves nothing"
    for i in drifts:
        got = detector.result_at(first + i)
        assert got.state is DriftState.DRIFT
        assert got.to_dict() == expected[2500 + i].to_dict()


@pytest.mark.parametrize("kind", ["ks", "chi_square"])
def test_window_tests_know_every_position_after_their_first_window(kind: str) -> None:
    params, stream = next((p, s) for k, p, s in CASES if k == kind)
    values = stream(9)
    expected = _one_by_one(kind, params, values)
    detector = create(kind, params)
    detector.update_many(values[:1500])  # warm-up and the first windows
    first = detector.updates + 1
    states = detector.update_many(values[1500:])
    assert set(states.tolist()) >= {0, 2}
    for i in range(0, len(states), 37):
        assert detector.result_at(first + i).to_dict() == expected[1500 + i].to_dict()


def test_outside_the_last_batch_and_after_single_updates_it_is_the_current_result() -> None:
    adwin = create("adwin", {})
    values = _shifted(5)
    states = adwin.update_many(values)
    i = int(np.argmax(states == DriftState.DRIFT))
    assert adwin.result_at(1 + i).drift
    for outside in (0, len(values) + 1, -5):
        assert adwin.result_at(outside) == adwin.result()
    adwin.update(0.0)  # a single update forgets the batch
    assert adwin.result_at(1 + i) == adwin.result()


def test_no_window_evaluated_yet_gives_the_current_result() -> None:
    ks = create("ks", {"window_size": 300, "stride": 50, "warmup": 1000})
    ks.update_many([0.5] * 900)
    result = ks.result_at(100)
    assert result == ks.result()
    assert result.details["warmup_seen"] == 900


def test_the_batch_record_is_not_in_the_snapshot() -> None:
    for kind, params, stream in CASES:
        values = stream(5)
        batched, single = create(kind, params), create(kind, params)
        batched.update_many(values)
        for value in values:
            single.update(value)
        assert batched.snapshot() == single.snapshot(), kind
