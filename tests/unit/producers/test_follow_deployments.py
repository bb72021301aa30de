"""The simulator's model server following deployments: who answers, from when, and what not."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np
import pytest

from producers.retrain.trainer import predict_proba
from producers.scenarios import SCENARIOS
from producers.serving import ModelServer, Switch, served_probabilities
from producers.simulator import (
    CHUNK,
    Kind,
    Outgoing,
    Simulation,
    SimulationConfig,
    poll_interval,
)
from streams.core.events import (
    Deployment,
    EventDecodeError,
    LogisticParameters,
    NumericTerm,
    decode_prediction,
)

#: A retrained model: some features weighted differently, one the simulator never sends
#: ("discount": its fill always applies), categories left out of the tables (they add 0).
PARAMS = LogisticParameters(
    intercept=-0.7,
    numeric={
        "tenure_months": NumericTerm(coef=-0.031, fill=28.4),
        "support_calls": NumericTerm(coef=-0.27, fill=1.5),
        "monthly_charges": NumericTerm(coef=0.0123456789, fill=65.0),
        "discount": NumericTerm(coef=0.5, fill=0.1),
        "contract": NumericTerm(coef=9.0, fill=-0.05),  # a string feature: always the fill
    },
    categorical={
        "contract": {"one-year": 0.45, "two-year": 0.81},
        "payment_method": {"electronic-check": -0.52, "crypto": 3.0},
        "age": {"40": 1.0},  # a numeric feature: never a string, adds 0
    },
)
OTHER_PARAMS = LogisticParameters(intercept=2.0, numeric={}, categorical={})


def _deployment(
    version: str = "v2", model_id: str = "churn", params: LogisticParameters = PARAMS
) -> Deployment:
    return Deployment(
        model_id=model_id,
        model_version=version,
        parameters=params,
        evaluation={"metric": "log_loss"},
        deployed_at="2026-01-01T00:00:00Z",
        request_id=f"req-{model_id}-{version}",
        previous_version="v1",
    )


class _Timeline:
    """A deployment source that publishes each deployment once the stream reaches ``at``."""

    def __init__(self, *planned: tuple[int, Deployment]) -> None:
        self.planned = list(planned)
        self.calls: list[int] = []

    def __call__(self, position: int) -> Iterable[Deployment]:
        self.calls.append(position)
        due = [deployment for at, deployment in self.planned if at <= position]
        self.planned = [(at, d) for at, d in self.planned if at > position]
        return due


def _outgoing(simulation: Simulation) -> list[Outgoing]:
    return [item for item in simulation if isinstance(item, Outgoing)]


def _predictions(items: list[Outgoing]) -> list[Outgoing]:
    return [item for item in items if item.kind is Kind.PREDICTION]


def test_a_deployment_mid_stream_switches_predictions_to_the_deployed_model() -> None:
    config = SimulationConfig(scenario="concept-drift", events=CHUNK + 3000, seed=4)
    plain = _outgoing(Simulation(config))
    heard: list[Switch] = []
    timeline = _Timeline((1000, _deployment()))
    simulation = Simulation(config, deployments=timeline, on_switch=heard.append, poll_every=64)
    followed = _outgoing(simulation)

    # The first look at or after position 1000 (every 64 predictions) switches the model.
    assert heard == simulation.server.switches == [Switch(1024, "v2", "v1", "req-churn-v2")]
    assert simulation.server.model_version == "v2"
    assert timeline.calls[:3] == [0, 64, 128]
    before = [i for i in _predictions(followed) if i.position < 1024]
    assert [i.value for i in before] == [i.value for i in _predictions(plain)[:1024]]
    after = [decode_prediction(i.value) for i in _predictions(followed)[1024:]]
    unchanged = [decode_prediction(i.value) for i in _predictions(plain)[1024:]]
    assert len(after) == CHUNK + 3000 - 1024
    assert {event.model_version for event in after} == {"v2"}
    assert [e.prediction for e in after] == [predict_proba(PARAMS, e.features) for e in after]
    assert [e.prediction for e in after] != [e.prediction for e in unchanged]
    for new, old in zip(after, unchanged, strict=True):  # same customers, ids and times
        assert (new.event_id, new.timestamp, new.features) == (
            old.event_id,
            old.timestamp,
            old.features,
        )
    # The world is unaffected: the labels are the same bytes, in the same places.
    labels = [(i.value, n) for n, i in enumerate(followed) if i.kind is Kind.GROUND_TRUTH]
    assert labels == [(i.value, n) for n, i in enumerate(plain) if i.kind is Kind.GROUND_TRUTH]


def test_other_models_and_versions_already_served_are_ignored() -> None:
    config = SimulationConfig(events=3000, seed=2)
    timeline = _Timeline(
        (0, _deployment("v5", model_id="fraud", params=OTHER_PARAMS)),
        (0, _deployment("v1", params=OTHER_PARAMS)),  # the version served from the start
        (500, _deployment("v2")),
        (1500, _deployment("v2", params=OTHER_PARAMS)),  # redelivered: same version
    )
    simulation = Simulation(config, deployments=timeline, poll_every=100)
    events = [decode_prediction(i.value) for i in _predictions(_outgoing(simulation))]

    assert simulation.server.switches == [Switch(500, "v2", "v1", "req-churn-v2")]
    assert not timeline.planned  # every deployment was offered
    assert {e.model_version for e in events[:500]} == {"v1"}
    assert {e.model_version for e in events[500:]} == {"v2"}
    assert all(e.prediction == predict_proba(PARAMS, e.features) for e in events[500:])


def test_deployments_in_sequence_each_take_over() -> None:
    newer = LogisticParameters(
        intercept=0.1, numeric={"age": NumericTerm(coef=-0.01, fill=45.0)}, categorical={}
    )
    timeline = _Timeline((0, _deployment("v2")), (700, _deployment("v3", params=newer)))
    simulation = Simulation(SimulationConfig(events=1000), deployments=timeline, poll_every=50)
    events = [decode_prediction(i.value) for i in _predictions(_outgoing(simulation))]

    assert [s[:3] for s in simulation.server.switches] == [(0, "v2", "v1"), (700, "v3", "v2")]
    assert events[699].prediction == predict_proba(PARAMS, events[699].features)
    assert events[700].model_version == "v3"
    assert events[700].prediction == predict_proba(newer, events[700].features)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("poll_every", [1, 97, None])
def test_without_deployments_the_stream_is_byte_identical(
    scenario: str, poll_every: int | None
) -> None:
    config = SimulationConfig(
        scenario=scenario, events=CHUNK + 900, seed=11, change_at=3000, outage_seconds=0.5
    )
    quiet = _Timeline()
    plain = list(Simulation(config))
    followed = list(Simulation(config, deployments=quiet, poll_every=poll_every))
    assert followed == plain
    assert quiet.calls[0] == 0
    assert len(quiet.calls) >= (CHUNK + 900) // (poll_every or 256)


def test_every_deployed_prediction_equals_predict_proba_despite_bad_data() -> None:
    """The quality scenario: nulls, out-of-range values, unseen categories, broken messages."""
    config = SimulationConfig(scenario="quality", events=6000, seed=9, change_at=1000)
    simulation = Simulation(config, deployments=_Timeline((0, _deployment())))
    checked = broken = 0
    for item in _predictions(_outgoing(simulation)):
        try:
            event = decode_prediction(item.value)
        except EventDecodeError:
            broken += 1
            continue
        assert event.model_version == "v2"
        assert event.prediction == predict_proba(PARAMS, event.features)
        checked += 1
    assert checked + broken == 6000
    assert broken > 10  # malformed messages stay malformed
    assert simulation.counts.malformed == broken


def test_served_probabilities_match_predict_proba_on_awkward_columns() -> None:
    rng = np.random.default_rng(0)
    ages = rng.normal(45, 30, 2000)
    ages[rng.random(2000) < 0.1] = np.nan
    contracts = rng.choice(["one-year", "two-year", "month-to-month", "weekly"], 2000)
    columns = {"age": ages, "contract": contracts, "tenure_months": rng.integers(0, 72, 2000)}
    params = LogisticParameters(
        intercept=900.0,  # large logits: the sigmoid's clipping must agree too
        numeric={"age": NumericTerm(-20.0, 40.0), "tenure_months": NumericTerm(0.3, 1.0)},
        categorical={"contract": {"one-year": -0.25}, "missing": {"x": 1.0}},
    )
    rows = [
        {
            "age": None if np.isnan(a) else float(a),
            "contract": str(c),
            "tenure_months": int(t),
        }
        for a, c, t in zip(ages, contracts, columns["tenure_months"], strict=True)
    ]
    assert served_probabilities(params, columns) == [predict_proba(params, r) for r in rows]
    assert served_probabilities(params, {}) == []


def test_model_server_offers() -> None:
    server = ModelServer("churn", "v1")
    assert server.offer(_deployment("v2", model_id="other"), 3) is None
    assert server.switches == []
    assert server.model_version == "v1"
    assert server.offer(_deployment("v2"), 3) == Switch(3, "v2", "v1", "req-churn-v2")
    assert server.offer(_deployment("v1"), 4) is None  # back to an old version: no
    assert (server.model_version, server.parameters) == ("v2", PARAMS)


def test_poll_interval_and_its_validation() -> None:
    assert [poll_interval(r) for r in (0, 50, 2000, 1e6)] == [256, 1, 20, 256]
    with pytest.raises(ValueError, match=r"^poll_every must be an integer >= 1"):
        Simulation(SimulationConfig(events=5), poll_every=0)


def test_an_unbounded_stream_goes_on_with_the_same_events() -> None:
    unbounded = SimulationConfig(events=0, rate=100, seed=3, start_time=1.8e9)
    bounded = SimulationConfig(events=CHUNK * 3, rate=100, seed=3, start_time=1.8e9, change_at=0)
    head = [
        i
        for i in itertools.islice(Simulation(unbounded), 5 * CHUNK)
        if isinstance(i, Outgoing) and i.kind is Kind.PREDICTION
    ]
    assert unbounded.unbounded
    assert len(head) > 2 * CHUNK
    expected = _predictions(_outgoing(Simulation(bounded)))[: len(head)]
    assert [i.value for i in head] == [i.value for i in expected]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"events": 0}, "events must be an integer >= 1, or 0 (unbounded) with a rate > 0"),
        ({"events": 0, "rate": 5, "scenario": "data-drift"}, "change_at must be given"),
        ({"events": -1, "rate": 5}, "events must be an integer >= 1"),
    ],
)
def test_unbounded_needs_a_rate_and_a_change_point(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        SimulationConfig(**settings)  # type: ignore[arg-type]
    assert (
        SimulationConfig(events=0, rate=5, scenario="data-drift", change_at=10).change_point == 10
    )
