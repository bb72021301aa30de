"""The churn simulator's event stream: predictions and delayed labels, deterministic per seed.

:class:`Simulation` turns a :class:`SimulationConfig` into the exact sequence of messages to
publish (:class:`Outgoing`), with a :class:`Pause` where the model goes silent. Generation is
vectorised with numpy in chunks; independent random streams (customers, labels, ids, label
schedule, faults) are spawned from the seed, so the same seed gives byte-identical output.

Time is simulated: event ``i`` happens ``i * interval`` seconds after ``start_time`` (plus the
outage, once past it). A label arrives after an exponential delay of mean ``label_delay``
events; a few (``early_labels``) arrive just *before* their prediction.

>>> sim = Simulation(SimulationConfig(events=4, seed=1, label_coverage=1, label_delay=1))
>>> [f"{item.kind.name[0]}{item.position}" for item in sim if isinstance(item, Outgoing)]
['P0', 'P1', 'G1', 'P2', 'G2', 'G0', 'P3', 'G3']
>>> sim.counts
Counts(predictions=4, malformed=0, labels=4)
"""

from __future__ import annotations

import enum
import heapq
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from producers.churn import (
    CATEGORICAL,
    CONTRACTS,
    NUMERIC,
    PAYMENT_METHODS,
    Customers,
    churn_probability,
    sample_customers,
)
from producers.quality import MALFORMED_KINDS, MALFORMED_RATE, break_message, corrupt_customers
from producers.scenarios import SCENARIOS, Regime, Scenario
from streams.events import MAX_ID_LENGTH, GroundTruth, Prediction, encode

__all__ = [
    "CHUNK",
    "DEFAULT_START",
    "NOMINAL_INTERVAL",
    "Counts",
    "Kind",
    "Outgoing",
    "Pause",
    "Simulation",
    "SimulationConfig",
]

#: Events generated per numpy batch (fixed: the output must not depend on it varying).
CHUNK: Final = 4096
#: Event-time origin with ``--rate 0``: 2026-01-01T00:00:00Z, so runs are reproducible.
DEFAULT_START: Final = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
#: Simulated seconds between two events with ``--rate 0`` (a nominal 100 events/s).
NOMINAL_INTERVAL: Final = 0.01

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_INTEGER_FEATURES: Final = frozenset({"tenure_months", "support_calls", "age"})
_CATEGORY_NAMES: Final = {"contract": CONTRACTS, "payment_method": PAYMENT_METHODS}
_FEATURES: Final = NUMERIC + CATEGORICAL


class Kind(enum.Enum):
    PREDICTION = "prediction"
    GROUND_TRUTH = "ground_truth"


class Outgoing(NamedTuple):
    """One message to publish; ``position`` is its prediction's index in the stream."""

    kind: Kind
    value: bytes
    position: int


class Pause(NamedTuple):
    """The model is silent for ``seconds`` here."""

    seconds: float


@dataclass(slots=True)
class Counts:
    """What the stream held so far: valid predictions, malformed messages, labels."""

    predictions: int = 0
    malformed: int = 0
    labels: int = 0


