"""False alarms of a whole model, with the defaults, on stable streams of many kinds.

Every stream below is stable (one regime throughout, a model whose errors do not change)
and goes through ``streams.engine.Engine`` exactly as ``driftradar run`` would process it:
every alert of every signal of the model counts (features, unseen categories, prediction,
error, metrics, quality). The target is ``alarms.expected_run_time`` (default 1 000 000
predictions between two false alarms), i.e. <= 0.1 false alarms per 100 000 events.

    python -m benchmarks.false_alarms                  # 2 000 000 predictions per stream
    python -m benchmarks.false_alarms --events 200000  # a quick look
    python -m benchmarks.false_alarms --kinds cat_zipf --windows 500,5000

Stream kinds: the churn simulator's ``stable`` scenario (``producers.simulator``, no Kafka);
river's synthetic ``Agrawal`` (classification) and ``Friedman`` (regression) generators with
a fixed model; numeric features that are heavy-tailed (log-normal, Pareto with infinite
variance), discrete (small integers), bounded (Beta) and bimodal; categorical features with
3, 20 and 200 categories, uniform and Zipf-skewed. ``--windows`` reruns the kinds marked
``windowed`` with feature windows and the performance window of that many values.
Every prediction of the synthetic kinds gets its label right after it.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing import Pool
from typing import Any

import numpy as np
import numpy.typing as npt

from streams.core.events import GroundTruth, Prediction
from streams.engine import InputRecord, MonitorConfig
from streams.engine.engine import Engine

T0 = 1_800_000_000.0
#: Predictions generated (and processed) per engine batch.
CHUNK = 5000
Columns = dict[str, Any]
#: A stream kind: rng, count -> (feature columns, predicted probability or value, label)
Generator = Callable[[np.random.Generator, int], tuple[Columns, npt.NDArray[Any], Any]]


def _sigmoid(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-x))
    return out


def _calibrated(
    rng: np.random.Generator, logit: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """A well-calibrated model: the prediction is the label's probability."""
    p = _sigmoid(logit)
    return p, (rng.random(p.size) < p).astype(np.float64)


