"""Retrain policy: triggers, cooldown, daily cap, confirmation, the window from the change,
waiting for labelled pairs of the new regime, the deadline, and the worker's decisions."""

from __future__ import annotations

from datetime import datetime

import msgspec
import numpy as np
import pytest
from engine_streams import T0, churn_stream, run

from streams.core.events import Alert, RetrainResult, rfc3339
from streams.engine import MonitorConfig
from streams.engine.config import ConfirmConfig, RetrainConfig
from streams.engine.engine import Engine, MisroutedResultError
from streams.engine.retrain import RetrainPolicy, Trigger

HOUR = 3600.0
NOW = RetrainConfig(min_labelled=0)  # requests as soon as the policy allows them


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


def _at(t: float, change_at: float | None = None, labelled: int = 0) -> Trigger:
    return Trigger(t, t if change_at is None else change_at, labelled)


def _result(request_id: str, outcome: str) -> RetrainResult:
    return RetrainResult(
        result_id=f"o-{request_id}",
        request_id=request_id,
        model_id="churn",
        outcome=outcome,
        reason="not better than the current model by the margin" if outcome != "deployed" else "",
        decided_at="2026-01-01T00:00:00.000Z",
        deployed_version="v4" if outcome == "deployed" else None,
    )


def test_only_configured_model_alerts_trigger() -> None:
    config = msgspec.structs.replace(NOW, triggers=frozenset({"concept_drift"}))
    policy = RetrainPolicy("churn", config)
    assert policy.observe(_alert("a", "data_drift", "feature:x"), _at(0.0)) is None
    assert policy.observe(_alert("b", "infrastructure", "silence"), _at(1.0)) is None
    request = policy.observe(_alert("c"), _at(2.0, change_at=-100.0))
    assert request is not None
    assert request.model_version == "v3"
    assert [(r.alert_id, r.type, r.signal) for r in request.reasons] == [
        ("c", "concept_drift", "error")
    ]
    # the window starts at the change the trigger points to, not a fixed look-back
    assert (request.window.start, request.window.end, request.detected_at) == (
        "1969-12-31T23:58:20.000Z",
        "1970-01-01T00:00:02.000Z",
        "1970-01-01T00:00:02.000Z",
    )
    assert policy.counters["not_a_trigger"] == 2


def test_the_window_never_reaches_further_back_than_window_seconds() -> None:
    config = msgspec.structs.replace(NOW, window_seconds=60.0)
    request = RetrainPolicy("churn", config).observe(_alert("c"), _at(1000.0, change_at=0.0))
    assert request is not None
    assert request.window.start == rfc3339(940.0)


def test_infrastructure_never_triggers_even_if_forced() -> None:
    config = RetrainConfig(triggers=frozenset({"infrastructure", "concept_drift"}))
    policy = RetrainPolicy("churn", config)
    assert policy.observe(_alert("x", "infrastructure", "silence"), _at(0.0)) is None


def test_cooldown_and_daily_cap_use_event_time() -> None:
    config = msgspec.structs.replace(NOW, cooldown_seconds=HOUR, max_per_day=2)
    policy = RetrainPolicy("churn", config)
    times = [0.0, 0.5 * HOUR, 1.5 * HOUR, 3.0 * HOUR, 25.0 * HOUR]
    issued = [policy.observe(_alert(f"a{i}"), _at(t)) is not None for i, t in enumerate(times)]
    # t=0.5h cooldown; t=3h third of the day; t=25h: the first request left the 24 h window
    assert issued == [True, False, True, False, True]
    assert (policy.counters["cooldown"], policy.counters["daily_limit"]) == (1, 1)


def test_confirmation_needs_k_signals_within_the_window() -> None:
    config = msgspec.structs.replace(
        NOW,
        triggers=frozenset({"concept_drift", "performance_degradation"}),
        confirm=ConfirmConfig(signals=2, within_seconds=HOUR),
        cooldown_seconds=0,
    )
    policy = RetrainPolicy("churn", config)
    assert policy.observe(_alert("e1"), _at(0.0)) is None
    late = _alert("m1", "performance_degradation", "metric:accuracy")
    assert policy.observe(late, _at(2 * HOUR)) is None  # e1 is too old to confirm
    assert policy.observe(_alert("e2"), _at(2.5 * HOUR)) is not None  # m1 + e2
    assert policy.observe(_alert("e3"), _at(2.6 * HOUR)) is None  # reasons were consumed
    metric = _alert("m2", "performance_degradation", "metric:auc")
    request = policy.observe(metric, _at(2.7 * HOUR))
    assert request is not None
    assert [r.alert_id for r in request.reasons] == ["e3", "m2"]


