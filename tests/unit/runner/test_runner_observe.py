"""The runner's metrics wiring (``streams.runner.observe``): batch observations from decoded
records, the throttled engine view with join baselines, and the cached readiness state."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.core.events import Alert, GroundTruth, Prediction, RetrainRequest, TimeWindow
from streams.engine import InputRecord, MonitorConfig
from streams.engine.engine import Engine
from streams.engine.records import EngineOutput
from streams.metrics import MonitorMetrics
from streams.runner.lag import read_stats
from streams.runner.observe import LoopObserver, engine_view, event_times

TOPICS = ("p-topic", "g-topic")
NOW = 1_900_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def metrics() -> MonitorMetrics:
    return MonitorMetrics(CollectorRegistry(), process_collectors=False, clock=lambda: NOW)


def _observer(metrics: MonitorMetrics, monotonic: Clock | None = None) -> LoopObserver:
    return LoopObserver(
        metrics, TOPICS, view_seconds=1.0, clock=lambda: NOW, monotonic=monotonic or Clock(0.0)
    )


def _prediction(i: int, model: str = "churn", version: str = "v1", ts: Any = None) -> InputRecord:
    event = Prediction(f"e{i}", model, {"x": float(i)}, 0.5, model_version=version, timestamp=ts)
    return InputRecord(event, 0, i, NOW - 10.0)


def _truth(i: int, model: str = "churn", ts: Any = None) -> InputRecord:
    return InputRecord(GroundTruth(f"e{i}", model, 1, timestamp=ts), 0, i, NOW - 10.0)


def test_event_times_mix_floats_datetimes_and_kafka_fallback() -> None:
    when = datetime.fromtimestamp(NOW - 3.0, UTC)
    records = [_prediction(0, ts=NOW - 1.0), _prediction(1, ts=when), _truth(2)]
    assert event_times(records).tolist() == [NOW - 1.0, NOW - 3.0, NOW - 10.0]


def test_batch_counts_events_predictions_latency_and_last_seen(metrics: MonitorMetrics) -> None:
    observer = _observer(metrics)
    records = [_prediction(i, ts=NOW - 0.5) for i in range(6)]
    records += [_prediction(6 + i, model="fraud", version="v9", ts=NOW - 0.5) for i in range(2)]
    records += [_truth(i, ts=NOW - 100.0) for i in range(3)]
    observer.batch(records, [], duration=0.02)

    value = metrics.value
    assert (
        value("driftradar_events_total", topic="p-topic", model_id="churn", outcome="processed")
        == 6.0
    )
    assert (
        value("driftradar_events_total", topic="g-topic", model_id="churn", outcome="processed")
        == 3.0
    )
    assert value("driftradar_predictions_total", model_id="fraud", model_version="v9") == 2.0
    assert value("driftradar_predictions_total", model_id="churn", model_version="v1") == 6.0
    assert value("driftradar_event_latency_seconds_count", topic="p-topic") == 8.0
    assert value("driftradar_event_latency_seconds_sum", topic="p-topic") == pytest.approx(4.0)
    assert value("driftradar_event_latency_seconds_sum", topic="g-topic") == pytest.approx(300.0)
    # processing (wall-clock) time, not the event time, marks when the model was last seen
    assert value("driftradar_last_event_timestamp_seconds", model_id="churn") == NOW
    assert value("driftradar_batches_total") == 1.0
    assert value("driftradar_processing_seconds_sum") == pytest.approx(0.02)


def test_dead_letters_count_as_events_and_by_reason_kind(metrics: MonitorMetrics) -> None:
    observer = _observer(metrics)
    dead = [
        ("p-topic", "$: invalid JSON (unexpected character)"),
        ("p-topic", "$.features: required field is missing"),
        ("p-topic", "$.features: required field is missing"),
    ]
    observer.batch([], dead, duration=0.001)
    value = metrics.value
    assert (
        value("driftradar_events_total", topic="p-topic", model_id="", outcome="dead_letter") == 3
    )
    assert value("driftradar_dead_letters_total", topic="p-topic", reason_kind="schema") == 2
    assert value("driftradar_dead_letters_total", topic="p-topic", reason_kind="invalid_json") == 1


def test_output_counts_alerts_and_retrain_requests(metrics: MonitorMetrics) -> None:
    alert = Alert(
        alert_id="a1",
        type="data_drift",
        severity="warning",
        model_id="churn",
        model_version="v1",
        signal="feature:x",
        detector="psi",
        detected_at="2030-01-01T00:00:00Z",
    )
    request = RetrainRequest(
        request_id="r1",
        model_id="churn",
        model_version="v1",
        requested_at="2030-01-01T00:00:00Z",
        reasons=[],
        window=TimeWindow(start="2030-01-01T00:00:00Z", end="2030-01-01T00:00:00Z"),
    )
    _observer(metrics).output(EngineOutput(alerts=[alert, alert], retrain_requests=[request]))
    assert (
        metrics.value(
            "driftradar_alerts_total", model_id="churn", type="data_drift", severity="warning"
        )
        == 2.0
    )
    assert metrics.value("driftradar_retrain_requests_total", model_id="churn") == 1.0


def test_engine_view_copies_join_outcomes() -> None:
    view: Mapping[str, Any] = {"models": {"m": {"join": {"joined": 4, "pending_labels": 2}}}}
    assert engine_view(view)["models"]["m"].get("join_totals") == {"joined": 4}
    kept = {"models": {"m": {"join": {"joined": 4}, "join_totals": {"joined": 1}}}}
    assert engine_view(kept)["models"]["m"].get("join_totals") == {"joined": 1}


def churn_stream(n: int) -> list[InputRecord]:
    """``n`` predictions, each followed by its label one second (of event time) later."""
    records = []
    for i in range(n):
        t = NOW - 1000.0 + i
        event = Prediction(f"e{i}", "churn", {"x": float(i % 7)}, (i % 10) / 10, "v1", t)
        records.append(InputRecord(event, 0, 2 * i, t))
        records.append(InputRecord(GroundTruth(f"e{i}", "churn", i % 2, t + 1.0), 0, 2 * i + 1, t))
    return records


def _engine_with(records: list[InputRecord]) -> Engine:
    engine = Engine(MonitorConfig(), clock=lambda: NOW)
    engine.process(records)
    return engine


def test_view_is_throttled_and_counts_the_joins_of_a_new_model(metrics: MonitorMetrics) -> None:
    monotonic = Clock(100.0)
    observer = _observer(metrics, monotonic)
    stream = churn_stream(200)
    engine = _engine_with(stream[:200])
    assert observer.maybe_view(engine)
    assert not observer.maybe_view(engine)  # less than view_seconds later: skipped
    assert metrics.value("driftradar_model_info", model_id="churn", model_version="v1") == 1.0
    engine.process(stream[200:])
    monotonic.now += 1.0
    assert observer.maybe_view(engine)
    joined = engine.metrics_view()["models"]["churn"]["join"]["joined"]
    assert joined > 0
    # the model was created here: every join counts, including those before the first view
    assert metrics.value("driftradar_join_outcomes_total", model_id="churn", outcome="joined") == (
        joined
    )


class _SlowViewEngine(Engine):
    """An engine whose views take ``took`` seconds of the observer's clock."""

    def __init__(self, clock: Clock, took: float) -> None:
        super().__init__(MonitorConfig(), clock=lambda: NOW)
        self.monotonic, self.took, self.views = clock, took, 0

    def metrics_view(self, *, changed_only: bool = False) -> dict[str, Any]:
        self.monotonic.now += self.took
        self.views += 1
        return super().metrics_view(changed_only=changed_only)


