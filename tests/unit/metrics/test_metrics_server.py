"""MetricsServer on an ephemeral port: /metrics, /healthz, /readyz, the probe and the port."""

from __future__ import annotations

import argparse
import gzip
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from streams.metrics import MetricsServer, MonitorMetrics, add_arguments, resolve_port
from streams.metrics.probe import probe


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def metrics(clock: Clock) -> MonitorMetrics:
    return MonitorMetrics(CollectorRegistry(), clock=clock)


@pytest.fixture
def checks() -> dict[str, bool]:
    return {"kafka": True, "redis": True}


@pytest.fixture
def server(
    metrics: MonitorMetrics, clock: Clock, checks: dict[str, bool]
) -> Iterator[MetricsServer]:
    readiness = {
        "kafka": lambda: checks["kafka"],
        "redis": lambda: (checks["redis"], "redis: connection refused"),
    }
    with MetricsServer(
        metrics,
        host="127.0.0.1",
        port=0,
        readiness=readiness,
        heartbeat_timeout=30,
        startup_grace=60,
        clock=clock,
    ) as srv:
        yield srv


def _get(url: str, accept: str = "*/*") -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def test_metrics_endpoint_serves_the_registry(
    server: MetricsServer, metrics: MonitorMetrics
) -> None:
    metrics.record_dead_letter("predictions", "schema")
    status, content_type, body = _get(server.url + "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=")
    text = body.decode()
    assert 'driftradar_dead_letters_total{reason_kind="schema",topic="predictions"} 1.0' in text
    assert "process_resident_memory_bytes" in text
    assert 'driftradar_ready{check="kafka"} 1.0' in text
    # Prometheus asks for OpenMetrics first; the server negotiates it.
    status, content_type, body = _get(
        server.url + "/metrics", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
    )
    assert content_type.startswith("application/openmetrics-text")
    assert body.decode().endswith("# EOF\n")


def test_healthz_follows_the_loop_heartbeat(
    server: MetricsServer, metrics: MonitorMetrics, clock: Clock
) -> None:
    status, _, body = _get(server.url + "/healthz")
    assert (status, json.loads(body)["reasons"]["loop"]) == (200, "starting: no heartbeat yet")
    clock.now += 61  # grace is over, still no heartbeat
    status, _, body = _get(server.url + "/healthz")
    assert status == 503
    assert "no heartbeat" in json.loads(body)["reasons"]["loop"]
    metrics.heartbeat()
    assert _get(server.url + "/healthz")[0] == 200
    clock.now += 31  # the loop is stuck
    status, _, body = _get(server.url + "/healthz")
    assert status == 503
    assert json.loads(body) == {
        "ok": False,
        "reasons": {"loop": "last heartbeat 31.0 s ago (limit 30 s)"},
    }


def test_readyz_needs_partitions_and_every_callback(
    server: MetricsServer, metrics: MonitorMetrics, checks: dict[str, bool]
) -> None:
    status, content_type, body = _get(server.url + "/readyz")
    assert (status, content_type) == (503, "application/json")
    assert json.loads(body)["reasons"]["partitions"] == "no partition assigned to this replica"
    metrics.set_assignment([("predictions", 0), ("ground-truth", 0)])
    status, _, body = _get(server.url + "/readyz")
    assert status == 200
    assert json.loads(body)["reasons"] == {"kafka": "ok", "partitions": "ok", "redis": "ok"}
    checks["redis"] = False
    status, _, body = _get(server.url + "/readyz")
    assert status == 503
    assert json.loads(body)["reasons"]["redis"] == "redis: connection refused"
    assert metrics.value("driftradar_ready", check="redis") == 0
    assert metrics.value("driftradar_ready", check="kafka") == 1


def test_a_raising_readiness_callback_means_not_ready(metrics: MonitorMetrics) -> None:
    def broken() -> bool:
        raise ConnectionError("broker gone")

    with MetricsServer(metrics, host="127.0.0.1", port=0, readiness={"kafka": broken}) as srv:
        status, _, body = _get(srv.url + "/readyz")
    assert status == 503
    assert json.loads(body)["reasons"]["kafka"] == "check raised ConnectionError: broker gone"


def test_unknown_path_is_404_and_stop_releases_the_port(metrics: MonitorMetrics) -> None:
    srv = MetricsServer(metrics, host="127.0.0.1", port=0)
    port = srv.start()
    assert _get(srv.url + "/nope")[0] == 404
    with pytest.raises(RuntimeError, match="already started"):
        srv.start()
    srv.stop()
    srv.stop()  # idempotent
    with MetricsServer(metrics, host="127.0.0.1", port=port) as again:  # the port is free
        assert _get(again.url + "/nope")[0] == 404
    # The readiness collector left the registry with the server.
    assert metrics.value("driftradar_ready", check="partitions") is None


def test_probe_exit_codes(
    server: MetricsServer, metrics: MonitorMetrics, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"DRIFTRADAR_METRICS_PORT": str(server.port)}
    metrics.heartbeat()
    assert probe("/healthz", env) == 0
    clock.now += 100
    assert probe("/healthz", env) == 1
    assert "HTTP 503" in capsys.readouterr().err
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert probe("/healthz", {"DRIFTRADAR_METRICS_PORT": str(closed)}) == 1


def test_port_resolution_order_and_errors() -> None:
    assert resolve_port(9300, {"DRIFTRADAR_METRICS_PORT": "9200"}) == 9300
    assert resolve_port(None, {"DRIFTRADAR_METRICS_PORT": "9200"}) == 9200
    assert resolve_port(None, {"DRIFTRADAR_METRICS_PORT": ""}) == 9108
    with pytest.raises(ValueError, match="--metrics-port: '70000'"):
        resolve_port(70000, {})
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--metrics-port", "0"])
    assert (args.metrics_port, args.metrics_host) == (0, "0.0.0.0")


def test_metrics_are_gzipped_for_a_scraper_that_asks(server: MetricsServer) -> None:
    request = urllib.request.Request(server.url + "/metrics", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert b"driftradar_build_info" in gzip.decompress(response.read())