def test_require_degraded_performance() -> None:
    config = msgspec.structs.replace(NOW, require_degraded_performance=True, cooldown_seconds=0)
    policy = RetrainPolicy("churn", config)
    assert policy.observe(_alert("e1"), _at(0.0)) is None
    policy.performance("v3", "metric:accuracy/threshold", True)
    assert policy.observe(_alert("e2"), _at(1.0)) is not None
    policy.performance("v3", "metric:accuracy/threshold", False)
    assert policy.observe(_alert("e3"), _at(2.0)) is None


def test_request_ids_are_deterministic_and_survive_a_restart() -> None:
    config = msgspec.structs.replace(NOW, cooldown_seconds=10)
    one, two = RetrainPolicy("churn", config), RetrainPolicy("churn", config)
    first = one.observe(_alert("a"), _at(0.0))
    assert first is not None
    two.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(one.snapshot())))
    assert two.observe(_alert("b"), _at(5.0)) is None  # the restored cooldown holds
    again = two.observe(_alert("c"), _at(20.0))
    same = one.observe(_alert("b"), _at(5.0)), one.observe(_alert("c"), _at(20.0))
    assert again is not None
    assert same[1] is not None
    assert again == same[1]
    assert again.request_id != first.request_id


def test_a_request_waits_for_min_labelled_pairs_of_the_new_regime() -> None:
    policy = RetrainPolicy("churn", RetrainConfig(min_labelled=100))
    assert policy.observe(_alert("a"), _at(50.0, change_at=40.0, labelled=30)) is None
    assert policy.state_name() == "retrain_pending"
    assert policy.stats()["retrain_pending"]
    # pairs of another version, and pairs predicted before the change, do not count
    assert policy.pairs("v2", np.full(500, 60.0)) is None
    assert policy.pairs("v3", np.full(500, 39.0)) is None
    assert policy.observe(_alert("b", signal="metric:auc"), _at(55.0)) is None  # same change
    times = np.array([45.0] * 69 + [46.0, 47.0])
    assert policy.pairs("v3", times) == 69  # the 70th new pair completes the evidence
    request = policy.due(46.0)
    assert request is not None
    assert (request.labelled_pairs, request.complete) == (100, True)
    assert [r.alert_id for r in request.reasons] == ["a", "b"]
    assert request.window.start == rfc3339(40.0)
    assert policy.state_name() == "requested"


def test_after_max_wait_the_request_goes_with_what_there_is() -> None:
    config = RetrainConfig(min_labelled=1000, max_wait_seconds=HOUR)
    policy = RetrainPolicy("churn", config)
    policy.observe(_alert("a"), _at(100.0, change_at=50.0, labelled=10))
    policy.pairs("v3", np.full(20, 60.0))
    assert policy.expire(100.0 + HOUR - 1) is None
    request = policy.expire(100.0 + 5 * HOUR)
    assert request is not None
    assert (request.complete, request.labelled_pairs) == (False, 30)
    assert request.requested_at == rfc3339(100.0 + HOUR)  # the deadline, not the watermark


def test_a_declined_request_is_asked_again_after_more_data_while_degraded() -> None:
    config = RetrainConfig(min_labelled=100, cooldown_seconds=10.0)
    policy = RetrainPolicy("churn", config)
    first = policy.observe(_alert("a"), _at(50.0, change_at=40.0, labelled=100))
    assert first is not None
    policy.performance("v3", "metric:auc/baseline", True)
    assert policy.result(_result("r-other", "declined")) is None  # not about our request
    decision = policy.result(_result(first.request_id, "declined"))
    assert decision is not None
    assert decision.outcome == "declined"
    assert policy.result(_result(first.request_id, "declined")) is None  # seen already
    assert policy.pairs("v3", np.full(99, 51.0)) is None
    index = policy.pairs("v3", np.full(5, 52.0))
    assert index == 0  # the 100th pair after the decline
    assert policy.due(52.0) is None  # within the cooldown: ask after 100 more pairs
    assert policy.pairs("v3", np.full(100, 70.0)) == 95  # 204 + 96 = 300
    again = policy.due(70.0)
    assert again is not None
    assert again.request_id != first.request_id
    assert again.labelled_pairs == 300


