"""Junk cannot grow the engine: dead letters of unknown keys create no model, and the number
of models per partition is capped (``max_models``) with one alert when the cap is hit."""

from __future__ import annotations

from engine_streams import churn_stream

from streams.engine import MonitorConfig
from streams.engine.engine import MONITOR_MODEL_ID, Engine


def _engine(max_models: int = 1000) -> Engine:
    return Engine(MonitorConfig.from_mapping({"max_models": max_models}), clock=lambda: 1e9)


def test_dead_letters_of_unknown_keys_create_no_model_and_are_counted_by_kind() -> None:
    engine = _engine()
    for i in range(5000):
        engine.record_dead_letter(f"junk-{i}", 0, "$: invalid JSON (JSON is malformed)")
    engine.record_dead_letter(None, 0, "$.features: required field is missing")
    status = engine.status()
    assert status["models"] == {}
    assert status["partitions"][0]["dead_letters"] == {"invalid_json": 5000, "schema": 1}


def test_dead_letters_of_a_known_model_count_on_the_model() -> None:
    engine = _engine()
    engine.process(churn_stream(10, seed=1))
    engine.record_dead_letter("churn", 0, "$: invalid JSON")
    assert engine.status()["models"]["churn"]["dead_letters"] == 1
    assert engine.status()["partitions"][0]["dead_letters"] == {}


def test_models_beyond_the_cap_are_refused_with_one_alert_per_partition() -> None:
    engine = _engine(max_models=3)
    assert [engine.admit(f"m{i}", 0) for i in range(3)] == [None, None, None]
    refused = [engine.admit(f"m{i}", 0) for i in range(3, 10)]
    assert all(r is not None and "max_models=3" in r for r in refused)
    assert engine.admit("m1", 0) is None  # a known model always gets in
    assert engine.admit("other-partition", 1) is None  # the cap is per partition
    (alert,) = engine.tick(2e9).alerts
    assert (alert.type, alert.model_id, alert.detector) == (
        "data_quality",
        MONITOR_MODEL_ID,
        "max_models",
    )
    assert alert.details["first_refused"] == "m3"
    assert engine.status()["partitions"][0]["refused_events"] == 7
    engine.admit("m11", 0)
    assert not engine.tick(2e9).alerts  # once


def test_the_cap_and_the_counts_survive_a_restore() -> None:
    engine = _engine(max_models=2)
    engine.admit("a", 0)
    engine.admit("b", 0)
    engine.admit("c", 0)
    engine.record_dead_letter("zzz", 0, "$: invalid JSON")
    engine.tick(1.0)
    snapshot = engine.snapshot_partition(0)
    revived = _engine(max_models=2)
    revived.restore_partition(0, snapshot)
    assert revived.status()["partitions"][0] == engine.status()["partitions"][0]
    assert revived.admit("d", 0) is not None
    assert not revived.tick(1.0).alerts  # already alerted before the restart
