"""Reporting from a Faust app against the sync SDK, and Faust's consume rate, in one run.

Run ``python -m benchmarks.faust_reporting [--events N] [--repeat R] [--consume N]``. Uses the
broker and Redis named by ``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL`` when both are set,
else starts a local stack. Three measurements, each against a baseline measured in the same
run:

1. **Reporting rate** — ``N`` predictions (10 numeric + 2 categorical features) logged as
   fast as one caller can: the sync SDK (``MonitorClient``, the baseline), then the Faust
   client (``FaustMonitorClient`` through a Faust app's producer) with Faust's default
   producer settings and with ``producer_linger=0.005`` (the SDK's ``linger.ms=5``); each
   timed from the first call to the end of ``flush`` (every message acknowledged), best of
   ``R``.
2. **End-to-end latency** — a real ``driftradar run`` consumes while each client sends
   predictions at a steady ``--rate``; the monitor's ``/metrics`` is scraped every ~2 ms and
   an event counts as applied when ``driftradar_predictions_total`` of its model reaches it.
   Latency = that scrape's time - the time ``log_prediction`` was called (p50/p99; the scrape
   period adds up to ~2 ms). The monitor polls in batches (``consume(batch, 0.2 s)``): at low
   rates a batch closes on the poll timeout, which dominates these figures.
3. **Consume rate** — ``--consume`` prediction messages (433 B) on a 4-partition topic, read
   by a bare confluent-kafka consumer in batches (``consume(10000)``, as the monitor's runner
   reads: the baseline), by one calling ``poll()`` per message, and by a bare Faust agent
   (``async for value in stream``), values touched, nothing decoded. The confluent consumers
   assign themselves the partitions and are timed from ``assign`` (fetching included; best
   of 2 interleaved passes); the Faust agent joins a group and is timed from its first
   message (join and first fetch excluded, in its favour) to its last.

Nothing here asserts a speed; read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from bisect import bisect_left
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Final

import faust
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition

from benchmarks.event_decode import make_messages
from producers import MonitorClient
from producers.faust_client import FaustMonitorClient
from streams.core.kafka import TEST_GROUP, consumer_config, faust_group_settings, producer_config
from streams.core.topics import ensure_topics

__all__ = ["main"]

PARTITIONS: Final = 4
_NUMERIC: Final = tuple(f"num_{i}" for i in range(10))
_CATEGORIES: Final = {
    "contract": ("month-to-month", "one-year", "two-year"),
    "payment": ("card", "bank", "check", "wallet"),
}
_MONITOR_TOPICS: Final = ("predictions", "ground-truth", "drift-alerts", "retrain-requests")
_COUNTER: Final = re.compile(
    r'^driftradar_predictions_total\{[^}]*model_id="([^"]+)"[^}]*\} (\S+)$'
)


def _features(i: int) -> dict[str, float | str | bool | None]:
    features: dict[str, float | str | bool | None] = {
        name: round(50.0 + ((i * 7919 + k * 104729) % 1000) / 50.0, 3)
        for k, name in enumerate(_NUMERIC)
    }
    for name, values in _CATEGORIES.items():
        features[name] = values[i % len(values)]
    return features


def _faust_app(bootstrap: str, datadir: str, **settings: Any) -> faust.App:
    return faust.App(
        f"bench-faust-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        datadir=datadir,
        web_enabled=False,
        **faust_group_settings(TEST_GROUP),
        **settings,
    )


# -- 1. reporting rate ---------------------------------------------------------------------


def sdk_rate(bootstrap: str, topic: str, events: int) -> float:
    """Events/s of the sync SDK, from the first call to an acknowledged flush."""
    features = [_features(i) for i in range(events)]
    with MonitorClient(bootstrap, predictions_topic=topic) as client:
        client.log_prediction("bench-sdk", features[0], 0.5)
        client.flush()  # the idempotent producer's start-up is not reporting time
        start = time.perf_counter()
        for i in range(events):
            client.log_prediction(f"model-{i % 10}", features[i], 0.5)
        client.flush()
        return events / (time.perf_counter() - start)


def faust_rate(bootstrap: str, topic: str, events: int, datadir: str, **settings: Any) -> float:
    """Events/s of the Faust client through an app's producer (``settings``: Faust's)."""
    features = [_features(i) for i in range(events)]
    app = _faust_app(bootstrap, datadir, **settings)

    async def run() -> float:
        client = FaustMonitorClient(app, predictions_topic=topic)
        try:
            await client.log_prediction("bench-faust", features[0], 0.5)
            await client.flush()  # producer start-up and metadata excluded
            start = time.perf_counter()
            for i in range(events):
                await client.log_prediction(f"model-{i % 10}", features[i], 0.5)
            await client.flush()
            return events / (time.perf_counter() - start)
        finally:
            await app.producer.stop()

    return asyncio.run(run())


# -- 2. end-to-end latency -----------------------------------------------------------------


class Scraper:
    """Scrapes ``driftradar_predictions_total`` per model from ``/metrics`` in a thread."""

    def __init__(self, port: int, period: float = 0.002) -> None:
        self._url = f"http://127.0.0.1:{port}/metrics"
        self._period = period
        self._stop = threading.Event()
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self._thread = threading.Thread(target=self._loop, name="scraper", daemon=True)

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            with urllib.request.urlopen(self._url, timeout=5) as response:
                text = response.read().decode()
            now = time.perf_counter()
            totals: dict[str, float] = {}
            for line in text.splitlines():
                match = _COUNTER.match(line)
                if match:
                    totals[match[1]] = totals.get(match[1], 0.0) + float(match[2])
            for model_id, total in totals.items():
                self.samples.setdefault(model_id, []).append((now, total))
            self._stop.wait(self._period)

    def latencies(self, model_id: str, sent: Sequence[float]) -> list[float]:
        """Seconds from each send to the first scrape that counted it."""
        samples = self.samples.get(model_id, [])
        counts = [count for _, count in samples]
        result = []
        for index, sent_at in enumerate(sent):
            at = bisect_left(counts, index + 1)
            if at == len(samples):
                raise RuntimeError(f"{model_id}: event {index} never counted by the monitor")
            result.append(samples[at][0] - sent_at)
        return result


def _paced(events: int, rate: float) -> list[float]:
    """Offsets (seconds from the start) at which event ``i`` is due."""
    return [i / rate for i in range(events)]


def sdk_paced(bootstrap: str, topic: str, model_id: str, events: int, rate: float) -> list[float]:
    """Send ``events`` predictions at ``rate``; return each call's time."""
    sent = []
    with MonitorClient(bootstrap, predictions_topic=topic) as client:
        client.log_prediction("lat-warm-up", _features(0), 0.5)
        client.flush()  # the producer's start-up is not latency
        start = time.perf_counter()
        for i, due in enumerate(_paced(events, rate)):
            delay = start + due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent.append(time.perf_counter())
            client.log_prediction(model_id, _features(i), 0.5)
    return sent