def test_views_take_at_most_their_share_of_the_loop(metrics: MonitorMetrics) -> None:
    """A view that took 0.2 s (a backlog over hundreds of models) is followed by the next
    only 0.2 / 0.05 = 4 s after it began, not 1 s; cheap views keep the 1 s cadence."""
    monotonic = Clock(100.0)
    observer = LoopObserver(
        metrics, TOPICS, view_seconds=1.0, view_share=0.05, clock=lambda: NOW, monotonic=monotonic
    )
    engine = _SlowViewEngine(monotonic, took=0.2)
    engine.process(churn_stream(50))
    assert observer.maybe_view(engine)
    assert observer.view_interval == pytest.approx(4.0)
    monotonic.now = 103.9
    assert not observer.maybe_view(engine)
    monotonic.now = 104.01
    assert observer.maybe_view(engine)
    assert engine.views == 2
    engine.took = 0.01  # views got cheap again (caught up): back to view_seconds
    monotonic.now = 108.1
    assert observer.maybe_view(engine)
    assert observer.view_interval == pytest.approx(1.0)
    monotonic.now = 109.2
    assert observer.maybe_view(engine)


@pytest.mark.parametrize("share", [0.0, -0.1, 1.5])
def test_view_share_must_be_a_fraction(metrics: MonitorMetrics, share: float) -> None:
    with pytest.raises(ValueError, match="view_share"):
        LoopObserver(metrics, TOPICS, view_share=share)


