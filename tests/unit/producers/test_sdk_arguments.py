"""The SDK rejects bad arguments before anything is queued, naming the argument."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from event_cases import BAD_GROUND_TRUTH, BAD_PREDICTIONS, GOOD

from producers import DeliveryError, InvalidEventError, MonitorClient
from producers.delivery import TrackedProducer
from streams.core.errors import ConfigError

# Nothing listens on port 1: a client can be built, and nothing can be delivered.
NOWHERE = "127.0.0.1:1"
#: Short delivery timeout; librdkafka's own connection-refused log lines silenced.
QUICK = {"message.timeout.ms": 200, "log_level": 0}


@pytest.fixture
def client() -> Iterator[MonitorClient]:
    client = MonitorClient(NOWHERE, config=QUICK)
    yield client
    assert client.sent == client.pending == 0  # nothing was ever queued
    client.close(timeout=0)


@pytest.mark.parametrize(("changes", "argument", "problem"), BAD_PREDICTIONS)
def test_bad_prediction_is_rejected_before_sending(
    client: MonitorClient, changes: dict[str, Any], argument: str, problem: str
) -> None:
    with pytest.raises(InvalidEventError) as caught:
        client.log_prediction(**{**GOOD, **changes})
    assert caught.value.argument == argument
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{argument}: ")


@pytest.mark.parametrize(("changes", "argument"), BAD_GROUND_TRUTH)
def test_bad_ground_truth_is_rejected_before_sending(
    client: MonitorClient, changes: dict[str, Any], argument: str
) -> None:
    arguments = {"event_id": "e1", "model_id": "churn", "label": 1, **changes}
    with pytest.raises(InvalidEventError) as caught:
        client.log_ground_truth(**arguments)
    assert caught.value.argument == argument


def test_numpy_values_are_accepted_as_plain_numbers() -> None:
    with MonitorClient(NOWHERE, config=QUICK) as client:
        event_id = client.log_prediction(
            "churn",
            {"tenure": np.int64(3), "charges": np.float32(1.5), "vip": np.bool_(True)},
            np.float64(0.25),
            event_id="fixed-id",
        )
        assert event_id == "fixed-id"
        assert client.pending == 1
        with pytest.raises(DeliveryError):
            client.flush(timeout=5)
    assert client.failed == 1


def test_generated_event_ids_are_uuid4_hex(client: MonitorClient) -> None:
    with pytest.raises(InvalidEventError):
        client.log_prediction("churn", {"x": [1]}, 0.5)
    other = MonitorClient(NOWHERE, config=QUICK)
    ids = {other.log_prediction("churn", {}, 0.5) for _ in range(3)}
    assert len(ids) == 3
    assert all(len(i) == 32 and i[12] == "4" for i in ids)
    with pytest.raises(DeliveryError, match="3 message"):
        other.close(timeout=5)


def test_a_closed_client_refuses_events() -> None:
    client = MonitorClient(NOWHERE, config=QUICK)
    client.close(timeout=0)
    with pytest.raises(RuntimeError, match="closed"):
        client.log_ground_truth("e1", "churn", 1)


def test_bad_client_settings_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    with pytest.raises(ConfigError, match="KAFKA_BOOTSTRAP_SERVERS: no Kafka broker configured"):
        MonitorClient()
    with pytest.raises(ValueError, match="predictions_topic"):
        MonitorClient(NOWHERE, predictions_topic="")
    with pytest.raises(ValueError, match="poll_every"):
        TrackedProducer(NOWHERE, poll_every=0)
