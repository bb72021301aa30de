"""End-to-end throughput of the monitor against the raw consume limit, in the same run.

Run ``python -m benchmarks.throughput [--events N] [--models 1,10,100]``. Uses the broker and
Redis named by ``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL`` when both are set, else starts a
local stack. For each model count:

1. produce N events on fresh topics: predictions with 10 numeric and 2 categorical
   features, and a ground-truth label for every prediction (N/2 of each);
2. **raw limit**: a bare confluent-kafka consumer reads and decodes every message, nothing
   else (the ceiling any Python monitor on this broker can reach);
3. **monitor**: in a fresh child process (so the memory figure is its own), the real runner +
   engine (decode, detectors, joins, alerts, Redis checkpoints, Kafka commits) over the same
   messages, timed from the first to the last applied record.

The table gives events/s of both, their ratio, and the peak RSS sampled while the monitor
ran. A second table splits the monitor's wall time per event (µs) by step of its loop, each
step's own time without the steps it calls: ``poll`` (``consume``, waiting for the fetcher
included), ``decode`` (messages to records, offsets, the two topics' event-time merge),
``redis`` (the pending predictions' lookups), ``engine`` (``Engine.process``: join, detectors,
alerts; also where a checkpoint applies held records), ``publish`` (alerts out), ``metrics``
(the batch's metrics, the view), ``ckpt`` (checkpoints: encoding, Redis, commit) and
``other`` (the rest of the loop: per-model chunks, ticks, turns). Nothing here asserts a
speed; read the ratio.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any, Final

import numpy as np
import psutil
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from msgspec.structs import astuple

from streams.core.events import (
    GroundTruth,
    Prediction,
    decode_ground_truth,
    decode_prediction,
    encode,
)
from streams.core.kafka import TEST_GROUP, consumer_config, producer_config
from streams.core.settings import TOPICS, TopicsConfig
from streams.core.topics import ensure_topics
from streams.engine.config import CheckpointConfig, JoinConfig, MonitorConfig

__all__ = ["main"]

PARTITIONS: Final = 4
NUMERIC: Final = tuple(f"num_{i}" for i in range(10))
CATEGORIES: Final = {
    "contract": ("month-to-month", "one-year", "two-year"),
    "payment": ("card", "bank", "check", "wallet"),
}


def produce(bootstrap: str, predictions: str, truth: str, events: int, models: int) -> None:
    """``events`` messages: half predictions, half their labels, keyed by model."""
    rng = np.random.default_rng(1)
    producer = Producer(producer_config(bootstrap, {"linger.ms": 20, "batch.size": 1_000_000}))
    pairs = events // 2
    numeric = rng.normal(50.0, 10.0, (pairs, len(NUMERIC))).round(3)
    scores = rng.random(pairs)
    base = 1_790_000_000.0
    for i in range(pairs):
        model_id = f"model-{i % models}"
        event_id = f"e{i}"
        features: dict[str, float | str | bool | None] = dict(
            zip(NUMERIC, numeric[i].tolist(), strict=True)
        )
        for name, values in CATEGORIES.items():
            features[name] = values[i % len(values)]
        key = model_id.encode()
        prediction = Prediction(
            event_id=event_id,
            model_id=model_id,
            model_version="v1",
            timestamp=base + i * 0.01,
            features=features,
            prediction=float(scores[i]),
        )
        label = GroundTruth(
            event_id=event_id,
            model_id=model_id,
            timestamp=base + i * 0.01 + 5,
            label=int(scores[i] > 0.5),
        )
        while True:
            try:
                producer.produce(predictions, encode(prediction), key)
                producer.produce(truth, encode(label), key)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(60):
        raise RuntimeError("benchmark producer could not deliver every message")


def raw_consume(bootstrap: str, topics: Sequence[str], events: int) -> float:
    """Seconds for a bare consumer to consume and decode ``events`` messages."""
    consumer = Consumer(consumer_config(bootstrap, f"bench-raw-{uuid.uuid4().hex}"))
    predictions = topics[0]
    seen = 0
    # timed from the assignment (no group join here), so prefetching is inside the window
    start = time.perf_counter()
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in range(4)])
    try:
        while seen < events:
            for message in consumer.consume(2000, 1.0):
                if message.error() is not None:
                    continue
                value = message.value() or b""
                if message.topic() == predictions:
                    decode_prediction(value)
                else:
                    decode_ground_truth(value)
                seen += 1
    finally:
        consumer.close()
    return time.perf_counter() - start


#: The steps of the loop that ``monitor_run`` times (the module doc says what each holds).
PHASES: Final = ("poll", "decode", "redis", "engine", "publish", "metrics", "ckpt")


class PhaseClock:
    """Wall seconds per named step, each without the steps nested in it (one thread).

    >>> ticks = iter([0.0, 1.0, 3.0, 4.0])
    >>> clock = PhaseClock(lambda: next(ticks))
    >>> inner = clock.timed("inner", lambda: None)
    >>> outer = clock.timed("outer", inner)
    >>> outer()  # outer 0..4, inner 1..3
    >>> dict(clock.seconds)
    {'outer': 2.0, 'inner': 2.0}
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self._clock = clock
        self._running: list[list[Any]] = []  # [name, since] of each open step, innermost last

    def timed(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function``, its time charged to ``name``."""

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            now = self._clock()
            running = self._running
            if running:  # the caller's step pauses
                outer = running[-1]
                self.seconds[outer[0]] += now - outer[1]
            running.append([name, now])
            try:
                return function(*args, **kwargs)
            finally:
                now = self._clock()
                self.seconds[name] += now - running.pop()[1]
                if running:
                    running[-1][1] = now

        return wrapper


def monitor_run(
    bootstrap: str,
    redis_url: str,
    topics: Sequence[str],
    events: int,
    *,
    batch_size: int,
    checkpoint_events: int,
) -> tuple[float, int, int, dict[str, float]]:
    """Seconds for the runner + engine to apply ``events`` records; peak RSS; checkpoints;
    seconds per step of the loop in that time (:data:`PHASES` and ``other``)."""
    from streams.engine.engine import Engine
    from streams.runner.app import Runner, RunnerSettings, _Loop
    from streams.runner.pending import PendingHooks

    settings = RunnerSettings(
        bootstrap=bootstrap,
        redis_url=redis_url,
        group_id=f"bench-{uuid.uuid4().hex}",
        topics=TopicsConfig(*topics),
        checkpoint=CheckpointConfig(every_events=checkpoint_events),
        group_timings=dict(TEST_GROUP),
        batch_size=batch_size,
        # the labels' topic ends 30 s of event time after the predictions': the event-time
        # merge then waits max_idle_seconds (2 s) for more before it lets that tail go — a
        # live-tail latency, not a cost per event; the timing would count it once per run
        join=JoinConfig(max_idle_seconds=0.05),
    )
    engine = Engine(MonitorConfig())
    phases = PhaseClock()
    engine.process = phases.timed("engine", engine.process)  # type: ignore[method-assign]
    runner = Runner(settings, engine)
    steps = {
        (_Loop, "_poll"): "poll",
        (_Loop, "_decode"): "decode",
        (PendingHooks, "prefetch"): "redis",
        (_Loop, "_publish"): "publish",
        (_Loop, "_observe"): "metrics",
        (_Loop, "_checkpoint"): "ckpt",
    }
    originals = {(owner, method): getattr(owner, method) for owner, method in steps}
    for (owner, method), name in steps.items():
        setattr(owner, method, phases.timed(name, originals[owner, method]))
    failure: list[BaseException] = []

    def target() -> None:
        try:
            runner.run(handle_signals=False)
        except BaseException as exc:  # reported below
            failure.append(exc)

    thread = threading.Thread(target=target, name="monitor")
    process = psutil.Process()
    peak = process.memory_info().rss
    thread.start()
    while runner.events == 0 and thread.is_alive():
        time.sleep(0.001)
    start = time.perf_counter()
    before = dict(phases.seconds)
    while runner.events < events and thread.is_alive():
        time.sleep(0.01)
        peak = max(peak, process.memory_info().rss)
    elapsed = time.perf_counter() - start
    spent = {name: phases.seconds[name] - before.get(name, 0.0) for name in PHASES}
    runner.stop()
    thread.join()
    for (owner, method), original in originals.items():
        setattr(owner, method, original)
    if failure:
        raise failure[0]
    spent["other"] = elapsed - sum(spent.values())
    return elapsed, peak, runner.checkpoints, spent


def monitor_child(args: argparse.Namespace) -> dict[str, Any]:
    """Child mode: run the monitor alone in this process, so its memory is its own."""
    topics = args.topics.split(",")
    elapsed, peak, checkpoints, spent = monitor_run(
        os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        os.environ["REDIS_URL"],
        topics,
        args.events,
        batch_size=args.batch_size,
        checkpoint_events=args.checkpoint_events,
    )
    return {
        "monitor_per_s": args.events / elapsed,
        "peak_rss_mib": peak / 2**20,
        "checkpoints": checkpoints,
        "us_per_event": {name: seconds / args.events * 1e6 for name, seconds in spent.items()},
    }


def one(models: int, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """Produce a stream for ``models`` models, then time the raw consumer and the monitor."""
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    topics = [prefix + name for name in astuple(TOPICS)]
    ensure_topics(bootstrap, topics, PARTITIONS)
    produce(bootstrap, topics[0], topics[1], args.events, models)
    raw = raw_consume(bootstrap, topics[:2], args.events)
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.throughput",
            "--monitor-child",
            "--topics",
            ",".join(topics),
            "--events",
            str(args.events),
            "--batch-size",
            str(args.batch_size),
            "--checkpoint-events",
            str(args.checkpoint_events),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"monitor child failed:\n{child.stderr}")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    result.update(models=models, events=args.events, raw_per_s=args.events / raw)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="events per model count")
    parser.add_argument("--models", default="1,10,100", help="comma-separated model counts")
    parser.add_argument("--batch-size", type=int, default=10_000, help="monitor poll batch")
    parser.add_argument(
        "--checkpoint-events",
        type=int,
        default=MonitorConfig().checkpoint.every_events,
        help="checkpoint every N events (default: the config default)",
    )
    parser.add_argument("--monitor-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--topics", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.monitor_child:
        print(json.dumps(monitor_child(args)))
        return 0
    with ExitStack() as stack:
        env = dict(os.environ)
        if not (env.get("KAFKA_BOOTSTRAP_SERVERS") and env.get("REDIS_URL")):
            from streams.stack import LocalStack

            local = stack.enter_context(LocalStack())
            env.update(KAFKA_BOOTSTRAP_SERVERS=local.bootstrap, REDIS_URL=local.redis_url)
        rows = [one(int(models), args, env) for models in args.models.split(",")]
    print(f"batch size {args.batch_size}, checkpoint every {args.checkpoint_events} events")
    _print_table(rows)
    return 0


def _print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'models':>6} {'events':>8} {'raw consume+decode':>19} {'monitor end-to-end':>19} "
        f"{'ratio':>6} {'peak RSS':>9} {'checkpoints':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['models']:>6} {r['events']:>8} {r['raw_per_s']:>13,.0f} ev/s "
            f"{r['monitor_per_s']:>13,.0f} ev/s {r['monitor_per_s'] / r['raw_per_s']:>6.0%} "
            f"{r['peak_rss_mib']:>5.0f} MiB {r['checkpoints']:>11}"
        )
    names = [*PHASES, "other"]
    header = f"{'models':>6} " + " ".join(f"{name:>7}" for name in names) + f" {'all':>7}"
    print("\nmonitor, µs of wall time per event by step of its loop (module doc)")
    print(header)
    print("-" * len(header))
    for r in rows:
        spent = r["us_per_event"]
        cells = " ".join(f"{spent[name]:>7.2f}" for name in names)
        print(f"{r['models']:>6} {cells} {sum(spent.values()):>7.2f}")


if __name__ == "__main__":
    sys.exit(main())
