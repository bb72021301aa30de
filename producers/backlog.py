"""A backlog of predictions and late labels, as a monitor meets it after downtime.

:func:`delayed_labels` makes ``n`` predictions of one binary model (one every ``interval``
seconds of event time, three numeric features, a calibrated score) and their labels, each
``delay`` later: log-normal around ``median_delay``, a share never labelled, a few labelled
*before* their prediction (clock skew), and published in an order shuffled by up to
``jitter`` seconds (labels out of order). :func:`publish` writes both topics completely —
all predictions, then all labels — so a monitor started afterwards finds them all waiting.

Deterministic per seed.

>>> stream = delayed_labels(1000, median_delay=3600.0, seed=1)
>>> len(stream.predictions), len(stream.labels), stream.labels_before_prediction > 0
(1000, 907, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from confluent_kafka import Producer

from streams.core.events import GroundTruth, Prediction, encode
from streams.core.kafka import producer_config

__all__ = ["DelayedStream", "delayed_labels", "publish"]

#: Event-time origin (2026-01-01T00:00:00Z).
START: Final = 1_767_225_600.0


@dataclass(frozen=True, slots=True)
class DelayedStream:
    """Encoded messages per topic, in publishing order, and what they hold."""

    model_id: str
    predictions: list[bytes]
    labels: list[bytes]
    labels_before_prediction: int


def delayed_labels(
    n: int,
    *,
    median_delay: float,
    sigma: float = 1.0,
    unlabelled: float = 0.1,
    early: float = 0.005,
    jitter: float = 60.0,
    interval: float = 0.01,
    model_id: str = "churn",
    seed: int = 7,
) -> DelayedStream:
    """``n`` predictions and their late labels (module doc)."""
    rng = np.random.default_rng(seed)
    times = START + np.arange(n) * interval
    features = rng.normal(0.0, 1.0, (n, 3)).round(4)
    scores = 1.0 / (1.0 + np.exp(-(features @ np.array([1.2, -0.8, 0.5]))))
    outcome = (rng.random(n) < scores).astype(int)
    delay = median_delay * np.exp(sigma * rng.normal(size=n))
    skewed = rng.random(n) < early
    delay[skewed] = -rng.uniform(1.0, 10.0, int(skewed.sum()))
    label_times = times + delay
    labelled = np.flatnonzero(rng.random(n) >= unlabelled)
    order = labelled[np.argsort(label_times[labelled] + rng.uniform(0.0, jitter, labelled.size))]
    predictions = [
        encode(
            Prediction(
                event_id=f"{model_id}-{i}",
                model_id=model_id,
                model_version="v1",
                timestamp=float(times[i]),
                features={"a": float(f[0]), "b": float(f[1]), "c": float(f[2])},
                prediction=float(scores[i]),
            )
        )
        for i, f in enumerate(features)
    ]
    labels = [
        encode(
            GroundTruth(
                event_id=f"{model_id}-{i}",
                model_id=model_id,
                timestamp=float(label_times[i]),
                label=int(outcome[i]),
            )
        )
        for i in order.tolist()
    ]
    return DelayedStream(model_id, predictions, labels, int(skewed[labelled].sum()))


def publish(bootstrap: str, stream: DelayedStream, predictions: str, truth: str) -> None:
    """All predictions, then all labels, keyed by the model id; waits for delivery."""
    producer = Producer(producer_config(bootstrap, {"linger.ms": 20, "batch.size": 1_000_000}))
    key = stream.model_id.encode()
    for topic, values in ((predictions, stream.predictions), (truth, stream.labels)):
        for value in values:
            while True:
                try:
                    producer.produce(topic, value, key)
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.flush(120)
    if producer.flush(120):
        raise RuntimeError("backlog: some messages were not delivered")
