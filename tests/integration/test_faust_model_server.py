"""The example Faust model server reports to `driftradar run`: every pair joins, drift is alerted.

Three real processes against the local broker and Redis: the example app
(``python -m examples.faust_model_server worker``), the monitor (``driftradar run``) and the
example's traffic (``python -m examples.faust_model_server.traffic``: 4000 scoring requests,
monthly charges +30 from request 2000 on, then every customer's outcome). The app reports
each prediction and, later, each outcome through ``FaustMonitorClient``; ``driftradar status
--json`` must count all of them as joined, and the alerts must name the shifted feature.

Faust's group timings come from the suite's one place for them, ``TEST_GROUP``
(:data:`FAUST_TEST_ENV`): with Faust's default 60 s session timeout the worker's group join
on the local broker takes ~31 s, with 2 s about 1-2 s.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
import redis

sys.path.insert(0, str(Path(__file__).with_name("runner")))
from runner_harness import ROOT, TOPICS, monitor_env, start_monitor, status_json, write_config

from streams.checkpoint import CheckpointStore
from streams.commands.status import status_document
from streams.core.events import decode_prediction
from streams.core.kafka import TEST_GROUP, faust_group_settings

pytestmark = pytest.mark.integration

#: Faust reads its settings from the environment (``BROKER_SESSION_TIMEOUT``, ...).
FAUST_TEST_ENV: Final = {
    name.upper(): str(value) for name, value in faust_group_settings(TEST_GROUP).items()
}
APP_TOPICS = ("scoring-requests", "scoring-responses", "customer-outcomes")
REQUESTS = 4000
SHIFT_AT = 2000
UNSHIFTED = ("tenure_months", "support_calls", "contract")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class FaustWorker:
    """``python -m examples.faust_model_server worker`` as a subprocess, logging to a file."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "examples.faust_model_server", "worker", "-l", "info"],
                env=dict(env),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while "[^Worker]: Ready" not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the Faust worker is not ready:\n{self.log()}")
            time.sleep(0.1)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"the Faust worker ignored SIGTERM:\n{self.log()}") from None


def _wait_until_joined(client: redis.Redis, group: str, count: int, processes: list[Any]) -> None:
    """Poll what ``status`` reads until the model has ``count`` joined pairs."""
    deadline = time.monotonic() + 60
    model: dict[str, Any] = {}
    while model.get("joined") != count:
        if time.monotonic() > deadline:
            raise AssertionError(f"not joined in time: {model}")
        for process in processes:
            if process.process.poll() is not None:
                raise AssertionError(f"a process exited early:\n{process.log()}")
        time.sleep(0.2)
        model = status_document(CheckpointStore(client, group).statuses())["models"].get(
            "churn", {}
        )


def test_every_report_joins_and_the_shifted_feature_is_alerted(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    make_topics: Any,
    read_topic: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    topics = make_topics(*TOPICS, partitions=2)
    make_topics(*APP_TOPICS, partitions=1)  # one request partition: the shift stays in order
    env = monitor_env(kafka_bootstrap, redis_url, write_config(tmp_path / "monitor.yaml", topics))
    env.update(
        FAUST_TEST_ENV,
        MODEL_SERVER_TOPIC_PREFIX=topic_prefix,
        APP_DATADIR=str(tmp_path / "faust-data"),
    )
    group = topic_prefix + "monitor"
    monitor = start_monitor(env, group)
    worker = FaustWorker(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        traffic = subprocess.run(
            [
                sys.executable,
                "-m",
                "examples.faust_model_server.traffic",
                *("--requests", str(REQUESTS), "--shift-at", str(SHIFT_AT), "--partitions", "1"),
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert traffic.returncode == 0, traffic.stderr + worker.log()
        assert f"{REQUESTS} answered, {REQUESTS} outcomes sent" in traffic.stdout
        _wait_until_joined(redis_client, group, REQUESTS, [worker, monitor])
    finally:
        worker_code = worker.stop()
        monitor_code = monitor.stop()
    assert worker_code == 0, worker.log()
    assert monitor_code == 0, monitor.log()
    assert "not reported" not in worker.log()
    assert "not delivered" not in worker.log()

    churn = status_json(env, group)["models"]["churn"]
    assert (churn["predictions"], churn["ground_truth"], churn["joined"]) == (REQUESTS,) * 3
    assert churn["dead_letters"] == 0

    alerts = [msgspec.json.decode(m.value()) for m in read_topic(topics["drift-alerts"])]
    drifts = [a for a in alerts if a["type"] == "data_drift"]
    described = "\n".join(f"{a['type']} {a['signal']} {a['details']}" for a in alerts)
    charges = [a for a in drifts if a["signal"] == "feature:monthly_charges"]
    assert charges, described
    # Entered at or after the first shifted request's prediction (reported at serving time).
    reported = [decode_prediction(m.value()) for m in read_topic(topics["predictions"])]
    shifted = min(p.event_time() for p in reported if int(p.event_id.split("-")[1]) >= SHIFT_AT)
    assert all(_epoch(a["event_time"]) >= shifted - 0.001 for a in charges), described
    assert not [a for a in drifts if a["signal"] in {f"feature:{f}" for f in UNSHIFTED}], described
