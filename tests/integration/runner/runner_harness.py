"""Helpers for the runner's end-to-end tests: a deterministic stream, monitor processes.

The stream is produced with confluent-kafka and the contract's ``encode`` (every prediction
labelled, keyed by model), with a few bad messages mixed in. Monitors run as subprocesses so
that tests can ``kill -9`` them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import redis
import yaml
from confluent_kafka import Producer
from redis.backoff import NoBackoff
from redis.retry import Retry

from streams.checkpoint import CheckpointStore
from streams.core.events import GroundTruth, Prediction, encode
from streams.core.kafka import TEST_GROUP, producer_config

ROOT = Path(__file__).resolve().parents[3]
#: The topics a monitor needs (contract names; tests prefix them per test).
TOPICS = (
    "predictions",
    "ground-truth",
    "drift-alerts",
    "retrain-requests",
    "dead-letter",
    "retrain-results",
)
COUNTING_MONITOR = Path(__file__).with_name("counting_monitor.py")

#: Messages that must end in the dead-letter topic: invalid JSON, schema breaks, empty value.
BAD_MESSAGES: tuple[bytes, ...] = (
    b"{not json",
    b'{"event_id": "x", "model_id": "m0", "prediction": 0.5}',
    b'{"event_id": "x", "model_id": "m0", "features": {"a": [1]}, "prediction": 0.5}',
    b"[]",
    b'{"event_id": "x", "model_id": "not-the-key", "features": {}, "prediction": 0.5}',
)


@dataclass
class Stream:
    """What was produced: end offsets per (topic, partition), the bad messages' places, and
    every message as (offset, key, value) per (topic, partition)."""

    end_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    bad: list[tuple[str, int, int, bytes]] = field(default_factory=list)
    events: int = 0
    messages: dict[tuple[str, int], list[tuple[int, bytes, bytes]]] = field(default_factory=dict)

    def counting_models(self, predictions_topic: str) -> dict[str, dict[str, Any]]:
        """What the counting monitor (counting_monitor.py) must report after consuming the
        whole stream exactly once in offset order: an oracle that needs no second run."""
        models: dict[str, dict[str, Any]] = {}
        for (topic, partition), produced in sorted(self.messages.items()):
            kind = "p" if topic == predictions_topic else "g"
            for offset, key, value in sorted(produced):
                model = models.setdefault(
                    key.decode(),
                    {
                        "predictions": 0,
                        "ground_truth": 0,
                        "dead_letters": 0,
                        "partition": partition,
                        "digest": {"p": "", "g": ""},
                    },
                )
                if value in BAD_MESSAGES:
                    model["dead_letters"] += 1
                    continue
                model["predictions" if kind == "p" else "ground_truth"] += 1
                event_id = msgspec.json.decode(value)["event_id"]
                step = f"{model['digest'][kind]}|{offset}:{event_id}"
                model["digest"][kind] = hashlib.sha1(step.encode()).hexdigest()
        return models

    def expected_offsets(self, partitions: int) -> dict[int, dict[str, int]]:
        """The next offsets a monitor has stored once it consumed everything."""
        expected: dict[int, dict[str, int]] = {p: {} for p in range(partitions)}
        for (topic, partition), end in self.end_offsets.items():
            expected[partition][topic] = end
        return expected


def produce_stream(
    bootstrap: str,
    predictions_topic: str,
    truth_topic: str,
    *,
    models: int = 4,
    per_model: int = 1000,
    features: int = 4,
    bad_every: int = 0,
    drift_after: float = 0.6,
    seed: int = 7,
    rate: float | None = None,
) -> Stream:
    """Produce ``models * per_model`` labelled predictions; ``rate`` (events/s) paces it.

    Features shift after ``drift_after`` of each model's stream so detectors have work.
    Every ``bad_every``-th prediction is followed by one of :data:`BAD_MESSAGES`.
    """
    rng = np.random.default_rng(seed)
    stream = Stream()
    producer = Producer(producer_config(bootstrap, {"linger.ms": 2}))

    def delivered(err: Any, msg: Any) -> None:
        assert err is None, err
        key = (msg.topic(), msg.partition())
        stream.end_offsets[key] = max(stream.end_offsets.get(key, 0), msg.offset() + 1)
        value = msg.value()
        stream.messages.setdefault(key, []).append((msg.offset(), msg.key(), value))
        if value in BAD_MESSAGES:
            stream.bad.append((msg.topic(), msg.partition(), msg.offset(), value))

    start = time.monotonic()
    base_time = 1_790_000_000.0
    sent = 0
    for i in range(per_model):
        shift = 1.5 if i >= drift_after * per_model else 0.0
        for m in range(models):
            model_id = f"m{m}"
            values = rng.normal(shift, 1.0, features)
            score = float(1 / (1 + np.exp(-values[0])))
            event_id = f"{model_id}-{i}"
            event_time = base_time + i
            prediction = Prediction(
                event_id=event_id,
                model_id=model_id,
                model_version="v1",
                timestamp=event_time,
                features={f"f{k}": float(values[k]) for k in range(features)}
                | {"plan": ["basic", "premium", "pro"][i % 3]},
                prediction=score,
            )
            label = GroundTruth(
                event_id=event_id,
                model_id=model_id,
                timestamp=event_time + 30,
                label=int(rng.random() < (score if shift == 0 else 1 - score)),
            )
            key = model_id.encode()
            producer.produce(predictions_topic, encode(prediction), key, on_delivery=delivered)
            producer.produce(truth_topic, encode(label), key, on_delivery=delivered)
            sent += 2
            if bad_every and i % bad_every == bad_every - 1:
                bad = BAD_MESSAGES[(i // bad_every + m) % len(BAD_MESSAGES)]
                producer.produce(predictions_topic, bad, key, on_delivery=delivered)
                sent += 1
            if rate is not None:
                ahead = sent / rate - (time.monotonic() - start)
                if ahead > 0:
                    producer.poll(0)
                    time.sleep(ahead)
        producer.poll(0)
    assert producer.flush(30) == 0
    stream.events = sent
    return stream


def write_config(path: Path, topics: Mapping[str, str], **checkpoint: Any) -> Path:
    """A monitor config naming the test's topics, with the fast test group timings."""
    document = {
        "kafka": dict(TEST_GROUP),
        "topics": {
            "predictions": topics["predictions"],
            "ground_truth": topics["ground-truth"],
            "alerts": topics["drift-alerts"],
            "retrain_requests": topics["retrain-requests"],
            "dead_letter": topics["dead-letter"],
            "retrain_results": topics["retrain-results"],
        },
        "checkpoint": {"every_events": 500, "every_seconds": 0.5, **checkpoint},
        # a side waits for the other this long when that one is quiet (labels are produced
        # 30 s of event time ahead of their predictions): longer than any producer stall
        "defaults": {"join": {"max_idle_seconds": 5.0}},
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def monitor_env(bootstrap: str, redis_url: str, config: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        REDIS_URL=redis_url,
        DRIFTRADAR_CONFIG=str(config),
        PYTHONPATH=str(ROOT),
        DRIFTRADAR_METRICS_PORT="0",  # several monitors per test: each on a free port
    )
    env.pop("DRIFTRADAR_GROUP_ID", None)
    return env


@dataclass
class Monitor:
    """A monitor subprocess and its log file."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, *, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until ``text`` appeared ``count`` times in the log."""
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} (x{count}) in the log:\n{self.log()}")
            time.sleep(0.05)

    def stop(self, *, kill: bool = False) -> int:
        """SIGKILL (``kill``) or SIGTERM, then wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"monitor did not stop on SIGTERM:\n{self.log()}") from None


def start_monitor(
    env: Mapping[str, str], group: str, *extra: str, counting: bool = False
) -> Monitor:
    """``driftradar run`` (or the counting-engine monitor) as a subprocess."""
    if counting:
        argv = [sys.executable, str(COUNTING_MONITOR)]
    else:
        argv = [sys.executable, "-m", "streams.cli", "run"]
    argv += ["--group-id", group, "--batch-size", "500", *extra]
    log_path = Path(env["DRIFTRADAR_CONFIG"]).with_suffix(f".{time.monotonic_ns()}.log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, env=dict(env), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    return Monitor(process, log_path)


def checkpointed_offsets(client: redis.Redis, group: str) -> dict[int, dict[str, int]]:
    """The stored next offsets per partition (``{}`` while Redis is away: chaos tests)."""
    try:
        return {s.partition: dict(s.offsets) for s in CheckpointStore(client, group).statuses()}
    except (redis.ConnectionError, redis.TimeoutError):
        return {}


def wait_for_offsets(
    client: redis.Redis,
    group: str,
    expected: Mapping[int, Mapping[str, int]],
    *,
    timeout: float = 60.0,
    monitors: Sequence[Monitor] = (),
) -> None:
    """Wait until the group's checkpoints hold ``expected`` offsets for every partition."""
    deadline = time.monotonic() + timeout
    while True:
        stored = checkpointed_offsets(client, group)
        if all(dict(stored.get(p, {})) == dict(offsets) for p, offsets in expected.items()):
            return
        for monitor in monitors:
            if monitor.process.poll() is not None:
                raise AssertionError(
                    f"monitor exited early ({monitor.process.returncode}):\n{monitor.log()}"
                )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: checkpoints {stored}, expected {dict(expected)}")
        time.sleep(0.1)