def _fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
    return float(value)


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _integer(name: str, value: int, low: int, high: float = math.inf) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        bound = f"between {low} and {high}" if high < math.inf else f">= {low}"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """What to simulate; every value is checked here, errors name the parameter.

    ``rate`` is events per wall-clock second (0: as fast as possible); ``label_delay`` is the
    mean label delay in events; ``change_at`` defaults to half of ``events``; ``interval``
    (simulated seconds between events) defaults to ``1 / rate``, or 0.01 with rate 0;
    ``start_time`` (epoch seconds) defaults to now with a rate, 2026-01-01 without.
    """

    scenario: str = "stable"
    events: int = 10_000
    seed: int = 0
    rate: float = 0.0
    model_id: str = "churn"
    model_version: str = "v1"
    label_coverage: float = 0.9
    label_delay: float = 200.0
    early_labels: float = 0.01
    change_at: int | None = None
    outage_seconds: float = 30.0
    interval: float | None = None
    start_time: float | None = None

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(
                f"scenario must be one of {', '.join(SCENARIOS)}, got {self.scenario!r}"
            )
        _integer("events", self.events, 1)
        _integer("seed", self.seed, 0)
        _non_negative("rate", self.rate)
        for name in ("model_id", "model_version"):
            value = getattr(self, name)
            if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH:
                raise ValueError(f"{name} must be 1..{MAX_ID_LENGTH} characters, got {value!r}")
        _fraction("label_coverage", self.label_coverage)
        _non_negative("label_delay", self.label_delay)
        _fraction("early_labels", self.early_labels)
        if self.change_at is not None:
            _integer("change_at", self.change_at, 0, self.events)
        _non_negative("outage_seconds", self.outage_seconds)
        if self.interval is not None and _non_negative("interval", self.interval) == 0:
            raise ValueError("interval must be > 0")
        if self.start_time is not None:
            _non_negative("start_time", self.start_time)

    @property
    def change_point(self) -> int:
        """Index of the first event of the ``after`` regime."""
        return self.events // 2 if self.change_at is None else self.change_at

    @property
    def step(self) -> float:
        """Simulated seconds between two consecutive events."""
        if self.interval is not None:
            return self.interval
        return 1.0 / self.rate if self.rate > 0 else NOMINAL_INTERVAL


class _Streams:
    """Independent random streams, so that e.g. the label coverage leaves features unchanged."""

    def __init__(self, seed: int) -> None:
        children = np.random.SeedSequence(seed).spawn(5)
        self.customers, self.labels, self.ids, self.schedule, self.faults = (
            np.random.default_rng(child) for child in children
        )


@dataclass(slots=True)
class Simulation:
    """Iterate to get the stream; ``counts`` tells what it held so far."""

    config: SimulationConfig
    counts: Counts = field(default_factory=Counts)

    def __iter__(self) -> Iterator[Outgoing | Pause]:
        config = self.config
        scenario = SCENARIOS[config.scenario]
        start = config.start_time
        if start is None:
            start = time.time() if config.rate > 0 else DEFAULT_START
        outage = config.outage_seconds if scenario.outage else 0.0
        clock = _Clock(start, config.step, config.change_point, outage)
        streams = _Streams(config.seed)
        pending: list[tuple[float, int, bytes]] = []  # heap of (due position, index, label)
        self.counts = Counts()
        for first in range(0, config.events, CHUNK):
            last = min(first + CHUNK, config.events)
            for low, high, regime in _regime_parts(first, last, config.change_point, scenario):
                batch = _Batch.generate(streams, regime, low, high, clock, config)
                for due, index, label in batch.labels:
                    heapq.heappush(pending, (due, index, label))
                for index, value in zip(range(low, high), batch.predictions, strict=True):
                    while pending and pending[0][0] < index:
                        _, label_index, label = heapq.heappop(pending)
                        self.counts.labels += 1
                        yield Outgoing(Kind.GROUND_TRUTH, label, label_index)
                    if index == config.change_point and scenario.outage:
                        yield Pause(config.outage_seconds)
                    if index in batch.malformed:
                        self.counts.malformed += 1
                    else:
                        self.counts.predictions += 1
                    yield Outgoing(Kind.PREDICTION, value, index)
        while pending:
            _, label_index, label = heapq.heappop(pending)
            self.counts.labels += 1
            yield Outgoing(Kind.GROUND_TRUTH, label, label_index)


@dataclass(frozen=True, slots=True)
class _Clock:
    """Simulated event time of a (fractional) stream position."""

    start: float
    step: float
    change_point: int
    outage_seconds: float

    def __call__(self, positions: npt.NDArray[np.float64]) -> list[datetime]:
        seconds = self.start + positions * self.step
        if self.outage_seconds:
            seconds = seconds + np.where(positions >= self.change_point, self.outage_seconds, 0.0)
        millis = np.round(seconds * 1000).astype(np.int64).tolist()
        return [_EPOCH + timedelta(milliseconds=value) for value in millis]


