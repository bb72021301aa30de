"""The closed loop under real timing, as an operator runs it (issue 14): the monitor, the
retrain worker with its local trainer and the simulator following deployments, all with
the built-in retrain policy, no tuned timeline.

* concept drift: one request, whose window starts at the change and holds 1000 labelled
  pairs of the new world; one deployment; the new version recovers; no second request;
* labels become noise: every candidate is declined, the re-requests are bounded, and one
  critical alert says the model is below its limits with nothing deployed;
* kill -9 of the monitor while the request is pending and while it is in flight, and of the
  worker while it trains: one request, one decision, at most one deployment.

The operator test prints the figures quoted in the README (run with ``-s``).
"""

from __future__ import annotations

import itertools
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message
from loop_harness import CHANGE_AT, LOOP_TOPICS, ClosedLoop, LoopRecord, epoch, wait_until

from streams.demo.plan import MIN_ROC_AUC
from streams.engine.retrain import VERIFICATION

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ReadTopic = Callable[..., list[Message]]
MakeTopics = Callable[..., dict[str, str]]
EVENTS = 60_000


def _loop(
    kafka_bootstrap: str,
    redis_url: str,
    make_topics: MakeTopics,
    topic_prefix: str,
    tmp_path: Path,
    model_id: str,
    **retrain: Any,
) -> ClosedLoop:
    return ClosedLoop(
        kafka_bootstrap,
        redis_url,
        make_topics(*LOOP_TOPICS),
        tmp_path,
        f"{topic_prefix}monitor",
        model_id,
        retrain=retrain,
    )


def _finished(status: dict[str, Any], *states: str) -> bool:
    """Every prediction consumed and the retrain state one of ``states``."""
    retrain = status.get("retrain") or {}
    return status.get("predictions") == EVENTS and retrain.get("state") in states


def _served(record: LoopRecord, version: str) -> list[Any]:
    return [p for p in record.predictions if p.model_version == version]


