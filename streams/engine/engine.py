"""The monitor engine: routes decoded events to per-model state, runs the ops checks, and
hands out its state per partition as plain data for checkpointing.

>>> from streams.core.events import GroundTruth, Prediction
>>> engine = Engine(MonitorConfig(), clock=lambda: 0.0)
>>> p = Prediction("e1", "churn", {"tenure": 3.0}, 0.8, timestamp=10.0)
>>> g = GroundTruth("e1", "churn", 1.0, timestamp=20.0)
>>> out = engine.process([InputRecord(p, 0, 0, 10.0), InputRecord(g, 0, 0, 20.0)])
>>> engine.status()["models"]["churn"]["joined"], engine.partitions()
(1, {0})
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from detectors.profile import Profile, ProfileError
from streams.core.dead_letter import REASON_KINDS, reason_kind
from streams.core.errors import DriftradarError
from streams.core.events import Alert, RetrainResult, rfc3339
from streams.engine.config import ConfigError, ModelConfig, MonitorConfig
from streams.engine.ids import alert_id
from streams.engine.model import ModelState
from streams.engine.pending_codec import PendingLookup
from streams.engine.records import EngineOutput, InputRecord, PartitionChanges
from streams.engine.references import profiles_from_file
from streams.engine.views import model_status, model_trace, model_view

__all__ = ["MONITOR_MODEL_ID", "SNAPSHOT_FORMAT", "Engine", "MisroutedResultError"]

#: Version of the partition snapshot layout. 2: pending predictions live in the store, not
#: in the snapshot; a format-1 snapshot is migrated on restore (its pending predictions
#: become the write-back delta of the next checkpoint). 3: the models are stored apart from
#: the partition's state, one snapshot per model, so a checkpoint writes only the models
#: that changed; a format-1 or 2 snapshot (every model inside) is migrated on restore (the
#: next checkpoint writes every model of the partition).
SNAPSHOT_FORMAT: Final = 3
_MIGRATED_FORMATS: Final = frozenset({1, 2})
#: Encodes the model snapshots of a checkpoint (as the store would; see checkpoint_partition).
_SNAPSHOT_ENCODER: Final = msgspec.msgpack.Encoder()
#: ``model_id`` of alerts about the monitor itself (consumer lag, outages, model cap).
MONITOR_MODEL_ID: Final = "_monitor"


@dataclass(slots=True)
class _PartitionBook:
    """What the engine keeps per partition besides its models: dead letters that belong to
    no known model (by kind of reason: a bounded set, whatever the junk), the cap on the
    number of models (events of models beyond it are refused), consumer-lag episodes, and
    the events refused here because their model lives on another partition (``split``:
    model id -> events; bounded by the models this engine knows)."""

    models: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    refused_events: int = 0
    cap_alerted: bool = False
    lagging: bool = False
    lag_episodes: int = 0
    unknown_results: int = 0
    split: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "cap_alerted": self.cap_alerted,
            "lagging": self.lagging,
            "lag_episodes": self.lag_episodes,
        }

    def summary(self) -> dict[str, Any]:
        """What ``driftradar status`` shows of the partition besides its models."""
        return {
            "dead_letters": dict(self.dead_letters),
            "refused_events": self.refused_events,
            "unknown_results": self.unknown_results,
            "split_events": dict(self.split),
        }


class MisroutedResultError(DriftradarError, ValueError):
    """A retrain result arrived on another partition than its model's events (the message
    goes to the dead-letter topic; the monitor goes on)."""


class Engine:
    """Transport-independent monitor: ``process`` batches, ``tick`` the clock, checkpoint."""

    def __init__(self, config: MonitorConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._models: dict[str, ModelState] = {}
        self._references: dict[str, Mapping[str, Profile]] = {}
        self._books: dict[int, _PartitionBook] = {}
        self._pending = EngineOutput()  # alerts raised outside process/tick (the model cap)
        self._changed: set[str] = set()  # models touched since the last metrics view
        self._unsaved: set[str] = set()  # models touched since their partition's checkpoint
        self._whole: set[int] = set()  # partitions whose next checkpoint writes every model
        # what the last pending_lookups asked, per lookup: [(model, ids)]
        self._asked: list[list[tuple[ModelState, list[str]]]] = []
        for model_id, model_config in config.models.items():
            self._load_reference(f"models.{model_id}", model_config)
        self._load_reference("defaults", config.defaults)

    # -- records -------------------------------------------------------------------------

    def process(self, records: Sequence[InputRecord]) -> EngineOutput:
        """Process a batch (any mix of models and topics, in consumption order)."""
        out, self._pending = self._pending, EngineOutput()
        if not records:
            return out
        now = self._clock()
        by_model: dict[str, list[InputRecord]] = {}
        for record in records:
            by_model.setdefault(record.event.model_id, []).append(record)
        self._changed.update(by_model)
        self._unsaved.update(by_model)
        for model_id, model_records in by_model.items():
            model = self._model(model_id, model_records[0].partition)
            alerts, requests = model.process(model_records, now)
            out.alerts.extend(alerts)
            out.retrain_requests.extend(requests)
        return out

    # -- the pending-prediction store (the runner does the I/O: streams.runner.pending) ----

    def pending_lookups(self, records: Sequence[InputRecord]) -> list[PendingLookup]:
        """The stored pending entries ``records`` may need, one lookup per partition (call
        before :meth:`process`, then hand the answers to :meth:`pending_found`)."""
        by_model: dict[str, list[str]] = {}
        for record in records:
            by_model.setdefault(record.event.model_id, []).append(record.event.event_id)
        per_partition: dict[int, tuple[list[bytes], list[tuple[ModelState, list[str]]]]] = {}
        for model_id, event_ids in by_model.items():
            model = self._models.get(model_id)
            if model is None:
                continue
            ids, blob = model.join.lookups(event_ids)
            if ids:
                blobs, owners = per_partition.setdefault(model.partition, ([], []))
                blobs.append(blob)
                owners.append((model, ids))
        self._asked = [owners for _, owners in per_partition.values()]
        return [PendingLookup(p, b"".join(blobs)) for p, (blobs, _) in per_partition.items()]

    def pending_found(self, values: Sequence[Sequence[bytes]]) -> None:
        """The store's answers to the last :meth:`pending_lookups`, in the same order."""
        for owners, answers in zip(self._asked, values, strict=True):
            start = 0
            for model, ids in owners:
                model.join.found(ids, answers[start : start + len(ids)])
                start += len(ids)
        self._asked = []

    def pending_delta(self, partition: int) -> bytes:
        """The write-back delta of ``partition`` since its last checkpoint (a blob for the
        checkpoint script, :mod:`streams.engine.pending_codec`): that of the models the
        checkpoint writes (an idle model's sweep of expired entries waits for its next
        change: its watermark, hence what is expired, does not move meanwhile)."""
        return b"".join(m.join.delta() for m in self._to_save(partition))

    def pending_saved(self, partition: int) -> None:
        """The delta of ``partition`` was checkpointed: start the next one (call before
        :meth:`checkpoint_saved`)."""
        for model in self._to_save(partition):
            model.join.saved()

    def label_delay(self, partition: int) -> float | None:
        """The median label delay (seconds) of the models of ``partition``: the largest
        model median, or None before any join (the runner derives the default lead)."""
        delays = [
            m.join.delay_quantile(0.5) for m in self._models.values() if m.partition == partition
        ]
        known = [d for d in delays if d is not None]
        return max(known) if known else None

    def admit(self, model_id: str, partition: int) -> str | None:
        """``None`` if events of ``model_id`` may be processed, else why they are refused.

        A new model is created here, unless ``partition`` already holds ``max_models``
        models: then its events are refused (the caller dead-letters them) and the first
        refusal on the partition raises one ``data_quality`` alert. Junk keys therefore
        cannot grow the engine's memory. The cap is per partition, the unit of state, so
        the same events are refused whichever member owns the partition.
        """
        model = self._models.get(model_id)
        if model is not None:
            return None if model.partition == partition else self._split(model, partition)
        book = self._book(partition)
        cap = self.config.max_models
        if book.models < cap:
            self._model(model_id, partition)
            return None
        book.refused_events += 1
        if not book.cap_alerted:
            book.cap_alerted = True
            self._pending.alerts.append(
                self.monitor_alert(
                    "models",
                    "max_models",
                    str(partition),
                    {"partition": partition, "max_models": cap, "first_refused": model_id},
                    severity=self.config.defaults.severities["data_quality"],
                    alert_type="data_quality",
                )
            )
        return (
            f"unknown model {model_id!r}: partition {partition} already monitors "
            f"max_models={cap} models (raise max_models if they are real models)"
        )

    def _split(self, model: ModelState, partition: int) -> str:
        """Why an event of ``model`` on another ``partition`` than the model's is refused: a
        producer partitions keys differently (its pairs would never join once the
        partitions are owned by different members, and the two partitions' checkpoints
        cannot both hold the model). Counted on that partition, the first one raises ONE
        ``infrastructure`` alert per model and partition (its id is deterministic)."""
        book = self._book(partition)
        seen = book.split.get(model.model_id, 0)
        book.split[model.model_id] = seen + 1
        cause = (
            f"model {model.model_id!r} is split across partitions: its events are on "
            f"partition {model.partition}, this one is on partition {partition}; a producer "
            "partitions keys with another partitioner than the contract's murmur2 (Java, "
            "aiokafka/Faust and driftradar's clients use murmur2; librdkafka defaults to "
            "CRC32: set partitioner=murmur2_random, see docs/producers.md)"
        )
        if seen == 0:
            details = {
                "partitions": sorted({model.partition, partition}),
                "model_partition": model.partition,
                "other_partition": partition,
                "cause": cause,
            }
            self._pending.alerts.append(
                self._ops_alert(
                    model, "partitioning", "split_model", self._clock(), details, key=partition
                )
            )
        return cause

    def retrain_result(self, result: RetrainResult, partition: int) -> EngineOutput:
        """The retrain worker's decision on a request of one of our models (read from
        ``retrain-results``, co-partitioned with the inputs): the model's policy takes it
        (see :meth:`ModelState.retrain_result`).

        Raises :class:`MisroutedResultError` when the model lives on another partition (the
        worker partitions keys differently from the model servers); a result for a model
        this engine does not know is counted on the partition and otherwise ignored.
        """
        model = self._models.get(result.model_id)
        if model is None:
            self._book(partition).unknown_results += 1
            return EngineOutput()
        if model.partition != partition:
            raise MisroutedResultError(
                f"retrain result {result.result_id} of model {result.model_id!r} is on "
                f"partition {partition}, but the model's events are on partition "
                f"{model.partition}: the retrain worker must partition keys like the model "
                "servers (murmur2, see docs/running.md)"
            )
        self._touch(model.model_id)
        return EngineOutput(alerts=model.retrain_result(result, self._clock()))

    def record_dead_letter(self, model_id: str | None, partition: int, reason: str = "") -> None:
        """Count a message that went to the dead-letter topic: on its model when that model
        exists, else on the partition, by kind of reason (never creating a model)."""
        model = self._models.get(model_id) if model_id is not None else None
        if model is not None:
            model.counters["dead_letters"] += 1
            self._touch(model.model_id)
        else:
            self._book(partition).dead_letters[reason_kind(reason)] += 1

    def _book(self, partition: int) -> _PartitionBook:
        book = self._books.get(partition)
        if book is None:
            book = self._books[partition] = _PartitionBook()
        return book

    def _model(self, model_id: str, partition: int) -> ModelState:
        model = self._models.get(model_id)
        if model is None:
            config = self.config.model(model_id)
            model = ModelState(model_id, partition, config, self._reference_for(model_id))
            self._models[model_id] = model
            self._touch(model_id)
            self._book(partition).models += 1
        return model

    def _touch(self, model_id: str) -> None:
        """``model_id`` changed: its next metrics view and next checkpoint include it."""
        self._changed.add(model_id)
        self._unsaved.add(model_id)

    # -- ops checks (processing time) ------------------------------------------------------

    def tick(self, now: float | None = None) -> EngineOutput:
        """Silence and throughput-collapse checks at processing time ``now``."""
        now = self._clock() if now is None else now
        out, self._pending = self._pending, EngineOutput()
        for model in self._models.values():
            config = model.config
            if model.last_seen is None:
                continue
            silent_for = now - model.last_seen
            if (
                config.silence_seconds is not None
                and silent_for > config.silence_seconds
                and not model.silent
            ):
                model.silent = True
                out.alerts.append(
                    self._ops_alert(
                        model,
                        "silence",
                        "timeout",
                        now,
                        {
                            "silent_seconds": silent_for,
                            "limit_seconds": config.silence_seconds,
                            "last_seen": rfc3339(model.last_seen),
                        },
                    )
                )
            alert = self._throughput(model, now)
            if alert is not None:
                out.alerts.append(alert)
        return out

    def _throughput(self, model: ModelState, now: float) -> Alert | None:
        """Rate over the last window vs its moving average; alert on collapse entry."""
        collapse = model.throughput.tick(now, model.config.throughput)
        if collapse is None:
            return None
        return self._ops_alert(model, "throughput", "collapse", now, collapse)

    def _ops_alert(
        self,
        model: ModelState,
        signal: str,
        detector: str,
        now: float,
        details: dict[str, Any],
        *,
        key: int | None = None,
    ) -> Alert:
        """An ``infrastructure`` alert about ``model``; its id from ``key`` (default: the
        model's position)."""
        version = model.current or "unknown"
        model.alerts += 1
        self._touch(model.model_id)
        return Alert(
            alert_id=alert_id(
                model.model_id, version, signal, detector, model.seq if key is None else key
            ),
            type="infrastructure",
            severity=model.config.severities["infrastructure"],
            model_id=model.model_id,
            model_version=version,
            signal=signal,
            detector=detector,
            detected_at=rfc3339(now),
            event_time=None if model.last_event_time is None else rfc3339(model.last_event_time),
            details={"position": model.seq, **details},
        )

    def monitor_alert(
        self,
        signal: str,
        detector: str,
        key: str,
        details: Mapping[str, Any],
        *,
        severity: str | None = None,
        alert_type: str = "infrastructure",
    ) -> Alert:
        """An alert about the monitor itself (``model_id`` ``_monitor``); ``key`` makes its
        id (the same key, the same id)."""
        return Alert(
            alert_id=alert_id(MONITOR_MODEL_ID, "-", signal, detector, key),
            type=alert_type,
            severity=severity or self.config.defaults.severities[alert_type],
            model_id=MONITOR_MODEL_ID,
            model_version="-",
            signal=signal,
            detector=detector,
            detected_at=rfc3339(self._clock()),
            details=dict(details),
        )

    def report_lag(self, lag_by_partition: Mapping[int, int]) -> EngineOutput:
        """The runner's consumer lag per partition; alert when one exceeds the limit.

        One alert per lagging episode of a partition; the episode count and whether the
        partition lags are part of its checkpoint, so a restart in the middle of an episode
        neither alerts again nor gives the same episode another id.
        """
        out = EngineOutput()
        limit = self.config.max_consumer_lag
        for partition, lag in sorted(lag_by_partition.items()):
            book = self._book(partition)
            lagging = lag > limit
            if lagging and not book.lagging:
                book.lag_episodes += 1
                out.alerts.append(
                    self.monitor_alert(
                        "consumer_lag",
                        "max_consumer_lag",
                        f"{partition}:{book.lag_episodes}",
                        {"partition": partition, "lag": lag, "limit": limit},
                    )
                )
            book.lagging = lagging
        return out

    # -- reading -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """``{"models": {model_id: {...}}, "partitions": {partition: {...}}}``: per model what
        ``driftradar status --json`` prints, per partition the dead letters that belong to
        no known model (by kind of reason) and the events refused by ``max_models``."""
        return {
            "models": {mid: model_status(model) for mid, model in self._models.items()},
            "partitions": {p: book.summary() for p, book in sorted(self._books.items())},
        }

    def metrics_view(self, *, changed_only: bool = False) -> dict[str, Any]:
        """``{"models": {model_id: view}}`` (``streams.metrics.EngineView``): detector
        statistics, performance vs limits, label coverage and lag, join and retrain counters.

        ``changed_only``: only the models touched (events, results, alerts, restores) since
        the previous such view, and ``model_ids``, every model held — an idle engine's view
        costs nothing however many models it holds (the runner's per-second view).
        """
        if not changed_only:
            return {"models": {mid: model_view(model) for mid, model in self._models.items()}}
        changed, self._changed = self._changed, set()
        return {
            "models": {mid: model_view(self._models[mid]) for mid in changed},
            "model_ids": list(self._models),
        }

    def traces(self) -> dict[str, dict[str, Any]]:
        """``{model_id: trace}``: every detector's statistic and threshold now (see
        :func:`streams.engine.views.model_trace`); ``driftradar backtest`` charts them."""
        return {mid: model_trace(model) for mid, model in self._models.items()}

    def signal_results(self, model_id: str, signal: str) -> dict[str, dict[str, Any]]:
        """Each detector's ``result()`` (plain data) on ``signal`` of the model's current
        version; ``{}`` if there is no such signal."""
        model = self._models.get(model_id)
        version = (
            None if model is None or model.current is None else model.versions.get(model.current)
        )
        found = None if version is None else version.signals.get(signal)
        return {} if found is None else found.results()

    def partitions(self) -> set[int]:
        """Partitions whose state this engine holds."""
        return {m.partition for m in self._models.values()} | set(self._books)

    # -- checkpointing -------------------------------------------------------------------

    def snapshot_partition(self, partition: int) -> dict[str, Any]:
        """All state of the models whose events arrive on ``partition``, as plain data."""
        with _collector_paused():
            return {
                **self._partition_state(partition),
                "models": [m.snapshot() for m in self._models.values() if m.partition == partition],
            }

    def checkpoint_partition(self, partition: int) -> PartitionChanges:
        """What the next checkpoint of ``partition`` writes: its own state, and snapshot and
        status of only the models changed since its last one (every model after a restore
        from an older format), so its cost follows the models that changed, not the models
        held. Each model's snapshot comes encoded (msgpack, as ``msgspec.Raw``): one model's
        plain data at a time exists, not every changed model's at once (~4x their bytes).
        Call :meth:`checkpoint_saved` once it is stored."""
        models = self._to_save(partition)
        book = self._books.get(partition, _PartitionBook())
        encode = _SNAPSHOT_ENCODER.encode
        with _collector_paused():
            snapshots = {m.model_id: msgspec.Raw(encode(m.snapshot())) for m in models}
        return PartitionChanges(
            state=self._partition_state(partition),
            models=snapshots,
            status={m.model_id: model_status(m) for m in models},
            summary=book.summary(),
            complete=partition in self._whole,
        )

    def checkpoint_saved(self, partition: int) -> None:
        """The last :meth:`checkpoint_partition` of ``partition`` is stored: its models are
        saved until they change again."""
        self._unsaved.difference_update(m.model_id for m in self._to_save(partition))
        self._whole.discard(partition)

    def save_whole(self, partition: int) -> None:
        """Make the next checkpoint of ``partition`` write every model (the stored copy
        cannot be updated model by model: it was lost, or is older than this engine's)."""
        self._whole.add(partition)

    def _to_save(self, partition: int) -> list[ModelState]:
        """The models the next checkpoint of ``partition`` writes, by id."""
        if partition in self._whole:
            found = [m for m in self._models.values() if m.partition == partition]
        else:
            held = (self._models.get(mid) for mid in self._unsaved)
            found = [m for m in held if m is not None and m.partition == partition]
        return sorted(found, key=lambda m: m.model_id)

    def _partition_state(self, partition: int) -> dict[str, Any]:
        """The partition's own state (its book), without its models."""
        book = self._books.get(partition, _PartitionBook())
        return {
            "format": SNAPSHOT_FORMAT,
            "partition": partition,
            "dead_letters": sum(book.dead_letters.values()),
            "book": book.snapshot(),
        }

    def restore_partition(
        self, partition: int, data: Mapping[str, Any], models: Mapping[str, Any] | None = None
    ) -> None:
        """Replace this partition's state with a :meth:`snapshot_partition` result, or with
        a stored checkpoint: the partition's state and ``models``, the stored snapshot of
        each model by id. A format-1 or 2 ``data`` holds every model itself, written after
        any ``models`` (by an earlier release, e.g. during a rolling upgrade): those are
        ignored, and the next checkpoint replaces them."""
        found = data.get("format")
        if found != SNAPSHOT_FORMAT and found not in _MIGRATED_FORMATS:
            raise ValueError(
                f"partition {partition}: snapshot format {found!r} is not "
                f"{SNAPSHOT_FORMAT} (this release restores formats 1, 2 and 3; a newer "
                "monitor wrote it?)"
            )
        self.drop_partition(partition)
        migrated = found in _MIGRATED_FORMATS
        items = list(data.get("models", ())) + ([] if migrated else list((models or {}).values()))
        with _collector_paused():
            self._restore_models(partition, data, items)
        if migrated:
            self._whole.add(partition)  # stored as one value: store it model by model

    def _restore_models(
        self, partition: int, data: Mapping[str, Any], items: list[Mapping[str, Any]]
    ) -> None:
        book = self._book(partition)
        saved = data.get("book")
        if saved is None:  # written before the per-reason counts: all were "other"
            if data["dead_letters"]:
                book.dead_letters["other"] = int(data["dead_letters"])
        else:
            book.dead_letters.update(
                {str(k): int(v) for k, v in saved["dead_letters"].items() if k in REASON_KINDS}
            )
            book.refused_events = int(saved["refused_events"])
            book.cap_alerted = bool(saved["cap_alerted"])
            book.lagging = bool(saved.get("lagging", False))
            book.lag_episodes = int(saved.get("lag_episodes", 0))
            book.unknown_results = int(saved.get("unknown_results", 0))
            book.split = {str(k): int(v) for k, v in saved.get("split_events", {}).items()}
        for item in items:
            model_id = str(item["model_id"])
            model = ModelState.restore(
                item, self.config.model(model_id), self._reference_for(model_id)
            )
            model.partition = partition
            self._models[model_id] = model
            self._changed.add(model_id)
            book.models += 1

    def drop_partition(self, partition: int) -> None:
        """Forget the state of ``partition`` (revoked from this instance)."""
        for model_id in [mid for mid, m in self._models.items() if m.partition == partition]:
            del self._models[model_id]
            self._changed.discard(model_id)
            self._unsaved.discard(model_id)
        self._books.pop(partition, None)
        self._whole.discard(partition)

    # -- reference profiles --------------------------------------------------------------

    def _load_reference(self, key: str, config: ModelConfig) -> None:
        path = config.reference
        if path is None or path in self._references:
            return
        kinds = {name: spec.type for name, spec in config.features.items() if spec.type}
        try:
            self._references[path] = profiles_from_file(path, kinds=kinds)
        except ProfileError as exc:
            raise ConfigError(f"{key}.reference", str(exc)) from None

    def _reference_for(self, model_id: str) -> Mapping[str, Profile]:
        path = self.config.model(model_id).reference
        return {} if path is None else self._references[path]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a snapshot is built or restored.

    Both make many containers (hundreds of thousands with many models) and no cycles: the
    collections their allocations would trigger find nothing, yet scan the whole engine
    state (measured: a 100-model snapshot took 160-790 ms with them, 120-210 ms without).
    The previous setting is restored, so a process that disabled collection keeps it off.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