def test_no_retry_once_the_performance_recovered_or_after_a_deployment() -> None:
    config = RetrainConfig(min_labelled=10, cooldown_seconds=0.0)
    policy = RetrainPolicy("churn", config)
    first = policy.observe(_alert("a"), _at(50.0, change_at=40.0, labelled=10))
    assert first is not None
    policy.result(_result(first.request_id, "failed"))
    index = policy.pairs("v3", np.full(10, 51.0))
    assert index is not None
    assert policy.due(51.0) is None  # not degraded: nothing to retrain
    second = RetrainPolicy("churn", config)
    request = second.observe(_alert("a"), _at(50.0, change_at=40.0, labelled=10))
    assert request is not None
    second.performance("v3", "metric:auc/baseline", True)
    second.result(_result(request.request_id, "deployed"))
    assert second.state_name() == "deployed"
    assert second.pairs("v3", np.full(50, 51.0)) is None


def test_engine_waits_for_evidence_and_starts_the_window_at_the_change() -> None:
    config = MonitorConfig.from_mapping(
        {"defaults": {"warmup": 500, "alarms": {"min_updates": 500}}}
    )
    change = 3000
    stream = churn_stream(9000, seed=31, concept_drift_at=change)
    alerts, requests = run(Engine(config, clock=lambda: 0.0), stream)
    assert len(requests) == 1
    (request,) = requests
    triggers = [a for a in alerts if a.type in ("concept_drift", "performance_degradation")]
    first = triggers[0]
    assert request.reasons[0].alert_id == first.alert_id
    assert request.detected_at == first.event_time
    assert (request.labelled_pairs, request.complete) == (1000, True)
    assert request.requested_at > first.event_time  # it waited for the evidence
    # the window starts near the change (stream time t0 + index / 10), not a day before
    change_time = T0 + change / 10.0
    assert abs(_epoch(request.window.start) - change_time) < 150.0
    # the same stream in other batches: the same request
    _, again = run(Engine(config, clock=lambda: 0.0), stream, size=137)
    assert again == requests


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_degraded_is_kept_per_version_and_forgotten_with_it() -> None:
    policy = RetrainPolicy("churn", NOW)
    policy.performance("v3", "metric:auc/baseline", True)
    policy.performance("v3", "metric:accuracy/limit", True)
    policy.performance("v4", "metric:auc/baseline", False)
    assert policy.degraded("v3") == ["metric:accuracy/limit", "metric:auc/baseline"]
    assert policy.degraded("v4") == []
    policy.performance("v3", "metric:auc/baseline", False)
    assert policy.degraded("v3") == ["metric:accuracy/limit"]
    policy.forget("v3")
    assert policy.degraded("v3") == []


def test_a_model_left_degraded_with_nothing_deployed_is_reported_once_per_regime() -> None:
    config = RetrainConfig(min_labelled=10, cooldown_seconds=0.0)
    policy = RetrainPolicy("churn", config)
    request = policy.observe(_alert("a"), _at(50.0, change_at=40.0, labelled=10))
    assert request is not None
    assert policy.stranded("v3") is None  # no decision yet
    policy.result(_result(request.request_id, "declined"))
    assert policy.stranded("v3") is None  # declined, but the performance is within limits
    policy.performance("v3", "metric:auc/baseline", True)
    assert policy.stranded("v4") is None  # another version serves now
    decision = policy.stranded("v3")
    assert decision is not None
    assert (decision.request_id, decision.outcome) == (request.request_id, "declined")
    assert policy.stranded("v3") is None  # once per regime
    # it survives a checkpoint: a restarted monitor does not raise it again
    restored = RetrainPolicy("churn", config)
    restored.restore(policy.snapshot())
    assert restored.stranded("v3") is None


def test_a_deployed_result_never_strands_the_model() -> None:
    policy = RetrainPolicy("churn", RetrainConfig(min_labelled=10))
    request = policy.observe(_alert("a"), _at(50.0, change_at=40.0, labelled=10))
    assert request is not None
    policy.performance("v3", "metric:auc/baseline", True)
    policy.result(_result(request.request_id, "deployed"))
    assert policy.stranded("v3") is None


def test_the_engine_routes_results_to_the_model_and_refuses_a_misrouted_one() -> None:
    engine = Engine(MonitorConfig.from_mapping({}), clock=lambda: 0.0)
    run(engine, churn_stream(50, partition=2))
    result = _result("r-1", "declined")
    with pytest.raises(MisroutedResultError, match="partition 0, but the model's events are on"):
        engine.retrain_result(result, partition=0)
    assert engine.retrain_result(result, partition=2).alerts == []  # not our last request
    stranger = msgspec.structs.replace(result, model_id="fraud")
    assert engine.retrain_result(stranger, partition=2).alerts == []
    partitions = engine.status()["partitions"]
    assert partitions[2]["unknown_results"] == 1
    assert "fraud" not in engine.status()["models"]
