"""`driftradar retrain-worker` as a process: clean SIGTERM stop, tokens never logged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from confluent_kafka import Message
from retrain_harness import publish, request_bytes, results

from streams.core.events import decode_alert

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "glptt-SECRET-TOKEN-42"


class EchoingGitLab(BaseHTTPRequestHandler):
    """A GitLab that answers 500 and echoes the form back (token included)."""

    bodies: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        EchoingGitLab.bodies.append(body)
        reply = b"internal error while handling " + body
        self.send_response(500)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def gitlab() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingGitLab)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_cli_fails_a_request_alerts_stops_on_sigterm_and_never_logs_the_token(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: object,
    make_topics: Callable[..., dict[str, str]],
    read_topic: Callable[..., list[Message]],
    topic_prefix: str,
    gitlab: str,
    tmp_path: Path,
) -> None:
    topics = make_topics(
        "retrain-requests", "drift-alerts", "dead-letter", "retrain-results", partitions=1
    )
    config = tmp_path / "driftradar.yaml"
    config.write_text(
        "topics:\n"
        f"  retrain_requests: {topics['retrain-requests']}\n"
        f"  alerts: {topics['drift-alerts']}\n"
        f"  dead_letter: {topics['dead-letter']}\n"
        f"  retrain_results: {topics['retrain-results']}\n"
        "retrain_worker:\n"
        "  action: gitlab\n"
        "  project_id: mlops/churn\n"
        "  ref: main\n"
        "  max_attempts: 2\n"
        "  backoff_base: 0.05\n"
    )
    publish(kafka_bootstrap, topics["retrain-requests"], [("churn", request_bytes("req-cli"))])
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "REDIS_URL": redis_url,
        "DRIFTRADAR_CONFIG": str(config),
        "DRIFTRADAR_GITLAB_TRIGGER_TOKEN": TOKEN,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "retrain-worker",
            "--gitlab-url",
            gitlab,
            "--group-id",
            f"{topic_prefix}cli",
            "--metrics-port",
            "0",
            "--log-level",
            "DEBUG",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        alerts: list[Message] = []
        while not alerts and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
            alerts = read_topic(topics["drift-alerts"])
        assert alerts, "no alert published"
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    output = (stdout + stderr).decode()
    assert process.returncode == 0, output
    assert len(EchoingGitLab.bodies) == 2  # both attempts reached "GitLab" with the token
    assert all(TOKEN.encode() in body for body in EchoingGitLab.bodies)
    assert TOKEN not in output  # ... but it is in no log line
    assert "HTTP 500" in output
    assert "signal 15: stopping" in output
    alert = decode_alert(alerts[0].value() or b"")
    assert TOKEN not in alert.details["error"]
    assert alert.details["attempts"] == 2
    [result] = results(read_topic, topics["retrain-results"])
    assert (result.outcome, result.attempts) == ("failed", 2)
    assert TOKEN not in result.reason
    [line] = [line for line in output.splitlines() if "retrain req-cli for churn: " in line]
    assert "failed after 2 attempts: gitlab: POST " in line
    assert f"(alert {alert.alert_id} and a dead letter published)" in line
