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
import itertools
import math
import time
from collections.abc import Callable, Iterator
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
from producers.serving import DeploymentSource, ModelServer, Switch, served_probabilities
from streams.core.events import (
    MAX_ID_LENGTH,
    FeatureValue,
    GroundTruth,
    LogisticParameters,
    Prediction,
    encode,
)

__all__ = [
    "CHUNK",
    "DEFAULT_START",
    "MAX_POLL_EVERY",
    "NOMINAL_INTERVAL",
    "Counts",
    "Kind",
    "Outgoing",
    "Pause",
    "Simulation",
    "SimulationConfig",
    "poll_interval",
]

#: Events generated per numpy batch (fixed: the output must not depend on it varying).
CHUNK: Final = 4096
#: Event-time origin with ``--rate 0``: 2026-01-01T00:00:00Z, so runs are reproducible.
DEFAULT_START: Final = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
#: Simulated seconds between two events with ``--rate 0`` (a nominal 100 events/s).
NOMINAL_INTERVAL: Final = 0.01
#: Most predictions between two looks for deployments (when following them).
MAX_POLL_EVERY: Final = 256
#: With a rate, look for deployments about this often, in wall-clock seconds.
_POLL_PERIOD_S: Final = 0.01

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

    ``rate`` is events per wall-clock second (0: as fast as possible); ``events`` 0 means
    unbounded (only with a rate; then ``change_at`` is required unless the scenario is
    ``stable``); ``label_delay`` is the
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
        _non_negative("rate", self.rate)
        events = self.events
        if (
            isinstance(events, bool)
            or not isinstance(events, int)
            or events < 0
            or (events == 0 and self.rate == 0)
        ):
            raise ValueError(
                f"events must be an integer >= 1, or 0 (unbounded) with a rate > 0, got {events!r}"
            )
        _integer("seed", self.seed, 0)
        for name in ("model_id", "model_version"):
            value = getattr(self, name)
            if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH:
                raise ValueError(f"{name} must be 1..{MAX_ID_LENGTH} characters, got {value!r}")
        _fraction("label_coverage", self.label_coverage)
        _non_negative("label_delay", self.label_delay)
        _fraction("early_labels", self.early_labels)
        if self.change_at is not None:
            _integer("change_at", self.change_at, 0, self.events or math.inf)
        elif self.events == 0 and self.scenario != "stable":
            raise ValueError(
                f"change_at must be given when events is 0 (unbounded), for scenario "
                f"{self.scenario!r}"
            )
        _non_negative("outage_seconds", self.outage_seconds)
        if self.interval is not None and _non_negative("interval", self.interval) == 0:
            raise ValueError("interval must be > 0")
        if self.start_time is not None:
            _non_negative("start_time", self.start_time)

    @property
    def unbounded(self) -> bool:
        """``events`` is 0: the stream never ends (the publisher stops it)."""
        return self.events == 0

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


def poll_interval(rate: float) -> int:
    """Predictions between two looks for deployments: about 10 ms' worth at ``rate``, <= 256.

    >>> poll_interval(0), poll_interval(2000), poll_interval(50)
    (256, 20, 1)
    """
    if rate <= 0:
        return MAX_POLL_EVERY
    return max(1, min(MAX_POLL_EVERY, int(rate * _POLL_PERIOD_S)))


@dataclass(slots=True)
class Simulation:
    """Iterate to get the stream; ``counts`` tells what it held so far.

    ``deployments`` (a :data:`~producers.serving.DeploymentSource`) makes the model server
    follow deployments: it is called with the position of the next prediction before every
    ``poll_every`` predictions (default :func:`poll_interval` of the rate), and a new
    version of this model answers from that position on (``on_switch`` hears of each
    :class:`~producers.serving.Switch`; ``server`` tells who answers now). Nothing else
    changes: the customers, the world's labels and every id are the same as without it.
    """

    config: SimulationConfig
    counts: Counts = field(default_factory=Counts)
    deployments: DeploymentSource | None = field(default=None, kw_only=True)
    on_switch: Callable[[Switch], None] | None = field(default=None, kw_only=True)
    poll_every: int | None = field(default=None, kw_only=True)
    server: ModelServer = field(init=False)

    def __post_init__(self) -> None:
        if self.poll_every is not None:
            _integer("poll_every", self.poll_every, 1)
        self.server = ModelServer(self.config.model_id, self.config.model_version)

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
        self.server = ModelServer(config.model_id, config.model_version)
        every = self.poll_every or poll_interval(config.rate)
        firsts = range(0, config.events, CHUNK) if config.events else itertools.count(0, CHUNK)
        for first in firsts:
            last = min(first + CHUNK, config.events) if config.events else first + CHUNK
            for low, high, regime in _regime_parts(first, last, config.change_point, scenario):
                batch = _Batch.generate(streams, regime, low, high, clock, config)
                for due, index, label in batch.labels:
                    heapq.heappush(pending, (due, index, label))
                for begin, messages in self._answered(batch, every):
                    for index, value in enumerate(messages, begin):
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

    def _answered(self, batch: _Batch, every: int) -> Iterator[tuple[int, list[bytes]]]:
        """``(first position, prediction messages)`` slice by slice: each slice is answered by
        the model serving when it begins (one slice per look for deployments; one in all
        when not following)."""
        source, server = self.deployments, self.server
        low, high = batch.low, batch.low + len(batch.ids)
        scored: _Scored | None = None  # the deployed model's answers for this batch
        begin = low
        while begin < high:
            end = high if source is None else min(high, begin + every)
            if source is not None:
                self._follow(source, begin)
            values = None
            if server.parameters is not None:
                if scored is None or scored.parameters is not server.parameters:
                    scored = _Scored.of(batch, server.parameters, begin - low)
                values = scored.values[begin - low - scored.offset : end - low - scored.offset]
            model_id, version = self.config.model_id, server.model_version
            yield begin, batch.encode(begin - low, end - low, model_id, version, values)
            begin = end

    def _follow(self, source: DeploymentSource, position: int) -> None:
        for deployment in source(position):
            switch = self.server.offer(deployment, position)
            if switch is not None and self.on_switch is not None:
                self.on_switch(switch)


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
class _Scored:
    """A deployed model's answers for a batch, from ``offset`` on (one numpy pass per batch)."""

    parameters: LogisticParameters
    offset: int
    values: list[float]

    @classmethod
    def of(cls, batch: _Batch, parameters: LogisticParameters, offset: int) -> _Scored:
        columns = {name: column[offset:] for name, column in batch.published.items()}
        return cls(parameters, offset, served_probabilities(parameters, columns))


