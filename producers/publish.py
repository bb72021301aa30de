"""Publish a simulation to Kafka, at a wall-clock rate or as fast as possible.

Predictions go to one topic and labels to another, both keyed by ``model_id``. With a rate,
prediction ``i`` is sent ``i / rate`` seconds after the start; a :class:`Pause` (the model's
outage) sleeps its duration in either mode. :func:`publish` ends with a flush that raises
:class:`producers.delivery.DeliveryError` if any message was not delivered.

It stops early, after the message it just sent, when ``duration`` seconds have passed or
``should_stop()`` turns true (a signal, say); the report says why (``stopped``). Labels not
yet due at that moment are not sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from producers.delivery import TrackedProducer
from producers.simulator import Kind, Outgoing, Simulation
from streams.core.settings import TOPICS

__all__ = ["PROGRESS_EVERY", "PublishReport", "SimulationTopics", "publish"]

#: Predictions between two progress callbacks.
PROGRESS_EVERY: Final = 1000
#: Ahead of schedule by less than this, a paced publisher does not sleep (seconds).
_MIN_SLEEP_S: Final = 0.002
#: Predictions between two checks for a stop when not sleeping (a check after each sleep).
_STOP_CHECK_EVERY: Final = 16


@dataclass(frozen=True, slots=True)
class SimulationTopics:
    predictions: str = TOPICS.predictions
    ground_truth: str = TOPICS.ground_truth


@dataclass(frozen=True, slots=True)
class PublishReport:
    """What was published (and acknowledged: :func:`publish` raises otherwise)."""

    predictions: int
    malformed: int
    labels: int
    change_point: int
    seconds: float
    paused: float
    stopped: str = ""  # "": the stream ended; "duration"; "stop": should_stop() said so

    @property
    def events(self) -> int:
        """Messages sent to the predictions topic (valid and malformed)."""
        return self.predictions + self.malformed

    @property
    def events_per_second(self) -> float:
        """Throughput over the time spent publishing (outage pauses excluded)."""
        busy = self.seconds - self.paused
        return self.events / busy if busy > 0 else float("inf")


def publish(
    simulation: Simulation,
    producer: TrackedProducer,
    topics: SimulationTopics = SimulationTopics(),
    *,
    on_progress: Callable[[int], None] | None = None,
    flush_timeout: float = 60.0,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    duration: float | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PublishReport:
    """Send the messages of ``simulation``; ``on_progress(predictions_sent)`` now and then.

    ``sleep`` may return early (e.g. ``threading.Event().wait`` woken by a signal handler
    that also makes ``should_stop()`` true); the stop is then noticed at once.
    """
    config = simulation.config
    key = config.model_id.encode()
    topic_of = {Kind.PREDICTION: topics.predictions, Kind.GROUND_TRUTH: topics.ground_truth}
    period = 1.0 / config.rate if config.rate > 0 else 0.0
    started = clock()
    deadline = started + duration if duration is not None else None
    stop = should_stop if should_stop is not None else _never

    def wait(seconds: float) -> str:
        """Sleep ``seconds`` (never past the deadline); why to stop now, or ""."""
        if deadline is not None:
            seconds = min(seconds, deadline - clock())
        if seconds > 0:
            sleep(seconds)
        return _why_stop(stop, deadline, clock)

    paused = 0.0
    sent = 0
    stopped = ""
    for item in simulation:
        if not isinstance(item, Outgoing):  # a Pause: the model server is down
            producer.poll(0)
            pause_began = clock()
            stopped = wait(item.seconds)
            paused += clock() - pause_began if stopped else item.seconds
            if stopped:
                break
            continue
        if item.kind is Kind.PREDICTION:
            if period:
                ahead = started + paused + item.position * period - clock()
                if ahead > _MIN_SLEEP_S:
                    producer.poll(0)
                    stopped = wait(ahead)
            sent += 1
            if not stopped and sent % _STOP_CHECK_EVERY == 0:
                stopped = _why_stop(stop, deadline, clock)
            if on_progress is not None and sent % PROGRESS_EVERY == 0:
                on_progress(sent)
        producer.send(topic_of[item.kind], key, item.value)
        if stopped:
            break
    producer.flush(flush_timeout)
    if on_progress is not None:
        on_progress(sent)
    counts = simulation.counts
    return PublishReport(
        predictions=counts.predictions,
        malformed=counts.malformed,
        labels=counts.labels,
        change_point=config.change_point,
        seconds=clock() - started,
        paused=paused,
        stopped=stopped,
    )


def _never() -> bool:
    return False


def _why_stop(stop: Callable[[], bool], deadline: float | None, clock: Callable[[], float]) -> str:
    if stop():
        return "stop"
    if deadline is not None and clock() >= deadline:
        return "duration"
    return ""