def wait_for_progress(
    client: redis.Redis, group: str, *, beyond: int, timeout: float = 30.0
) -> int:
    """Wait until the group checkpointed more than ``beyond`` records in total; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        total = sum(sum(o.values()) for o in checkpointed_offsets(client, group).values())
        if total > beyond:
            return total
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint beyond {beyond} records within {timeout} s")


def status_json(env: Mapping[str, str], group: str) -> dict[str, Any]:
    """``driftradar status --json`` of ``group``."""
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "status", "--json", "--group-id", group],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    )
    document: dict[str, Any] = msgspec.json.decode(done.stdout)
    return document


def run_to_end(
    env: dict[str, str],
    client: redis.Redis,
    group: str,
    stream: Stream,
    partitions: int,
    *,
    counting: bool = False,
) -> dict[str, Any]:
    """Run one monitor of ``group`` until it has checkpointed the whole stream, stop it
    cleanly and return ``status --json``."""
    monitor = start_monitor(env, group, counting=counting)
    wait_for_offsets(client, group, stream.expected_offsets(partitions), monitors=[monitor])
    assert monitor.stop() == 0, monitor.log()
    return status_json(env, group)


class BackgroundStream:
    """:func:`produce_stream` in a thread, so monitors can be killed while it is consumed."""

    def __init__(self, bootstrap: str, topics: Mapping[str, str], **kw: Any) -> None:
        self._result: list[Stream] = []
        self._thread = threading.Thread(
            target=lambda: self._result.append(
                produce_stream(bootstrap, topics["predictions"], topics["ground-truth"], **kw)
            )
        )
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self) -> Stream:
        self._thread.join()
        return self._result[0]


def kill_repeatedly(
    env: dict[str, str],
    client: redis.Redis,
    group: str,
    background: BackgroundStream | None,
    *,
    seed: int,
    max_pause: float,
    counting: bool = False,
    kills: int = 4,
) -> int:
    """kill -9 a fresh monitor of ``group`` at random moments (after it made progress) while
    the stream is produced (``background``; ``None``: a backlog produced before), at most
    ``kills`` times; returns how many kills happened."""
    rng = random.Random(seed)
    seen, done = 0, 0
    while (background is None or background.is_alive()) and done < kills:
        monitor = start_monitor(env, group, counting=counting)
        seen = wait_for_progress(client, group, beyond=seen, timeout=30)
        threading.Event().wait(rng.uniform(0.0, max_pause))
        monitor.stop(kill=True)
        done += 1
    return done


def scale_out_then_fail_over(
    env: dict[str, str],
    client: redis.Redis,
    group: str,
    background: BackgroundStream,
    partitions: int,
    *,
    counting: bool = False,
) -> tuple[Stream, Monitor]:
    """A first member consumes, a second joins, the first is killed; the survivor takes over
    its partitions, consumes to the end and is stopped. Returns the stream and the (stopped)
    survivor."""
    first = start_monitor(env, group, counting=counting)
    seen = wait_for_progress(client, group, beyond=0)
    second = start_monitor(env, group, counting=counting)
    second.wait_for_log("assigned partitions")
    seen = wait_for_progress(client, group, beyond=0)
    wait_for_progress(client, group, beyond=seen + 500)
    first.stop(kill=True)
    # the survivor takes over the dead member's partitions after the session timeout, even
    # when that member had checkpointed them to the end (a slow machine: the stream was done)
    second.wait_for_log("assigned partitions", count=2)
    stream = background.join()
    wait_for_offsets(client, group, stream.expected_offsets(partitions), monitors=[second])
    assert second.stop() == 0, second.log()
    return stream, second


# Keeps Redis busy for ``ARGV[1]`` microseconds, as a long script of another client does (a
# large checkpoint: past ``busy-reply-threshold`` Redis answers every other command BUSY).
_BUSY_SCRIPT = """
local start = redis.call('TIME')
repeat
  local now = redis.call('TIME')
until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > tonumber(ARGV[1])
"""


@contextlib.contextmanager
def redis_busy(redis_url: str, seconds: float) -> Iterator[None]:
    """Redis runs nothing else for ``seconds`` (a script run by another client); the block is
    entered once Redis has stopped answering, and left when the script and the body ended."""
    blocker = redis.Redis.from_url(redis_url, socket_timeout=seconds + 30)
    failed: list[BaseException] = []

    def block() -> None:
        try:
            blocker.eval(_BUSY_SCRIPT, 0, int(seconds * 1e6))
        except BaseException as exc:  # re-raised by the test's thread
            failed.append(exc)

    busy = threading.Thread(target=block)
    busy.start()
    probe = redis.Redis.from_url(redis_url, socket_timeout=0.05, retry=Retry(NoBackoff(), 0))
    deadline = time.monotonic() + seconds / 2
    try:
        while time.monotonic() < deadline:  # until a PING gets no answer (or BUSY)
            try:
                probe.ping()
            except redis.RedisError:
                break
            time.sleep(0.01)
        else:
            raise AssertionError(f"Redis still answered {seconds / 2:.1f} s into the script")
        yield
    finally:
        busy.join()
        probe.close()
        blocker.close()
    if failed:
        raise failed[0]
