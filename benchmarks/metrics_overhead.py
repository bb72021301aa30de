"""What the Prometheus metrics cost the monitor's loop, against the engine's own work.

Run ``python -m benchmarks.metrics_overhead [--batch 10000] [--models 1,5] [--repeat 5]``.
No broker needed: in one process it builds batches shaped like ``benchmarks.throughput``'s
(predictions with 10 numeric and 2 categorical features, each followed by its label), then
times, per batch and as the median of ``--repeat`` runs:

* ``engine``: ``Engine.process`` of the batch (decode excluded: both sides get records);
* ``observe``: the runner's per-batch metrics (``LoopObserver.batch``: counters, latency
  histogram, last-seen) — what every batch pays;
* ``view``: copying ``Engine.metrics_view()`` into the metrics (``LoopObserver.maybe_view``),
  which the loop does at most once per second;
* ``scrape``: rendering ``/metrics`` as served (``streams.metrics.exposition``; paid by the
  server thread, per scrape; the models changed since the last one are formatted again).

The ratios say how much slower the loop gets: ``observe / engine`` per batch, and the view's
share of one second of loop time. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Final

import numpy as np
from prometheus_client import CollectorRegistry

from streams.core.events import FeatureValue, GroundTruth, Prediction
from streams.engine.config import MonitorConfig
from streams.engine.engine import Engine
from streams.engine.records import InputRecord
from streams.metrics import MonitorMetrics
from streams.metrics.exposition import exposition
from streams.runner.observe import LoopObserver

__all__ = ["main"]

NUMERIC: Final = tuple(f"num_{i}" for i in range(10))
CATEGORIES: Final = {
    "contract": ("month-to-month", "one-year", "two-year"),
    "payment": ("card", "bank", "check", "wallet"),
}
T0: Final = 1_790_000_000.0


def records(count: int, models: int, first: int, rng: np.random.Generator) -> list[InputRecord]:
    """``count`` records: predictions of ``models`` models, each followed by its label."""
    out: list[InputRecord] = []
    pairs = count // 2
    numeric = rng.normal(50.0, 10.0, (pairs, len(NUMERIC))).round(3)
    scores = rng.random(pairs)
    for k in range(pairs):
        i = first + k
        model_id = f"model-{i % models}"
        features: dict[str, FeatureValue] = dict(zip(NUMERIC, numeric[k].tolist(), strict=True))
        for name, values in CATEGORIES.items():
            features[name] = values[i % len(values)]
        t = T0 + i * 0.01
        prediction = Prediction(f"e{i}", model_id, features, float(scores[k]), "v1", t)
        label = GroundTruth(f"e{i}", model_id, int(scores[k] > 0.5), t + 5)
        out.append(InputRecord(prediction, 0, 2 * i, t))
        out.append(InputRecord(label, 0, 2 * i + 1, t + 5))
    return out


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def measure(batch: int, models: int, repeat: int, warm_batches: int) -> dict[str, float]:
    """Median seconds of each step, after ``warm_batches`` batches (references warmed up)."""
    rng = np.random.default_rng(1)
    engine = Engine(MonitorConfig())
    metrics = MonitorMetrics(CollectorRegistry())
    observer = LoopObserver(metrics, ("predictions", "ground-truth"), view_seconds=0.0)
    first = 0
    for _ in range(warm_batches):
        engine.process(records(batch, models, first, rng))
        first += batch // 2
    times: dict[str, list[float]] = {"engine": [], "observe": [], "view": [], "scrape": []}
    for _ in range(repeat):
        work = records(batch, models, first, rng)
        first += batch // 2
        times["engine"].append(_timed(partial(engine.process, work)))
        times["observe"].append(_timed(partial(observer.batch, work, [], duration=0.01)))
        times["view"].append(_timed(partial(observer.maybe_view, engine)))
        times["scrape"].append(_timed(partial(exposition, metrics.registry, metrics.snapshots)))
    return {step: statistics.median(values) for step, values in times.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.metrics_overhead", description=__doc__
    )
    parser.add_argument("--batch", type=int, default=10_000, help="records per batch")
    parser.add_argument("--models", default="1,5", help="comma-separated model counts")
    parser.add_argument("--repeat", type=int, default=5, help="timed batches (median)")
    parser.add_argument("--warm", type=int, default=2, help="untimed batches first")
    args = parser.parse_args(argv)
    print(f"batch of {args.batch} records, median of {args.repeat}")
    print(
        f"{'models':>6} {'engine':>10} {'observe':>10} {'observe/engine':>15} "
        f"{'view':>9} {'view per s':>11} {'scrape':>9}"
    )
    for models in (int(m) for m in args.models.split(",")):
        t = measure(args.batch, models, args.repeat, args.warm)
        print(
            f"{models:>6} {t['engine'] * 1e3:>8.1f}ms {t['observe'] * 1e3:>8.2f}ms "
            f"{t['observe'] / t['engine']:>14.1%} {t['view'] * 1e3:>7.1f}ms "
            f"{t['view']:>10.1%} {t['scrape'] * 1e3:>7.1f}ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
