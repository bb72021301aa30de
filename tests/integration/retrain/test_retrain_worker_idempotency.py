"""The worker against the real broker and Redis: once per request, retries, final failure."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from confluent_kafka import Message
from retrain_harness import (
    Crash,
    Harness,
    ScriptedAction,
    make_harness,
    publish,
    request_bytes,
    results,
)

from producers.retrain.actions import WebhookAction
from producers.retrain.errors import ActionError
from producers.retrain.secrets import Secret
from producers.retrain.state import Status
from producers.retrain.worker import RetrainWorker
from streams.core.events import DeadLetter, decode_alert

pytestmark = pytest.mark.integration


@pytest.fixture
def harness(
    kafka_bootstrap: str,
    redis_client: Any,
    make_topics: Callable[..., dict[str, str]],
    topic_prefix: str,
) -> Harness:
    return make_harness(kafka_bootstrap, redis_client, make_topics, topic_prefix)


ReadTopic = Callable[..., list[Message]]


def test_a_redelivered_request_is_acted_on_once(harness: Harness, read_topic: ReadTopic) -> None:
    raw = request_bytes("req-1")
    publish(harness.bootstrap, harness.topics["retrain-requests"], [("churn", raw), ("churn", raw)])
    action = ScriptedAction()
    handled = harness.worker(action).run(max_messages=2, idle_timeout=20)
    assert handled == 2
    assert action.calls == [("req-1", 1)]
    state = harness.store.get("req-1")
    assert state is not None
    assert (state.status, state.attempts) == (Status.SUCCEEDED, 1)
    assert state.result["outcome"] == "declined"
    assert (harness.handled("succeeded"), harness.handled("duplicate")) == (1.0, 1.0)
    # one decision for the two deliveries
    [result] = results(read_topic, harness.topics["retrain-results"])
    assert (result.result_id, result.request_id, result.outcome) == ("o-req-1", "req-1", "declined")
    assert (result.reason, result.evaluation, result.attempts) == (
        "scripted: not better",
        {"gain": -0.1},
        1,
    )
    assert result.model_version == "v3"
    assert harness.decided("declined") == 1.0
    # Both offsets were committed: a new member of the group gets nothing to do.
    again = ScriptedAction()
    assert harness.worker(again).run(idle_timeout=3) == 0
    assert again.calls == []


class DiesBeforeCommit(RetrainWorker):
    """A worker killed after the status is durable but before the offset commit."""

    def _commit(self, message: Message) -> None:
        raise Crash


def test_restart_after_success_but_before_commit_does_not_act_again(harness: Harness) -> None:
    publish(
        harness.bootstrap, harness.topics["retrain-requests"], [("churn", request_bytes("req-2"))]
    )
    action = ScriptedAction()
    with pytest.raises(Crash):
        harness.worker(action, cls=DiesBeforeCommit).run(idle_timeout=20)
    assert action.calls == [("req-2", 1)]
    # The restarted worker gets the message again (uncommitted) and skips it.
    restarted = harness.worker(action, owner="worker-b")
    assert restarted.run(max_messages=1, idle_timeout=20) == 1
    assert action.calls == [("req-2", 1)]
    assert harness.handled("duplicate") == 1.0
    state = harness.store.get("req-2")
    assert state is not None
    assert state.status is Status.SUCCEEDED


def test_a_request_stuck_running_is_retried_once_its_lease_expires(harness: Harness) -> None:
    publish(
        harness.bootstrap, harness.topics["retrain-requests"], [("churn", request_bytes("req-3"))]
    )
    action = ScriptedAction(script=[Crash()])  # the process dies in the middle of the action
    with pytest.raises(Crash):
        harness.worker(action, lease_seconds=40.0).run(idle_timeout=20)
    state = harness.store.get("req-3")
    assert state is not None
    assert (state.status, state.attempts, state.owner) == (Status.RUNNING, 1, "worker-a")
    assert state.lease_until == harness.time.now + 40.0
    # Another worker finds it running under a live lease: it waits for the lease to expire
    # (fake time), then takes it over and runs attempt 2.
    other = harness.worker(action, owner="worker-b", lease_seconds=40.0)
    assert other.run(max_messages=1, idle_timeout=20) == 1
    assert action.calls == [("req-3", 1), ("req-3", 2)]
    assert sum(harness.time.sleeps) >= 40.0
    state = harness.store.get("req-3")
    assert state is not None
    assert (state.status, state.attempts, state.owner) == (Status.SUCCEEDED, 2, "worker-b")


def test_retries_back_off_then_succeed(harness: Harness) -> None:
    publish(
        harness.bootstrap, harness.topics["retrain-requests"], [("churn", request_bytes("req-4"))]
    )
    action = ScriptedAction(script=[ActionError("HTTP 503"), ActionError("HTTP 502")])
    assert harness.worker(action, max_attempts=5).run(max_messages=1, idle_timeout=20) == 1
    assert [attempt for _, attempt in action.calls] == [1, 2, 3]
    assert harness.time.sleeps == [0.5, 1.0]
    state = harness.store.get("req-4")
    assert state is not None
    assert (state.status, state.attempts) == (Status.SUCCEEDED, 3)
    errors = harness.registry.get_sample_value(
        "driftradar_retrain_attempts_total",
        {"model_id": "churn", "action": "scripted", "outcome": "error"},
    )
    assert errors == 2.0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_final_failure_publishes_an_alert_and_a_dead_letter(
    harness: Harness, read_topic: ReadTopic
) -> None:
    raw = request_bytes("req-5")
    publish(harness.bootstrap, harness.topics["retrain-requests"], [("churn", raw)])
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    action = WebhookAction(url=url, secret=Secret("s"), timeout=2.0)
    assert harness.worker(action, max_attempts=3).run(max_messages=1, idle_timeout=20) == 1
    assert harness.time.sleeps == [0.5, 1.0]  # two retries, exponential

    [alert_message] = read_topic(harness.topics["drift-alerts"])
    alert = decode_alert(alert_message.value() or b"")
    assert alert_message.key() == b"churn"
    assert (alert.type, alert.signal, alert.severity) == ("infrastructure", "retrain", "critical")
    assert not alert.is_model_problem  # so the retrain policy never turns it into a request
    assert alert.details["request_id"] == "req-5"
    assert alert.details["attempts"] == 3
    assert f"POST {url} failed" in alert.details["error"]

    [letter_message] = read_topic(harness.topics["dead-letter"])
    letter = msgspec.json.decode(letter_message.value() or b"", type=DeadLetter)
    assert letter.value == raw
    assert letter.key == b"churn"
    assert (letter.topic, letter.partition, letter.offset) == (
        harness.topics["retrain-requests"],
        0,
        0,
    )
    assert letter.reason.startswith("retrain request failed after 3 attempt(s) with action webhook")

    state = harness.store.get("req-5")
    assert state is not None
    assert (state.status, state.attempts) == (Status.FAILED, 3)
    assert state.result["alert_id"] == alert.alert_id
    assert harness.handled("failed") == 1.0

    # ... and the decision: failed, after 3 attempts, with the last error
    [result] = results(read_topic, harness.topics["retrain-results"])
    assert (result.result_id, result.outcome, result.attempts) == ("o-req-5", "failed", 3)
    assert result.reason.startswith(f"webhook: POST {url} failed")
    assert result.deployed_version is None
    assert harness.decided("failed") == 1.0

    # Redelivered: skipped, no second alert, no second result.
    publish(harness.bootstrap, harness.topics["retrain-requests"], [("churn", raw)])
    assert harness.worker(action).run(max_messages=1, idle_timeout=20) == 1
    assert harness.handled("duplicate") == 1.0
    assert len(read_topic(harness.topics["drift-alerts"])) == 1
    assert len(read_topic(harness.topics["retrain-results"])) == 1


def test_a_permanent_error_fails_at_once(harness: Harness, read_topic: ReadTopic) -> None:
    publish(
        harness.bootstrap, harness.topics["retrain-requests"], [("churn", request_bytes("req-6"))]
    )
    action = ScriptedAction(script=[ActionError("HTTP 401", retryable=False)])
    assert harness.worker(action, max_attempts=5).run(max_messages=1, idle_timeout=20) == 1
    assert action.calls == [("req-6", 1)]
    assert harness.time.sleeps == []
    state = harness.store.get("req-6")
    assert state is not None
    assert (state.status, state.error) == (Status.FAILED, "scripted: HTTP 401")
    assert len(read_topic(harness.topics["drift-alerts"])) == 1
    [result] = results(read_topic, harness.topics["retrain-results"])
    assert (result.outcome, result.attempts, result.reason) == ("failed", 1, "scripted: HTTP 401")


def test_an_invalid_message_is_dead_lettered(harness: Harness, read_topic: ReadTopic) -> None:
    publish(
        harness.bootstrap,
        harness.topics["retrain-requests"],
        [("churn", b'{"request_id": "x"}'), ("churn", request_bytes("req-7"))],
    )
    action = ScriptedAction()
    assert harness.worker(action).run(max_messages=2, idle_timeout=20) == 2
    assert action.calls == [("req-7", 1)]
    [letter_message] = read_topic(harness.topics["dead-letter"])
    letter = msgspec.json.decode(letter_message.value() or b"", type=DeadLetter)
    assert letter.value == b'{"request_id": "x"}'
    assert letter.reason.startswith("not a retrain request: $.model_id")
    assert harness.handled("invalid") == 1.0


def test_restart_with_the_attempt_budget_spent_goes_straight_to_failure(
    harness: Harness, read_topic: ReadTopic
) -> None:
    publish(
        harness.bootstrap, harness.topics["retrain-requests"], [("churn", request_bytes("req-8"))]
    )
    # Dies during its last allowed attempt: the budget (2) is spent before any failure is
    # published. The restart must not run a third attempt, but must alert.
    action = ScriptedAction(script=[ActionError("HTTP 503"), Crash()])
    with pytest.raises(Crash):
        harness.worker(action, max_attempts=2).run(idle_timeout=20)
    harness.time.now += 120  # the lease (60 s) expires
    restarted = harness.worker(action, owner="worker-b", max_attempts=2)
    assert restarted.run(max_messages=1, idle_timeout=20) == 1
    assert [attempt for _, attempt in action.calls] == [1, 2]
    state = harness.store.get("req-8")
    assert state is not None
    assert state.status is Status.FAILED
    assert "attempt budget (2) used up" in state.error
    assert len(read_topic(harness.topics["dead-letter"])) == 1
    [result] = results(read_topic, harness.topics["retrain-results"])
    assert (result.outcome, result.attempts) == ("failed", 2)
