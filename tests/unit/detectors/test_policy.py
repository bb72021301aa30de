"""Alarm policy: budget split across signals, minimum evidence, hysteresis."""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pytest

from detectors.base import DriftState, InvalidParameterError, SnapshotError
from detectors.budget import SEQUENTIAL_MARGIN, adwin_delta, page_hinkley_threshold, z_for_tail
from detectors.policy import BUDGETED, AlarmPolicy, SignalGate, Transition
from detectors.registry import DETECTORS, create

NONE, WARNING, DRIFT = DriftState.NONE, DriftState.WARNING, DriftState.DRIFT


def test_every_derived_parameter_exists() -> None:
    for kind, derive in BUDGETED.items():
        known = {f.name for f in fields(DETECTORS[kind].params_type)}
        values = DETECTORS[kind].params_type().to_dict()
        assert set(derive(values, 1e7)) <= known, kind


@pytest.mark.parametrize("kind", sorted(DETECTORS))
def test_budgeted_params_build_every_kind(kind: str) -> None:
    for n_detectors in (1, 7, 500):
        create(kind, AlarmPolicy().detector_params(kind, n_detectors))


def test_every_kind_but_eddm_derives_from_the_budget() -> None:
    assert set(DETECTORS) - set(BUDGETED) == {"eddm"}


def test_the_run_length_is_the_share_of_the_budget() -> None:
    policy = AlarmPolicy(expected_run_time=2e6, weights={"adwin": 0.5})
    assert policy.run_length("ks", 10) == 2e7
    assert policy.run_length("adwin", 10) == 4e7
    assert policy.budget_share("ks", 10) == 0.1
    assert policy.budget_share("adwin", 10) == 0.05


def test_sequential_parameters_follow_the_run_length() -> None:
    policy = AlarmPolicy()
    adwin = policy.detector_params("adwin", 20)["delta"]
    assert adwin == pytest.approx(adwin_delta(2e7 * SEQUENTIAL_MARGIN))
    assert policy.detector_params("adwin", 200)["delta"] < adwin  # longer run: stricter
    ph = policy.detector_params("page_hinkley", 20)["threshold"]
    assert ph == pytest.approx(page_hinkley_threshold(2e7 * SEQUENTIAL_MARGIN))
    hddm = policy.detector_params("hddm_a", 10)
    assert hddm["drift_confidence"] == pytest.approx(1e-7)
    assert hddm["warning_confidence"] == pytest.approx(1e-6)


def test_window_tests_get_their_run_length_and_per_window_tails() -> None:
    policy = AlarmPolicy()
    assert policy.detector_params("ks", 10)["run_length"] == 1e7
    quality = policy.detector_params("missing_rate", 10, {"stride": 100})
    assert quality["alpha"] == pytest.approx(100 / 1e7)
    band = policy.detector_params("prediction_band", 10)  # stride 50
    assert band["k"] == pytest.approx(z_for_tail(50 / 1e7, 2))


def test_configured_parameters_win_and_none_keeps_defaults() -> None:
    policy = AlarmPolicy()
    assert policy.detector_params("adwin", 20, {"delta": 0.01})["delta"] == 0.01
    assert AlarmPolicy(split="none").detector_params("adwin", 20)["delta"] == 0.002
    assert AlarmPolicy(split="none").detector_params("psi", 20)["run_length"] is None
    assert policy.detector_params("eddm", 50) == policy.detector_params("eddm", 1)


def test_confirm_windows_reaches_window_tests_unless_configured() -> None:
    policy = AlarmPolicy(confirm_windows=3)
    assert policy.detector_params("ks", 1)["confirmations"] == 3
    assert policy.detector_params("ks", 1, {"confirmations": 1})["confirmations"] == 1
    assert "confirmations" not in policy.detector_params("adwin", 1)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(InvalidParameterError) as info:
        AlarmPolicy().detector_params("adwin", 0)
    assert info.value.parameter == "n_detectors"
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
    with pytest.raises(InvalidParameterError) as info:
        AlarmPolicy.from_mapping({"expected_run_time": 10})
    assert info.value.parameter == "expected_run_time"
    with pytest.raises(InvalidParameterError) as info:
        AlarmPolicy.from_mapping({"weights": {"adwn": 0.5}})
    assert info.value.parameter == "weights.adwn"


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
