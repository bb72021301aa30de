"""Detector speed: µs per update for every registered detector, beside raw river.

    python -m benchmarks.detector_speed

For each kind: ``update`` one value at a time, ``update_many`` on a numpy batch, and — for
the river wrappers — raw river calling ``.update`` in a loop on the same values, measured in
the same run; the ratio wrapper/raw is the overhead of the wrapper (target: <= 1.5 on the
batch path). The window tests are also timed per evaluated window of 1000 values (tumbling
windows, reference from a 2000-value warm-up; target: <= 50 µs per window). The three ways
are run in turn, REPEATS times, and each figure is the best run, in CPU time of this process
(``time.process_time``), so that other processes on a busy machine do not inflate it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from river import drift
from river.drift import binary

from detectors.base import Detector
from detectors.registry import DETECTORS, create

REPEATS = 7
BATCH = 10_000
#: KSWIN runs a scipy KS test per update (~0.2 ms), so it is timed on fewer values.
SIZES = {"kswin": 1_000}

NUMERIC = {"adwin", "page_hinkley", "kswin", "psi", "ks", "prediction_band", "value_range"}
BINARY = {"ddm", "eddm", "hddm_a", "hddm_w", "fhddm"}
CATEGORICAL = {"jensen_shannon", "chi_square", "allowed_categories"}
WINDOW_TESTS = ("psi", "ks", "jensen_shannon", "chi_square")

#: river twins built with the wrappers' default parameters, and whether river gets 1 - x.
RAW: dict[str, tuple[Callable[[], Any], bool]] = {
    "adwin": (lambda: drift.ADWIN(), False),  # type: ignore[no-untyped-call]
    "page_hinkley": (lambda: drift.PageHinkley(delta=0.5, threshold=20.0, alpha=1.0), False),
    "kswin": (lambda: drift.KSWIN(alpha=1e-6, window_size=300, stat_size=100, seed=42), False),
    "ddm": (lambda: binary.DDM(), False),
    "eddm": (lambda: binary.EDDM(), False),
    "hddm_a": (lambda: binary.HDDMA(), False),  # type: ignore[no-untyped-call]
    "hddm_w": (lambda: binary.HDDMW(), False),  # type: ignore[no-untyped-call]
    "fhddm": (lambda: binary.FHDDM(), True),
}


def values_for(kind: str, n: int, seed: int = 0) -> np.ndarray[Any, Any]:
    """A stream of ``n`` values of the type ``kind`` watches, with a change half-way."""
    rng = np.random.default_rng(seed)
    half = n // 2
    if kind in BINARY:
        return np.concatenate([rng.random(half) < 0.2, rng.random(n - half) < 0.4]).astype(np.int64)
    if kind in CATEGORICAL:
        names = ["basic", "premium", "pro", "true", "false"]
        return rng.choice(names, size=n).astype(object)
    if kind == "missing_rate":
        out = rng.random(n).astype(object)
        out[rng.random(n) < 0.05] = None
        return out
    if kind == "type":
        out = rng.random(n).astype(object)
        out[rng.random(n) < 0.01] = "n/a"
        return out
    if kind in {"prediction_band", "value_range"}:
        return np.concatenate([rng.beta(2, 5, half), rng.beta(5, 2, n - half)])
    return np.concatenate([rng.normal(0.0, 1.0, half), rng.normal(1.0, 1.0, n - half)])


def time_one_by_one(kind: str, values: list[Any]) -> float:
    def run() -> float:
        detector = create(kind)
        update = detector.update
        start = time.process_time()
        for value in values:
            update(value)
        return time.process_time() - start

    return run() / len(values) * 1e6


def time_batch(kind: str, values: np.ndarray[Any, Any]) -> float:
    def run() -> float:
        detector = create(kind)
        start = time.process_time()
        detector.update_many(values)
        return time.process_time() - start

    return run() / len(values) * 1e6


def time_raw(kind: str, values: list[Any]) -> float | None:
    if kind not in RAW:
        return None
    make, inverted = RAW[kind]
    data = [1 - v for v in values] if inverted else values

    def run() -> float:
        detector = make()
        update = detector.update
        start = time.process_time()
        for value in data:
            update(value)
        return time.process_time() - start

    return run() / len(values) * 1e6


def time_per_window(kind: str, windows: int = 50, size: int = 1000) -> float:
    """µs per evaluated tumbling window of ``size`` values (ingestion included)."""
    warm = values_for(kind, 2000, seed=1)
    live = values_for(kind, windows * size, seed=2)

    def run() -> float:
        detector: Detector = create(kind, {"mode": "tumbling", "window_size": size, "warmup": 2000})
        detector.update_many(warm)
        start = time.process_time()
        detector.update_many(live)
        return time.process_time() - start

    return min(run() for _ in range(REPEATS)) / windows * 1e6


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def main() -> None:
    print(
        f"µs per update, best of {REPEATS}; batch = update_many on a numpy array of "
        f"{BATCH:,} values (KSWIN: {SIZES['kswin']:,})\n"
    )
    print("| detector | one-by-one | batch | raw river | batch / raw | one-by-one / raw |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in sorted(DETECTORS, key=lambda k: (k not in RAW, k)):
        array = values_for(kind, SIZES.get(kind, BATCH))
        as_list = array.tolist()
        runs = [
            (time_one_by_one(kind, as_list), time_batch(kind, array), time_raw(kind, as_list))
            for _ in range(REPEATS)
        ]
        one = min(r[0] for r in runs)
        batch = min(r[1] for r in runs)
        raw = None if kind not in RAW else min(r[2] or 0.0 for r in runs)
        print(
            f"| {kind} | {_fmt(one)} | {_fmt(batch)} | {_fmt(raw)} | "
            f"{_fmt(batch / raw if raw else None)} | {_fmt(one / raw if raw else None)} |"
        )
    print("\nWindow tests: µs per evaluated window of 1000 values (tumbling)\n")
    print("| test | µs per window |")
    print("|---|---:|")
    for kind in WINDOW_TESTS:
        if kind in DETECTORS:
            print(f"| {kind} | {_fmt(time_per_window(kind), 1)} |")


if __name__ == "__main__":
    main()
