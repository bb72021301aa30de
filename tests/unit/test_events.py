"""The event contract: every kind of event round-trips; every kind of bad event names its field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from streams.core.events import (
    MAX_ID_LENGTH,
    Alert,
    AlertReason,
    DeadLetter,
    EventDecodeError,
    GroundTruth,
    Prediction,
    RetrainRequest,
    TimeWindow,
    decode_alert,
    decode_ground_truth,
    decode_prediction,
    decode_retrain_request,
    encode,
    epoch_seconds,
    rfc3339,
)

PREDICTION = Prediction(
    event_id="3f2b9c1e",
    model_id="churn",
    model_version="v3",
    timestamp=datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
    features={
        "tenure_months": 14.0,
        "plan": "premium",
        "monthly_charges": 70.5,
        "autopay": True,
        "age": None,
    },
    prediction=0.72,
)
GROUND_TRUTH = GroundTruth(event_id="3f2b9c1e", model_id="churn", label=1.0, timestamp=1795773600.5)
ALERT = Alert(
    alert_id="a1",
    type="data_drift",
    severity="warning",
    model_id="churn",
    model_version="v3",
    signal="feature:monthly_charges",
    detector="adwin",
    detected_at="2026-11-27T10:05:00Z",
    event_time="2026-11-27T10:04:59Z",
    details={"mean_before": 64.1, "mean_after": 81.7},
)
RETRAIN = RetrainRequest(
    request_id="r1",
    model_id="churn",
    model_version="v3",
    requested_at="2026-11-27T10:06:00Z",
    reasons=[AlertReason(alert_id="a1", type="concept_drift", signal="error")],
    window=TimeWindow(start="2026-11-27T09:00:00Z", end="2026-11-27T10:00:00Z"),
)
DEAD_LETTER = DeadLetter(
    topic="predictions",
    partition=2,
    offset=41,
    reason="$.features: expected `object`, got `array`",
    value=b'{"features": [1]}\xff',
    key=b"churn",
    failed_at="2026-11-27T10:00:01Z",
)


def _decode_dead_letter(data: bytes) -> DeadLetter:
    return msgspec.json.decode(data, type=DeadLetter)


@pytest.mark.parametrize(
    ("event", "decode"),
    [
        (PREDICTION, decode_prediction),
        (msgspec.structs.replace(PREDICTION, prediction="churner"), decode_prediction),
        (Prediction(event_id="e", model_id="m", features={}, prediction=3.0), decode_prediction),
        (GROUND_TRUTH, decode_ground_truth),
        (msgspec.structs.replace(GROUND_TRUTH, label="yes", timestamp=None), decode_ground_truth),
        (msgspec.structs.replace(GROUND_TRUTH, label=True), decode_ground_truth),
        (ALERT, decode_alert),
        (RETRAIN, decode_retrain_request),
        (DEAD_LETTER, _decode_dead_letter),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, msgspec.Struct) else "",
)
def test_valid_events_round_trip(event: msgspec.Struct, decode: Callable[[bytes], Any]) -> None:
    data = encode(event)
    assert decode(data) == event
    assert encode(decode(data)) == data


def test_contract_example_decodes_with_defaults() -> None:
    event = decode_prediction(
        b'{"event_id": "c0a8", "model_id": "churn", "timestamp": "2026-11-27T10:00:00Z",'
        b' "features": {"tenure_months": 14, "plan": "premium"}, "prediction": 0.72}'
    )
    assert event.model_version == "unknown"
    assert event.features == {"tenure_months": 14.0, "plan": "premium"}
    assert event.event_time() == datetime(2026, 11, 27, 10, tzinfo=UTC).timestamp()


def test_timestamps_accept_offsets_and_epoch_seconds() -> None:
    base = b'{"event_id": "e", "model_id": "m", "label": 0, "timestamp": %s}'
    with_offset = decode_ground_truth(base % b'"2026-11-27T11:00:00+01:00"')
    epoch = decode_ground_truth(base % b"1795773600")
    assert with_offset.timestamp == datetime(2026, 11, 27, 11, tzinfo=timezone(timedelta(hours=1)))
    assert with_offset.event_time() == epoch.event_time() == 1795773600.0
    assert decode_ground_truth(base % b"null").event_time(fallback=12.5) == 12.5


def test_time_helpers() -> None:
    assert rfc3339(1795773600.25) == "2026-11-27T10:00:00.250Z"
    assert epoch_seconds(datetime(2026, 11, 27, 10, tzinfo=UTC)) == 1795773600.0
    assert epoch_seconds(3) == 3.0


_VALID = {"event_id": "e1", "model_id": "churn", "features": {"x": 1.5}, "prediction": 0.5}


def _prediction_with(**changes: Any) -> bytes:
    body = {**_VALID, **changes}
    return msgspec.json.encode({k: v for k, v in body.items() if v is not _MISSING})


_MISSING: Any = object()


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        (_prediction_with(event_id=_MISSING), "$.event_id", "required field is missing"),
        (_prediction_with(features=_MISSING), "$.features", "required field is missing"),
        (_prediction_with(prediction=_MISSING), "$.prediction", "required field is missing"),
        (_prediction_with(event_id=7), "$.event_id", "expected `str`, got `int`"),
        (_prediction_with(model_id=None), "$.model_id", "expected `str`, got `null`"),
        (_prediction_with(prediction=True), "$.prediction", "got `bool`"),
        (_prediction_with(prediction=[0.5]), "$.prediction", "got `array`"),
        (_prediction_with(timestamp="yesterday"), "$.timestamp", "invalid RFC3339"),
        (_prediction_with(timestamp="2026-13-01T00:00:00Z"), "$.timestamp", "invalid RFC3339"),
        (_prediction_with(timestamp="2026-11-27T10:00:00"), "$.timestamp", "timezone"),
        (_prediction_with(timestamp=True), "$.timestamp", "got `bool`"),
        (_prediction_with(features=[1, 2]), "$.features", "expected `object`, got `array`"),
        (_prediction_with(features="x=1"), "$.features", "expected `object`, got `str`"),
        (_prediction_with(features={"x": 1, "plan": ["a"]}), "$.features.plan", "got `array`"),
        (_prediction_with(features={"geo": {"lat": 1}}), "$.features.geo", "got `object`"),
        (_prediction_with(features={"a b": [1]}), '$.features["a b"]', "got `array`"),
        (
            _prediction_with(event_id="x" * (MAX_ID_LENGTH + 1)),
            "$.event_id",
            f"length <= {MAX_ID_LENGTH}",
        ),
        (_prediction_with(model_version="v" * 300), "$.model_version", "length <= 256"),
        (_prediction_with(event_id=""), "$.event_id", "length >= 1"),
        (_prediction_with(model_id=""), "$.model_id", "length >= 1"),
        (b'{"event_id": "e1", "model_id": ', "$", "invalid JSON"),
        (b'{"event_id": "e1", "prediction": NaN}', "$", "invalid JSON"),
        (b"\xff\xfe{}", "$", "invalid JSON"),
        (b"", "$", "invalid JSON (Input data was truncated)"),
        (b"[1, 2]", "$", "expected `object`, got `array`"),
        (b'"churn"', "$", "expected `object`, got `str`"),
        (b"42", "$", "expected `object`, got `int`"),
        (b"null", "$", "expected `object`, got `null`"),
    ],
)
def test_invalid_prediction_names_the_field(data: bytes, field: str, problem: str) -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode_prediction(data)
    assert caught.value.field == field
    assert problem in caught.value.problem
    assert str(caught.value) == f"{field}: {caught.value.problem}"
    assert caught.value.reason == str(caught.value)


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        (b'{"event_id": "e", "model_id": "m"}', "$.label", "required field is missing"),
        (b'{"event_id": "e", "model_id": "m", "label": null}', "$.label", "got `null`"),
        (b'{"event_id": "e", "model_id": "m", "label": [1]}', "$.label", "got `array`"),
        (b'{"event_id": "", "model_id": "m", "label": 1}', "$.event_id", "length >= 1"),
        (
            b'{"event_id": "e", "model_id": "m", "label": 1, "timestamp": "2026-11-27T10:00:00.5"}',
            "$.timestamp",
            "timezone",
        ),
        (b'{"event_id": "e", "model_id": "m", "label": 1', "$", "invalid JSON"),
    ],
)
def test_invalid_ground_truth_names_the_field(data: bytes, field: str, problem: str) -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode_ground_truth(data)
    assert (caught.value.field, problem in caught.value.problem) == (field, True)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "cpu_drift"}, "$.type"),
        ({"severity": "fatal"}, "$.severity"),
        ({"alert_id": ""}, "$.alert_id"),
        ({"details": [1]}, "$.details"),
    ],
)
def test_invalid_alert_names_the_field(change: dict[str, Any], field: str) -> None:
    body = {**msgspec.to_builtins(ALERT), **change}
    with pytest.raises(EventDecodeError) as caught:
        decode_alert(msgspec.json.encode(body))
    assert caught.value.field == field


def test_invalid_retrain_request_names_the_nested_field() -> None:
    body = msgspec.to_builtins(RETRAIN)
    body["reasons"][0]["type"] = "weather"
    with pytest.raises(EventDecodeError) as caught:
        decode_retrain_request(msgspec.json.encode(body))
    assert caught.value.field == "$.reasons[0].type"
    body["reasons"][0]["type"] = "concept_drift"
    del body["window"]
    with pytest.raises(EventDecodeError, match=r"^\$\.window: required field is missing$"):
        decode_retrain_request(msgspec.json.encode(body))


def test_only_model_problems_may_request_retraining() -> None:
    assert ALERT.is_model_problem
    assert not msgspec.structs.replace(ALERT, type="infrastructure").is_model_problem
