"""Retrain policy: triggers, cooldown, daily cap, k-of-n confirmation, event time only."""

from __future__ import annotations

import msgspec
from engine_streams import churn_stream, run

from streams.core.events import Alert
from streams.engine import MonitorConfig
from streams.engine.config import ConfirmConfig, RetrainConfig
from streams.engine.engine import Engine
from streams.engine.retrain import RetrainPolicy

HOUR = 3600.0


def _alert(alert_id: str, kind: str = "concept_drift", signal: str = "error") -> Alert:
    return Alert(
        alert_id=alert_id,
        type=kind,
        severity="critical",
        model_id="churn",
        signal=signal,
        detector="adwin",
        detected_at="2026-01-01T00:00:00.000Z",
        model_version="v3",
    )


def test_only_configured_model_alerts_trigger() -> None:
    policy = RetrainPolicy("churn", RetrainConfig(triggers=frozenset({"concept_drift"})))
    assert policy.observe(_alert("a", "data_drift", "feature:x"), 0.0) is None
    assert policy.observe(_alert("b", "infrastructure", "silence"), 1.0) is None
    request = policy.observe(_alert("c"), 2.0, data_start=-100.0)
    assert request is not None
    assert request.model_version == "v3"
    assert [(r.alert_id, r.type, r.signal) for r in request.reasons] == [
        ("c", "concept_drift", "error")
    ]
    assert (request.window.start, request.window.end) == (
        "1969-12-31T23:58:20.000Z",
        "1970-01-01T00:00:02.000Z",
    )
    assert policy.counters["not_a_trigger"] == 2


def test_infrastructure_never_triggers_even_if_forced() -> None:
    config = RetrainConfig(triggers=frozenset({"infrastructure", "concept_drift"}))
    policy = RetrainPolicy("churn", config)
    assert policy.observe(_alert("x", "infrastructure", "silence"), 0.0) is None


def test_cooldown_and_daily_cap_use_event_time() -> None:
    policy = RetrainPolicy("churn", RetrainConfig(cooldown_seconds=HOUR, max_per_day=2))
    times = [0.0, 0.5 * HOUR, 1.5 * HOUR, 3.0 * HOUR, 25.0 * HOUR]
    issued = [policy.observe(_alert(f"a{i}"), t) is not None for i, t in enumerate(times)]
    # t=0.5h cooldown; t=3h third of the day; t=25h: the first request left the 24 h window
    assert issued == [True, False, True, False, True]
    assert (policy.counters["cooldown"], policy.counters["daily_limit"]) == (1, 1)


def test_confirmation_needs_k_signals_within_the_window() -> None:
    config = RetrainConfig(
        triggers=frozenset({"concept_drift", "performance_degradation"}),
        confirm=ConfirmConfig(signals=2, within_seconds=HOUR),
        cooldown_seconds=0,
    )
    policy = RetrainPolicy("churn", config)
    assert policy.observe(_alert("e1"), 0.0) is None
    late = _alert("m1", "performance_degradation", "metric:accuracy")
    assert policy.observe(late, 2 * HOUR) is None  # e1 is too old to confirm
    assert policy.observe(_alert("e2"), 2.5 * HOUR) is not None  # m1 + e2
    assert policy.observe(_alert("e3"), 2.6 * HOUR) is None  # reasons were consumed
    request = policy.observe(_alert("m2", "performance_degradation", "metric:auc"), 2.7 * HOUR)
    assert request is not None
    assert [r.alert_id for r in request.reasons] == ["e3", "m2"]


def test_require_degraded_performance() -> None:
    config = RetrainConfig(require_degraded_performance=True, cooldown_seconds=0)
    policy = RetrainPolicy("churn", config)
    assert policy.observe(_alert("e1"), 0.0) is None
    policy.performance("metric:accuracy/threshold", True)
    assert policy.observe(_alert("e2"), 1.0) is not None
    policy.performance("metric:accuracy/threshold", False)
    assert policy.observe(_alert("e3"), 2.0) is None


def test_request_ids_are_deterministic_and_survive_a_restart() -> None:
    config = RetrainConfig(cooldown_seconds=10)
    one, two = RetrainPolicy("churn", config), RetrainPolicy("churn", config)
    first = one.observe(_alert("a"), 0.0)
    assert first is not None
    two.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(one.snapshot())))
    assert two.observe(_alert("b"), 5.0) is None  # the restored cooldown holds
    again = two.observe(_alert("c"), 20.0)
    same = one.observe(_alert("b"), 5.0), one.observe(_alert("c"), 20.0)
    assert again is not None
    assert same[1] is not None
    assert again == same[1]
    assert again.request_id != first.request_id


def test_engine_requests_once_per_cooldown_with_reasons() -> None:
    config = MonitorConfig.from_mapping(
        {
            "defaults": {
                "warmup": 500,
                "alarms": {"min_updates": 500},
                "retrain": {
                    "cooldown_seconds": 86400,
                    "triggers": ["concept_drift", "performance_degradation"],
                },
            }
        }
    )
    engine = Engine(config, clock=lambda: 0.0)
    alerts, requests = run(engine, churn_stream(7000, seed=31, concept_drift_at=3000))
    assert len(requests) == 1
    (request,) = requests
    ids = {a.alert_id for a in alerts}
    assert {r.alert_id for r in request.reasons} <= ids
    triggers = [a for a in alerts if a.type in ("concept_drift", "performance_degradation")]
    assert request.window.end == triggers[0].event_time == request.requested_at
    assert [r.alert_id for r in request.reasons] == [triggers[0].alert_id]
    stats = engine.metrics_view()["models"]["churn"]["retrain"]
    assert stats["requested"] == 1
    assert stats["cooldown"] >= 1
