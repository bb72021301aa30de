"""Detection quality of every detector: delay, missed detections, false alarms.

Each detector of the registry runs as the stream engine runs it — parameters from its
share of the false-alarm budget, ``AlarmPolicy.detector_params(kind, n_detectors)`` (40
detectors: a model like the churn simulator's), states through a ``SignalGate``, and on
numeric streams ADWIN and Page-Hinkley fed the quantile transform built from the first
1000 values (the warm-up), as the engine feeds a numeric feature — on synthetic streams with a
known change point, and on stable streams. Plain river ADWIN (no policy, no gate, raw
values) is the reference row, run in the same process pool.

    python -m benchmarks.detection_quality            # 30 seeds, ~3 M stable events/detector
    python -m benchmarks.detection_quality --quick    # 10 seeds, shorter stable streams

Delay is counted in events from the change point to the first "entered drift" of the gate
(for the gradual shift, from the start of the ramp). A detection before the change point is
a false alarm; a change not detected by the end of the stream is missed. False alarms are
per 100 000 events per signal, over the stable streams and the pre-change stretches.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import Pool
from typing import Any

import numpy as np
import numpy.typing as npt
from river import drift as river_drift

from detectors.policy import AlarmPolicy, SignalGate, Transition
from detectors.registry import create
from detectors.transform import QuantileTransform

#: Values of a numeric stream that build the quantile transform (the engine's warm-up).
WARMUP = 1000

Stream = tuple[Any, int | None]  # values (array or list) and the change index (None: stable)
Maker = Callable[[np.random.Generator, int, int], Stream]

CATEGORIES = np.array(["a", "b", "c", "d", "e", "f"])
CAT_BEFORE = np.array([0.30, 0.25, 0.20, 0.12, 0.08, 0.05])
CAT_AFTER = np.array([0.24, 0.22, 0.20, 0.14, 0.11, 0.09])


def _numeric(
    before: Callable[[np.random.Generator, int], npt.NDArray[np.float64]],
    after: Callable[[np.random.Generator, int], npt.NDArray[np.float64]],
) -> Maker:
    def make(rng: np.random.Generator, pre: int, post: int) -> Stream:
        return np.concatenate((before(rng, pre), after(rng, post))), pre

    return make


def _gradual(rng: np.random.Generator, pre: int, post: int) -> Stream:
    ramp = min(1000, post)
    shift = np.concatenate((np.zeros(pre), np.linspace(0, 1, ramp), np.ones(post - ramp)))
    return rng.normal(0, 1, pre + post) + shift, pre


def _bernoulli(p_before: float, p_after: float) -> Maker:
    def make(rng: np.random.Generator, pre: int, post: int) -> Stream:
        p = np.concatenate((np.full(pre, p_before), np.full(post, p_after)))
        return (rng.random(pre + post) < p).astype(np.float64), pre

    return make


def _categorical(rng: np.random.Generator, pre: int, post: int) -> Stream:
    values = np.concatenate(
        (rng.choice(CATEGORIES, pre, p=CAT_BEFORE), rng.choice(CATEGORIES, post, p=CAT_AFTER))
    )
    return values.tolist(), pre


def _missing(rate_before: float, rate_after: float) -> Maker:
    def make(rng: np.random.Generator, pre: int, post: int) -> Stream:
        rate = np.concatenate((np.full(pre, rate_before), np.full(post, rate_after)))
        values = rng.normal(0, 1, pre + post)
        values[rng.random(pre + post) < rate] = np.nan
        return values, pre

    return make


def _stable(maker: Maker) -> Maker:
    def make(rng: np.random.Generator, pre: int, post: int) -> Stream:
        values, _ = maker(rng, pre + post, 0)
        return values, None

    return make


@dataclass(frozen=True)
class Scenario:
    name: str
    family: str
    make: Maker
    post: int
    stable: bool = False


_NORMAL = _numeric(lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0, 1, n))

SCENARIOS = (
    Scenario(
        "mean +1 sd",
        "numeric",
        _numeric(lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(1, 1, n)),
        3000,
    ),
    Scenario("gradual +1 sd over 1000", "numeric", _gradual, 3000),
    Scenario(
        "sd x2",
        "numeric",
        _numeric(lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0, 2, n)),
        3000,
    ),
    Scenario("err .2→.3", "binary", _bernoulli(0.2, 0.3), 5000),
    Scenario("err .2→.4", "binary", _bernoulli(0.2, 0.4), 3000),
    Scenario("categories", "categorical", _categorical, 3000),
    Scenario("missing 1→8%", "missing", _missing(0.01, 0.08), 3000),
    Scenario("stable", "numeric", _stable(_NORMAL), 0, stable=True),
    Scenario("stable", "binary", _stable(_bernoulli(0.2, 0.2)), 0, stable=True),
    Scenario("stable", "categorical", _stable(_categorical), 0, stable=True),
    Scenario("stable", "missing", _stable(_missing(0.01, 0.01)), 0, stable=True),
)


@dataclass(frozen=True)
class Row:
    label: str
    kind: str | None  # registry kind; None: plain river ADWIN
    family: str
    short: bool = False  # slow detector: fewer seeds and shorter streams


#: The engine's default detectors of a numeric feature, with its feature window stride.
FEATURE_GROUP: dict[str, dict[str, Any]] = {
    "adwin": {},
    "page_hinkley": {},
    "psi": {"stride": 250},
    "ks": {"stride": 250},
}


def _signal_entries(per_detector: list[list[int]], clear_after: int) -> list[int]:
    """When a signal of several detectors enters drift: the first entry of any of them,
    then none until ``clear_after`` values without one (approximately the engine's rule)."""
    out: list[int] = []
    last = -(10**12)
    for index in sorted(i for entries in per_detector for i in entries):
        if index - last >= clear_after:
            out.append(index)
        last = index
    return out


ROWS = (
    Row("river ADWIN (plain)", None, "numeric"),
    *(Row(k, k, "numeric") for k in ("adwin", "page_hinkley", "psi", "ks", "prediction_band")),
    Row("numeric feature (default group)", "+".join(FEATURE_GROUP), "numeric"),
    Row("kswin", "kswin", "numeric", short=True),
    Row("river ADWIN (plain)", None, "binary"),
    *(Row(k, k, "binary") for k in ("adwin", "ddm", "eddm", "hddm_a", "hddm_w", "fhddm")),
    *(Row(k, k, "categorical") for k in ("jensen_shannon", "chi_square")),
    Row("missing_rate", "missing_rate", "missing"),
)


@dataclass(frozen=True)
class Settings:
    seeds: int
    pre: int
    stable: int
    n_detectors: int


def _entries(row: Row, values: Any, settings: Settings) -> list[int]:
    """Indices (0-based) at which the signal entered drift."""
    if row.kind is None:
        plain = river_drift.ADWIN()  # type: ignore[no-untyped-call]
        found = []
        for i, value in enumerate(values.tolist()):
            plain.update(value)  # type: ignore[no-untyped-call]
            if plain.drift_detected:
                found.append(i)
        return found
    policy = AlarmPolicy()
    if "+" in row.kind:  # a signal's group of detectors
        per_detector = [
            _detector_entries(kind, FEATURE_GROUP[kind], row.family, values, settings)
            for kind in row.kind.split("+")
        ]
        return _signal_entries(per_detector, policy.clear_after)
    return _detector_entries(row.kind, {}, row.family, values, settings)


def _detector_entries(
    kind: str, base: dict[str, Any], family: str, values: Any, settings: Settings
) -> list[int]:
    policy = AlarmPolicy()
    detector = create(kind, policy.detector_params(kind, settings.n_detectors, base))
    if family == "numeric" and kind in ("adwin", "page_hinkley", "kswin"):
        # as the engine: the transform of the first values, fed all values (warm-up too)
        pit = QuantileTransform.from_values(values[:WARMUP])
        values = pit.transform(values)
        if kind == "page_hinkley":
            values = (values - 0.5) * np.sqrt(12.0)
    states = detector.update_many(values)
    gate = SignalGate(policy)
    return [
        update - 1
        for update, transition in gate.observe_many(states, 1)
        if transition is Transition.ENTERED_DRIFT
    ]


def _run(task: tuple[Row, int, Settings]) -> tuple[Row, int, dict[str, Any]]:
    row, index, settings = task
    scenario = SCENARIOS[index]
    seeds = min(settings.seeds, 10) if row.short else settings.seeds
    pre = 1000 if row.short else settings.pre
    stable = settings.stable // 10 if row.short else settings.stable
    delays: list[int] = []
    missed = false_alarms = watched = 0
    for seed in range(seeds):
        rng = np.random.default_rng([index, seed])
        if scenario.stable:
            values, change = scenario.make(rng, stable, 0)
        else:
            values, change = scenario.make(rng, pre, scenario.post)
        entries = _entries(row, values, settings)
        if change is None:
            false_alarms += len(entries)
            watched += len(values)
            continue
        false_alarms += sum(1 for e in entries if e < change)
        watched += change
        after = [e for e in entries if e >= change]
        if after:
            delays.append(after[0] - change)
        else:
            missed += 1
    return (
        row,
        index,
        {
            "seeds": seeds,
            "delays": delays,
            "missed": missed,
            "false_alarms": false_alarms,
            "watched": watched,
        },
    )


def _cell(result: dict[str, Any]) -> str:
    delays = result["delays"]
    if not delays:
        return f"— ({result['missed']}/{result['seeds']} missed)"
    median, p90 = np.percentile(delays, [50, 90])
    text = f"{median:.0f} / {p90:.0f}"
    return text + (f" ({result['missed']} missed)" if result["missed"] else "")


def run(settings: Settings, processes: int) -> str:
    tasks = [
        (row, index, settings)
        for row in ROWS
        for index, scenario in enumerate(SCENARIOS)
        if scenario.family == row.family
    ]
    tasks.sort(key=lambda t: not t[0].short)  # slow ones first, for a balanced pool
    with Pool(processes) as pool:
        results = pool.map(_run, tasks, chunksize=1)
    change_names = [s.name for s in SCENARIOS if not s.stable]
    header = ["detector", "stream", *change_names, "false alarms /100k", "stable events"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in ROWS:
        mine = {index: result for r, index, result in results if r == row}
        cells = [row.label, row.family]
        fa = watched = stable_events = 0
        for index, scenario in enumerate(SCENARIOS):
            result = mine.get(index)
            if result is not None:
                fa += result["false_alarms"]
                watched += result["watched"]
                if scenario.stable:
                    stable_events += result["watched"]
            if not scenario.stable:
                cells.append("" if result is None else _cell(result))
        cells.append(f"{fa / watched * 1e5:.2f}")
        cells.append(f"{stable_events:,}" + (" ¹" if row.short else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=30, help="seeds per scenario (default 30)")
    parser.add_argument(
        "--quick", action="store_true", help="10 seeds, 20 000-event stable streams"
    )
    parser.add_argument("--stable", type=int, default=100_000, help="stable stream length/seed")
    parser.add_argument("--pre", type=int, default=5000, help="events before the change")
    parser.add_argument(
        "--detectors",
        type=int,
        default=40,
        help="detectors sharing the model's false-alarm budget (default 40)",
    )
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    seeds, stable = (10, 20_000) if args.quick else (args.seeds, args.stable)
    settings = Settings(seeds=seeds, pre=args.pre, stable=stable, n_detectors=args.detectors)
    started = time.perf_counter()
    table = run(settings, args.processes)
    print(
        f"Detection delay in events, median / p90 over {seeds} seeds (missed detections in "
        f"brackets); AlarmPolicy defaults (expected_run_time 1 000 000) shared by "
        f"{settings.n_detectors} detectors; "
        f"{settings.pre} events before each change."
    )
    print(table)
    print(
        f"¹ kswin (river, ~250 µs/event): {min(seeds, 10)} seeds, 1000 events before changes, "
        f"{stable // 10}-event stable streams."
    )
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
