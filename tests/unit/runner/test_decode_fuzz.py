"""No message can stop the monitor: arbitrary bytes, arbitrary JSON and mutated valid events
go through the runner's own steps — decode, the event-time alignment of the two topics, the
engine's admission, the engine and the dead-letter record — and every one is either processed
or dead-lettered with a reason: nothing escapes, counts add up.
"""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import pytest
from confluent_kafka import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.dead_letter import MAX_VALUE_BYTES, dead_letter, model_hint, reason_kind
from streams.core.events import encode
from streams.engine.config import MonitorConfig
from streams.engine.engine import Engine
from streams.engine.records import InputRecord
from streams.runner.align import Aligner
from streams.runner.decode import Rejected, decode_batch
from streams.runner.offsets import OffsetBook

TOPICS = ("predictions", "ground-truth")
#: librdkafka's default message.max.bytes: a dead letter must always fit.
PRODUCER_LIMIT = 1_000_000

VALID_PREDICTION: dict[str, Any] = {
    "event_id": "e1",
    "model_id": "churn",
    "model_version": "v1",
    "timestamp": 1_790_000_000.0,
    "features": {"tenure": 12, "plan": "basic", "active": True, "missing": None},
    "prediction": 0.7,
}
VALID_LABEL: dict[str, Any] = {
    "event_id": "e1",
    "model_id": "churn",
    "timestamp": 1_790_000_100.0,
    "label": 1,
}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
#: Values that have broken decoders before: overflow, depth, odd numbers and strings.
nasty_values = st.sampled_from(
    [
        "1e999",
        "-1e999",
        "1e-999",
        "123456789012345678901234567890",
        "[" * 10_000 + "]" * 10_000,
        "{" + '"a":{' * 5_000 + "}" * 5_001,
        '"\\ud800"',
        '"\\u0000"',
        "NaN",
        "Infinity",
        "1e308",
        "-0.0",
        '"' + "x" * 300 + '"',
        '"2026-13-45T99:99:99Z"',
        "1e300",
        "-1e300",
        "[]",
        "{}",
    ]
)


class Fixture:
    """The runner's steps with a fresh engine, aligner and offset books per example."""

    def __init__(self) -> None:
        self.engine = Engine(MonitorConfig.from_mapping({"max_models": 3}), clock=lambda: 1e9)
        self.applied = OffsetBook(TOPICS)
        self.aligner = Aligner(
            TOPICS, max_lead=1e9, max_idle=0.0, max_buffered=10**6, applied=self.applied
        )
        self.aligner.own(0, {})
        self.book = self.aligner.fetched
        self.offset = 0

    def message(self, topic: str, value: bytes | None, key: bytes | None) -> Message:
        self.offset += 1
        return Message(
            topic=topic,
            partition=0,
            offset=self.offset,
            key=key,
            value=value,
            timestamp=(1, 1_790_000_000_000),
        )

    def release(self, messages: list[Message]) -> tuple[list[InputRecord], list[Rejected]]:
        """Decode and align as the runner does (the quiet side is caught up: all goes)."""
        batch = decode_batch(messages, TOPICS[0], self.book)
        assert not batch.errors
        self.aligner.add(batch.lanes)
        records: list[InputRecord] = []
        rejected: list[Rejected] = []
        for item in self.aligner.take(lambda topic, partition: True):
            if isinstance(item, Rejected):
                rejected.append(item)
                continue
            refused = self.engine.admit(item.event.model_id, item.partition)
            if refused is None:
                records.append(item)
            else:
                rejected.append(Rejected(Message(value=encode(item.event)), refused))
        assert len(records) + len(rejected) + batch.skipped == len(messages)
        return records, rejected

    def run(self, messages: list[Message]) -> None:
        """Decode, align, process, dead-letter, as the runner does; check the accounting."""
        records, rejected = self.release(messages)
        self.engine.process(records)
        for message, reason in rejected:
            assert reason, "every dead letter says why"
            assert reason_kind(reason) in {
                "invalid_json",
                "schema",
                "too_large",
                "unknown_model",
                "other",
            }
            letter = dead_letter(
                message.topic() or "",
                0,
                message.offset() or 0,
                message.key(),
                message.value(),
                reason,
                failed_at=1_790_000_000.0,
            )
            assert len(encode(letter)) < PRODUCER_LIMIT
            self.engine.record_dead_letter(model_hint(message.key()), 0, reason)
        self.engine.tick(2e9)
        status = self.engine.status()
        assert len(status["models"]) <= 3  # max_models holds whatever the keys


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512), st.sampled_from(TOPICS), st.binary(max_size=16) | st.none())
def test_arbitrary_bytes_never_escape(value: bytes, topic: str, key: bytes | None) -> None:
    fixture = Fixture()
    fixture.run([fixture.message(topic, value, key)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, st.sampled_from(TOPICS))
def test_arbitrary_json_never_escapes(document: Any, topic: str) -> None:
    fixture = Fixture()
    fixture.run([fixture.message(topic, json.dumps(document).encode(), b"churn")])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(TOPICS),
    st.sampled_from(
        ["event_id", "model_id", "model_version", "timestamp", "prediction", "label", "features"]
    ),
    nasty_values | json_values.map(json.dumps),
    st.booleans(),
)
def test_mutated_valid_events_are_processed_or_dead_lettered(
    topic: str, field: str, raw_value: str, inside_features: bool
) -> None:
    """One field of a valid event replaced by something nasty (raw JSON text, so that
    overflowing numbers and deep nesting reach the decoder as bytes)."""
    base = dict(VALID_PREDICTION if topic == "predictions" else VALID_LABEL)
    placeholder = "__FUZZ__"
    if inside_features and topic == "predictions":
        base["features"] = {**base["features"], "fuzzed": placeholder}
    else:
        base[field] = placeholder
    text = json.dumps(base).replace(json.dumps(placeholder), raw_value)
    fixture = Fixture()
    valid = fixture.message(topic, json.dumps(VALID_PREDICTION).encode(), b"churn")
    fixture.run([valid, fixture.message(topic, text.encode(), b"churn"), valid])


