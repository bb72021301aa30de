"""`driftradar simulate --follow-deployments`, unbounded runs and clean stops, on a broker."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import pytest
from confluent_kafka import Producer

from producers.delivery import TrackedProducer
from producers.deployment_feed import FeedError, KafkaDeploymentFeed
from producers.publish import SimulationTopics, publish
from producers.retrain.trainer import fit_logistic, predict_proba
from producers.simulator import Kind, Outgoing, Simulation, SimulationConfig
from streams.core.events import (
    Deployment,
    LogisticParameters,
    decode_ground_truth,
    decode_prediction,
    encode,
)
from streams.core.kafka import producer_config

pytestmark = pytest.mark.integration

MakeTopics = Callable[..., dict[str, str]]
ReadTopic = Callable[..., list[Any]]

START = "2026-03-01T12:00:00Z"


class _Lines:
    """A running command's stderr, line by line, readable with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._pump_thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._pump_thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} on stderr within {timeout} s; saw {self.seen}")

    def rest(self) -> str:
        """Everything seen, once the command has ended."""
        self._pump_thread.join(10)
        while not self._queue.empty():
            self.seen.append(self._queue.get())
        return "".join(self.seen)


@contextmanager
def _simulate(bootstrap: str, *argv: str) -> Iterator[tuple[subprocess.Popen[str], _Lines]]:
    """Run ``driftradar simulate``; read stderr through the :class:`_Lines`, stdout by
    :func:`_finish` (not ``communicate``, which would compete for stderr)."""
    command = [sys.executable, "-m", "streams.cli", "simulate", *argv]
    environment = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    try:
        yield process, _Lines(process.stderr)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def _finish(process: subprocess.Popen[str], timeout: float) -> str:
    """Wait for the command to end; its stdout."""
    process.wait(timeout)
    assert process.stdout is not None
    return process.stdout.read()


def _retrained(config: SimulationConfig) -> LogisticParameters:
    """What the local trainer would deploy: a fit on the drifted part of the stream."""
    items = [item for item in Simulation(config) if isinstance(item, Outgoing)]
    events = {
        event.event_id: event
        for item in items
        if item.kind is Kind.PREDICTION and item.position >= config.change_point
        for event in [decode_prediction(item.value)]
    }
    labels = [decode_ground_truth(i.value) for i in items if i.kind is Kind.GROUND_TRUTH]
    pairs = [(events[g.event_id].features, float(g.label)) for g in labels if g.event_id in events]
    return fit_logistic([features for features, _ in pairs], [label for _, label in pairs])


def _deployment(model_id: str, version: str, params: LogisticParameters) -> Deployment:
    return Deployment(
        model_id=model_id,
        model_version=version,
        parameters=params,
        evaluation={"metric": "log_loss", "better": True},
        deployed_at="2026-03-01T12:00:01Z",
        request_id=f"req-{model_id}-{version}",
        previous_version="v1",
    )


def _publish_deployments(bootstrap: str, topic: str, *deployments: Deployment) -> None:
    producer = Producer(producer_config(bootstrap))
    for deployment in deployments:
        producer.produce(topic, key=deployment.model_id, value=encode(deployment))
    assert producer.flush(10) == 0


def test_a_published_deployment_switches_the_running_simulator(
    kafka_bootstrap: str, make_topics: MakeTopics, read_topic: ReadTopic
) -> None:
    topics = make_topics("predictions", "ground-truth", "deployments")
    settings: dict[str, Any] = {"scenario": "concept-drift", "events": 6000, "seed": 5}
    params = _retrained(SimulationConfig(**settings))
    argv = ["--scenario", "concept-drift", "--events", "6000", "--seed", "5", "--rate", "2000"]
    argv += ["--start-time", START, "--follow-deployments"]
    argv += ["--deployments-topic", topics["deployments"]]
    argv += ["--predictions-topic", topics["predictions"]]
    argv += ["--ground-truth-topic", topics["ground-truth"]]
    with _simulate(kafka_bootstrap, *argv) as (process, stderr):
        stderr.wait_for("following deployments of model 'churn'")
        _publish_deployments(
            kafka_bootstrap,
            topics["deployments"],
            _deployment("fraud", "v7", params),  # another model: ignored
            _deployment("churn", "v2", params),
            _deployment("churn", "v2", params),  # redelivered: no second switch
        )
        switched = stderr.wait_for("now serving model_version 'v2'")
        stdout = _finish(process, 60)
    assert process.returncode == 0, stderr.rest()
    assert "(was 'v1'; deployment for request 'req-churn-v2')" in switched
    assert stderr.rest().count("now serving") == 1

    start_epoch = 1772366400.0  # START
    expected = [
        item
        for item in Simulation(SimulationConfig(**settings, rate=2000, start_time=start_epoch))
        if isinstance(item, Outgoing)
    ]
    plain = [item.value for item in expected if item.kind is Kind.PREDICTION]
    published = [m.value() for m in read_topic(topics["predictions"])]
    assert len(published) == 6000
    versions = [decode_prediction(value).model_version for value in published]
    first = versions.index("v2")
    assert 0 < first < 6000  # the deployment arrived while the simulator ran
    assert versions == ["v1"] * first + ["v2"] * (6000 - first)
    assert f"model v1, v2 from event {first}" in stdout
    assert published[:first] == plain[:first]  # byte-identical until the switch
    for value, original in zip(published[first:], plain[first:], strict=True):
        event, before = decode_prediction(value), decode_prediction(original)
        assert abs(float(event.prediction) - predict_proba(params, event.features)) <= 1e-12
        assert (event.event_id, event.timestamp, event.features) == (
            before.event_id,
            before.timestamp,
            before.features,
        )
    labels = [m.value() for m in read_topic(topics["ground-truth"])]
    assert labels == [item.value for item in expected if item.kind is Kind.GROUND_TRUTH]


