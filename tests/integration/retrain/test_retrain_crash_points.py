"""A worker that dies at each step between acting and committing: after a restart there is
one decision on ``retrain-results`` (the same one) and at most one deployment."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

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
from test_retrain_local_trainer import DRIFTED_WORLD, START, churn_events

from producers.retrain.decision import Decision
from producers.retrain.local import LocalTrainerAction
from producers.retrain.state import RequestStore, Status
from producers.retrain.worker import RetrainWorker
from streams.core.events import RetrainRequest, RetrainResult, decode_deployment

pytestmark = pytest.mark.integration

ReadTopic = Callable[..., list[Message]]


@pytest.fixture
def harness(
    kafka_bootstrap: str,
    redis_client: Any,
    make_topics: Callable[..., dict[str, str]],
    topic_prefix: str,
) -> Harness:
    return make_harness(kafka_bootstrap, redis_client, make_topics, topic_prefix)


class DiesBeforeReporting(RetrainWorker):
    """Killed after its decision is stored in Redis, before anything is published."""

    def _report(
        self,
        result: RetrainResult,
        request: RetrainRequest,
        raw: bytes,
        message: Message,
        details: Mapping[str, Any] | None = None,
    ) -> str:
        raise Crash


class DiesBeforeFinishing(RequestStore):
    """Killed after the result is published, before the status is final."""

    def finish(self, *args: Any, **kwargs: Any) -> None:
        raise Crash


def test_a_decision_stored_before_a_crash_is_the_one_published(
    harness: Harness, read_topic: ReadTopic
) -> None:
    publish(
        harness.bootstrap, harness.topics["retrain-requests"], [("churn", request_bytes("r-1"))]
    )
    first = ScriptedAction(decision=Decision.declined("first look: not better"))
    with pytest.raises(Crash):
        harness.worker(first, cls=DiesBeforeReporting).run(idle_timeout=20)
    assert read_topic(harness.topics["retrain-results"]) == []
    harness.time.now += 120  # the lease (60 s) expires
    # The restarted worker would now decide otherwise (more labels arrived, say): it must
    # not ask again, but publish what was decided.
    second = ScriptedAction(decision=Decision.deployed("v9", "second look"))
    assert harness.worker(second, owner="worker-b").run(max_messages=1, idle_timeout=20) == 1
    assert second.calls == []
    [result] = results(read_topic, harness.topics["retrain-results"])
    assert (result.outcome, result.reason) == ("declined", "first look: not better")
    state = harness.store.get("r-1")
    assert state is not None
    assert (state.status, state.attempts) == (Status.SUCCEEDED, 1)


def test_a_crash_after_publishing_repeats_the_same_result_bytes(
    harness: Harness, read_topic: ReadTopic, redis_client: Any, topic_prefix: str
) -> None:
    publish(
        harness.bootstrap, harness.topics["retrain-requests"], [("churn", request_bytes("r-2"))]
    )
    action = ScriptedAction()
    dying = harness.worker(action)
    dying.store = DiesBeforeFinishing(redis_client, prefix=f"{topic_prefix}retrain")
    with pytest.raises(Crash):
        dying.run(idle_timeout=20)
    harness.time.now += 120
    assert harness.worker(action, owner="worker-b").run(max_messages=1, idle_timeout=20) == 1
    assert action.calls == [("r-2", 1)]
    messages = read_topic(harness.topics["retrain-results"])
    # at-least-once at the very end: the copy has the same id and the same bytes
    assert len(messages) == 2
    assert messages[0].value() == messages[1].value()
    assert {r.result_id for r in results(read_topic, harness.topics["retrain-results"])} == {
        "o-r-2"
    }
    # and after the final status, a redelivery publishes nothing more
    publish(
        harness.bootstrap, harness.topics["retrain-requests"], [("churn", request_bytes("r-2"))]
    )
    assert harness.worker(action, owner="worker-c").run(max_messages=1, idle_timeout=20) == 1
    assert len(read_topic(harness.topics["retrain-results"])) == 2


class DiesAfterDeploying:
    """The local trainer deploys, then the process dies before the worker decides."""

    def __init__(self, inner: LocalTrainerAction) -> None:
        self.inner = inner
        self.name = inner.name

    def run(self, request: RetrainRequest, raw: bytes, attempt: int) -> Decision:
        self.inner.run(request, raw, attempt)
        raise Crash


def test_a_deployment_published_before_a_crash_is_reported_once_and_not_repeated(
    harness: Harness,
    make_topics: Callable[..., dict[str, str]],
    read_topic: ReadTopic,
    redis_client: Any,
    topic_prefix: str,
) -> None:
    inputs = make_topics("predictions", "ground-truth", "model-deployments", partitions=1)
    predictions, labels = churn_events(1200, seed=11, start=START, label_rule=DRIFTED_WORLD)
    publish(harness.bootstrap, inputs["predictions"], predictions)
    publish(harness.bootstrap, inputs["ground-truth"], labels)
    raw = (
        b'{"request_id": "r-3", "model_id": "churn", "model_version": "v3",'
        b' "requested_at": "2026-11-27T09:25:00Z", "reasons": [],'
        b' "window": {"start": "2026-11-27T09:00:00Z", "end": "2026-11-27T09:19:59Z"}}'
    )
    publish(harness.bootstrap, harness.topics["retrain-requests"], [("churn", raw)])
    action = LocalTrainerAction(
        bootstrap=harness.bootstrap,
        redis_client=redis_client,
        predictions_topic=inputs["predictions"],
        ground_truth_topic=inputs["ground-truth"],
        deployments_topic=inputs["model-deployments"],
        prefix=f"{topic_prefix}retrain",
        clock=harness.time.clock,
    )
    with pytest.raises(Crash):
        harness.worker(DiesAfterDeploying(action)).run(idle_timeout=30)
    [deployed] = read_topic(inputs["model-deployments"])
    assert read_topic(harness.topics["retrain-results"]) == []
    harness.time.now += 120
    assert harness.worker(action, owner="worker-b").run(max_messages=1, idle_timeout=30) == 1
    # the same version is reported, and not published a second time
    assert len(read_topic(inputs["model-deployments"])) == 1
    version = decode_deployment(deployed.value() or b"").model_version
    [result] = results(read_topic, harness.topics["retrain-results"])
    assert (result.outcome, result.deployed_version, result.attempts) == ("deployed", version, 2)
    action.close()
