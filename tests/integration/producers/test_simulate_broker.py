"""`driftradar simulate` as a user runs it, against the test broker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from producers.simulator import Kind, Outgoing, Simulation, SimulationConfig
from streams.core.events import decode_ground_truth, decode_prediction

pytestmark = pytest.mark.integration

MakeTopics = Callable[..., dict[str, str]]
ReadTopic = Callable[..., list[Any]]


def test_simulate_publishes_the_deterministic_stream(
    kafka_bootstrap: str, make_topics: MakeTopics, read_topic: ReadTopic
) -> None:
    topics = make_topics("predictions", "ground-truth")
    command = [sys.executable, "-m", "streams.cli", "simulate", "--scenario", "concept-drift"]
    command += ["--events", "5000", "--seed", "1"]
    command += ["--predictions-topic", topics["predictions"]]
    command += ["--ground-truth-topic", topics["ground-truth"]]
    environment = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "change point at event 2500" in done.stderr

    expected = [
        item
        for item in Simulation(SimulationConfig(scenario="concept-drift", events=5000, seed=1))
        if isinstance(item, Outgoing)
    ]
    expected_labels = [item.value for item in expected if item.kind is Kind.GROUND_TRUTH]
    assert f"5000 events to {topics['predictions']!r}" in done.stdout
    assert f"{len(expected_labels)} labels" in done.stdout

    predictions = read_topic(topics["predictions"])
    assert len(predictions) == 5000
    assert {m.key() for m in predictions} == {b"churn"}
    events = [decode_prediction(m.value()) for m in predictions]
    assert {(e.model_id, e.model_version) for e in events} == {("churn", "v1")}
    # One key, one partition: the broker holds the stream in the simulator's exact order.
    assert [m.value() for m in predictions] == [
        item.value for item in expected if item.kind is Kind.PREDICTION
    ]

    labels = read_topic(topics["ground-truth"])
    assert [m.value() for m in labels] == expected_labels
    assert len(labels) == pytest.approx(0.9 * 5000, rel=0.03)  # the default label coverage
    assert {m.key() for m in labels} == {b"churn"}
    ids = {e.event_id for e in events}
    assert {decode_ground_truth(m.value()).event_id for m in labels} <= ids