def faust_paced(
    bootstrap: str, topic: str, model_id: str, events: int, rate: float, datadir: str
) -> list[float]:
    app = _faust_app(bootstrap, datadir, producer_linger=0.005)
    sent: list[float] = []

    async def run() -> None:
        client = FaustMonitorClient(app, predictions_topic=topic)
        try:
            await client.log_prediction("lat-warm-up", _features(0), 0.5)
            await client.flush()  # the producer's start-up is not latency
            start = time.perf_counter()
            for i, due in enumerate(_paced(events, rate)):
                delay = start + due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent.append(time.perf_counter())
                await client.log_prediction(model_id, _features(i), 0.5)
            await client.flush()
        finally:
            await app.producer.stop()

    asyncio.run(run())
    return sent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def latency(env: dict[str, str], events: int, rate: float, datadir: str) -> dict[str, list[float]]:
    """p50/p99 inputs: per client, the latency of each event through ``driftradar run``."""
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    prefix = f"bench-latency-{uuid.uuid4().hex[:8]}-"
    topics = {name: prefix + name for name in (*_MONITOR_TOPICS, "dead-letter", "retrain-results")}
    ensure_topics(bootstrap, topics.values(), PARTITIONS)
    port = _free_port()
    config = Path(datadir) / "monitor.yaml"
    document = {
        "kafka": dict(TEST_GROUP),
        "metrics_port": port,
        "topics": {
            "predictions": topics["predictions"],
            "ground_truth": topics["ground-truth"],
            "alerts": topics["drift-alerts"],
            "retrain_requests": topics["retrain-requests"],
            "dead_letter": topics["dead-letter"],
            "retrain_results": topics["retrain-results"],
        },
    }
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    log_path = Path(datadir) / "monitor.log"
    with log_path.open("wb") as log:
        monitor = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "run", "--group-id", prefix + "g"],
            env={**env, "DRIFTRADAR_CONFIG": str(config)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "assigned partitions" not in log_path.read_text(errors="replace"):
            if monitor.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"monitor did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
        with Scraper(port) as scraper:
            sent_sdk = sdk_paced(bootstrap, topics["predictions"], "lat-sdk", events, rate)
            sent_faust = faust_paced(
                bootstrap, topics["predictions"], "lat-faust", events, rate, datadir
            )
            time.sleep(1.0)  # the last batch's poll timeout, and a scrape after it
        return {
            "sync SDK": scraper.latencies("lat-sdk", sent_sdk),
            "Faust client": scraper.latencies("lat-faust", sent_faust),
        }
    finally:
        monitor.terminate()
        monitor.wait(timeout=30)


# -- 3. consume rate -----------------------------------------------------------------------


def produce_messages(bootstrap: str, topic: str, count: int) -> int:
    """``count`` prediction messages (keyed by 10 model ids); returns their mean size."""
    messages = make_messages(min(count, 50_000))
    producer = Producer(producer_config(bootstrap, {"linger.ms": 20}))
    for i in range(count):
        while True:
            try:
                producer.produce(topic, messages[i % len(messages)], f"model-{i % 10}".encode())
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(60):
        raise RuntimeError("could not deliver the consume benchmark's messages")
    return round(statistics.fmean(len(m) for m in messages))


def confluent_consume(bootstrap: str, topic: str, count: int, *, batch: int | None) -> float:
    """Messages/s of a bare confluent-kafka consumer, from ``assign`` to the last message:
    ``consume(batch)`` calls, or one ``poll()`` per message when ``batch`` is None."""
    consumer = Consumer(consumer_config(bootstrap, f"bench-consume-{uuid.uuid4().hex}"))
    start = time.perf_counter()
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    seen = 0
    try:
        while seen < count:
            messages = consumer.consume(batch, 1.0) if batch else [consumer.poll(1.0)]
            for message in messages:
                if message is not None and message.error() is None and message.value():
                    seen += 1
        return count / (time.perf_counter() - start)
    finally:
        consumer.close()


def faust_consume(bootstrap: str, topic: str, count: int, datadir: str) -> float:
    """Messages/s of a bare Faust agent, from its first message to its last."""
    app = _faust_app(bootstrap, datadir, consumer_auto_offset_reset="earliest")
    source = app.topic(
        topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    marks: dict[str, float] = {}
    done = asyncio.Event()

    async def counter(stream: faust.StreamT[bytes]) -> None:
        seen = 0
        async for value in stream:
            if value is not None:
                if seen == 0:
                    marks["first"] = time.perf_counter()
                seen += 1
                if seen == count:
                    marks["last"] = time.perf_counter()
                    done.set()

    app.agent(source, name="counter")(counter)

    async def run() -> None:
        await app.start()
        try:
            await asyncio.wait_for(done.wait(), timeout=600)
        finally:
            await app.stop()

    asyncio.run(run())
    return (count - 1) / (marks["last"] - marks["first"])


# -- the run -------------------------------------------------------------------------------


def _best(repeat: int, measure: Callable[[], float]) -> float:
    return max(measure() for _ in range(repeat))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.faust_reporting", description=__doc__
    )
    parser.add_argument("--events", type=int, default=20_000, help="reporting-rate events")
    parser.add_argument("--repeat", type=int, default=3, help="best of R reporting passes")
    parser.add_argument("--latency-events", type=int, default=2000, help="per client")
    parser.add_argument("--rate", type=float, default=400.0, help="latency send rate, ev/s")
    parser.add_argument("--consume", type=int, default=200_000, help="consume-rate messages")
    args = parser.parse_args(argv)
    for noisy in ("faust", "aiokafka", "mode"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    with ExitStack() as stack:
        env = dict(os.environ)
        if not (env.get("KAFKA_BOOTSTRAP_SERVERS") and env.get("REDIS_URL")):
            from streams.stack import LocalStack

            local = stack.enter_context(LocalStack())
            env.update(KAFKA_BOOTSTRAP_SERVERS=local.bootstrap, REDIS_URL=local.redis_url)
        bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
        datadir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-faust-"))
        topic = f"bench-report-{uuid.uuid4().hex[:8]}"
        ensure_topics(bootstrap, [topic], PARTITIONS)

        rates = {
            "sync SDK (MonitorClient)": _best(
                args.repeat, lambda: sdk_rate(bootstrap, topic, args.events)
            ),
            "Faust client, Faust defaults": _best(
                args.repeat, lambda: faust_rate(bootstrap, topic, args.events, datadir)
            ),
            "Faust client, producer_linger=0.005": _best(
                args.repeat,
                lambda: faust_rate(bootstrap, topic, args.events, datadir, producer_linger=0.005),
            ),
        }
        latencies = latency(env, args.latency_events, args.rate, datadir)

        consume_topic = f"bench-consume-{uuid.uuid4().hex[:8]}"
        ensure_topics(bootstrap, [consume_topic], PARTITIONS)
        size = produce_messages(bootstrap, consume_topic, args.consume)
        batches: list[float] = []
        polls: list[float] = []
        for _ in range(2):  # interleaved, best of 2: the first read of a topic may be slower
            batches.append(confluent_consume(bootstrap, consume_topic, args.consume, batch=10_000))
            polls.append(confluent_consume(bootstrap, consume_topic, args.consume, batch=None))
        consume = {
            "confluent-kafka, consume(10000) batches": max(batches),
            "confluent-kafka, poll() per message": max(polls),
            "Faust agent (aiokafka)": faust_consume(
                bootstrap, consume_topic, args.consume, datadir
            ),
        }

    baseline = rates["sync SDK (MonitorClient)"]
    print(f"Reporting rate: {args.events} predictions, best of {args.repeat}, until acknowledged")
    for name, value in rates.items():
        print(f"  {name:<38} {value:>10,.0f} events/s  {value / baseline:>5.2f}x")
    print(
        f"End-to-end latency, log_prediction -> driftradar run's counter "
        f"({args.latency_events} events per client at {args.rate:g}/s)"
    )
    for name, values in latencies.items():
        ms = sorted(v * 1000 for v in values)
        p50, p99 = ms[len(ms) // 2], ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(f"  {name:<38} p50 {p50:>6.1f} ms   p99 {p99:>6.1f} ms")
    reference = consume["confluent-kafka, consume(10000) batches"]
    print(f"Consume rate: {args.consume} messages of {size} B, {PARTITIONS} partitions")
    for name, value in consume.items():
        print(f"  {name:<38} {value:>10,.0f} msg/s    {value / reference:>6.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
