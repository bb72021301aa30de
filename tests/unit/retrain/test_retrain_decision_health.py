"""The decision value an action returns, and the worker's /healthz and /readyz."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from producers.retrain.decision import Decision, failed_result, result_of
from producers.retrain.metrics import RetrainMetrics
from streams.core.events import decode_retrain_request
from streams.core.events import describe_result as describe
from streams.metrics.server import MetricsServer

REQUEST = decode_retrain_request(
    b'{"request_id": "r1", "model_id": "churn", "model_version": "v1",'
    b' "requested_at": "2026-11-27T10:05:00Z", "reasons": [],'
    b' "window": {"start": "2026-11-27T09:00:00Z", "end": "2026-11-27T10:00:00Z"}}'
)


def test_a_deployed_decision_needs_its_version_and_only_it_has_one() -> None:
    with pytest.raises(ValueError, match="deployed_version is given exactly"):
        Decision("deployed", "better")
    with pytest.raises(ValueError, match="deployed_version is given exactly"):
        Decision("declined", "not better", "v2")
    with pytest.raises(ValueError, match="deployed, declined or handed_over"):
        Decision("failed", "HTTP 503")


def test_results_carry_the_request_and_a_derived_id() -> None:
    result = result_of(REQUEST, Decision.declined("too few rows (3 …)"), 2, 1_800_000_000.0)
    assert (result.result_id, result.request_id, result.model_id) == ("o-r1", "r1", "churn")
    assert (result.outcome, result.attempts, result.model_version) == ("declined", 2, "v1")
    assert result.decided_at == "2027-01-15T08:00:00.000Z"
    assert describe(result) == "retrain r1 for churn: declined: too few rows (3 …)"
    with pytest.raises(ValueError, match="reported by the pipeline"):
        result_of(REQUEST, Decision.handed_over("GitLab pipeline 4 created"), 1, 0.0)
    failed = failed_result(REQUEST, "webhook: HTTP 503", 1, 0.0)
    assert describe(failed) == "retrain r1 for churn: failed after 1 attempt: webhook: HTTP 503"
    deployed = result_of(REQUEST, Decision.deployed("v2", "the pipeline says so"), 1, 0.0)
    assert describe(deployed) == "retrain r1 for churn: deployed v2 (the pipeline says so)"


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_worker_health_endpoints_follow_its_loop_partitions_and_redis() -> None:
    now = [1000.0]
    metrics = RetrainMetrics(CollectorRegistry(), clock=lambda: now[0])
    redis = [(True, "ok")]
    server = MetricsServer(
        metrics,
        host="127.0.0.1",
        port=0,
        readiness={"redis": lambda: redis[0]},
        clock=lambda: now[0],
    )
    with server:
        assert _get(server.url + "/readyz") == (
            503,
            {
                "ok": False,
                "reasons": {"partitions": "no partition assigned to this replica", "redis": "ok"},
            },
        )
        metrics.set_assignment(1)
        redis[0] = (False, "Redis did not answer: ConnectionError")
        status, body = _get(server.url + "/readyz")
        assert (status, body["reasons"]["redis"]) == (503, "Redis did not answer: ConnectionError")
        redis[0] = (True, "ok")
        assert _get(server.url + "/readyz")[0] == 200

        metrics.heartbeat()
        assert _get(server.url + "/healthz") == (200, {"ok": True, "reasons": {"loop": "ok"}})
        now[0] += 60  # no beat for a minute: stuck
        assert _get(server.url + "/healthz")[0] == 503
        metrics.busy(until=now[0] + 900)  # an attempt with a 900 s lease: alive meanwhile
        now[0] += 600
        assert _get(server.url + "/healthz")[0] == 200
        now[0] += 400  # past the lease (+ the 30 s allowance): stuck again
        status, body = _get(server.url + "/healthz")
        assert status == 503
        assert body["reasons"]["loop"].startswith("last heartbeat 100.0 s ago")
