"""The built-in trainer end to end: events on the input topics in, a deployment out."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from confluent_kafka import Message
from retrain_harness import Harness, make_harness, publish, results

from producers.churn import (
    CONTRACTS,
    MODEL_COEFFICIENTS,
    PAYMENT_METHODS,
    REFERENCE_POPULATION,
    Coefficients,
    churn_probability,
    sample_customers,
)
from producers.retrain.local import LocalTrainerAction
from producers.retrain.state import Status
from producers.retrain.trainer import predict_proba
from streams.core.events import decode_deployment, decode_retrain_request, rfc3339

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def harness(
    kafka_bootstrap: str,
    redis_client: Any,
    make_topics: Callable[..., dict[str, str]],
    topic_prefix: str,
) -> Harness:
    return make_harness(kafka_bootstrap, redis_client, make_topics, topic_prefix)


ReadTopic = Callable[..., list[Message]]
START = 1_795_770_000.0  # 2026-11-27T09:00:00Z
#: The world changed: long contracts no longer protect as much, support calls hurt more.
DRIFTED_WORLD = Coefficients(support_calls=0.9, contract=(0.0, -0.3, -0.6))


def churn_events(
    count: int, *, seed: int, start: float, model_id: str = "churn", label_rule: Coefficients
) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    """Prediction and ground-truth messages: the model serves MODEL_COEFFICIENTS, the labels
    follow ``label_rule``; one event per second from ``start``."""
    rng = np.random.default_rng(seed)
    customers = sample_customers(rng, count, REFERENCE_POPULATION)
    served = churn_probability(MODEL_COEFFICIENTS, customers)
    truth = rng.random(count) < churn_probability(label_rule, customers)
    predictions, labels = [], []
    for i in range(count):
        event_id = f"{model_id}-{seed}-{i}"
        stamp = rfc3339(start + i)
        features = {
            "tenure_months": float(customers.tenure_months[i]),
            "monthly_charges": float(customers.monthly_charges[i]),
            "total_charges": float(customers.total_charges[i]),
            "support_calls": float(customers.support_calls[i]),
            "age": float(customers.age[i]),
            "contract": CONTRACTS[int(customers.contract[i])],
            "payment_method": PAYMENT_METHODS[int(customers.payment_method[i])],
        }
        prediction = {
            "event_id": event_id,
            "model_id": model_id,
            "model_version": "v3",
            "timestamp": stamp,
            "features": features,
            "prediction": float(served[i]),
        }
        label = {
            "event_id": event_id,
            "model_id": model_id,
            "timestamp": stamp,
            "label": int(truth[i]),
        }
        predictions.append((model_id, json.dumps(prediction).encode()))
        labels.append((model_id, json.dumps(label).encode()))
    return predictions, labels


def test_local_trainer_deploys_a_better_model_once(
    harness: Harness,
    make_topics: Callable[..., dict[str, str]],
    read_topic: ReadTopic,
    redis_client: Any,
    topic_prefix: str,
) -> None:
    inputs = make_topics("predictions", "ground-truth", "model-deployments", partitions=2)
    in_window = churn_events(1200, seed=1, start=START, label_rule=DRIFTED_WORLD)
    # Noise the trainer must ignore: before the window (labels all wrong) and another model.
    before = churn_events(300, seed=2, start=START - 4000, label_rule=DRIFTED_WORLD)
    other = churn_events(300, seed=3, start=START, model_id="upsell", label_rule=DRIFTED_WORLD)
    before_labels = [(k, v.replace(b'"label": 0', b'"label": 1')) for k, v in before[1]]
    publish(harness.bootstrap, inputs["predictions"], before[0] + in_window[0] + other[0])
    # Ground truth arrives in another order than the predictions.
    publish(
        harness.bootstrap, inputs["ground-truth"], in_window[1][::-1] + before_labels + other[1]
    )

    raw = (
        b'{"request_id": "req-local", "model_id": "churn", "model_version": "v3",'
        b' "requested_at": "2026-11-27T09:25:00Z",'
        b' "reasons": [{"alert_id": "a1", "type": "concept_drift", "signal": "error"}],'
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
        min_rows=200,
        clock=harness.time.clock,
    )
    assert harness.worker(action).run(max_messages=1, idle_timeout=30) == 1

    [message] = read_topic(inputs["model-deployments"])
    assert message.key() == b"churn"
    deployment = decode_deployment(message.value() or b"")
    assert (deployment.model_id, deployment.model_version) == ("churn", "v4")
    assert (deployment.previous_version, deployment.request_id) == ("v3", "req-local")
    evaluation = deployment.evaluation
    assert evaluation["train_rows"] + evaluation["holdout_rows"] == 1200  # window only
    assert evaluation["holdout_rows"] == 300
    assert evaluation["candidate"]["log_loss"] < evaluation["current"]["log_loss"]
    assert evaluation["better"] is True
    assert evaluation["current"]["version"] == "v3"
    assert evaluation["current"]["source"] == "served"  # nobody deployed v3 through the worker
    # The refit learned the drifted world: support calls matter more than the old model said.
    assert deployment.parameters.numeric["support_calls"].coef > MODEL_COEFFICIENTS.support_calls
    assert set(deployment.parameters.categorical["contract"]) == set(CONTRACTS)
    assert 0 < predict_proba(deployment.parameters, {"support_calls": 5.0}) < 1

    model = {
        k.decode(): v.decode() for k, v in redis_client.hgetall(action.model_key("churn")).items()
    }
    assert (model["version"], model["number"], model["request_id"]) == ("v4", "4", "req-local")
    state = harness.store.get("req-local")
    assert state is not None
    assert state.status is Status.SUCCEEDED
    assert (state.result["outcome"], state.result["deployed_version"]) == ("deployed", "v4")

    # The decision on retrain-results: the candidate and the current model on the same rows.
    [result] = results(read_topic, harness.topics["retrain-results"])
    assert (result.result_id, result.outcome, result.deployed_version) == (
        "o-req-local",
        "deployed",
        "v4",
    )
    assert result.model_version == "v3"
    assert result.evaluation == deployment.evaluation
    assert result.reason.startswith("better than the current model by the margin (roc_auc ")
    assert harness.decided("deployed") == 1.0

    # A retry of the same request (e.g. after a crash before its decision was stored)
    # answers with the same version, and does not publish it again: it is recorded.
    again = action.run(decode_retrain_request(raw), raw, attempt=2)
    assert (again.outcome, again.deployed_version, again.details["replayed"]) == (
        "deployed",
        "v4",
        True,
    )
    assert len(read_topic(inputs["model-deployments"])) == 1
    action.close()


def test_local_trainer_keeps_a_model_that_is_not_beaten(
    harness: Harness,
    make_topics: Callable[..., dict[str, str]],
    read_topic: ReadTopic,
    redis_client: Any,
    topic_prefix: str,
) -> None:
    inputs = make_topics("predictions", "ground-truth", "model-deployments", partitions=1)
    # Labels follow the served model itself: a refit cannot beat it by the margin.
    predictions, labels = churn_events(1000, seed=4, start=START, label_rule=MODEL_COEFFICIENTS)
    publish(harness.bootstrap, inputs["predictions"], predictions)
    publish(harness.bootstrap, inputs["ground-truth"], labels)
    raw = (
        b'{"request_id": "req-keep", "model_id": "churn", "model_version": "v3",'
        b' "requested_at": "2026-11-27T09:25:00Z", "reasons": [],'
        b' "window": {"start": "2026-11-27T09:00:00Z", "end": "2026-11-27T10:00:00Z"}}'
    )
    action = LocalTrainerAction(
        bootstrap=harness.bootstrap,
        redis_client=redis_client,
        predictions_topic=inputs["predictions"],
        ground_truth_topic=inputs["ground-truth"],
        deployments_topic=inputs["model-deployments"],
        prefix=f"{topic_prefix}retrain",
        min_rows=200,
        min_improvement=0.05,
    )
    decision = action.run(decode_retrain_request(raw), raw, attempt=1)
    assert decision.outcome == "declined"
    assert decision.reason.startswith("not better than the current model by the margin (")
    assert decision.evaluation["better"] is False
    assert decision.evaluation["decision"] == "not_better"
    assert read_topic(inputs["model-deployments"]) == []
    assert redis_client.exists(action.model_key("churn")) == 0


def test_labels_that_are_noise_end_in_a_declined_result_and_no_deployment(
    harness: Harness,
    make_topics: Callable[..., dict[str, str]],
    read_topic: ReadTopic,
    redis_client: Any,
    topic_prefix: str,
) -> None:
    inputs = make_topics("predictions", "ground-truth", "model-deployments", partitions=1)
    noise = Coefficients(0.0, 0, 0, 0, 0, (0, 0, 0), (0, 0, 0, 0))  # a coin flip per customer
    predictions, labels = churn_events(2000, seed=5, start=START, label_rule=noise)
    publish(harness.bootstrap, inputs["predictions"], predictions)
    publish(harness.bootstrap, inputs["ground-truth"], labels)
    raw = (
        b'{"request_id": "req-noise", "model_id": "churn", "model_version": "v3",'
        b' "requested_at": "2026-11-27T09:40:00Z", "reasons": [],'
        b' "window": {"start": "2026-11-27T09:00:00Z", "end": "2026-11-27T10:00:00Z"},'
        b' "detected_at": "2026-11-27T09:01:00Z", "labelled_pairs": 2000, "complete": true}'
    )
    publish(harness.bootstrap, harness.topics["retrain-requests"], [("churn", raw)])
    action = LocalTrainerAction(
        bootstrap=harness.bootstrap,
        redis_client=redis_client,
        predictions_topic=inputs["predictions"],
        ground_truth_topic=inputs["ground-truth"],
        deployments_topic=inputs["model-deployments"],
        prefix=f"{topic_prefix}retrain",
    )
    assert harness.worker(action).run(max_messages=1, idle_timeout=30) == 1
    [result] = results(read_topic, harness.topics["retrain-results"])
    assert (result.outcome, result.deployed_version, result.attempts) == ("declined", None, 1)
    assert result.reason.startswith("the candidate ranks the held-out rows no better than chance")
    evaluation = result.evaluation
    assert evaluation["decision"] == "no_signal"
    assert (evaluation["window_rows"], evaluation["holdout_rows"]) == (2000, 500)
    assert evaluation["labelled_pairs"] == 2000
    assert evaluation["detected_at"] == "2026-11-27T09:01:00Z"
    # a constant would beat the old model's log loss on coin flips; it is still not deployed
    assert evaluation["candidate"]["log_loss"] < evaluation["current"]["log_loss"]
    assert read_topic(inputs["model-deployments"]) == []
    assert harness.decided("declined") == 1.0
    action.close()


def test_too_few_rows_end_in_a_declined_result_at_once(
    harness: Harness,
    make_topics: Callable[..., dict[str, str]],
    read_topic: ReadTopic,
    redis_client: Any,
    topic_prefix: str,
) -> None:
    inputs = make_topics("predictions", "ground-truth", "model-deployments", partitions=1)
    predictions, labels = churn_events(120, seed=6, start=START, label_rule=DRIFTED_WORLD)
    publish(harness.bootstrap, inputs["predictions"], predictions)
    publish(harness.bootstrap, inputs["ground-truth"], labels)
    raw = (
        b'{"request_id": "req-few", "model_id": "churn", "model_version": "v3",'
        b' "requested_at": "2026-11-27T09:40:00Z", "reasons": [],'
        b' "window": {"start": "2026-11-27T09:00:00Z", "end": "2026-11-27T10:00:00Z"},'
        b' "labelled_pairs": 120, "complete": false}'
    )
    publish(harness.bootstrap, harness.topics["retrain-requests"], [("churn", raw)])
    action = LocalTrainerAction(
        bootstrap=harness.bootstrap,
        redis_client=redis_client,
        predictions_topic=inputs["predictions"],
        ground_truth_topic=inputs["ground-truth"],
        deployments_topic=inputs["model-deployments"],
        prefix=f"{topic_prefix}retrain",
    )
    assert harness.worker(action, max_attempts=5).run(max_messages=1, idle_timeout=30) == 1
    [result] = results(read_topic, harness.topics["retrain-results"])
    assert (result.outcome, result.attempts) == ("declined", 1)  # no retry: a decision
    assert result.reason == "too few rows (120 labelled events in the window, need 200)"
    assert result.evaluation["complete"] is False
    assert harness.time.sleeps == []
    action.close()
