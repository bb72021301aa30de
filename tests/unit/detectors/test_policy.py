"""Alarm policy: budget split across signals, minimum evidence, hysteresis."""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pytest

from detectors.base import DriftState, InvalidParameterError, SnapshotError
from detectors.policy import (
    SIGNIFICANCE_PARAMETERS,
    Z_PARAMETERS,
    AlarmPolicy,
    SignalGate,
    Transition,
)
from detectors.registry import DETECTORS, create

NONE, WARNING, DRIFT = DriftState.NONE, DriftState.WARNING, DriftState.DRIFT


def test_every_adjusted_parameter_exists() -> None:
    for kind, names in SIGNIFICANCE_PARAMETERS.items():
        known = {f.name for f in fields(DETECTORS[kind].params_type)}
        assert set(names) <= known, kind
    for kind, pairs in Z_PARAMETERS.items():
        known = {f.name for f in fields(DETECTORS[kind].params_type)}
        assert {name for name, _ in pairs} <= known, kind


@pytest.mark.parametrize("kind", sorted(DETECTORS))
def test_adjusted_params_build_every_kind(kind: str) -> None:
    for n_signals in (1, 7, 500):
        create(kind, AlarmPolicy().detector_params(kind, n_signals))


def test_bonferroni_divides_significance_by_the_number_of_signals() -> None:
    policy = AlarmPolicy()
    assert policy.detector_params("adwin", 1)["delta"] == 0.002
    assert policy.detector_params("adwin", 20)["delta"] == pytest.approx(0.0001)
    hddm = policy.detector_params("hddm_a", 10)
    assert hddm["drift_confidence"] == pytest.approx(0.0001)
    assert hddm["warning_confidence"] == pytest.approx(0.0005)
    chi = policy.detector_params("chi_square", 10, {"alpha": 1e-3, "warning_alpha": 1e-2})
    assert (chi["alpha"], chi["warning_alpha"]) == pytest.approx((1e-4, 1e-3))
    assert AlarmPolicy(split="none").detector_params("adwin", 20)["delta"] == 0.002


def test_z_thresholds_move_to_the_divided_tail() -> None:
    ddm = AlarmPolicy().detector_params("ddm", 10)
    assert ddm["drift_threshold"] == pytest.approx(3.64, abs=0.01)  # one-sided 0.00135 / 10
    band = AlarmPolicy().detector_params("prediction_band", 10)
    assert band["k"] == pytest.approx(5.43, abs=0.01)  # two-sided 5.7e-7 / 10


def test_non_probability_thresholds_are_left_alone() -> None:
    policy = AlarmPolicy()
    assert policy.detector_params("psi", 50) == policy.detector_params("psi", 1)
    default = DETECTORS["page_hinkley"].params_type().to_dict()
    assert policy.detector_params("page_hinkley", 50) == default


def test_confirm_windows_reaches_window_tests_unless_configured() -> None:
    policy = AlarmPolicy(confirm_windows=3)
    assert policy.detector_params("ks", 1)["confirmations"] == 3
    assert policy.detector_params("ks", 1, {"confirmations": 1})["confirmations"] == 1
    assert "confirmations" not in policy.detector_params("adwin", 1)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(InvalidParameterError) as info:
        AlarmPolicy().detector_params("adwin", 0)
    assert info.value.parameter == "n_signals"
    with pytest.raises(InvalidParameterError) as info:
        AlarmPolicy().detector_params("nope", 1)
    assert info.value.parameter == "kind"
    with pytest.raises(InvalidParameterError) as info:
        AlarmPolicy().detector_params("adwin", 2, {"dleta": 0.1})
    assert info.value.parameter == "dleta"
    with pytest.raises(InvalidParameterError) as info:
        AlarmPolicy.from_mapping({"clear_after": 0})
    assert info.value.parameter == "clear_after"
    with pytest.raises(InvalidParameterError) as info:
        AlarmPolicy.from_mapping({"split": "holm"})
    assert info.value.parameter == "split"


def test_min_evidence_ignores_early_alarms() -> None:
    gate = SignalGate(AlarmPolicy(min_updates=50))
    assert gate.observe(DRIFT, 49) is None
    assert gate.level is NONE
    assert gate.observe(DRIFT, 50) is Transition.ENTERED_DRIFT


def test_hysteresis_merges_repeated_detections() -> None:
    gate = SignalGate(AlarmPolicy(min_updates=0, clear_after=100))
    assert gate.observe(DRIFT, 10) is Transition.ENTERED_DRIFT
    assert gate.observe(NONE, 60) is None
    assert gate.observe(DRIFT, 100) is None  # the same alarm, refreshed
    assert gate.observe(WARNING, 150) is None  # a warning keeps the drift alive
    assert gate.observe(NONE, 249) is None
    assert gate.observe(NONE, 250) is Transition.CLEARED
    assert gate.observe(WARNING, 300) is Transition.ENTERED_WARNING
    assert gate.observe(DRIFT, 301) is Transition.ENTERED_DRIFT  # escalation
    assert gate.since == 301


def test_warnings_can_be_switched_off() -> None:
    gate = SignalGate(AlarmPolicy(min_updates=0, warnings=False))
    assert gate.observe(WARNING, 5) is None
    assert gate.observe(DRIFT, 6) is Transition.ENTERED_DRIFT


@pytest.mark.parametrize("seed", range(5))
def test_observe_many_equals_observe_one_by_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    states = rng.choice([0, 1, 2], 3000, p=[0.985, 0.01, 0.005]).astype(np.int8)
    policy = AlarmPolicy(min_updates=120, clear_after=60)
    one = SignalGate(policy)
    expected = []
    for i, state in enumerate(states.tolist()):
        transition = one.observe(state, 1 + i)
        if transition is not None:
            expected.append((1 + i, transition))
    batched = SignalGate(policy)
    got = batched.observe_many(states[:1234], 1) + batched.observe_many(states[1234:], 1235)
    assert got == expected
    assert len(expected) > 10
    assert batched.snapshot() == one.snapshot()


def test_gate_snapshot_restore_continues_exactly() -> None:
    policy = AlarmPolicy(min_updates=0, clear_after=10)
    gate = SignalGate(policy)
    gate.observe(DRIFT, 5)
    revived = SignalGate.restore(policy, json.loads(json.dumps(gate.snapshot())))
    for updates in range(6, 30):
        assert revived.observe(NONE, updates) == gate.observe(NONE, updates)
    assert revived.level is gate.level is NONE
    with pytest.raises(SnapshotError):
        SignalGate.restore(policy, {"level": 9, "last_alarm": 0, "since": 0})
    with pytest.raises(SnapshotError):
        SignalGate.restore(policy, {"level": 0})