def test_a_restored_model_takes_its_totals_as_baseline(metrics: MonitorMetrics) -> None:
    monotonic = Clock(0.0)
    observer = _observer(metrics, monotonic)
    stream = churn_stream(200)
    engine = _engine_with(stream[:200])
    before = engine.metrics_view()["models"]["churn"]["join"]["joined"]
    observer.restored(["churn"])
    observer.maybe_view(engine)
    engine.process(stream[200:])
    monotonic.now += 5.0
    observer.maybe_view(engine)
    after = engine.metrics_view()["models"]["churn"]["join"]["joined"]
    assert after > before > 0
    assert (
        metrics.value("driftradar_join_outcomes_total", model_id="churn", outcome="joined")
        == after - before
    )


def test_an_engine_without_a_view_is_skipped(metrics: MonitorMetrics) -> None:
    assert not _observer(metrics).maybe_view(object())


def test_assignment_and_lag(metrics: MonitorMetrics) -> None:
    observer = _observer(metrics)
    observer.assignment({2, 0})
    assert metrics.assigned_partitions == 4
    assert metrics.value("driftradar_assigned_partitions", topic="g-topic") == 2.0
    observer.lag({("p-topic", 0): 12})
    assert metrics.value("driftradar_consumer_lag", topic="p-topic", partition="0") == 12.0
    observer.assignment(set())
    assert metrics.assigned_partitions == 0


def test_checkpoint_timing_and_failure(metrics: MonitorMetrics) -> None:
    observer = _observer(metrics)
    assert observer.redis_ready() == (False, "Redis not contacted yet")
    observer.checkpoint(0.004)
    assert observer.redis_ready() == (True, "ok")
    assert metrics.value("driftradar_checkpoint_duration_seconds_count") == 1.0
    assert metrics.value("driftradar_last_checkpoint_timestamp_seconds") == NOW
    observer.checkpoint_failed("ConnectionError: Redis went away")
    assert metrics.value("driftradar_checkpoint_failures_total") == 1.0
    ok, why = observer.redis_ready()
    assert not ok
    assert "ConnectionError: Redis went away" in why


def test_a_long_checkpoint_write_is_in_flight_not_stalled(metrics: MonitorMetrics) -> None:
    """A checkpoint of a thousand models keeps Redis busy ~3 s: /readyz must not call that
    a stall, yet a call that outlasts what its size allows is one."""
    clock = Clock(100.0)
    observer = _observer(metrics, clock)
    observer.checkpoint(0.004)
    observer.redis_call(100.0)  # a small write: 2 s and it is a stall
    clock.now = 102.5
    assert observer.redis_ready() == (False, "Redis has not answered for 2 s (call in flight)")
    observer.redis_call(100.0, 10.3)  # the store said: 206 MiB, ~10 s at a slow rate
    assert observer.redis_ready() == (True, "ok")
    clock.now = 112.0
    assert observer.redis_ready() == (True, "ok")
    clock.now = 112.5
    assert observer.redis_ready() == (False, "Redis has not answered for 12 s (call in flight)")
    observer.redis_call(None)
    assert observer.redis_ready() == (True, "ok")


