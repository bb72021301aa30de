"""The Faust client refuses bad arguments exactly like the sync SDK, before anything is sent.

No broker: the app points at a closed port and the checks run before the app's producer is
touched (``sent`` stays 0). Delivery itself is tested against the real broker in
tests/integration/producers/test_faust_client_broker.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import faust
import pytest
from event_cases import BAD_GROUND_TRUTH, BAD_PREDICTIONS, GOOD

from producers import InvalidEventError
from producers.faust_client import FaustMonitorClient


@pytest.fixture
def client() -> Iterator[FaustMonitorClient]:
    app = faust.App(f"test-args-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1")
    client = FaustMonitorClient(app)
    yield client
    assert client.sent == client.pending == 0  # nothing was ever queued


@pytest.mark.parametrize(("changes", "argument", "problem"), BAD_PREDICTIONS)
def test_bad_prediction_is_rejected_before_sending(
    client: FaustMonitorClient, changes: dict[str, Any], argument: str, problem: str
) -> None:
    with pytest.raises(InvalidEventError) as caught:
        asyncio.run(client.log_prediction(**{**GOOD, **changes}))
    assert caught.value.argument == argument
    assert problem in caught.value.problem


@pytest.mark.parametrize(("changes", "argument"), BAD_GROUND_TRUTH)
def test_bad_ground_truth_is_rejected_before_sending(
    client: FaustMonitorClient, changes: dict[str, Any], argument: str
) -> None:
    arguments = {"event_id": "e1", "model_id": "churn", "label": 1, **changes}
    with pytest.raises(InvalidEventError) as caught:
        asyncio.run(client.log_ground_truth(**arguments))
    assert caught.value.argument == argument


def test_bad_client_settings_are_rejected() -> None:
    app = faust.App("test-args-topics", broker="kafka://127.0.0.1:1")
    with pytest.raises(ValueError, match="ground_truth_topic"):
        FaustMonitorClient(app, ground_truth_topic="")
    with pytest.raises(ValueError, match="send_timeout must be a positive number"):
        FaustMonitorClient(app, send_timeout=0)


def test_a_closed_client_refuses_events(client: FaustMonitorClient) -> None:
    async def scenario() -> None:
        await client.close()
        await client.log_ground_truth("e1", "churn", 1)

    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(scenario())


def test_the_reporting_clients_import_neither_the_engine_nor_the_runner() -> None:
    """A model server pulls in the contract and the Kafka settings, not the monitor."""
    probe = (
        "import sys, producers.faust_client, producers.sdk; "
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
        "(['streams', 'engine'], ['streams', 'runner'])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
