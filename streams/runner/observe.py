"""The runner's side of the Prometheus metrics: one observation per batch, never per event.

:class:`LoopObserver` turns what the loop already has (the decoded batch, the engine's
output, checkpoint timings, the consumer's statistics) into calls on
:class:`~streams.metrics.MonitorMetrics`: one :meth:`~streams.metrics.MonitorMetrics.observe_batch`
per batch (counts grouped with :class:`collections.Counter`, event-time latencies as one numpy
array), the engine's model view at most once per ``view_seconds``, and the cached state the
``/readyz`` checks read (no network call at scrape time).

>>> from prometheus_client import CollectorRegistry
>>> from streams.core.events import Prediction
>>> from streams.engine.records import InputRecord
>>> from streams.metrics import MonitorMetrics
>>> metrics = MonitorMetrics(CollectorRegistry(), process_collectors=False)
>>> observer = LoopObserver(metrics, ("preds", "truth"), clock=lambda: 100.0)
>>> p = Prediction("e1", "churn", {"x": 1.0}, 0.7, model_version="v2", timestamp=99.5)
>>> observer.batch([InputRecord(p, 0, 0, 99.0)], [], duration=0.01)
>>> metrics.value("driftradar_predictions_total", model_id="churn", model_version="v2")
1.0
>>> metrics.value("driftradar_events_total", topic="preds", model_id="churn",
...               outcome="processed")
1.0
>>> metrics.value("driftradar_event_latency_seconds_sum", topic="preds")
0.5
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from itertools import compress, repeat
from operator import attrgetter, is_, not_
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from streams.core.events import GroundTruth, Prediction, epoch_seconds
from streams.engine.join import JOIN_OUTCOMES
from streams.engine.records import EngineOutput, InputRecord
from streams.metrics import BatchObservation, EngineView, MonitorMetrics, reason_kind

__all__ = [
    "OUTCOME_DEAD_LETTER",
    "LoopObserver",
    "ViewableEngine",
    "engine_view",
    "event_times",
]

#: ``outcome`` of ``driftradar_events_total`` for a message sent to the dead-letter topic.
OUTCOME_DEAD_LETTER: Final = "dead_letter"
#: A Redis call in flight for longer than this makes ``/readyz`` report Redis as stalled.
STALL_SECONDS: Final = 2.0
#: librdkafka broker states that mean "connected and usable".
_BROKER_UP: Final = "UP"
# C-level accessors: the per-batch work runs in map/Counter, not in a Python loop per event.
_EVENT: Final = attrgetter("event")
_TIMESTAMP: Final = attrgetter("timestamp")
_MODEL: Final = attrgetter("model_id")
_MODEL_VERSION: Final = attrgetter("model_id", "model_version")


@runtime_checkable
class ViewableEngine(Protocol):
    """An engine that can describe its models for the metrics (``streams.engine.Engine``)."""

    def metrics_view(self, *, changed_only: bool = False) -> Mapping[str, Any]: ...


def event_times(records: Sequence[InputRecord]) -> npt.NDArray[np.float64]:
    """Event time (epoch seconds) of each record; the Kafka timestamp where the event has none.

    Built in one pass: numpy turns ``None`` into NaN, and only RFC 3339 timestamps (parsed
    to ``datetime``) fall back to a per-record conversion.

    >>> from streams.core.events import GroundTruth
    >>> rs = [InputRecord(GroundTruth("a", "m", 1, timestamp=5.0), 0, 0, 9.0),
    ...       InputRecord(GroundTruth("b", "m", 1), 0, 1, 9.0)]
    >>> event_times(rs).tolist()
    [5.0, 9.0]
    """
    return _event_times(list(map(_EVENT, records)), records)


def _event_times(
    events: Sequence[Prediction | GroundTruth], records: Sequence[InputRecord]
) -> npt.NDArray[np.float64]:
    stamps = list(map(_TIMESTAMP, events))
    try:
        times = np.array(stamps, dtype=np.float64)
    except TypeError:  # some are datetimes
        times = np.array(
            [np.nan if s is None else epoch_seconds(s) for s in stamps], dtype=np.float64
        )
    missing = np.isnan(times)
    if missing.any():
        kafka = np.fromiter(map(_TIMESTAMP, records), dtype=np.float64, count=len(records))
        times[missing] = kafka[missing]
    return times


def engine_view(view: Mapping[str, Any], zero_baseline: Collection[str] = ()) -> EngineView:
    """The engine's ``metrics_view()`` with ``join_totals`` filled from its ``join`` counters.

    ``Engine.metrics_view`` reports each model's join statistics under ``join``; the metrics
    take cumulative outcome counts from ``join_totals`` and count their growth from one view
    to the next, the first view of a model being its baseline. For the models in
    ``zero_baseline`` (created by this process, not restored from a checkpoint) the totals
    are given as zeros, so that their first joins are counted by the next view rather than
    swallowed by the baseline. A view that already has ``join_totals`` is kept as it is.

    >>> engine_view({"models": {"m": {"join": {"joined": 3, "label_lag_mean": 2.0}}}})
    {'models': {'m': {'join': {'joined': 3, 'label_lag_mean': 2.0}, 'join_totals': {'joined': 3}}}}
    >>> engine_view({"models": {"m": {"join": {"joined": 3}}}}, {"m"})["models"]["m"]["join_totals"]
    {'joined': 0}
    """
    models: dict[str, Any] = {}
    for model_id, model_view in view["models"].items():
        join = model_view.get("join")
        if "join_totals" in model_view or not isinstance(join, Mapping):
            models[model_id] = model_view
            continue
        zero = model_id in zero_baseline
        totals = {
            k: 0 if zero else int(join[k]) for k in JOIN_OUTCOMES if isinstance(join.get(k), int)
        }
        models[model_id] = {**model_view, "join_totals": totals}
    out: EngineView = {"models": models}
    if "model_ids" in view:
        out["model_ids"] = list(view["model_ids"])
    return out


class LoopObserver:
    """Feeds ``metrics`` from the consumer loop and remembers what ``/readyz`` reports.

    ``topics`` are the ``(predictions, ground truth)`` topic names (events are labelled
    with the real names); ``view_seconds`` is the least time between two engine views, and
    views take at most ``view_share`` of the loop's time: after a view that took ``d``
    seconds the next waits ``d / view_share`` if that is longer (a backlog over hundreds of
    models changes every model between two views, and each view then costs ~0.1 s at 300
    models: once a second, a fifth of what the member did). ``clock`` is wall-clock time
    (metrics), ``monotonic`` measures intervals.
    """

    def __init__(
        self,
        metrics: MonitorMetrics,
        topics: tuple[str, str],
        *,
        view_seconds: float = 1.0,
        view_share: float = 0.05,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if view_seconds < 0:
            raise ValueError(f"view_seconds must be >= 0, got {view_seconds}")
        if not 0 < view_share <= 1:
            raise ValueError(f"view_share must be in (0, 1], got {view_share}")
        self.metrics = metrics
        self.topics = topics
        self.view_seconds = view_seconds
        self.view_share = view_share
        self._view_took = 0.0  # how long the last view took (seconds)
        self._clock = clock
        self._monotonic = monotonic
        self._last_view: float | None = None
        self._viewed: set[str] = set()  # models whose join baseline the metrics hold
        self._restored: set[str] = set()  # restored from a checkpoint, not viewed since
        self._consumer_open = False
        # why Kafka / Redis are not ready, by source (cleared independently)
        self._kafka: dict[str, str] = {}
        self._redis: dict[str, str] = {"contact": "Redis not contacted yet"}
        self._redis_call: tuple[float, float] | None = None  # (started, allowance)

    # -- per loop turn / per batch ---------------------------------------------------------

    def heartbeat(self) -> None:
        self.metrics.heartbeat()

    def batch(
        self,
        records: Sequence[InputRecord],
        dead_letters: Iterable[tuple[str, str]],
        *,
        duration: float,
    ) -> None:
        """One processed batch: ``records`` reached the engine, ``dead_letters`` are
        ``(topic, reason)`` of the messages sent to the dead-letter topic."""
        processed_at = self._clock()
        observation = BatchObservation(duration_seconds=duration, processed_at=processed_at)
        if records:
            self._records(observation, records, processed_at)
            self._kafka.pop("errors", None)  # records arrived: the broker answers
        kinds: Counter[tuple[str, str]] = Counter(
            (topic, reason_kind(reason)) for topic, reason in dead_letters
        )
        for (topic, kind), count in kinds.items():
            observation.events[(topic, "", OUTCOME_DEAD_LETTER)] += count
            self.metrics.record_dead_letter(topic, kind, count)
        self.metrics.observe_batch(observation)

    def _records(
        self, observation: BatchObservation, records: Sequence[InputRecord], processed_at: float
    ) -> None:
        predictions_topic, truth_topic = self.topics
        events = list(map(_EVENT, records))
        flags = list(map(is_, map(type, events), repeat(Prediction)))  # True: a prediction
        is_prediction = np.array(flags, dtype=bool)
        latencies = processed_at - _event_times(events, records)
        predictions: Counter[tuple[str, str]] = Counter(
            map(_MODEL_VERSION, compress(events, flags))
        )
        truths: Counter[str] = Counter(map(_MODEL, compress(events, map(not_, flags))))
        observation.predictions.update(predictions)
        for (model_id, _version), count in predictions.items():
            observation.events[(predictions_topic, model_id, "processed")] += count
            observation.last_seen[model_id] = processed_at
        for model_id, count in truths.items():
            observation.events[(truth_topic, model_id, "processed")] += count
            observation.last_seen[model_id] = processed_at
        if is_prediction.any():
            observation.latencies[predictions_topic] = latencies[is_prediction].tolist()
        if not is_prediction.all():
            observation.latencies[truth_topic] = latencies[~is_prediction].tolist()

    def output(self, output: EngineOutput) -> None:
        """Count the alerts and retrain requests the engine produced (they are few)."""
        for alert in output.alerts:
            self.metrics.record_alert(alert)
        for request in output.retrain_requests:
            self.metrics.record_retrain(request)

    def maybe_view(self, engine: object) -> bool:
        """Copy the engine's model view into the metrics if ``view_seconds`` have passed
        since the last one, and ``1 / view_share`` times what it took."""
        if not isinstance(engine, ViewableEngine):
            return False
        now = self._monotonic()
        if self._last_view is not None and now - self._last_view < self.view_interval:
            return False
        self._last_view = now
        raw = engine.metrics_view(changed_only=True)  # an idle engine's view costs nothing
        new = {m for m in raw["models"] if m not in self._viewed and m not in self._restored}
        self.metrics.update_from_engine(engine_view(raw, new))
        self._viewed.update(raw["models"])
        self._restored.difference_update(raw["models"])
        self._view_took = self._monotonic() - now
        return True

    @property
    def view_interval(self) -> float:
        """Seconds from the start of the last view to the next one."""
        return max(self.view_seconds, self._view_took / self.view_share)

    def restored(self, models: Iterable[str]) -> None:
        """Models whose state (and join totals) came from a checkpoint: their next view is
        the baseline of ``driftradar_join_outcomes_total``; others start from zero."""
        for model in models:
            self._viewed.discard(model)
            self._restored.add(model)

    # -- consumer state --------------------------------------------------------------------

    def assignment(self, partitions: Iterable[int]) -> None:
        """The input partitions this member owns now (both topics of each)."""
        self.metrics.set_assignment((t, p) for p in sorted(partitions) for t in self.topics)

    def lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        self.metrics.set_lag(lags)

    def consumer_opened(self) -> None:
        self._consumer_open = True

    def consumer_closed(self) -> None:
        self._consumer_open = False

    def broker_error(self, reason: str) -> None:
        """A transient consumer error such as "all brokers down": not ready until it heals."""
        self._kafka["errors"] = reason

    def broker_states(self, states: Iterable[str]) -> None:
        """librdkafka's broker states from its statistics: one ``UP`` clears a broker error."""
        if _BROKER_UP in states:
            self._kafka.pop("errors", None)

    def broker_idle(self, idle: float | None, limit: float) -> None:
        """Seconds since any broker connection last received something (statistics): a
        frozen broker keeps its connections "UP" but stops answering."""
        if idle is not None and idle > limit:
            self._kafka["idle"] = f"no answer from any broker for {idle:.0f} s (limit {limit:g} s)"
        else:
            self._kafka.pop("idle", None)

    def broker_answered(self) -> None:
        """The broker acknowledged every output (a flush went through)."""
        self._kafka.pop("idle", None)

    # -- checkpoints and outages -------------------------------------------------------------

    def redis_ok(self) -> None:
        self._redis.pop("contact", None)
        self._redis.pop("checkpoint", None)

    def redis_call(self, started: float | None, allowance: float = 0.0) -> None:
        """A Redis call began (monotonic time) or, with None, ended: while one is in flight
        for longer than :data:`STALL_SECONDS` beyond the ``allowance`` seconds its work may
        take (a checkpoint of a thousand models: seconds), ``/readyz`` says Redis does not
        answer (the loop itself is blocked in the call and cannot say so)."""
        self._redis_call = None if started is None else (started, allowance)

    def checkpoint(self, duration: float) -> None:
        self.metrics.observe_checkpoint(duration)
        self.redis_ok()

    def nothing_unsaved(self) -> None:
        """An idle member's Redis answered and it holds no unsaved record: its checkpoint is
        as fresh as a new one would be (keeps ``CheckpointStale`` quiet on idle replicas)."""
        self.metrics.last_checkpoint.set(self._clock())
        self.redis_ok()

    def checkpoint_failed(self, reason: str) -> None:
        self.metrics.record_checkpoint_failure()
        self._redis["checkpoint"] = f"last checkpoint failed: {reason}"

    def outage(self, dependency: str, reason: str, elapsed: float) -> None:
        """A checkpoint is blocked by ``dependency``: consumption is paused."""
        problems = self._redis if dependency == "redis" else self._kafka
        problems["outage"] = (
            f"unavailable for {elapsed:.0f} s ({reason}); consumption paused, retrying"
        )
        self.metrics.set_dependency(dependency, False)

    def outage_ended(self, dependency: str) -> None:
        (self._redis if dependency == "redis" else self._kafka).pop("outage", None)
        self.metrics.set_dependency(dependency, True)

    # -- readiness callbacks (cheap: cached state only) --------------------------------------

    def kafka_ready(self) -> tuple[bool, str]:
        if not self._consumer_open:
            return False, "consumer not running"
        if "outage" in self._kafka:
            return False, self._kafka["outage"]
        return _verdict(self._kafka)

    def redis_ready(self) -> tuple[bool, str]:
        call = self._redis_call
        if call is not None:
            started, allowance = call
            waited = self._monotonic() - started
            if waited > STALL_SECONDS + allowance:
                return False, f"Redis has not answered for {waited:.0f} s (call in flight)"
        if "outage" in self._redis:
            return False, self._redis["outage"]
        return _verdict(self._redis)


def _verdict(problems: Mapping[str, str]) -> tuple[bool, str]:
    if problems:
        return False, "; ".join(problems[k] for k in sorted(problems))
    return True, "ok"
