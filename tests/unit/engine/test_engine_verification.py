"""Deployment verification: a version that replaces another is checked against the
acceptable performance after ``retrain.verify_labelled_events`` labels (info or critical)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from engine_streams import T0, batches, churn_stream, run

from streams.core.events import Alert, Prediction
from streams.engine import ConfigError, InputRecord, MonitorConfig
from streams.engine.config import RetrainConfig
from streams.engine.engine import Engine
from streams.engine.pending_memory import MemoryPendingStore
from streams.engine.retrain import VERIFICATION, RetrainPolicy, Trigger

VERIFY = 300
SETTINGS: dict[str, Any] = {
    "warmup": 400,
    "alarms": {"min_updates": 400, "clear_after": 600},
    "performance": {"window": 500, "every": 100, "thresholds": {"roc_auc": 0.65}},
    "retrain": {"cooldown_seconds": 3600, "verify_labelled_events": VERIFY},
}


def _engine(**retrain: object) -> Engine:
    settings = {**SETTINGS, "retrain": {**SETTINGS["retrain"], **retrain}}
    return Engine(MonitorConfig.from_mapping({"defaults": settings}), clock=lambda: T0 + 1e6)


def _retrained(records: list[InputRecord]) -> list[InputRecord]:
    """A model fitted to the flipped world of ``concept_drift_at``: it predicts ``1 - p``."""
    out = []
    for record in records:
        event = record.event
        if isinstance(event, Prediction):
            assert isinstance(event.prediction, float)
            event = Prediction(
                event.event_id,
                event.model_id,
                event.features,
                1.0 - event.prediction,
                event.model_version,
                event.timestamp,
            )
        out.append(InputRecord(event, record.partition, record.offset, record.timestamp))
    return out


def _story(v2_fits_new_world: bool, v2_events: int = 1500) -> list[InputRecord]:
    """v1 until event 3000 with concept drift at 1500, then v2 in the changed world."""
    v1 = churn_stream(3000, seed=31, concept_drift_at=1500)
    v2 = churn_stream(v2_events, seed=32, version="v2", first=3000, concept_drift_at=0)
    if v2_fits_new_world:
        v2 = _retrained(v2)
    merged = sorted(v1 + v2, key=lambda r: r.timestamp)  # v1's late labels interleave
    return [InputRecord(r.event, 0, k, r.timestamp) for k, r in enumerate(merged)]


def _verifications(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.detector == VERIFICATION]


def test_a_retrained_version_that_recovers_is_verified_with_an_info_alert() -> None:
    engine = _engine()
    alerts, requests = run(engine, _story(v2_fits_new_world=True))
    (request,) = requests
    assert request.model_version == "v1"
    (verification,) = _verifications(alerts)
    assert verification.type == "performance_degradation"
    assert verification.severity == "info"
    assert (verification.model_version, verification.signal) == ("v2", "metric:roc_auc")
    details = verification.details
    assert details["verified"] is True
    assert details["minimum"] == 0.65
    assert details["value"] >= 0.65
    assert details["labelled_events"] == VERIFY
    assert details["pairs"] == VERIFY
    assert details["previous_version"] == "v1"
    assert details["request_id"] == request.request_id
    assert details["limit_source"] == "threshold"
    status = engine.status()["models"]["churn"]["verification"]
    assert status["state"] == "verified"
    assert status["needed"] == VERIFY
    assert status["labelled_events"] > VERIFY
    assert engine.metrics_view()["models"]["churn"]["verification"]["state"] == "verified"


def test_a_version_still_below_the_minimum_is_critical_and_requests_nothing() -> None:
    # no cooldown: only the policy's refusal keeps the critical verification from requesting
    engine = _engine(cooldown_seconds=0)
    alerts, requests = run(engine, _story(v2_fits_new_world=False, v2_events=400))
    assert requests
    assert {r.model_version for r in requests} == {"v1"}  # none from v2's verification
    (verification,) = _verifications(alerts)
    assert verification.severity == "critical"
    assert verification.details["verified"] is False
    assert verification.details["value"] < 0.65
    assert engine.status()["models"]["churn"]["verification"]["state"] == "failed"


def test_verification_is_pending_until_enough_labels() -> None:
    engine = _engine()
    alerts, _ = run(engine, _story(v2_fits_new_world=True, v2_events=200))
    assert _verifications(alerts) == []
    status = engine.status()["models"]["churn"]["verification"]
    assert status["state"] == "pending"
    assert 0 < status["labelled_events"] < VERIFY
    assert status["previous_version"] == "v1"


def test_the_first_version_is_not_verified_and_zero_disables_it() -> None:
    engine = _engine()
    alerts, _ = run(engine, churn_stream(2000, seed=33))
    assert _verifications(alerts) == []
    assert "verification" not in engine.status()["models"]["churn"]
    disabled = _engine(verify_labelled_events=0)
    alerts, _ = run(disabled, _story(v2_fits_new_world=True))
    assert _verifications(alerts) == []


def test_without_thresholds_the_previous_versions_baseline_is_the_limit() -> None:
    settings = {**SETTINGS, "performance": {"window": 500, "every": 100}}
    engine = Engine(MonitorConfig.from_mapping({"defaults": settings}), clock=lambda: T0)
    v1 = churn_stream(1500, seed=34)
    v2 = churn_stream(1500, seed=35, version="v2", first=1500)
    alerts, _ = run(engine, v1 + v2)
    (verification,) = _verifications(alerts)
    assert verification.severity == "info"
    results = verification.details["results"]
    assert {r["metric"] for r in results} == {"accuracy", "roc_auc", "log_loss"}
    assert {r["limit_source"] for r in results} == {"previous_version"}
    log_loss = next(r for r in results if r["metric"] == "log_loss")
    assert "maximum" in log_loss  # lower is better


def test_a_retrained_version_is_held_to_the_previous_versions_recent_performance() -> None:
    # the world changed: the old version's first window is out of any model's reach, so a
    # deployment that answers a retrain request must beat what the old one does today
    settings = {**SETTINGS, "performance": {"window": 500, "every": 100}}
    engine = Engine(MonitorConfig.from_mapping({"defaults": settings}), clock=lambda: T0 + 1e6)
    alerts, requests = run(engine, _story(v2_fits_new_world=True))
    assert requests
    (verification,) = _verifications(alerts)
    assert verification.severity == "info"
    assert verification.details["request_id"] == requests[0].request_id
    results = {r["metric"]: r for r in verification.details["results"]}
    assert {r["limit_source"] for r in results.values()} == {"previous_version_recent"}
    plan = engine._models["churn"].versions["v2"].verify
    assert plan is not None
    # v1's last window before the switch was in the changed world: far below its first
    assert plan.recent["roc_auc"] < plan.baseline["roc_auc"] - 0.1
    assert results["roc_auc"]["minimum"] == pytest.approx(plan.recent["roc_auc"] * 0.95)


def test_the_retrain_policy_never_acts_on_a_verification() -> None:
    policy = RetrainPolicy("churn", RetrainConfig(cooldown_seconds=0))
    alert = Alert(
        alert_id="a-v",
        type="performance_degradation",
        severity="critical",
        model_id="churn",
        model_version="v2",
        signal="metric:roc_auc",
        detector=VERIFICATION,
        detected_at="2026-01-01T00:00:00.000Z",
    )
    assert policy.observe(alert, Trigger(event_time=0.0, change_at=0.0)) is None
    assert policy.counters["not_a_trigger"] == 1


def _outputs(alerts: list[Alert]) -> list[bytes]:
    return [msgspec.json.encode(a) for a in alerts]


def test_same_alerts_whatever_the_batching() -> None:
    records = _story(v2_fits_new_world=True)
    results = []
    for size in (37, 500, 4000):
        alerts, requests = run(_engine(), records, size=size)
        # detector statistics in details are as of the batch end; the verification's are not
        keys = [(a.alert_id, a.severity, a.signal, a.event_time) for a in alerts]
        verified = [a.details for a in _verifications(alerts)]
        results.append((keys, verified, [msgspec.json.encode(r) for r in requests]))
    assert results[0] == results[1] == results[2]
    assert len(results[0][1]) == 1


@pytest.mark.parametrize("split", [11, 12, 13, 14])
def test_restore_in_the_middle_of_a_verification_continues_exactly(split: int) -> None:
    chunks = batches(_story(v2_fits_new_world=True), 500)
    original = _engine()
    for chunk in chunks[:split]:
        original.process(chunk)
    store = MemoryPendingStore()  # pending predictions are checkpointed beside the state
    state = store.checkpoint(original, 0)
    snapshot = msgspec.msgpack.decode(msgspec.msgpack.encode(state))
    restored = _engine()
    restored.restore_partition(0, snapshot)
    assert restored.status() == original.status()
    # 11: before v2; 12, 13: verification pending (0, 100 labels); 14: verified
    expected: list[Alert] = []
    got: list[Alert] = []
    for chunk in chunks[split:]:
        store.prefetch(original, chunk)
        store.prefetch(restored, chunk)
        expected += original.process(chunk).alerts
        got += restored.process(chunk).alerts
    assert _outputs(got) == _outputs(expected)
    assert restored.status() == original.status()
    assert restored.snapshot_partition(0) == original.snapshot_partition(0)


def test_verify_labelled_events_is_validated() -> None:
    bad = {"models": {"churn": {"retrain": {"verify_labelled_events": -1}}}}
    with pytest.raises(ConfigError, match=r"models\.churn\.retrain\.verify_labelled_events"):
        MonitorConfig.from_mapping(bad)
