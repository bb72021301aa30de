"""Detector parameters resolved once per configuration (streams.engine.signals): the
detectors of models with the same configuration share one validated parameter object,
and a configuration that differs, even only in a value's type, gets its own."""

from __future__ import annotations

import pytest

from detectors.base import InvalidParameterError
from detectors.policy import AlarmPolicy
from streams.engine.signals import create_detector


def _create(kind: str, params: dict[str, object], policy: AlarmPolicy | None = None) -> object:
    return create_detector(
        kind,
        params,
        warmup=1000,
        reference=None,
        policy=policy or AlarmPolicy(),
        n_detectors=40,
    )


def test_detectors_of_the_same_configuration_share_one_parameter_object() -> None:
    first, second = _create("psi", {"window_size": 500}), _create("psi", {"window_size": 500})
    assert first is not second
    assert first._params is second._params  # type: ignore[attr-defined]
    assert first._params.window_size == 500  # type: ignore[attr-defined]


def test_what_the_parameters_depend_on_gives_other_parameters() -> None:
    base = _create("adwin", {})._params  # type: ignore[attr-defined]
    stricter = _create("adwin", {}, AlarmPolicy(expected_run_time=1e7))._params  # type: ignore[attr-defined]
    weighted = _create("adwin", {}, AlarmPolicy(weights={"adwin": 2.0}))._params  # type: ignore[attr-defined]
    configured = _create("adwin", {"delta": 0.01})._params  # type: ignore[attr-defined]
    assert stricter.delta < base.delta
    assert weighted.delta > base.delta
    assert configured.delta == 0.01
    assert base is _create("adwin", {})._params  # type: ignore[attr-defined]


def test_a_value_of_another_type_is_checked_not_taken_from_the_shared_one() -> None:
    _create("psi", {"window_size": 1000})
    with pytest.raises(InvalidParameterError, match="window_size"):
        _create("psi", {"window_size": 1000.0})
    with pytest.raises(InvalidParameterError, match="window_size"):
        _create("psi", {"window_size": True})


def test_a_list_among_the_values_is_resolved_each_time() -> None:
    first = _create("allowed_categories", {"categories": ["a", "b"]})
    second = _create("allowed_categories", {"categories": ["a", "b"]})
    assert first._params == second._params  # type: ignore[attr-defined]
    assert first._params.categories == ("a", "b")  # type: ignore[attr-defined]
