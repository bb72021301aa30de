"""Each scenario really contains its change: statistics of the decoded stream before vs after."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import stats
from simulated_stream import Stream, run_stream

from producers.churn import CATEGORICAL, NUMERIC, RANGES
from producers.quality import UNSEEN
from producers.simulator import NOMINAL_INTERVAL, Pause
from streams.core.events import Prediction

Simulate = Callable[..., Stream]
EVENTS = 20_000
#: Significance levels: "shifted" must be far beyond noise, "unchanged" merely not significant.
SHIFTED_P = 1e-6
UNCHANGED_P = 0.001


def _ks(stream: Stream, name: str) -> Any:
    before, after = stream.split()
    return stats.ks_2samp(stream.feature(before, name), stream.feature(after, name))


def _chi2(stream: Stream, name: str) -> float:
    before, after = stream.split()
    counts = [Counter(e.features[name] for e in half) for half in (before, after)]
    categories = sorted(set(counts[0]) | set(counts[1]), key=str)
    table = [[half[c] for c in categories] for half in counts]
    return float(stats.chi2_contingency(table).pvalue)


def _error_rate(stream: Stream, events: list[Prediction]) -> float:
    scores, labels = stream.outcomes(events)
    return float(np.mean((scores >= 0.5) != labels))


def _miscalibration(stream: Stream, events: list[Prediction]) -> float:
    """Brier score minus what a calibrated model scores on the same predictions (~0 if so)."""
    scores, labels = stream.outcomes(events)
    return float(np.mean((scores - labels) ** 2) - np.mean(scores * (1 - scores)))


def _assert_inputs_unchanged(stream: Stream) -> None:
    for name in NUMERIC:
        assert _ks(stream, name).pvalue > UNCHANGED_P, name
    for name in CATEGORICAL:
        assert _chi2(stream, name) > UNCHANGED_P, name


@pytest.fixture(scope="module")
def streams() -> dict[str, Stream]:
    names = ("stable", "data-drift", "concept-drift", "prediction-drift", "quality", "outage")
    return {name: run_stream(scenario=name, events=EVENTS, seed=2024) for name in names}


def test_stable_changes_nothing(streams: dict[str, Stream]) -> None:
    stream = streams["stable"]
    before, after = stream.split()
    _assert_inputs_unchanged(stream)
    assert stats.ks_2samp(stream.scores(before), stream.scores(after)).pvalue > UNCHANGED_P
    assert _error_rate(stream, after) == pytest.approx(_error_rate(stream, before), abs=0.02)
    assert abs(_miscalibration(stream, after)) < 0.01


def test_data_drift_shifts_inputs_under_the_same_labelling_rule(
    streams: dict[str, Stream],
) -> None:
    stream = streams["data-drift"]
    before, after = stream.split()
    for name in ("tenure_months", "monthly_charges", "support_calls", "total_charges"):
        assert _ks(stream, name).pvalue < SHIFTED_P, name
    charges = [stream.feature(half, "monthly_charges").mean() for half in (before, after)]
    assert charges[1] - charges[0] > 10
    assert _chi2(stream, "contract") < SHIFTED_P
    # Same labelling rule: the model stays calibrated on the new inputs.
    for half in (before, after):
        scores, labels = stream.outcomes(half)
        assert labels.mean() == pytest.approx(scores.mean(), abs=0.02)
        assert abs(_miscalibration(stream, half)) < 0.01


def test_concept_drift_keeps_inputs_and_raises_the_error(streams: dict[str, Stream]) -> None:
    stream = streams["concept-drift"]
    before, after = stream.split()
    _assert_inputs_unchanged(stream)
    assert stats.ks_2samp(stream.scores(before), stream.scores(after)).pvalue > UNCHANGED_P
    assert _error_rate(stream, after) - _error_rate(stream, before) > 0.1
    assert abs(_miscalibration(stream, before)) < 0.01
    assert _miscalibration(stream, after) > 0.05


def test_prediction_drift_shifts_the_model_output_only(streams: dict[str, Stream]) -> None:
    stream = streams["prediction-drift"]
    before, after = stream.split()
    _assert_inputs_unchanged(stream)
    scores = [stream.scores(half) for half in (before, after)]
    assert scores[1].mean() - scores[0].mean() > 0.1
    assert stats.ks_2samp(*scores).pvalue < SHIFTED_P
    churn = [stream.outcomes(half)[1].mean() for half in (before, after)]
    assert churn[1] == pytest.approx(churn[0], abs=0.03)  # the world did not change


def _quality_problems(events: list[Prediction]) -> Counter[str]:
    found: Counter[str] = Counter()
    for event in events:
        for name, value in event.features.items():
            if value is None:
                found["null"] += 1
            elif name in RANGES:
                low, high = RANGES[name]
                found["out_of_range"] += not low <= float(value) <= high
            else:
                found["unseen"] += value in UNSEEN[name]
    return found


def test_quality_faults_appear_only_after_the_change(streams: dict[str, Stream]) -> None:
    stream = streams["quality"]
    before, after = stream.split()
    assert _quality_problems(before) == Counter()
    found = _quality_problems(after)
    values = len(after) * len(NUMERIC)
    assert found["null"] == pytest.approx(0.04 * values, rel=0.15)
    assert found["out_of_range"] == pytest.approx(0.02 * values, rel=0.2)
    assert found["unseen"] == pytest.approx(0.03 * len(after) * len(CATEGORICAL), rel=0.2)
    positions = [position for position, _, _ in stream.malformed]
    assert min(positions) >= stream.config.change_point
    assert len(positions) == pytest.approx(0.01 * EVENTS / 2, rel=0.3)
    assert len(stream.predictions) + len(positions) == EVENTS
    problems = {error.field for _, _, error in stream.malformed}
    assert {"$", "$.features", "$.prediction", "$.timestamp"} <= problems
    assert any("invalid JSON" in error.problem for _, _, error in stream.malformed)
    assert not any(
        value.split(b'"')[3].decode() in stream.labels
        for _, value, error in stream.malformed
        if error.field != "$"
    )  # malformed events get no label


def test_outage_leaves_a_gap_in_event_time(streams: dict[str, Stream]) -> None:
    stream = streams["outage"]
    change = stream.config.change_point
    times = np.array([p.event_time() for p in stream.predictions])
    gaps = np.diff(times)
    assert int(np.argmax(gaps)) == change - 1
    assert gaps[change - 1] == pytest.approx(NOMINAL_INTERVAL + 30.0)
    assert np.delete(gaps, change - 1).max() == pytest.approx(NOMINAL_INTERVAL, abs=1e-3)
    assert [item for item in stream.raw if isinstance(item, Pause)] == [Pause(30.0)]
    _assert_inputs_unchanged(stream)


def test_scenario_change_point_is_where_the_regime_switches(simulate: Simulate) -> None:
    early = simulate(scenario="quality", events=4000, seed=1, change_at=1000)
    assert min(position for position, _, _ in early.malformed) >= 1000
    assert _quality_problems(early.split()[0]) == Counter()
    assert sum(_quality_problems(early.split()[1]).values()) > 500