def _regime_parts(
    first: int, last: int, change: int, scenario: Scenario
) -> Iterator[tuple[int, int, Regime]]:
    """Split positions ``first..last`` at the change point, each part with its regime."""
    if first < change:
        yield first, min(last, change), scenario.before
    if last > change:
        yield max(first, change), last, scenario.after


@dataclass(frozen=True, slots=True)
class _Batch:
    """Encoded predictions for positions ``low..high`` and their labels (due, index, bytes)."""

    predictions: list[bytes]
    labels: list[tuple[float, int, bytes]]
    malformed: frozenset[int]  # positions of the broken predictions

    @classmethod
    def generate(
        cls,
        streams: _Streams,
        regime: Regime,
        low: int,
        high: int,
        clock: _Clock,
        config: SimulationConfig,
    ) -> _Batch:
        count = high - low
        positions = np.arange(low, high, dtype=np.float64)
        customers = sample_customers(streams.customers, count, regime.population)
        truth = churn_probability(regime.world, customers)
        if regime.corrupt:
            corrupt_customers(streams.faults, customers)
        risk = np.round(churn_probability(regime.model, customers), 6)
        churned = (streams.labels.random(count) < truth).astype(np.int64)
        ids = _uuid4_hexes(streams.ids, count)

        rows = zip(*(_column(customers, name) for name in _FEATURES), strict=True)
        model_id, version = config.model_id, config.model_version
        predictions = [
            encode(
                Prediction(
                    event_id=event_id,
                    model_id=model_id,
                    model_version=version,
                    timestamp=timestamp,
                    features=dict(zip(_FEATURES, row, strict=True)),
                    prediction=value,
                )
            )
            for event_id, timestamp, row, value in zip(
                ids, clock(positions), rows, risk.tolist(), strict=True
            )
        ]
        broken = np.zeros(count, dtype=bool)
        if regime.corrupt:
            broken = streams.faults.random(count) < MALFORMED_RATE
            kinds = streams.faults.integers(0, len(MALFORMED_KINDS), count)
            for j in np.flatnonzero(broken).tolist():
                predictions[j] = break_message(predictions[j], int(kinds[j]))

        schedule = streams.schedule
        labelled = (schedule.random(count) < config.label_coverage) & ~broken
        delay = schedule.exponential(config.label_delay, count) if config.label_delay else 0.0
        early = schedule.random(count) < config.early_labels
        due = np.where(early, positions - schedule.uniform(0.5, 3.0, count), positions + delay)
        chosen = np.flatnonzero(labelled)
        label_times = clock(due[chosen])
        labels = [
            (
                due_at,
                low + j,
                encode(
                    GroundTruth(
                        event_id=ids[j], model_id=model_id, label=label, timestamp=timestamp
                    )
                ),
            )
            for j, due_at, label, timestamp in zip(
                chosen.tolist(),
                due[chosen].tolist(),
                churned[chosen].tolist(),
                label_times,
                strict=True,
            )
        ]
        return cls(predictions, labels, frozenset((low + np.flatnonzero(broken)).tolist()))


def _uuid4_hexes(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` random version-4 UUIDs (hex) drawn from ``rng``."""
    raw = rng.integers(0, 256, size=(count, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    text = raw.tobytes().hex()
    return [text[32 * i : 32 * (i + 1)] for i in range(count)]


def _column(customers: Customers, name: str) -> list[float | int | str | None]:
    """One feature as JSON-ready Python values: ints, floats, names; ``None`` where missing."""
    values = getattr(customers, name)
    if name in _CATEGORY_NAMES:
        names = np.asarray(_CATEGORY_NAMES[name])[np.maximum(values, 0)]
        unseen = customers.unseen.get(name)
        if unseen is not None:
            names = np.where(values == -1, unseen, names)
        result: list[float | int | str | None] = names.tolist()
        return result
    missing = np.isnan(values)
    column: list[float | int | str | None] = (
        np.where(missing, 0, values).astype(np.int64).tolist()
        if name in _INTEGER_FEATURES
        else values.tolist()
    )
    if missing.any():
        for j in np.flatnonzero(missing).tolist():
            column[j] = None
    return column
