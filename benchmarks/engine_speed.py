"""Throughput of the monitor engine in-process: ``Engine.process`` on decoded events.

No Kafka, no Redis, no JSON: this is the engine's own ceiling, which the end-to-end
runner (target >= 50 000 events/s per process) must stay well below. The stream is a
model with 10 numeric and 2 categorical features whose every prediction is labelled
(an "event" is one message: a prediction or a ground-truth label). Rows differ in the
detectors that run; the ratio column compares each with the engine alone (no detectors),
measured in the same run.

    python -m benchmarks.engine_speed            # 60 000 predictions + 60 000 labels
    python -m benchmarks.engine_speed --quick    # 12 000 + 12 000

Each row is the best of ``--repeat`` runs (other processes on the machine only slow runs).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from streams.core.events import GroundTruth, Prediction
from streams.engine import InputRecord, MonitorConfig
from streams.engine.engine import Engine

NUMERIC = [f"num_{i}" for i in range(10)]
CATEGORICAL = {"plan": ("basic", "premium", "pro"), "region": ("eu", "us", "apac", "latam")}
T0 = 1_800_000_000.0
NO_DETECTORS: dict[str, Any] = {
    group: {}
    for group in (
        "numeric",
        "categorical",
        "unseen",
        "prediction",
        "prediction_categorical",
        "error",
        "error_regression",
    )
}
NO_QUALITY = {
    "detectors": {k: False for k in ("type", "missing_rate", "value_range", "allowed_categories")}
}

#: Window tests on features as the default configuration runs them.
WINDOW = {"stride": 250}

#: (row name, model settings): each row adds detectors to the previous one.
SETUPS: list[tuple[str, dict[str, Any]]] = [
    ("engine only (no detectors)", {"detectors": NO_DETECTORS, "quality": NO_QUALITY}),
    ("+ quality expectations", {"detectors": NO_DETECTORS}),
    (
        "+ window tests (PSI, KS, JS, chi2, band)",
        {
            "detectors": {
                **NO_DETECTORS,
                "numeric": {"psi": WINDOW, "ks": WINDOW},
                "categorical": {"jensen_shannon": WINDOW, "chi_square": WINDOW},
                "prediction": {"prediction_band": {}},
            }
        },
    ),
    (
        "+ ADWIN, DDM (default minus Page-Hinkley)",
        {"detectors": {"numeric": {"adwin": {}, "psi": WINDOW, "ks": WINDOW}}},
    ),
    ("default (+ Page-Hinkley)", {}),
]


def make_records(n: int, seed: int = 0) -> list[InputRecord]:
    """Predictions and their labels 30 s later (event time), merged in time order."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(0.0, 1.0, (n, len(NUMERIC)))
    cats = {name: rng.integers(0, len(values), n) for name, values in CATEGORICAL.items()}
    score = 1.0 / (1.0 + np.exp(-(numeric[:, 0] - 0.5 * numeric[:, 1])))
    truth = rng.random(n) < score
    items: list[tuple[float, InputRecord]] = []
    for i in range(n):
        features: dict[str, float | str | bool | None] = dict(
            zip(NUMERIC, numeric[i].tolist(), strict=True)
        )
        for name, values in CATEGORICAL.items():
            features[name] = values[int(cats[name][i])]
        t = T0 + i / 100.0
        event = Prediction(f"e{i}", "churn", features, float(score[i]), "v1", t)
        items.append((t, InputRecord(event, 0, 2 * i, t)))
        label = GroundTruth(f"e{i}", "churn", float(truth[i]), t + 30.0)
        items.append((t + 30.0, InputRecord(label, 0, 2 * i + 1, t + 30.0)))
    items.sort(key=lambda item: item[0])
    return [record for _, record in items]


def measure(records: list[InputRecord], settings: dict[str, Any], batch: int) -> float:
    """Seconds to process ``records`` (after a first batch that builds the signals)."""
    engine = Engine(MonitorConfig.from_mapping({"defaults": settings}))
    engine.process(records[:batch])
    rest = [records[i : i + batch] for i in range(batch, len(records), batch)]
    start = time.perf_counter()
    for chunk in rest:
        engine.process(chunk)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a shorter stream")
    parser.add_argument("--batch", type=int, default=2000, help="records per process() call")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row (the best counts)")
    args = parser.parse_args(argv)
    n = 12_000 if args.quick else 60_000
    records = make_records(n)
    measured = len(records) - args.batch
    print(
        f"engine.process, {len(NUMERIC)} numeric + {len(CATEGORICAL)} categorical features, "
        f"every prediction labelled, batches of {args.batch}, {measured} events timed"
    )
    print(f"{'detectors':44} {'events/s':>10} {'predictions/s':>14} {'vs engine only':>15}")
    baseline = None
    for name, settings in SETUPS:
        seconds = min(measure(records, settings, args.batch) for _ in range(args.repeat))
        rate = measured / seconds
        baseline = baseline or rate
        print(f"{name:44} {rate:>10,.0f} {rate / 2:>14,.0f} {rate / baseline:>14.2f}x")


if __name__ == "__main__":
    main()
