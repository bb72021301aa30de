"""Delayed labels at production scale: catch-up of a backlog, memory, checkpoints, estimate.

Run ``python -m benchmarks.backlog_join`` (``--quick`` for smaller sizes). Uses the broker and
Redis named by ``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL`` when both are set, else starts a
local stack. Four tables, each against a baseline of the same run:

1. **Catch-up.** ``producers.backlog``: N predictions (100/s of event time) and their labels,
   log-normal delays around a median of 1 h (10 % never labelled, 0.5 % labelled before the
   prediction, published shuffled by up to 60 s), *all* on the topics before the monitor
   starts. The monitor (runner + engine with default detectors, in a child process) catches
   up; it must join every label whose prediction exists and evict nothing. Baseline: the same
   predictions with labels ~1 s late (interleaved), so nothing waits long.
2. **Memory.** The same with 1000 predictions/s, so that 100 k, 1 M, 3 M predictions are
   pending at the peak: peak RSS of the monitor process (and the store's bytes per entry).
3. **Checkpoint time against the pending count**: the checkpoint script driven directly (no
   broker) with 10 k, 1 M and 10 M pending predictions in Redis, each checkpoint writing the
   same delta (10 000 new entries, 9 000 joined ones deleted, a sweep of 256 buckets).
4. **Estimated vs realised ROC AUC** (CBPE) on the churn simulator's stable, data-drift and
   concept-drift scenarios, per window of 1000 predictions, in process.

Nothing here asserts a figure; read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any, Final

import numpy as np
import psutil
import redis

from producers.backlog import delayed_labels, publish
from streams.core.topics import ensure_topics

__all__ = ["main"]

PARTITIONS: Final = 4
NAMES: Final = (
    "predictions",
    "ground-truth",
    "drift-alerts",
    "retrain-requests",
    "dead-letter",
    "retrain-results",
)


# -- 1 and 2: the monitor catching up (child process) -------------------------------------


def monitor_child(args: argparse.Namespace) -> dict[str, Any]:
    """Child mode: run the runner + engine until ``args.events`` records are applied."""
    from streams.core.kafka import TEST_GROUP
    from streams.core.settings import TopicsConfig
    from streams.engine.config import JoinConfig, MonitorConfig
    from streams.engine.engine import Engine
    from streams.runner.app import Runner, RunnerSettings

    topics = args.topics.split(",")

    class KeepStatus(Engine):
        """The engine's status as it was when the runner let its partitions go."""

        final: dict[str, Any] = {}

        def drop_partition(self, partition: int) -> None:
            models = self.status()["models"]
            if any(m["partition"] == partition for m in models.values()):
                self.final = models
            super().drop_partition(partition)

    config = MonitorConfig.from_mapping({"defaults": {"join": {"max_idle_seconds": 0.25}}})
    engine = KeepStatus(config)
    settings = RunnerSettings(
        bootstrap=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        redis_url=os.environ["REDIS_URL"],
        group_id=f"bench-{uuid.uuid4().hex}",
        topics=TopicsConfig(*topics[:6]),
        group_timings=dict(TEST_GROUP),
        join=JoinConfig(max_idle_seconds=0.25),
    )
    runner = Runner(settings, engine)
    failure: list[BaseException] = []

    def target() -> None:
        try:
            runner.run(handle_signals=False)
        except BaseException as exc:  # reported below
            failure.append(exc)

    thread = threading.Thread(target=target, name="monitor")
    process = psutil.Process()
    peak_rss = process.memory_info().rss
    peak_pending = 0
    thread.start()
    while runner.events == 0 and thread.is_alive():
        time.sleep(0.001)
    start = time.perf_counter()
    last_look = 0.0
    while runner.events < args.events and thread.is_alive():
        time.sleep(0.01)
        peak_rss = max(peak_rss, process.memory_info().rss)
        if time.perf_counter() - last_look > 0.5:  # the pending count, twice a second
            last_look = time.perf_counter()
            views = engine.metrics_view()["models"].values()
            peak_pending = max(peak_pending, sum(v["join_buffer_entries"] for v in views))
    elapsed = time.perf_counter() - start
    runner.stop()
    thread.join()
    if failure:
        raise failure[0]
    model = engine.final["churn"]
    return {
        "per_s": args.events / elapsed,
        "peak_rss_mib": peak_rss / 2**20,
        "peak_pending": peak_pending,
        "joined": model["joined"],
        "join": model["join"],
        "checkpoints": runner.checkpoints,
    }