def _standard(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = (x - x.mean()) / (x.std() or 1.0)
    return out


def heavy_tailed(rng: np.random.Generator, n: int) -> tuple[Columns, Any, Any]:
    amount = rng.lognormal(3.0, 1.5, n)
    balance = (rng.pareto(1.5, n) + 1.0) * 100.0  # infinite variance
    logit = 0.5 * np.log(amount) - 1.5
    p, label = _calibrated(rng, logit)
    return {"amount": amount, "balance": balance}, p, label


def rare_positives(rng: np.random.Generator, n: int) -> tuple[Columns, Any, Any]:
    """A well-calibrated model with about 5 % positives: log-loss is small and noisy, which
    made "20 % worse than the first window" alert on stable streams."""
    score = rng.normal(0.0, 1.0, n)
    p, label = _calibrated(rng, score - 3.4)
    return {"score": score}, p, label


def mixed_numeric(rng: np.random.Generator, n: int) -> tuple[Columns, Any, Any]:
    calls = rng.poisson(1.5, n).astype(np.float64)
    rating = rng.integers(1, 6, n).astype(np.float64)
    share = rng.beta(0.5, 0.5, n)
    bimodal = np.where(rng.random(n) < 0.4, rng.normal(-2, 0.5, n), rng.normal(2, 0.5, n))
    p, label = _calibrated(rng, 0.4 * calls - 0.3 * rating + share)
    return {"calls": calls, "rating": rating, "share": share, "bimodal": bimodal}, p, label


def _categorical(rng: np.random.Generator, n: int, skewed: bool) -> tuple[Columns, Any, Any]:
    columns: Columns = {}
    logit = np.zeros(n)
    for k in (3, 20, 200):
        weights = 1.0 / np.arange(1, k + 1) ** 1.1 if skewed else np.ones(k)
        codes = rng.choice(k, n, p=weights / weights.sum())
        names = np.array([f"c{i}" for i in range(k)], dtype=object)
        columns[f"k{k}"] = names[codes]
        logit += (codes % 3 - 1) * 0.3
    p, label = _calibrated(rng, logit - 0.5)
    return columns, p, label


def cat_uniform(rng: np.random.Generator, n: int) -> tuple[Columns, Any, Any]:
    return _categorical(rng, n, skewed=False)


def cat_zipf(rng: np.random.Generator, n: int) -> tuple[Columns, Any, Any]:
    return _categorical(rng, n, skewed=True)


def agrawal(rng: np.random.Generator, n: int) -> tuple[Columns, Any, Any]:
    from river.datasets import synth

    seed = int(rng.integers(0, 2**31))
    rows = list(synth.Agrawal(classification_function=0, seed=seed).take(n))
    names = list(rows[0][0])
    columns: Columns = {
        name: np.array([x[name] for x, _ in rows], dtype=np.float64) for name in names
    }
    label = np.array([y for _, y in rows], dtype=np.float64)
    # a fixed model of the rule (age < 40 or age >= 60): right about most customers
    age = columns["age"]
    logit = np.where((age < 40) | (age >= 60), 2.0, -2.0) + 0.5 * _standard(columns["salary"])
    return columns, _sigmoid(logit), label


def friedman(rng: np.random.Generator, n: int) -> tuple[Columns, Any, Any]:
    from river.datasets import synth

    seed = int(rng.integers(0, 2**31))
    rows = list(synth.Friedman(seed=seed).take(n))
    columns: Columns = {
        f"x{i}": np.array([x[i] for x, _ in rows], dtype=np.float64) for i in range(10)
    }
    y = np.array([target for _, target in rows], dtype=np.float64)
    x = columns
    prediction = 10 * np.sin(np.pi * x["x0"] * x["x1"]) + 20 * (x["x2"] - 0.5) ** 2 + 10 * x["x3"]
    return columns, prediction + 5 * x["x4"], y


def churn_records(seed: int, events: int) -> Iterator[list[InputRecord]]:
    """The churn simulator's stable scenario, decoded (predictions and delayed labels)."""
    from producers.simulator import Kind, Outgoing, Simulation, SimulationConfig
    from streams.core.events import decode_ground_truth, decode_prediction

    sim = Simulation(SimulationConfig(scenario="stable", events=events, seed=seed))
    batch: list[InputRecord] = []
    offset = 0
    for item in sim:
        if not isinstance(item, Outgoing):
            continue
        if item.kind is Kind.PREDICTION:
            try:
                event: Prediction | GroundTruth = decode_prediction(item.value)
            except ValueError:
                continue
        else:
            event = decode_ground_truth(item.value)
        batch.append(InputRecord(event, 0, offset, T0 + offset * 0.01))
        offset += 1
        if len(batch) >= 2 * CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def synthetic_records(
    make: Generator, seed: int, events: int, model_id: str
) -> Iterator[list[InputRecord]]:
    """Chunks of predictions each followed by its label."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < events:
        n = min(CHUNK, events - done)
        columns, prediction, label = make(rng, n)
        names = list(columns)
        lists = [columns[name].tolist() for name in names]
        scores = prediction.tolist()
        labels = label.tolist()
        batch: list[InputRecord] = []
        for i in range(n):
            at = done + i
            t = T0 + at * 0.01
            event_id = f"e{at}"
            features = {name: values[i] for name, values in zip(names, lists, strict=True)}
            batch.append(
                InputRecord(
                    Prediction(event_id, model_id, features, scores[i], "v1", t), 0, 2 * at, t
                )
            )
            batch.append(
                InputRecord(GroundTruth(event_id, model_id, labels[i], t), 0, 2 * at + 1, t)
            )
        done += n
        yield batch


@dataclass(frozen=True)
class Kind:
    name: str
    describe: str
    make: Generator | None  # None: the churn simulator
    windowed: bool = False


KINDS = (
    Kind("churn", "churn simulator, stable scenario (7 features, labels delayed, 90 %)", None),
    Kind("agrawal", "river Agrawal generator (9 features), fixed classifier", agrawal),
    Kind("friedman", "river Friedman generator (10 features), regression", friedman),
    Kind("heavy_tailed", "log-normal amount, Pareto(1.5) balance", heavy_tailed, windowed=True),
    Kind("mixed_numeric", "Poisson counts, ratings 1-5, Beta(.5,.5), bimodal", mixed_numeric),
    Kind("rare_positives", "calibrated model, ~5 % positives (noisy log-loss)", rare_positives),
    Kind("cat_uniform", "3, 20, 200 categories, uniform", cat_uniform, windowed=True),
    Kind("cat_zipf", "3, 20, 200 categories, Zipf(1.1)", cat_zipf, windowed=True),
)


def _config(window: int | None) -> MonitorConfig:
    if window is None:
        return MonitorConfig()
    shape = {"window_size": window}
    defaults: dict[str, Any] = {
        "detectors": {
            "numeric": {"adwin": {}, "page_hinkley": {}, "psi": shape, "ks": shape},
            "categorical": {"jensen_shannon": shape, "chi_square": shape},
        },
        "performance": {"window": window},
    }
    return MonitorConfig.from_mapping({"defaults": defaults})


def run_kind(task: tuple[Kind, int | None, int, int]) -> dict[str, Any]:
    kind, window, events, seed = task
    engine = Engine(_config(window), clock=lambda: 0.0)
    model_id = f"{kind.name}"
    chunks = (
        churn_records(seed, events)
        if kind.make is None
        else synthetic_records(kind.make, seed, events, model_id)
    )
    counts: Counter[str] = Counter()
    positions: list[tuple[str, Any]] = []
    started = time.perf_counter()
    for batch in chunks:
        out = engine.process(batch)
        for alert in out.alerts:
            key = f"{alert.signal} [{alert.detector}]"
            counts[key] += 1
            positions.append((key, alert.details.get("position")))
    seconds = time.perf_counter() - started
    return {
        "kind": kind.name,
        "window": window,
        "events": events,
        "alerts": sum(counts.values()),
        "by_signal": dict(counts),
        "positions": positions,
        "seconds": seconds,
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| stream | window | predictions | false alarms | per 100k | within budget "
        "| alerts by signal |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        rate = r["alerts"] / r["events"] * 1e5
        signals = ", ".join(f"{k} x{v}" for k, v in sorted(r["by_signal"].items())) or "—"
        window = r["window"] or "default"
        ok = "yes" if rate <= 0.1 else "NO"
        lines.append(
            f"| {r['kind']} | {window} | {r['events']:,} | {r['alerts']} | {rate:.2f} | {ok} | "
            f"{signals} |"
        )
    return "\n".join(lines)


def calibration_cost() -> str:
    """What calibrating costs, once per reference: each window test's calibration against
    one evaluation of a window (the recurring cost) in the same run, and the performance
    baseline's bootstrap."""
    from detectors.policy import AlarmPolicy
    from detectors.registry import create
    from streams.engine.baseline import BOOTSTRAP_WINDOWS, calibrate_baseline
    from streams.engine.performance import compute_metric, resampled_metric

    rng = np.random.default_rng(0)
    policy = AlarmPolicy()
    lines = [
        "| calibration | once per reference | one window evaluation | ratio |",
        "|---|---:|---:|---:|",
    ]
    cases: list[tuple[str, str, Any]] = [
        ("psi", "numeric, 10 bins", rng.lognormal(0, 1, 3000)),
        # deciles hold equal shares whatever the feature: its null fit is the first one's
        ("psi", "another feature or model", rng.normal(5, 2, 3000)),
        ("ks", "numeric", rng.lognormal(0, 1, 3000)),
    ]
    for k in (3, 20, 200):
        names = np.array([f"c{i}" for i in range(k)], dtype=object)
        values = names[rng.integers(0, k, 3000)].tolist()
        cases += [
            ("jensen_shannon", f"{k} categories", values),
            ("chi_square", f"{k} categories", values),
        ]
    for kind, label, values in cases:
        params = policy.detector_params(kind, 40, {"window_size": 1000, "stride": 250})
        detector = create(kind, params)
        detector.update_many(values[:2000])  # warm-up: the reference exists
        started = time.perf_counter()
        calibration = detector.calibration  # type: ignore[attr-defined]
        once = time.perf_counter() - started
        assert calibration is not None
        started = time.perf_counter()
        detector._evaluate(detector._ring)  # type: ignore[attr-defined]  # noqa: SLF001
        evaluation = time.perf_counter() - started
        lines.append(
            f"| {kind} ({label}) | {once * 1e3:.2f} ms | {evaluation * 1e3:.3f} ms | "
            f"{once / evaluation:.1f}x |"
        )
    p = rng.random(2000)
    y = (rng.random(2000) < p).astype(np.float64)
    for metric in ("accuracy", "roc_auc", "log_loss"):

        def compute(
            s: npt.NDArray[np.float64], t: npt.NDArray[np.float64], m: str = metric
        ) -> float | None:
            return compute_metric(m, s, t, 0.5)

        def resampled(picks: npt.NDArray[np.int64], m: str = metric) -> npt.NDArray[np.float64]:
            return resampled_metric(m, p, y, 0.5, picks)

        started = time.perf_counter()
        calibrate_baseline(
            compute,
            resampled,
            metric,
            p,
            y,
            window=1000,
            higher_better=metric != "log_loss",
            tail=1e-6,
            relative_drop=0.05,
        )
        once = time.perf_counter() - started
        started = time.perf_counter()
        compute_metric(metric, p[:1000], y[:1000], 0.5)
        evaluation = time.perf_counter() - started
        started = time.perf_counter()
        for pick in np.random.default_rng(0).integers(0, p.size, (BOOTSTRAP_WINDOWS, 1000)):
            compute(p[pick], y[pick])
        one_at_a_time = time.perf_counter() - started
        lines.append(
            f"| baseline {metric} (2000 pairs, {BOOTSTRAP_WINDOWS} windows; one window at a "
            f"time: {one_at_a_time * 1e3:.1f} ms, {one_at_a_time / once:.1f}x slower) | "
            f"{once * 1e3:.2f} ms | {evaluation * 1e3:.3f} ms | {once / evaluation:.1f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000, help="predictions per stream")
    parser.add_argument("--kinds", default=",".join(k.name for k in KINDS))
    parser.add_argument(
        "--windows",
        default="500,1000,5000",
        help="feature/performance windows for the windowed kinds (default 500,1000,5000)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--calibration-only", action="store_true", help="only the calibration cost table"
    )
    args = parser.parse_args(argv)
    print("Calibration cost (once per reference; the evaluation is what recurs):")
    print(calibration_cost())
    if args.calibration_only:
        return
    chosen = set(args.kinds.split(","))
    windows = [int(w) for w in args.windows.split(",") if w]
    tasks: list[tuple[Kind, int | None, int, int]] = []
    for kind in KINDS:
        if kind.name not in chosen:
            continue
        if kind.windowed and windows:
            tasks.extend((kind, w, args.events, args.seed) for w in windows)
        else:
            tasks.append((kind, None, args.events, args.seed))
    started = time.perf_counter()
    with Pool(max(1, min(args.processes, len(tasks)))) as pool:
        results = pool.map(run_kind, tasks, chunksize=1)
    print(
        f"Stable streams through the engine with the default configuration; every alert of "
        f"every signal counts (target <= 0.1 per 100 000 predictions, "
        f"alarms.expected_run_time 1 000 000). Seed {args.seed}."
    )
    print(table(results))
    total = sum(r["alerts"] for r in results)
    events = sum(r["events"] for r in results)
    print(
        f"all streams: {total} false alarms in {events:,} predictions "
        f"({total / events * 1e5:.3f} per 100k); {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
