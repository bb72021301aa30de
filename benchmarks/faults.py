"""Faults the monitor rides out: recovery time, events lost or doubled, and junk memory.

Run ``python -m benchmarks.faults [--only NAME]``. Every fault runs on a private local stack
(a broker and a Redis of this run's own, so they can be frozen and killed) against a real
``driftradar run`` subprocess fed by a paced stream of labelled churn-like events:

* ``broker-frozen-30s`` — SIGSTOP of the broker for 30 s, then SIGCONT;
* ``redis-killed`` — kill -9 of Redis, restarted 5 s later on its append-only file;
* ``redis-frozen-20s`` — SIGSTOP of Redis for 20 s, then SIGCONT;
* ``monitor-killed`` — kill -9 of the monitor, restarted 2 s later.

For each it prints how long the monitor took, from the end of the fault, to write its first
new checkpoint (recovery), how many events were lost or counted twice (the final status
against what was produced), and whether the monitor process was still alive (it must never
exit on its own). ``junk-1M`` then sends 1,000,000 undecodable messages with distinct keys
and prints the monitor's RSS growth, its model count and the size of ``status --json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psutil
import redis
import yaml
from confluent_kafka import Producer

from streams.checkpoint import CheckpointStore
from streams.core.events import FeatureValue, GroundTruth, Prediction, encode
from streams.core.kafka import TEST_GROUP, producer_config
from streams.core.topics import ensure_topics
from streams.stack import LocalStack

__all__ = ["main"]

TOPICS: Final = (
    "predictions",
    "ground-truth",
    "drift-alerts",
    "retrain-requests",
    "dead-letter",
    "retrain-results",
)
PARTITIONS: Final = 4
GROUP: Final = "faults"
MODELS: Final = 3


@dataclass
class Run:
    """One monitor process and where its stack lives."""

    stack: LocalStack
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    def restart(self) -> None:
        self.process = _start_monitor(self.env, self.log)


def _start_monitor(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "run", "--group-id", GROUP],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@contextlib.contextmanager
def monitored_stack(workdir: Path) -> Iterator[Run]:
    """A private stack with the topics and one monitor running on it."""
    with LocalStack(workdir / "stack") as stack:
        ensure_topics(stack.bootstrap, TOPICS, PARTITIONS)
        config = workdir / "monitor.yaml"
        config.write_text(
            yaml.safe_dump({"kafka": dict(TEST_GROUP), "checkpoint": {"every_seconds": 1.0}})
        )
        env = dict(
            os.environ,
            KAFKA_BOOTSTRAP_SERVERS=stack.bootstrap,
            REDIS_URL=stack.redis_url,
            DRIFTRADAR_CONFIG=str(config),
            DRIFTRADAR_METRICS_PORT="0",
        )
        log = workdir / "monitor.log"
        run = Run(stack, env, _start_monitor(env, log), log)
        try:
            yield run
        finally:
            if run.process.poll() is None:
                run.process.send_signal(signal.SIGTERM)
                run.process.wait(timeout=60)


class PacedStream:
    """Predictions and their labels at ``rate`` events/s, in a thread, until stopped."""

    def __init__(self, bootstrap: str, rate: float) -> None:
        self.sent = 0
        self._stop = threading.Event()
        self._producer = Producer(producer_config(bootstrap, {"linger.ms": 5}))
        self._rate = rate
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        i = 0
        while not self._stop.is_set():
            model = f"m{i % MODELS}"
            t = 1_790_000_000.0 + i
            features: dict[str, FeatureValue] = {
                "tenure": float(i % 60),
                "charges": 20.0 + i % 97,
                "plan": "abc"[i % 3],
            }
            self._send("predictions", Prediction(f"e{i}", model, features, 0.3, timestamp=t))
            self._send("ground-truth", GroundTruth(f"e{i}", model, i % 2, timestamp=t + 60))
            i += 1
            self.sent += 2
            ahead = self.sent / self._rate - (time.monotonic() - start)
            if ahead > 0:
                self._producer.poll(0)
                time.sleep(ahead)

    def _send(self, topic: str, event: Prediction | GroundTruth) -> None:
        while True:
            try:
                self._producer.produce(topic, encode(event), event.model_id.encode())
                return
            except BufferError:
                self._producer.poll(0.1)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        if self._producer.flush(120):
            raise RuntimeError("the benchmark's producer could not deliver every event")
        return self.sent


def _checkpointed(client: redis.Redis) -> tuple[int, float]:
    """(records checkpointed in total, latest checkpoint time); (-1, 0) while Redis is away."""
    try:
        stored = CheckpointStore(client, GROUP).statuses()
    except (redis.ConnectionError, redis.TimeoutError):
        return -1, 0.0
    total = sum(sum(s.offsets.values()) for s in stored)
    return total, max((s.updated_at for s in stored), default=0.0)


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _status(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "status", "--json", "--group-id", GROUP],
        env=env,
        capture_output=True,
        check=True,
    )
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def _fault(name: str, run: Run) -> float:
    """Inject fault ``name``; returns the wall-clock time it ended."""
    stack = run.stack
    if name == "broker-frozen-30s":
        stack.pause("kafka")
        time.sleep(30)
        stack.resume("kafka")
    elif name == "redis-killed":
        stack.kill("redis")
        time.sleep(5)
        stack.restart("redis")
    elif name == "redis-frozen-20s":
        stack.pause("redis")
        time.sleep(20)
        stack.resume("redis")
    elif name == "monitor-killed":
        run.process.send_signal(signal.SIGKILL)
        run.process.wait()
        time.sleep(2)
        run.restart()
    else:
        raise ValueError(f"unknown fault {name!r}")
    return time.time()


def measure_fault(name: str, workdir: Path, rate: float) -> dict[str, Any]:
    with monitored_stack(workdir) as run:
        client = redis.Redis.from_url(run.stack.redis_url, socket_timeout=2)
        stream = PacedStream(run.stack.bootstrap, rate)
        _wait(lambda: _checkpointed(client)[0] > 2000, 60, "a first checkpoint")
        ended = _fault(name, run)
        _wait(lambda: _checkpointed(client)[1] > ended, 120, "a checkpoint after the fault")
        recovery = _checkpointed(client)[1] - ended
        time.sleep(3)
        sent = stream.stop()
        _wait(lambda: _checkpointed(client)[0] >= sent, 120, "the whole stream")
        alive = run.process.poll() is None
        status = _status(run.env)
        applied = sum(m["predictions"] + m["ground_truth"] for m in status["models"].values())
        joined = sum(m["joined"] for m in status["models"].values())
        client.close()
    return {
        "fault": name,
        "recovery_s": recovery,
        "sent": sent,
        "lost": max(sent - applied, 0),
        "doubled": max(applied - sent, 0),
        "unjoined": sent // 2 - joined,
        "alive": alive,
    }


def measure_junk(workdir: Path, messages: int) -> dict[str, Any]:
    """RSS of the monitor before and after ``messages`` junk messages with distinct keys.

    A first tenth of the junk is sent before the baseline is taken: a consumer that falls
    behind fills librdkafka's prefetch queue once (a bounded cost, the same for any
    backlog of small messages); what is measured is what the junk itself adds.
    """
    with monitored_stack(workdir) as run:
        client = redis.Redis.from_url(run.stack.redis_url)
        stream = PacedStream(run.stack.bootstrap, 2000.0)
        time.sleep(5)
        sent = stream.stop()
        _wait(lambda: _checkpointed(client)[0] >= sent, 60, "the valid stream")
        monitor = psutil.Process(run.process.pid)
        producer = Producer(producer_config(run.stack.bootstrap, {"linger.ms": 20}))
        warm = messages // 10
        peak = 0

        def junk(first: int, count: int) -> int:
            for i in range(first, first + count):
                while True:
                    try:
                        producer.produce(TOPICS[0], b"{not json", f"junk-{i}".encode())
                        break
                    except BufferError:
                        producer.poll(0.05)
            producer.flush(120)
            target = sent + first + count
            high = 0

            def consumed() -> bool:
                nonlocal high
                high = max(high, monitor.memory_info().rss)
                return _checkpointed(client)[0] >= target

            _wait(consumed, 600, "the junk")
            return high

        peak = junk(0, warm)
        before = monitor.memory_info().rss
        peak = max(peak, junk(warm, messages))
        after = monitor.memory_info().rss
        status = _status(run.env)
        size = len(json.dumps(status))
        client.close()
    return {
        "junk": messages,
        "rss_before_mib": before / 2**20,
        "rss_after_mib": after / 2**20,
        "rss_peak_mib": peak / 2**20,
        "models": len(status["models"]),
        "status_bytes": size,
    }


FAULTS: Final = ("broker-frozen-30s", "redis-killed", "redis-frozen-20s", "monitor-killed")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__)
    parser.add_argument("--only", choices=(*FAULTS, "junk-1M"), help="run one part only")
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s during faults")
    parser.add_argument("--junk", type=int, default=1_000_000, help="junk messages")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="driftradar-faults-") as tmp:
        rows = []
        for name in FAULTS:
            if args.only in (None, name):
                rows.append(measure_fault(name, Path(tmp) / name, args.rate))
        if rows:
            print(
                f"{'fault':<20} {'recovery':>9} {'events':>8} {'lost':>5} {'doubled':>8} "
                f"{'unjoined':>9} {'alive':>6}"
            )
            for r in rows:
                print(
                    f"{r['fault']:<20} {r['recovery_s']:>7.1f} s {r['sent']:>8} {r['lost']:>5} "
                    f"{r['doubled']:>8} {r['unjoined']:>9} {r['alive']!s:>6}"
                )
        if args.only in (None, "junk-1M"):
            junk = measure_junk(Path(tmp) / "junk", args.junk)
            growth = junk["rss_after_mib"] - junk["rss_before_mib"]
            print(
                f"\n{junk['junk']:,} junk messages with distinct keys: RSS "
                f"{junk['rss_before_mib']:.0f} → {junk['rss_after_mib']:.0f} MiB "
                f"({growth:+.1f} MiB; peak {junk['rss_peak_mib']:.0f} MiB), "
                f"{junk['models']} models, status --json {junk['status_bytes']:,} bytes"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
