"""The local trainer reads its window while the model keeps publishing (as in production)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import pytest

from producers.delivery import TrackedProducer
from producers.publish import SimulationTopics, publish
from producers.retrain.dataset import read_window
from producers.simulator import Simulation, SimulationConfig

pytestmark = pytest.mark.integration

MakeTopics = Callable[..., dict[str, str]]


def test_read_window_ends_although_the_topics_are_still_written(
    kafka_bootstrap: str, make_topics: MakeTopics
) -> None:
    topics = make_topics("predictions", "ground-truth", partitions=1)
    names = SimulationTopics(topics["predictions"], topics["ground-truth"])
    first = Simulation(SimulationConfig(events=5000, seed=1, label_delay=20))
    publish(first, TrackedProducer(kafka_bootstrap), names)
    stop = threading.Event()
    live = Simulation(SimulationConfig(events=0, rate=400, seed=2, scenario="stable", change_at=0))
    writer = threading.Thread(
        target=publish,
        args=(live, TrackedProducer(kafka_bootstrap), names),
        kwargs={"should_stop": stop.is_set},
    )
    writer.start()
    try:
        # while messages keep arriving the end-of-partition event may not come for tens of
        # seconds; the read must still end (it raises a retryable error at its timeout)
        rows = read_window(
            kafka_bootstrap,
            predictions_topic=names.predictions,
            ground_truth_topic=names.ground_truth,
            model_id="churn",
            start=0.0,
            end=math.inf,
            timeout=10.0,
        )
    finally:
        stop.set()
        writer.join()
    assert len(rows) >= first.counts.labels