def catch_up(
    env: dict[str, str], n: int, *, median_delay: float, sigma: float, interval: float = 0.01
) -> dict[str, Any]:
    """Publish a backlog on fresh topics, then time the monitor over all of it."""
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    topics = [prefix + name for name in NAMES]
    ensure_topics(bootstrap, topics, PARTITIONS)
    stream = delayed_labels(n, median_delay=median_delay, sigma=sigma, interval=interval)
    publish(bootstrap, stream, topics[0], topics[1])
    events = len(stream.predictions) + len(stream.labels)
    child = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.backlog_join", "--monitor-child"),
            *("--topics", ",".join(topics), "--events", str(events)),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"monitor child failed:\n{child.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    result.update(predictions=n, labels=len(stream.labels), events=events)
    return result


# -- 3: checkpoints against the pending count ------------------------------------------------


def checkpoint_times(redis_url: str, sizes: Sequence[int], repeat: int) -> list[dict[str, Any]]:
    """Median checkpoint time with the same delta, for each number of pending entries."""
    from streams.checkpoint import CheckpointStore, PartitionCheckpoint
    from streams.engine.pending_codec import (
        buckets_for,
        delta_section,
        locate,
        model_tag,
        pack_values,
    )

    client = redis.Redis.from_url(redis_url)
    buckets = buckets_for(10_000_000)
    tag = model_tag("churn")
    rows = []
    for size in sizes:
        group = f"bench-{uuid.uuid4().hex[:8]}"
        store = CheckpointStore(client, group)
        offset = 0

        def save(
            sets: list[tuple[int, bytes]],
            deletes: list[tuple[int, bytes]],
            sweep: list[int],
            store: CheckpointStore = store,
        ) -> float:
            nonlocal offset
            n = len(sets)
            values = pack_values(
                np.zeros(n, np.uint32),
                np.ones(n, np.uint8),
                np.full(n, 1.8e9),
                np.random.default_rng(n).random(n),
            )
            blob = delta_section(tag, sets, values, deletes, sweep, 1.0e9)
            offset += 1
            checkpoint = PartitionCheckpoint(0, {"p": offset, "g": offset}, {}, {}, pending=blob)
            started = time.perf_counter()
            store.save([checkpoint])
            return time.perf_counter() - started

        ids = [f"id-{k}" for k in range(size)]
        for start in range(0, size, 200_000):  # fill the store
            save([locate(i, buckets) for i in ids[start : start + 200_000]], [], [])
        keys = client.keys(f"driftradar:{{{group}}}:p:0:j:*")
        sample = keys[:: max(1, len(keys) // 2000)]
        sampled_fields = sum(int(client.hlen(k)) for k in sample)
        sampled_bytes = sum(int(client.memory_usage(k) or 0) for k in sample)
        encoding = client.object("encoding", sample[0]) if sample else b"-"
        times = []
        for r in range(repeat):
            new = [locate(f"new-{r}-{k}", buckets) for k in range(10_000)]
            gone = [locate(ids[(r * 9_000 + k) % size], buckets) for k in range(9_000)]
            sweep = [(r * 256 + k) % buckets for k in range(256)]
            times.append(save(new, gone, sweep))
        rows.append(
            {
                "pending": size,
                "median_ms": 1000 * statistics.median(times),
                "p90_ms": 1000 * sorted(times)[int(0.9 * (len(times) - 1))],
                "bytes_per_entry": sampled_bytes / max(1, sampled_fields),
                "encoding": encoding.decode() if isinstance(encoding, bytes) else str(encoding),
            }
        )
        store.delete_group()
    return rows


# -- 4: estimated vs realised ROC AUC ------------------------------------------------------


def estimate_table(events: int, window: int) -> list[dict[str, Any]]:
    """Per window of ``window`` predictions: the CBPE estimate at its end, the realised AUC."""
    from producers.simulator import Kind, Outgoing, Simulation, SimulationConfig
    from streams.core.events import decode_ground_truth, decode_prediction, epoch_seconds
    from streams.engine.config import MonitorConfig
    from streams.engine.engine import Engine
    from streams.engine.performance import compute_metric
    from streams.engine.records import InputRecord

    rows = []
    for scenario in ("stable", "data-drift", "concept-drift"):
        config = MonitorConfig.from_mapping(
            {"defaults": {"performance": {"window": window}, "estimate": {"every": window}}}
        )
        engine = Engine(config, clock=lambda: 0.0)
        simulation = Simulation(
            SimulationConfig(scenario=scenario, events=events, seed=3, label_coverage=1.0)
        )
        records: list[InputRecord] = []
        scores: list[float] = []
        ids: list[str] = []
        truth: dict[str, float] = {}
        for item in simulation:
            if not isinstance(item, Outgoing):
                continue
            if item.kind is Kind.PREDICTION:
                event: Any = decode_prediction(item.value)
                scores.append(float(event.prediction))
                ids.append(event.event_id)
            else:
                event = decode_ground_truth(item.value)
                truth[event.event_id] = float(event.label)
            records.append(InputRecord(event, 0, len(records), epoch_seconds(event.timestamp)))
            if item.kind is Kind.PREDICTION and len(scores) % window == 0:
                engine.process(records)
                records = []
                model = engine._models["churn"]  # noqa: SLF001 - the benchmark reads inside
                estimate = model.estimates.get(model.current or "")
                value = None if estimate is None else estimate.values.get("roc_auc")
                chunk = slice(len(scores) - window, len(scores))
                labels = np.array([truth.get(i, np.nan) for i in ids[chunk]])
                known = ~np.isnan(labels)
                realised = compute_metric(
                    "roc_auc", np.array(scores[chunk])[known], labels[known], 0.5
                )
                change_at = events // 2
                rows.append(
                    {
                        "scenario": scenario,
                        "window_end": len(scores),
                        "regime": "before" if len(scores) <= change_at else "after",
                        "estimated": value,
                        "realised": realised,
                    }
                )
    return rows


# -- the report --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backlog_join", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--only", default="catchup,memory,checkpoint,estimate")
    parser.add_argument("--repeat", type=int, default=2, help="catch-up runs of each kind")
    parser.add_argument("--monitor-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--topics", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.monitor_child:
        print(json.dumps(monitor_child(args)))
        return 0
    parts = set(args.only.split(","))
    scale = 10 if args.quick else 1
    with ExitStack() as stack:
        env = dict(os.environ)
        if not (env.get("KAFKA_BOOTSTRAP_SERVERS") and env.get("REDIS_URL")):
            from streams.stack import LocalStack

            local = stack.enter_context(LocalStack())
            env.update(KAFKA_BOOTSTRAP_SERVERS=local.bootstrap, REDIS_URL=local.redis_url)
        if "catchup" in parts:
            n = 1_000_000 // scale
            runs: dict[str, list[dict[str, Any]]] = {"backlog": [], "interleaved": []}
            for _ in range(args.repeat):  # alternated; the best of each (the machine is shared)
                runs["backlog"].append(catch_up(env, n, median_delay=3600.0, sigma=1.0))
                runs["interleaved"].append(catch_up(env, n, median_delay=1.0, sigma=0.5))
            best = {k: max(v, key=lambda r: r["per_s"]) for k, v in runs.items()}
            _print_catch_up(best["backlog"], best["interleaved"])
        if "memory" in parts:
            rows = [
                catch_up(env, n // scale, median_delay=3600.0, sigma=0.3, interval=0.001)
                for n in (100_000, 1_000_000, 3_000_000)
            ]
            _print_memory(rows)
        if "checkpoint" in parts:
            sizes = (10_000, 1_000_000, 10_000_000) if not args.quick else (10_000, 100_000)
            _print_checkpoints(checkpoint_times(env["REDIS_URL"], sizes, repeat=15))
        if "estimate" in parts:
            _print_estimates(estimate_table(40_000 // (2 if args.quick else 1), 1000))
    return 0


def _print_catch_up(backlog: dict[str, Any], interleaved: dict[str, Any]) -> None:
    print("\n1. catch-up: every message on the topics before the monitor starts (best run)")
    header = (
        f"{'labels':<26} {'events':>9} {'events/s':>9} {'vs interleaved':>14} {'joined':>9} "
        f"{'labels':>8} {'evicted p/l':>11} {'peak pending':>12} {'peak RSS':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, r in (("late (median 1 h)", backlog), ("interleaved (~1 s late)", interleaved)):
        join = r["join"]
        print(
            f"{name:<26} {r['events']:>9,} {r['per_s']:>9,.0f} "
            f"{r['per_s'] / interleaved['per_s']:>14.0%} {r['joined']:>9,} {r['labels']:>8,} "
            f"{join['evicted_predictions']:>5} / {join['evicted_labels']:<3} "
            f"{r['peak_pending']:>12,} {r['peak_rss_mib']:>5.0f} MiB"
        )
    print(
        f"labels not joined: {backlog['labels'] - backlog['joined']} "
        f"(label_without_prediction {backlog['join']['label_without_prediction']}, "
        f"waiting {backlog['join']['early_labels']})"
    )


def _print_memory(rows: list[dict[str, Any]]) -> None:
    print("\n2. memory of the monitor process while predictions wait for their labels")
    header = f"{'predictions':>11} {'peak pending':>12} {'peak RSS':>9} {'events/s':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['predictions']:>11,} {r['peak_pending']:>12,} {r['peak_rss_mib']:>5.0f} MiB "
            f"{r['per_s']:>9,.0f}"
        )


def _print_checkpoints(rows: list[dict[str, Any]]) -> None:
    print("\n3. checkpoint time (same delta: +10 000, -9 000, sweep 256 buckets) vs pending")
    header = f"{'pending':>10} {'median':>9} {'p90':>9} {'Redis bytes/entry':>17} {'encoding':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['pending']:>10,} {r['median_ms']:>6.1f} ms {r['p90_ms']:>6.1f} ms "
            f"{r['bytes_per_entry']:>17.1f} {r['encoding']:>9}"
        )


def _print_estimates(rows: list[dict[str, Any]]) -> None:
    print("\n4. estimated (CBPE, no labels) vs realised ROC AUC, windows of 1000 predictions")
    print(f"{'scenario':<14} {'regime':<7} {'windows':>7} {'MAE':>7} {'max err':>8}")
    for scenario in ("stable", "data-drift", "concept-drift"):
        for regime in ("before", "after"):
            errors = [
                abs(r["estimated"] - r["realised"])
                for r in rows
                if r["scenario"] == scenario
                and r["regime"] == regime
                and r["estimated"] is not None
                and r["realised"] is not None
            ]
            if errors:
                print(
                    f"{scenario:<14} {regime:<7} {len(errors):>7} {np.mean(errors):>7.3f} "
                    f"{max(errors):>8.3f}"
                )
    print("\ndata-drift, per window (the change is half-way):")
    print(f"{'window end':>10} {'estimated':>9} {'realised':>9}")
    for r in rows:
        if r["scenario"] == "data-drift" and r["estimated"] is not None:
            print(f"{r['window_end']:>10} {r['estimated']:>9.3f} {r['realised']:>9.3f}")


if __name__ == "__main__":
    sys.exit(main())