def test_the_three_messages_that_crashed_the_monitor_are_dead_lettered() -> None:
    fixture = Fixture()
    overflow = json.dumps(VALID_PREDICTION).replace("12", "1e999").encode()
    deep = json.dumps({**VALID_PREDICTION, "extra": "X"}).replace(
        '"X"', "[" * 10_000 + "]" * 10_000
    )
    huge = b"{" + b"x" * 900_000
    messages = [
        fixture.message("predictions", overflow, b"churn"),
        fixture.message("predictions", deep.encode(), b"churn"),
        fixture.message("predictions", huge, b"churn"),
    ]
    _, rejected = fixture.release(messages)
    reasons = [reason for _, reason in rejected]
    assert reasons[0] == "$.features.tenure: number out of range"
    assert reasons[1] == "$: JSON nested too deeply"
    assert reasons[2].startswith("$: invalid JSON")
    letter = dead_letter("predictions", 0, 3, b"churn", huge, reasons[2])
    assert letter.truncated
    assert letter.size == len(huge)
    assert len(letter.value or b"") == MAX_VALUE_BYTES
    assert len(encode(letter)) < PRODUCER_LIMIT
    decoded = msgspec.json.decode(encode(letter))
    assert decoded["sha256"]
    assert decoded["offset"] == 3


@pytest.mark.parametrize(
    ("timestamp", "accepted"),
    [(1e300, False), (-1e300, False), (253_402_300_799.0, True), (0.0, True), (math.pi, True)],
)
def test_timestamps_beyond_what_an_alert_can_print_are_refused(
    timestamp: float, accepted: bool
) -> None:
    fixture = Fixture()
    value = json.dumps({**VALID_PREDICTION, "timestamp": timestamp}).encode()
    records, _ = fixture.release([fixture.message("predictions", value, b"churn")])
    assert bool(records) is accepted
    fixture.engine.process(records)


feature_values = st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=6)
events = st.fixed_dictionaries(
    {
        "event_id": st.sampled_from(["a", "b", "c", "d"]),
        "model_id": st.sampled_from(["churn", "fraud"]),
        "model_version": st.sampled_from(["v1", "v2"]),
        "timestamp": st.floats(min_value=0, max_value=2e9) | st.none(),
        "features": st.dictionaries(st.sampled_from(["x", "y", "plan"]), feature_values),
        "prediction": st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=3),
        "label": st.floats(allow_nan=False, allow_infinity=False)
        | st.booleans()
        | st.text(max_size=3),
    }
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(TOPICS), events), min_size=1, max_size=40))
def test_streams_of_odd_but_valid_events_never_escape(
    stream: list[tuple[str, dict[str, Any]]],
) -> None:
    """Types that change from one event to the next (a feature numeric then text, a
    prediction a number then a class), duplicates, labels before predictions, any order."""
    fixture = Fixture()
    messages = []
    for topic, event in stream:
        event = dict(event)
        if topic == "predictions":
            event.pop("label")
        else:
            for name in ("model_version", "features", "prediction"):
                event.pop(name)
        if event["timestamp"] is None:
            event.pop("timestamp")
        messages.append(
            fixture.message(topic, json.dumps(event).encode(), event["model_id"].encode())
        )
    fixture.run(messages)