def test_kafka_readiness_follows_the_consumer_and_broker_state(metrics: MonitorMetrics) -> None:
    observer = _observer(metrics)
    assert observer.kafka_ready() == (False, "consumer not running")
    observer.consumer_opened()
    assert observer.kafka_ready() == (True, "ok")
    observer.broker_error("consumer: all brokers are down")
    assert observer.kafka_ready() == (False, "consumer: all brokers are down")
    observer.broker_states(["DOWN", "CONNECT"])
    assert not observer.kafka_ready()[0]
    observer.broker_states(read_stats('{"brokers": {"b/1": {"state": "UP"}}}', {}).broker_states)
    assert observer.kafka_ready() == (True, "ok")
    observer.broker_error("consumer: all brokers are down")
    observer.batch([_prediction(0)], [], duration=0.001)  # records arrived: it answers
    assert observer.kafka_ready() == (True, "ok")
    observer.consumer_closed()
    assert not observer.kafka_ready()[0]


def test_view_seconds_must_not_be_negative(metrics: MonitorMetrics) -> None:
    with pytest.raises(ValueError, match="view_seconds"):
        LoopObserver(metrics, TOPICS, view_seconds=-1.0)


def _stream_of(model: str, n: int, first: int = 0) -> list[InputRecord]:
    return [
        InputRecord(
            Prediction(f"{model}-{i}", model, {"x": float(i % 7)}, 0.5, "v1", NOW - 100.0 + i),
            0,
            i,
            NOW - 100.0 + i,
        )
        for i in range(first, first + n)
    ]


def test_the_view_carries_only_the_models_that_changed(metrics: MonitorMetrics) -> None:
    monotonic = Clock(0.0)
    observer = _observer(metrics, monotonic)
    engine = Engine(MonitorConfig(), clock=lambda: NOW)
    engine.process(_stream_of("a", 50) + _stream_of("b", 50))
    observer.maybe_view(engine)
    pending = "driftradar_join_buffer_entries"  # predictions waiting for their label
    assert metrics.value(pending, model_id="a") == 50
    # idle: the next view has no model to recompute, and every series stays
    assert engine.metrics_view(changed_only=True) == {"models": {}, "model_ids": ["a", "b"]}
    engine.process(_stream_of("b", 30, first=50))
    monotonic.now += 1.0
    view = engine.metrics_view(changed_only=True)
    assert list(view["models"]) == ["b"]
    engine.process(_stream_of("b", 1, first=80))
    monotonic.now += 1.0
    observer.maybe_view(engine)
    assert metrics.value(pending, model_id="a") == 50
    assert metrics.value(pending, model_id="b") == 81
    # a model whose partition was revoked disappears, the others stay
    engine.drop_partition(0)
    monotonic.now += 1.0
    observer.maybe_view(engine)
    assert metrics.value(pending, model_id="a") is None
    assert metrics.value("driftradar_last_event_timestamp_seconds", model_id="b") is None


def test_a_whole_view_still_replaces_every_model(metrics: MonitorMetrics) -> None:
    metrics.update_from_engine({"models": {"a": {"error_rate": 0.1}, "b": {"error_rate": 0.2}}})
    metrics.update_from_engine({"models": {"b": {"error_rate": 0.3}}})
    assert metrics.value("driftradar_error_rate", model_id="a") is None
    assert metrics.value("driftradar_error_rate", model_id="b") == 0.3
    metrics.update_from_engine({"models": {}, "model_ids": ["b"]})  # idle: b stays
    assert metrics.value("driftradar_error_rate", model_id="b") == 0.3
