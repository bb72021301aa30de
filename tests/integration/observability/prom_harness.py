"""Helpers of the observability tests: a Prometheus process, the monitor launchers, HTTP.

``MONITOR`` picks what Prometheus scrapes:
  * ``"synthetic"`` — ``synthetic_monitor.py``: MonitorMetrics fed with realistic values.
  * ``"driftradar-run"`` — ``driftradar run`` fed by ``driftradar simulate`` on the test
    broker and Redis: the real monitor serving MonitorMetrics on ``--metrics-port``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

#: The one line to change to scrape the real monitor instead of the stand-in.
MONITOR = "driftradar-run"

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "rules"
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read())


def wait_until(
    what: str, check: Callable[[], bool], timeout: float, proc: subprocess.Popen[Any] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}")
        try:
            if check():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what}: not within {timeout} s")


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def synthetic_monitor(request: pytest.FixtureRequest) -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "synthetic_monitor.py"), "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield port
    finally:
        stop(proc)


@contextmanager
def driftradar_run(request: pytest.FixtureRequest) -> Iterator[int]:
    """``driftradar run`` on prefixed topics, fed by ``driftradar simulate`` (data drift)."""
    bootstrap: str = request.getfixturevalue("kafka_bootstrap")
    redis_url: str = request.getfixturevalue("redis_url")
    tmp: Path = request.getfixturevalue("tmp_path_factory").mktemp("run")
    prefix = f"obs-{uuid.uuid4().hex[:8]}-"
    topics = {
        name: prefix + name
        for name in (
            "predictions",
            "ground-truth",
            "drift-alerts",
            "retrain-requests",
            "dead-letter",
            "retrain-results",
        )
    }
    from streams.core.topics import ensure_topics

    ensure_topics(bootstrap, topics.values(), 3)
    port = free_port()
    config = tmp / "driftradar.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "topics": {
                    key.replace("-", "_").replace("drift_alerts", "alerts"): value
                    for key, value in topics.items()
                },
                "checkpoint": {"every_seconds": 1.0},
                "metrics_port": port,
            }
        )
    )
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "REDIS_URL": redis_url}
    exe = str(Path(sys.executable).with_name("driftradar"))
    monitor = subprocess.Popen(
        [
            exe,
            "run",
            "--config",
            str(config),
            "--group-id",
            prefix + "group",
            "--metrics-port",
            str(port),
        ],
        env=env,
        cwd=tmp,
    )
    simulator = subprocess.Popen(
        [
            exe,
            "simulate",
            "--scenario",
            "data-drift",
            "--events",
            "0",  # unbounded until teardown: every rate window of the test has traffic
            "--rate",
            "300",
            "--change-at",
            "1500",  # features shift 5 s in: PSI, KS, ADWIN… react while Prometheus scrapes
            "--partitions",
            "3",
            "--predictions-topic",
            topics["predictions"],
            "--ground-truth-topic",
            topics["ground-truth"],
        ],
        env=env,
        cwd=tmp,
    )
    try:
        wait_until(
            "driftradar run /metrics",
            lambda: (
                b"driftradar_predictions_total{" in http_get(f"http://127.0.0.1:{port}/metrics")
            ),
            60,
            monitor,
        )
        yield port
    finally:
        stop(simulator)
        stop(monitor)


MONITORS: dict[str, Callable[[pytest.FixtureRequest], AbstractContextManager[int]]] = {
    "synthetic": synthetic_monitor,
    "driftradar-run": driftradar_run,
}


class Prometheus:
    """A Prometheus server of the test: its URL and an instant-query helper."""

    def __init__(self, url: str) -> None:
        self.url = url

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            body = http_get(f"{self.url}/api/v1/{path}{query}")
        except urllib.error.HTTPError as exc:  # 400 for a bad expression: keep the JSON error
            body = exc.read()
        return yaml.safe_load(body)  # JSON is YAML

    def query(self, expr: str) -> dict[str, Any]:
        """``{"status": …, "data": {"result": […]}}`` or ``{"status": "error", "error": …}``."""
        answer: dict[str, Any] = self.api("query", query=expr)
        return answer
