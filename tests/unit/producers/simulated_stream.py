"""Test helper: run the churn simulator in memory, decode its stream with the event contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from producers.simulator import Kind, Outgoing, Pause, Simulation, SimulationConfig
from streams.core.events import (
    EventDecodeError,
    GroundTruth,
    Prediction,
    decode_ground_truth,
    decode_prediction,
)


@dataclass
class Stream:
    """A simulated stream, decoded: what a monitor would receive, in order."""

    config: SimulationConfig
    raw: list[Outgoing | Pause] = field(default_factory=list)
    predictions: list[Prediction] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # of each valid prediction
    malformed: list[tuple[int, bytes, EventDecodeError]] = field(default_factory=list)
    labels: dict[str, GroundTruth] = field(default_factory=dict)

    def split(self) -> tuple[list[Prediction], list[Prediction]]:
        """Valid predictions before and after the change point."""
        change = self.config.change_point
        before = [p for p, i in zip(self.predictions, self.positions, strict=True) if i < change]
        after = [p for p, i in zip(self.predictions, self.positions, strict=True) if i >= change]
        return before, after

    def feature(self, events: list[Prediction], name: str) -> np.ndarray[Any, Any]:
        return np.array([e.features[name] for e in events if e.features[name] is not None])

    def scores(self, events: list[Prediction]) -> np.ndarray[Any, Any]:
        return np.array([e.prediction for e in events], dtype=float)

    def outcomes(self, events: list[Prediction]) -> tuple[np.ndarray[Any, Any], ...]:
        """(prediction, label) arrays for the labelled events among ``events``."""
        pairs = [
            (e.prediction, self.labels[e.event_id].label)
            for e in events
            if e.event_id in self.labels
        ]
        scores, labels = zip(*pairs, strict=True)
        return np.array(scores, dtype=float), np.array(labels, dtype=float)


def run_stream(**settings: Any) -> Stream:
    config = SimulationConfig(**settings)
    stream = Stream(config)
    for item in Simulation(config):
        stream.raw.append(item)
        if isinstance(item, Pause):
            continue
        if item.kind is Kind.GROUND_TRUTH:
            label = decode_ground_truth(item.value)
            assert label.event_id not in stream.labels
            stream.labels[label.event_id] = label
            continue
        try:
            stream.predictions.append(decode_prediction(item.value))
            stream.positions.append(item.position)
        except EventDecodeError as exc:
            stream.malformed.append((item.position, item.value, exc))
    return stream
