"""Infrastructure alerts: silence, throughput collapse, consumer lag (injected clock)."""

from __future__ import annotations

from engine_streams import T0, churn_stream

from streams.engine import MonitorConfig
from streams.engine.engine import MONITOR_MODEL_ID, Engine


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _engine(clock: FakeClock, **defaults: object) -> Engine:
    return Engine(MonitorConfig.from_mapping({"defaults": defaults}), clock=clock)


def test_silence_alerts_once_per_episode_and_never_requests_retraining() -> None:
    clock = FakeClock()
    engine = _engine(clock, silence_seconds=60)
    records = churn_stream(20, seed=1)
    assert not engine.process(records[:10])
    assert not engine.tick(clock.now + 59).alerts
    out = engine.tick(clock.now + 61)
    (alert,) = out.alerts
    assert (alert.type, alert.signal, alert.model_id) == ("infrastructure", "silence", "churn")
    assert alert.severity == "critical"
    assert out.retrain_requests == []
    assert not engine.tick(clock.now + 300).alerts  # same episode
    clock.now += 400
    engine.process(records[10:])  # the model speaks again...
    again = engine.tick(clock.now + 61).alerts  # ...and falls silent again: a new alert
    assert len(again) == 1
    assert again[0].alert_id != alert.alert_id


def test_silence_alert_id_is_deterministic() -> None:
    ids = []
    for _ in range(2):
        clock = FakeClock()
        engine = _engine(clock, silence_seconds=60)
        engine.process(churn_stream(10, seed=1))
        ids.append(engine.tick(clock.now + 100).alerts[0].alert_id)
    assert ids[0] == ids[1]


def test_throughput_collapse() -> None:
    clock = FakeClock()
    engine = _engine(
        clock,
        silence_seconds=None,
        throughput={"window_seconds": 10, "min_ratio": 0.2, "min_rate": 1},
    )
    records = churn_stream(2000, seed=2, labelled=0.0)
    engine.tick()  # starts the first window
    position = 0
    alerts = []
    for second in range(60):
        per_second = 20 if second < 40 else 1  # 20/s, then 1/s
        engine.process(records[position : position + per_second])
        position += per_second
        clock.now += 1
        alerts += engine.tick().alerts
    assert [(a.type, a.signal, a.detector) for a in alerts] == [
        ("infrastructure", "throughput", "collapse")
    ]
    assert alerts[0].details["rate"] < 0.2 * alerts[0].details["average_rate"]


def test_consumer_lag_alerts_on_entry_per_partition() -> None:
    clock = FakeClock()
    engine = _engine(clock)
    engine.process(churn_stream(5, seed=3))
    limit = engine.config.max_consumer_lag
    assert not engine.report_lag({0: limit}).alerts
    (alert,) = engine.report_lag({0: limit + 1, 1: 3}).alerts
    assert (alert.model_id, alert.signal, alert.type) == (
        MONITOR_MODEL_ID,
        "consumer_lag",
        "infrastructure",
    )
    assert alert.details["partition"] == 0
    assert not engine.report_lag({0: limit + 50}).alerts
    engine.report_lag({0: 0})
    assert len(engine.report_lag({0: limit + 1}).alerts) == 1


def test_events_without_timestamp_use_the_kafka_timestamp() -> None:
    from streams.core.events import GroundTruth, Prediction
    from streams.engine import InputRecord

    engine = _engine(FakeClock())
    engine.process(
        [
            InputRecord(Prediction("e", "m", {"x": 1.0}, 0.2), 0, 0, T0),
            InputRecord(GroundTruth("e", "m", 0.0), 0, 1, T0 + 9),
        ]
    )
    view = engine.metrics_view()["models"]["m"]
    assert view["label_lag_seconds"] == 9.0
    assert view["last_event_timestamp_seconds"] == T0 + 9


def test_a_lag_episode_survives_a_restart_without_a_second_alert() -> None:
    clock = FakeClock()
    engine = Engine(MonitorConfig.from_mapping({"max_consumer_lag": 100}), clock=clock)
    (first,) = engine.report_lag({0: 500}).alerts
    revived = Engine(MonitorConfig.from_mapping({"max_consumer_lag": 100}), clock=clock)
    revived.restore_partition(0, engine.snapshot_partition(0))
    assert not revived.report_lag({0: 800}).alerts  # the same episode
    assert not revived.report_lag({0: 10}).alerts  # it ends
    (second,) = revived.report_lag({0: 900}).alerts  # a new one, with its own id
    assert second.alert_id != first.alert_id
    again = Engine(MonitorConfig.from_mapping({"max_consumer_lag": 100}), clock=clock)
    assert again.report_lag({0: 500}).alerts[0].alert_id == first.alert_id  # deterministic