@pytest.mark.parametrize(
    ("argv", "stop_signal", "message", "code"),
    [
        (["--duration", "1.5"], None, "stopped (--duration elapsed)", 0),
        ([], signal.SIGTERM, "stopped (SIGTERM)", 0),
        (["--scenario", "outage", "--change-at", "100"], signal.SIGINT, "stopped (SIGINT)", 130),
    ],
    ids=["duration", "sigterm", "sigint-during-outage"],
)
def test_an_unbounded_run_stops_cleanly(
    kafka_bootstrap: str,
    make_topics: MakeTopics,
    read_topic: ReadTopic,
    argv: list[str],
    stop_signal: signal.Signals | None,
    message: str,
    code: int,
) -> None:
    topics = make_topics("predictions", "ground-truth")
    argv = [*argv, "--events", "0", "--rate", "400", "--label-delay", "20"]
    argv += ["--predictions-topic", topics["predictions"]]
    argv += ["--ground-truth-topic", topics["ground-truth"]]
    with _simulate(kafka_bootstrap, *argv) as (process, stderr):
        stderr.wait_for("unbounded at 400/s")
        if stop_signal is not None:
            time.sleep(1.0)  # with the outage scenario: in its 30 s pause by now
            signalled = time.monotonic()
            process.send_signal(stop_signal)
        stdout = _finish(process, 30)
        if stop_signal is not None:
            assert time.monotonic() - signalled < 5  # the outage pause is interrupted
    assert process.returncode == code, stderr.rest()
    assert message in stderr.rest()
    predictions = read_topic(topics["predictions"])
    labels = read_topic(topics["ground-truth"])
    assert predictions
    assert f"simulate: {len(predictions)} events to" in stdout
    assert f", {len(labels)} labels to" in stdout


def test_publish_stops_after_the_duration_and_when_told(
    kafka_bootstrap: str, make_topics: MakeTopics, read_topic: ReadTopic
) -> None:
    topics = make_topics("predictions", "ground-truth")
    target = SimulationTopics(topics["predictions"], topics["ground-truth"])
    now = [0.0]

    def sleep(seconds: float) -> None:  # simulated wall clock
        now[0] += seconds

    producer = TrackedProducer(kafka_bootstrap)
    simulation = Simulation(SimulationConfig(events=0, rate=100, seed=1, start_time=1.8e9))
    report = publish(simulation, producer, target, sleep=sleep, clock=lambda: now[0], duration=2.0)
    assert report.stopped == "duration"
    assert report.predictions == 201  # events 0..200 are due within 2 s at 100/s
    assert now[0] == pytest.approx(2.0)

    told = Simulation(SimulationConfig(events=10_000, seed=1))
    report = publish(told, producer, target, should_stop=lambda: told.counts.predictions >= 100)
    assert report.stopped == "stop"
    assert report.predictions == 112  # checked every 16 predictions when not sleeping
    assert len(read_topic(topics["predictions"])) == 201 + 112


def test_the_feed_skips_or_replays_what_the_topic_held(
    kafka_bootstrap: str, make_topics: MakeTopics
) -> None:
    topics = make_topics("deployments")
    params = LogisticParameters(intercept=0.0, numeric={}, categorical={})
    old = _deployment("churn", "v2", params)
    _publish_deployments(kafka_bootstrap, topics["deployments"], old)
    producer = Producer(producer_config(kafka_bootstrap))
    producer.produce(topics["deployments"], key="churn", value=b'{"model_id": "churn"}')
    producer.flush(10)
    problems: list[str] = []
    with (
        KafkaDeploymentFeed(kafka_bootstrap, topics["deployments"]) as from_end,
        KafkaDeploymentFeed(
            kafka_bootstrap, topics["deployments"], from_beginning=True, on_problem=problems.append
        ) as from_start,
    ):
        assert from_end.skipped == 1
        assert from_end() == []
        assert from_start() == [old]
        assert len(problems) == 1
        assert "$.model_version: required field is missing" in problems[0]
        new = _deployment("churn", "v3", params)
        _publish_deployments(kafka_bootstrap, topics["deployments"], new)
        deadline = time.monotonic() + 10
        arrived: list[Deployment] = []
        while not arrived and time.monotonic() < deadline:
            arrived = from_end()
            time.sleep(0.01)
        assert arrived == [new]
    with pytest.raises(FeedError, match="'no-such-topic' does not exist"):
        KafkaDeploymentFeed(kafka_bootstrap, "no-such-topic")
