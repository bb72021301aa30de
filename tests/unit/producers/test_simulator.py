"""The simulated stream: deterministic per seed, contract-shaped, labels delayed as configured."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from simulated_stream import Stream

from producers.churn import CATEGORICAL, CONTRACTS, NUMERIC, PAYMENT_METHODS
from producers.simulator import (
    CHUNK,
    DEFAULT_START,
    NOMINAL_INTERVAL,
    Kind,
    Outgoing,
    Simulation,
    SimulationConfig,
)
from streams.core.events import epoch_seconds

Simulate = Callable[..., Stream]


def _bytes(**settings: Any) -> list[tuple[str, bytes, int]]:
    return [
        (item.kind.value, item.value, item.position)
        for item in Simulation(SimulationConfig(**settings))
        if isinstance(item, Outgoing)
    ]


@pytest.mark.parametrize("scenario", ["stable", "quality", "concept-drift"])
def test_same_seed_gives_byte_identical_stream(scenario: str) -> None:
    settings = {"scenario": scenario, "events": CHUNK + 500, "seed": 11}
    assert _bytes(**settings) == _bytes(**settings)


def test_different_seeds_give_different_streams() -> None:
    first, second = _bytes(events=300, seed=1), _bytes(events=300, seed=2)
    assert len({value for _, value, _ in first} & {value for _, value, _ in second}) == 0


def test_label_settings_leave_the_predictions_unchanged() -> None:
    def predictions(**settings: Any) -> list[bytes]:
        return [
            value
            for kind, value, _ in _bytes(events=500, seed=4, **settings)
            if kind == "prediction"
        ]

    assert predictions(label_coverage=0.9) == predictions(label_coverage=0.2, label_delay=5)


def test_every_event_is_contract_shaped(simulate: Simulate) -> None:
    stream = simulate(scenario="stable", events=2000, seed=3)
    assert len(stream.predictions) == 2000
    assert not stream.malformed
    assert len({p.event_id for p in stream.predictions}) == 2000
    for event in stream.predictions[:50]:
        assert (event.model_id, event.model_version) == ("churn", "v1")
        assert set(event.features) == set(NUMERIC + CATEGORICAL)
        assert event.features["contract"] in CONTRACTS
        assert event.features["payment_method"] in PAYMENT_METHODS
        assert isinstance(event.prediction, float)
        assert 0 < event.prediction < 1
        assert len(event.event_id) == 32
        assert event.event_id[12] == "4"
    assert {label.label for label in stream.labels.values()} == {0.0, 1.0}


def test_timestamps_follow_the_simulated_clock(simulate: Simulate) -> None:
    stream = simulate(scenario="stable", events=100, seed=3, model_id="m-7", model_version="v9")
    times = [p.event_time() for p in stream.predictions]
    assert times[0] == DEFAULT_START
    assert np.allclose(np.diff(times), NOMINAL_INTERVAL, atol=1e-6)
    assert {(p.model_id, p.model_version) for p in stream.predictions} == {("m-7", "v9")}
    paced = simulate(events=10, rate=50, start_time=1_800_000_000.0)
    assert [p.event_time() for p in paced.predictions][:3] == [1.8e9, 1.8e9 + 0.02, 1.8e9 + 0.04]


def test_label_coverage_and_delay(simulate: Simulate) -> None:
    stream = simulate(events=20_000, seed=5, label_coverage=0.7, label_delay=50)
    assert len(stream.labels) == pytest.approx(0.7 * 20_000, rel=0.03)
    predicted_at = {p.event_id: p.event_time() for p in stream.predictions}
    delays = np.array(
        [label.event_time() - predicted_at[eid] for eid, label in stream.labels.items()]
    )
    assert np.median(delays / NOMINAL_INTERVAL) == pytest.approx(50 * np.log(2), rel=0.1)


def test_labels_arrive_out_of_order_and_some_before_their_prediction(simulate: Simulate) -> None:
    stream = simulate(events=5000, seed=6, label_coverage=1.0, label_delay=30, early_labels=0.02)
    order = [item for item in stream.raw if isinstance(item, Outgoing)]
    label_positions = [item.position for item in order if item.kind is Kind.GROUND_TRUTH]
    assert sorted(label_positions) == list(range(5000))  # every label exactly once
    inversions = sum(a > b for a, b in itertools.pairwise(label_positions))
    assert inversions > 500
    seen: set[int] = set()
    early = 0
    for item in order:
        if item.kind is Kind.PREDICTION:
            seen.add(item.position)
        elif item.position not in seen:
            early += 1
    assert early == pytest.approx(0.02 * 5000, rel=0.35)


def test_zero_delay_puts_each_label_right_after_its_prediction() -> None:
    kinds = [
        (kind, position)
        for kind, _, position in _bytes(events=5, label_coverage=1, label_delay=0, early_labels=0)
    ]
    assert kinds == [(kind, i) for i in range(5) for kind in ("prediction", "ground_truth")]


def test_change_point_defaults_to_half_and_is_configurable() -> None:
    assert SimulationConfig(events=1001).change_point == 500
    assert SimulationConfig(events=1001, change_at=0).change_point == 0
    assert SimulationConfig(events=1001, change_at=1001).change_point == 1001


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"scenario": "meteor"}, "scenario must be one of stable, data-drift"),
        ({"events": 0}, "events must be an integer >= 1"),
        ({"events": 2.5}, "events must be an integer"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"rate": -5}, "rate must be a finite number >= 0"),
        ({"rate": float("inf")}, "rate must be a finite number >= 0"),
        ({"model_id": ""}, "model_id must be 1..256 characters"),
        ({"model_version": "v" * 257}, "model_version must be 1..256"),
        ({"label_coverage": 1.5}, "label_coverage must be a number between 0 and 1"),
        ({"label_coverage": float("nan")}, "label_coverage must be a number between 0 and 1"),
        ({"label_delay": -1}, "label_delay must be a finite number >= 0"),
        ({"early_labels": 2}, "early_labels must be a number between 0 and 1"),
        ({"events": 10, "change_at": 11}, "change_at must be an integer between 0 and 10"),
        ({"outage_seconds": -1}, "outage_seconds must be"),
        ({"interval": 0}, "interval must be > 0"),
        ({"start_time": -3}, "start_time must be"),
    ],
)
def test_bad_settings_are_rejected_naming_the_parameter(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        SimulationConfig(**settings)


def test_event_times_match_positions_across_chunks(simulate: Simulate) -> None:
    stream = simulate(events=CHUNK * 2 + 7, seed=8, interval=2.0)
    times = np.array([epoch_seconds(p.timestamp) for p in stream.predictions])  # type: ignore[arg-type]
    assert np.array_equal(times, DEFAULT_START + 2.0 * np.arange(CHUNK * 2 + 7))
