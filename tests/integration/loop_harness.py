"""The closed loop as an operator runs it: ``driftradar run``, ``driftradar retrain-worker
--action local`` and ``driftradar simulate --follow-deployments`` as subprocesses on the
test's topics, then everything they wrote read back (:class:`LoopRecord`).

The monitor and the worker use the built-in retrain policy unless a test passes settings;
the config file only names the test's topics, the fast test group timings, a checkpoint
every second, and the worker's deployments topic, group and (short) lease.

(Not a conftest.py: with ``--doctest-modules`` two conftest.py files in the tree clash.)
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import redis
import yaml
from confluent_kafka import Message
from runner_harness import ROOT, Monitor, monitor_env, start_monitor, status_json

from streams.checkpoint import CheckpointStore
from streams.core.events import (
    Alert,
    Deployment,
    Prediction,
    RetrainRequest,
    RetrainResult,
    decode_alert,
    decode_deployment,
    decode_ground_truth,
    decode_prediction,
    decode_retrain_request,
    decode_retrain_result,
)
from streams.core.kafka import TEST_GROUP
from streams.engine.performance import compute_metric
from streams.runner.status import merge_models

T = TypeVar("T")
ReadTopic = Callable[..., list[Message]]

#: Every topic the loop uses (names as the contract's; tests prefix them).
LOOP_TOPICS = (
    "predictions",
    "ground-truth",
    "drift-alerts",
    "retrain-requests",
    "retrain-results",
    "dead-letter",
    "model-deployments",
)
#: The operator's scenario of issue 14: 60,000 events at 3,000/s, the world's rule changes
#: at event 30,000, the simulated server follows deployments.
OPERATOR_ARGS = ("--events", "60000", "--rate", "3000", "--seed", "5")
CHANGE_AT = 30_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def epoch(text: str | None) -> float:
    """Epoch seconds of an RFC 3339 timestamp."""
    assert text is not None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wait_until(what: str, check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Worker:
    """A retrain worker subprocess and its log."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, *, kill: bool = False) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        return self.process.wait(timeout=30)


@dataclass
class LoopRecord:
    """What the loop wrote, decoded, in topic order (deduplicated where ids allow)."""

    predictions: list[Prediction]
    labels: dict[str, float]
    alerts: list[Alert]
    requests: list[RetrainRequest]
    results: list[RetrainResult]
    deployments: list[Deployment]

    def auc(self, predictions: list[Prediction]) -> float:
        """ROC AUC of ``predictions`` against their labels (those that have one)."""
        pairs = [
            (float(p.prediction), self.labels[p.event_id])  # type: ignore[arg-type]
            for p in predictions
            if p.event_id in self.labels
        ]
        array = np.asarray(pairs, dtype=np.float64)
        value = compute_metric("roc_auc", array[:, 0], array[:, 1], 0.5)
        assert value is not None
        return value

    def change_time(self) -> float:
        """Event time of the first prediction made in the changed world."""
        return self.predictions[CHANGE_AT].event_time()


@dataclass
class ClosedLoop:
    """One test's loop: topics, config, and the processes it started (stopped at the end)."""

    bootstrap: str
    redis_url: str
    topics: dict[str, str]
    workdir: Path
    group: str
    model_id: str
    retrain: Mapping[str, Any] = field(default_factory=dict)
    monitors: list[Monitor] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)

    def __post_init__(self) -> None:
        document: dict[str, Any] = {
            "kafka": dict(TEST_GROUP),
            "topics": {
                "predictions": self.topics["predictions"],
                "ground_truth": self.topics["ground-truth"],
                "alerts": self.topics["drift-alerts"],
                "retrain_requests": self.topics["retrain-requests"],
                "retrain_results": self.topics["retrain-results"],
                "dead_letter": self.topics["dead-letter"],
            },
            "checkpoint": {"every_seconds": 1.0},
            "retrain_worker": {
                "action": "local",
                "group_id": f"{self.group}-worker",
                "deployments_topic": self.topics["model-deployments"],
                "lease_seconds": 5,
                "backoff_base": 0.2,
                "backoff_max_delay": 1,
            },
        }
        if self.retrain:
            document["defaults"] = {"retrain": dict(self.retrain)}
        config = self.workdir / "driftradar.yaml"
        config.write_text(yaml.safe_dump(document), encoding="utf-8")
        self.env = monitor_env(self.bootstrap, self.redis_url, config)

    # -- processes ------------------------------------------------------------------------

    def start_monitor(self) -> Monitor:
        monitor = start_monitor(self.env, self.group)
        self.monitors.append(monitor)
        return monitor

    def start_worker(self) -> Worker:
        log_path = self.workdir / f"worker.{time.monotonic_ns()}.log"
        argv = [sys.executable, "-m", "streams.cli", "retrain-worker"]
        argv += ["--metrics-port", str(free_port())]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        worker = Worker(process, log_path)
        self.workers.append(worker)
        return worker

    def simulate(self, scenario: str, *args: str) -> subprocess.Popen[bytes]:
        """``driftradar simulate --follow-deployments`` in the background."""
        argv = [sys.executable, "-m", "streams.cli", "simulate", "--scenario", scenario]
        argv += [*OPERATOR_ARGS, *args, "--model-id", self.model_id, "--follow-deployments"]
        argv += ["--predictions-topic", self.topics["predictions"]]
        argv += ["--ground-truth-topic", self.topics["ground-truth"]]
        argv += ["--deployments-topic", self.topics["model-deployments"]]
        log = (self.workdir / "simulate.log").open("wb")
        return subprocess.Popen(argv, env=self.env, cwd=ROOT, stdout=log, stderr=log)

    def stop(self) -> None:
        for monitor in self.monitors:
            if monitor.process.poll() is None:
                monitor.stop()
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.stop()

    # -- reading --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """This model's checkpointed status, as ``driftradar status`` merges it (``{}``
        before the first checkpoint), read in-process: fast enough to catch short states."""
        client = redis.Redis.from_url(self.redis_url)
        try:
            models = merge_models(s.status for s in CheckpointStore(client, self.group).statuses())
        finally:
            client.close()
        return dict(models.get(self.model_id, {}))

    def status_command(self) -> dict[str, Any]:
        """``driftradar status --json`` of the loop's group (what an operator runs)."""
        return status_json(self.env, self.group)

    def wait_for_status(self, what: str, check: Callable[[dict[str, Any]], bool]) -> None:
        wait_until(what, lambda: check(self.status()), timeout=120.0)

    def read(self, read_topic: ReadTopic) -> LoopRecord:
        def decoded(name: str, decode: Callable[[bytes], T]) -> list[T]:
            return [decode(m.value() or b"") for m in read_topic(self.topics[name])]

        def unique(items: list[T], key: Callable[[T], str]) -> list[T]:
            seen: dict[str, T] = {}
            for item in items:
                seen.setdefault(key(item), item)
            return list(seen.values())

        predictions = decoded("predictions", decode_prediction)
        predictions.sort(key=lambda p: p.event_time())
        truth = decoded("ground-truth", decode_ground_truth)
        labels = {g.event_id: float(g.label) for g in truth}
        return LoopRecord(
            predictions=predictions,
            labels=labels,
            alerts=unique(decoded("drift-alerts", decode_alert), lambda a: a.alert_id),
            requests=unique(
                decoded("retrain-requests", decode_retrain_request), lambda r: r.request_id
            ),
            results=unique(
                decoded("retrain-results", decode_retrain_result), lambda r: r.result_id
            ),
            deployments=decoded("model-deployments", decode_deployment),
        )