@dataclass(frozen=True, slots=True)
class _Batch:
    """Positions ``low..high``: what each prediction carries, and its labels (due, index, bytes).

    Everything random is drawn in :meth:`generate`; :meth:`encode` only serialises, so the
    model answering a slice (the scenario's, or a deployed one) changes nothing else.
    """

    low: int
    ids: list[str]
    times: list[datetime]
    rows: list[dict[str, FeatureValue]]
    published: dict[str, npt.NDArray[np.generic]]  # feature columns as the events carry them
    risk: list[float]  # the scenario model's predictions
    broken: dict[int, int]  # offset of a malformed prediction -> kind of damage
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

        published = {name: _published(customers, name) for name in _FEATURES}
        columns = (_column(published[name], name) for name in _FEATURES)
        rows = [dict(zip(_FEATURES, row, strict=True)) for row in zip(*columns, strict=True)]
        broken = np.zeros(count, dtype=bool)
        damage: dict[int, int] = {}
        if regime.corrupt:
            broken = streams.faults.random(count) < MALFORMED_RATE
            kinds = streams.faults.integers(0, len(MALFORMED_KINDS), count)
            damage = {j: int(kinds[j]) for j in np.flatnonzero(broken).tolist()}

        schedule = streams.schedule
        labelled = (schedule.random(count) < config.label_coverage) & ~broken
        delay = schedule.exponential(config.label_delay, count) if config.label_delay else 0.0
        early = schedule.random(count) < config.early_labels
        due = np.where(early, positions - schedule.uniform(0.5, 3.0, count), positions + delay)
        chosen = np.flatnonzero(labelled)
        label_times = clock(due[chosen])
        model_id = config.model_id
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
        return cls(
            low=low,
            ids=ids,
            times=clock(positions),
            rows=rows,
            published=published,
            risk=risk.tolist(),
            broken=damage,
            labels=labels,
            malformed=frozenset(low + j for j in damage),
        )

    def encode(
        self,
        start: int,
        stop: int,
        model_id: str,
        version: str,
        values: list[float] | None = None,
    ) -> list[bytes]:
        """The prediction messages of offsets ``start..stop``: ``values`` (the deployed model's
        answers), or the scenario model's."""
        if values is None:
            values = self.risk[start:stop]
        messages = [
            encode(
                Prediction(
                    event_id=event_id,
                    model_id=model_id,
                    model_version=version,
                    timestamp=timestamp,
                    features=features,
                    prediction=value,
                )
            )
            for event_id, timestamp, features, value in zip(
                self.ids[start:stop],
                self.times[start:stop],
                self.rows[start:stop],
                values,
                strict=True,
            )
        ]
        for j, kind in self.broken.items():
            if start <= j < stop:
                messages[j - start] = break_message(messages[j - start], kind)
        return messages


def _uuid4_hexes(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` random version-4 UUIDs (hex) drawn from ``rng``."""
    raw = rng.integers(0, 256, size=(count, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    text = raw.tobytes().hex()
    return [text[32 * i : 32 * (i + 1)] for i in range(count)]


def _published(customers: Customers, name: str) -> npt.NDArray[np.generic]:
    """One feature as the events carry it: floats (``nan`` where missing), or category names."""
    values = getattr(customers, name)
    if name not in _CATEGORY_NAMES:
        column: npt.NDArray[np.generic] = values
        return column
    names: npt.NDArray[np.str_] = np.asarray(_CATEGORY_NAMES[name])[np.maximum(values, 0)]
    unseen = customers.unseen.get(name)
    if unseen is not None:
        names = np.where(values == -1, unseen, names)
    return names


def _column(values: npt.NDArray[np.generic], name: str) -> list[float | int | str | None]:
    """A published column as JSON-ready Python values: ints, floats, names; ``None`` if missing."""
    if values.dtype.kind == "U":
        result: list[float | int | str | None] = values.tolist()
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