def test_operator_scenario_retrains_once_on_the_new_world_and_recovers(
    kafka_bootstrap: str,
    redis_url: str,
    make_topics: MakeTopics,
    read_topic: ReadTopic,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    loop = _loop(kafka_bootstrap, redis_url, make_topics, topic_prefix, tmp_path, "churn-op")
    try:
        loop.start_monitor()
        loop.start_worker()
        simulator = loop.simulate("concept-drift")
        assert simulator.wait(timeout=180) == 0
        loop.wait_for_status(
            "the whole stream and the deployment's verification",
            lambda s: (
                _finished(s, "deployed")
                and (s.get("verification") or {}).get("state") not in (None, "pending")
            ),
        )
        status = loop.status_command()["models"]["churn-op"]
        record = loop.read(read_topic)
    finally:
        loop.stop()

    # one request, for v1, once 1000 labelled pairs of the new world were in
    assert len(record.requests) == 1, [r.requested_at for r in record.requests]
    (request,) = record.requests
    assert request.model_version == "v1"
    assert request.complete
    assert request.labelled_pairs is not None
    assert request.labelled_pairs >= 1000
    change = record.change_time()
    detected, requested = epoch(request.detected_at), epoch(request.requested_at)
    start, end = epoch(request.window.start), epoch(request.window.end)
    assert change < detected < requested == end
    # the window starts near the change (not `now - window_seconds`): nearly all of the
    # labelled rows in it are post-change rows
    assert change - 1.0 <= start <= detected
    in_window = [p for p in record.predictions if start <= p.event_time() <= end]
    labelled = [p for p in in_window if p.event_id in record.labels]
    post_change = sum(p.event_time() >= change for p in labelled)
    assert post_change / len(labelled) >= 0.8

    # one decision: deployed, champion and challenger on the same held-out rows
    (result,) = record.results
    assert (result.request_id, result.outcome) == (request.request_id, "deployed")
    evaluation = result.evaluation
    assert evaluation["candidate"]["auc"] > evaluation["current"]["auc"] + 0.2
    (deployment,) = record.deployments
    assert deployment.request_id == request.request_id
    new = deployment.model_version
    assert result.deployed_version == new

    # the server switched once and the new version recovers, verified by the monitor
    versions = [p.model_version for p in record.predictions]
    switch = versions.index(new)
    assert set(versions[switch:]) == {new}
    v1_after_change = [p for p in _served(record, "v1") if p.event_time() >= change]
    auc_before, auc_after = record.auc(v1_after_change), record.auc(_served(record, new))
    assert auc_after > auc_before + 0.2
    assert auc_before < MIN_ROC_AUC <= auc_after  # the demo's minimum: v1 below, v2 above
    (verification,) = [a for a in record.alerts if a.detector == VERIFICATION]
    assert (verification.model_version, verification.severity) == (new, "info")
    assert verification.details["request_id"] == request.request_id
    assert status["retrain"]["state"] == "deployed"
    assert status["retrain"]["last_decision"]["request_id"] == request.request_id

    rate = 3000.0
    rows = evaluation.get("train_rows"), evaluation.get("holdout_rows")
    print(
        "\noperator scenario (concept-drift, 60000 events at 3000/s, seed 5, defaults):"
        f"\n  change at event {CHANGE_AT}; detected {detected - change:.2f} s "
        f"({(detected - change) * rate:.0f} predictions) after it"
        f"\n  request {requested - detected:.2f} s ({(requested - detected) * rate:.0f} "
        f"predictions) after the detection, with {request.labelled_pairs} labelled pairs; "
        f"window starts {start - change:+.2f} s from the change, "
        f"{post_change}/{len(labelled)} labelled rows in it post-change"
        f"\n  trained on {rows[0]} rows, held out {rows[1]}: candidate AUC "
        f"{evaluation['candidate']['auc']:.3f} vs current {evaluation['current']['auc']:.3f}"
        f"\n  {new} served from event {switch} ({switch - CHANGE_AT} after the change); "
        f"served AUC after the change: v1 {auc_before:.3f}, {new} {auc_after:.3f}"
    )


def test_when_no_candidate_can_be_better_the_requests_are_declined_and_bounded(
    kafka_bootstrap: str,
    redis_url: str,
    make_topics: MakeTopics,
    read_topic: ReadTopic,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    # the stream spans 20 s of event time: a short cooldown lets the policy ask again
    cooldown, max_per_day = 3.0, 3
    loop = _loop(
        kafka_bootstrap,
        redis_url,
        make_topics,
        topic_prefix,
        tmp_path,
        "churn-noise",
        cooldown_seconds=cooldown,
        max_per_day=max_per_day,
    )
    try:
        loop.start_monitor()
        loop.start_worker()
        simulator = loop.simulate("label-noise")
        assert simulator.wait(timeout=180) == 0
        loop.wait_for_status("the whole stream", lambda s: _finished(s, "declined"))
        record = loop.read(read_topic)
        final = loop.status()
    finally:
        loop.stop()

    # asked again after a decline, never more often than the cooldown and the daily cap allow
    assert 2 <= len(record.requests) <= max_per_day, [r.requested_at for r in record.requests]
    times = [epoch(r.requested_at) for r in record.requests]
    assert all(b - a >= cooldown for a, b in itertools.pairwise(times))
    assert {r.request_id for r in record.results} == {r.request_id for r in record.requests}
    assert {r.outcome for r in record.results} == {"declined"}
    assert record.deployments == []
    # one critical alert: below the limits, nothing deployed, naming the last decision then
    stranded = [a for a in record.alerts if a.signal == "retrain"]
    assert len(stranded) == 1, stranded
    (alert,) = stranded
    assert (alert.type, alert.severity, alert.detector) == (
        "performance_degradation",
        "critical",
        "no_deployment",
    )
    decision = alert.details["last_decision"]
    assert decision["outcome"] == "declined"
    assert decision["request_id"] in {r.request_id for r in record.requests}
    assert alert.details["degraded"]
    assert final["retrain"]["state"] == "declined"
    assert final["retrain"]["last_decision"]["request_id"] == record.requests[-1].request_id


def test_kill_9_of_the_monitor_and_the_worker_loses_no_decision_and_deploys_once(
    kafka_bootstrap: str,
    redis_url: str,
    make_topics: MakeTopics,
    read_topic: ReadTopic,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    # a longer wait for evidence leaves time to kill the monitor while the request waits
    loop = _loop(
        kafka_bootstrap,
        redis_url,
        make_topics,
        topic_prefix,
        tmp_path,
        "churn-kill",
        min_labelled=4000,
    )

    def state() -> str | None:
        return (loop.status().get("retrain") or {}).get("state")

    try:
        monitor = loop.start_monitor()
        worker = loop.start_worker()
        simulator = loop.simulate("concept-drift")
        # 1. the request waits for labelled pairs: kill the monitor, start another
        wait_until("a pending request", lambda: state() == "retrain_pending")
        assert monitor.stop(kill=True) == -signal.SIGKILL
        monitor = loop.start_monitor()
        # 2. the worker trains on it: kill the worker (its lease expires, another retries)
        wait_until("the first attempt", lambda: "attempt 1 with action local" in worker.log())
        assert worker.stop(kill=True) == -signal.SIGKILL
        # 3. the request is out, undecided: kill the monitor again
        wait_until("the request in flight", lambda: state() == "requested")
        assert monitor.stop(kill=True) == -signal.SIGKILL
        loop.start_worker()
        loop.start_monitor()
        assert simulator.wait(timeout=180) == 0
        loop.wait_for_status("the whole stream", lambda s: _finished(s, "deployed"))
        final = loop.status()
        record = loop.read(read_topic)
    finally:
        loop.stop()

    (request,) = record.requests  # replays re-created the same request id
    (result,) = record.results
    assert (result.request_id, result.outcome) == (request.request_id, "deployed")
    assert len({d.model_version for d in record.deployments}) == 1
    assert final["retrain"]["last_decision"]["request_id"] == request.request_id
    assert final["retrain"]["requested"] == 1
