"""The monitor's consumer loop: one consumer-group member driving the engine.

Each turn of the loop is a short list of named steps::

    poll batch -> decode -> align (the two topics of each partition merged by event time,
               streams.runner.intake; bad -> dead letter) -> read the pending predictions
               the batch needs (streams.runner.pending) -> engine update -> publish alerts
               -> (every N events / T seconds) flush -> checkpoint state+offsets+pending
               delta -> commit
               -> observe (metrics: one call per batch; the engine view about once a second)

Guarantees (DESIGN.md "Guarantees"):

* Engine state and the next offsets of both input topics are saved to Redis together, in one
  atomic script (:mod:`streams.checkpoint`). On assignment the consumer seeks to the offsets
  saved with the state, so after any crash each record reaches the engine exactly once.
* Alerts, retrain requests and dead letters are produced as they happen and the producer is
  flushed *before* the checkpoint that records their source offsets is written. A crash
  before the checkpoint replays the records and re-creates the same (deterministic-id)
  alerts; a crash after it has already delivered them: at-least-once, never lost.
* The Kafka commit follows the checkpoint and is informational (for lag tooling); the
  offsets stored in Redis are the truth.

Metrics (:mod:`streams.metrics`) are fed once per batch by a
:class:`~streams.runner.observe.LoopObserver`; ``Runner.metrics`` is the
:class:`~streams.metrics.MonitorMetrics` that ``driftradar run`` serves on ``/metrics``
(a private registry when none is given).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Final, Protocol, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from streams.checkpoint import (
    CheckpointStore,
    CorruptCheckpointError,
    PartitionCheckpoint,
    partition_key,
)
from streams.dead_letter import dead_letter, model_hint
from streams.engine.config import CheckpointConfig, JoinConfig
from streams.engine.records import EngineOutput, InputRecord
from streams.kafka_config import FAST_GROUP, TopicNames, consumer_config
from streams.metrics import MonitorMetrics
from streams.publisher import OutputTopics, Publisher
from streams.runner.connect import open_redis
from streams.runner.decode import Rejected, decode_batch
from streams.runner.errors import ConsumeError, UnreachableError
from streams.runner.intake import Intake
from streams.runner.lag import read_stats
from streams.runner.layout import check_layout
from streams.runner.observe import LoopObserver
from streams.runner.offsets import OffsetBook
from streams.runner.pending import PendingHooks
from streams.runner.properties import common_properties, split_properties
from streams.topics import partition_counts

#: Checkpoint cadence and alignment settings when the caller gives none: config defaults.
_CHECKPOINT_DEFAULTS: Final = CheckpointConfig()
_JOIN_DEFAULTS: Final = JoinConfig()

__all__ = ["Engine", "Runner", "RunnerSettings"]

log = logging.getLogger("driftradar.runner")

#: Consumer errors that are reported but do not stop the loop (librdkafka retries them).
_TRANSIENT: Final = frozenset(
    {
        # librdkafka's local error codes are spelled with a leading underscore.
        KafkaError._TRANSPORT,  # noqa: SLF001
        KafkaError._ALL_BROKERS_DOWN,  # noqa: SLF001
        KafkaError._TIMED_OUT,  # noqa: SLF001
        KafkaError._PARTITION_EOF,  # noqa: SLF001
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
    }
)
#: Transient errors after which ``/readyz`` reports Kafka as not ready until a broker is up.
_BROKER_DOWN: Final = frozenset(
    {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}  # noqa: SLF001
)


class Engine(Protocol):
    """What the runner needs from the transport-independent engine (streams.engine)."""

    def process(self, records: list[InputRecord]) -> EngineOutput: ...
    def tick(self, now: float) -> EngineOutput: ...
    def record_dead_letter(self, model_id: str | None, partition: int) -> None: ...
    def report_lag(self, lags: Mapping[int, int]) -> EngineOutput: ...
    def snapshot_partition(self, partition: int) -> Any: ...
    def restore_partition(self, partition: int, data: Any) -> None: ...
    def drop_partition(self, partition: int) -> None: ...
    def status(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """Everything the loop needs besides the engine; see ``driftradar run --help``."""

    bootstrap: str
    redis_url: str
    group_id: str
    predictions_topic: str = TopicNames.PREDICTIONS
    ground_truth_topic: str = TopicNames.GROUND_TRUTH
    outputs: OutputTopics = field(default_factory=OutputTopics)
    batch_size: int = 10_000
    poll_timeout: float = 0.2
    checkpoint_events: int = _CHECKPOINT_DEFAULTS.every_events
    checkpoint_seconds: float = _CHECKPOINT_DEFAULTS.every_seconds
    tick_seconds: float = 1.0
    view_seconds: float = 1.0
    stats_interval_ms: int = 5000
    # alignment of the two input topics (streams.runner.align); lead None: derived
    max_lead_seconds: float | None = _JOIN_DEFAULTS.max_lead_seconds
    max_idle_seconds: float = _JOIN_DEFAULTS.max_idle_seconds
    max_buffered: int = _JOIN_DEFAULTS.max_buffered
    kafka: Mapping[str, Any] = field(default_factory=dict)
    group_timings: Mapping[str, Any] = field(default_factory=lambda: dict(FAST_GROUP))

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.poll_timeout <= 0:
            raise ValueError(f"poll_timeout must be > 0, got {self.poll_timeout}")
        if self.checkpoint_events < 1:
            raise ValueError(f"checkpoint_events must be >= 1, got {self.checkpoint_events}")
        if self.checkpoint_seconds <= 0:
            raise ValueError(f"checkpoint_seconds must be > 0, got {self.checkpoint_seconds}")

    @property
    def inputs(self) -> tuple[str, str]:
        return (self.predictions_topic, self.ground_truth_topic)


@dataclass(slots=True)
class _Progress:
    """Counters since the start, and what is pending since the last checkpoint."""

    events: int = 0
    dead_letters: int = 0
    batch_started: float = 0.0
    batch_dead_letters: list[tuple[str, str]] = field(default_factory=list)
    checkpoints: int = 0
    since_checkpoint: int = 0
    last_checkpoint: float = field(default_factory=time.monotonic)
    last_tick: float = field(default_factory=time.monotonic)


class Runner:
    """Runs ``engine`` over the input topics until :meth:`stop` (or SIGTERM/SIGINT).

    ``metrics`` receives the loop's metrics (a private :class:`MonitorMetrics` when None).
    """

    def __init__(
        self,
        settings: RunnerSettings,
        engine: Engine,
        *,
        metrics: MonitorMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._engine = engine
        self._clock = clock
        self.metrics = metrics if metrics is not None else MonitorMetrics(process_collectors=False)
        self.observer = LoopObserver(
            self.metrics, settings.inputs, view_seconds=settings.view_seconds, clock=clock
        )
        self._offsets = OffsetBook(settings.inputs)
        self._intake = Intake(
            settings.inputs,
            self._offsets,
            max_lead=settings.max_lead_seconds,
            max_idle=settings.max_idle_seconds,
            max_buffered=settings.max_buffered,
            engine=engine,
        )
        self._pending = PendingHooks(engine)
        self._models: dict[int, set[str]] = {}
        self._progress = _Progress()
        self._stopping = False
        self._failed = False
        self._consumer: Consumer | None = None
        self._publisher: Publisher | None = None
        self._store: CheckpointStore | None = None
        self._consumer_properties, self._producer_properties = split_properties(settings.kafka)

    # -- public ------------------------------------------------------------------------

    @property
    def events(self) -> int:
        """Records consumed so far (valid and dead-lettered)."""
        return self._progress.events

    @property
    def checkpoints(self) -> int:
        return self._progress.checkpoints

    @property
    def assigned(self) -> frozenset[int]:
        """Input partition numbers this member owns now."""
        return self._offsets.owned

    def stop(self) -> None:
        """Ask the loop to finish its batch, checkpoint and close (safe from any thread)."""
        self._stopping = True

    def run(self, *, handle_signals: bool = True) -> None:
        """Consume until stopped; always checkpoints what was applied before returning."""
        with contextlib.ExitStack() as stack:
            if handle_signals:
                stack.enter_context(self._signals_stop_loop())
            self._store = CheckpointStore(
                open_redis(self.settings.redis_url), self.settings.group_id
            )
            self._pending.connect(self._store)
            self.observer.redis_ok()
            self._check_topics()
            self._publisher = Publisher(
                self.settings.bootstrap, self.settings.outputs, self._producer_properties
            )
            stack.callback(self._publisher.close)
            self._consumer = self._open_consumer()
            stack.callback(self._close_consumer)
            # Everything imported and built so far lives as long as the process: keep the
            # cyclic garbage collector from rescanning it on every collection.
            gc.collect()
            gc.freeze()
            try:
                while not self._stopping:
                    self._step()
                self._checkpoint(self._offsets.owned)
            except BaseException:
                self._failed = True  # no checkpoint on the way out: its state is suspect
                raise

    # -- the steps of one turn -----------------------------------------------------------

    def _step(self) -> None:
        messages = self._poll()
        records = self._decode(messages)
        output = self._update(records)
        self._publish(output)
        self._maybe_tick()
        if self._checkpoint_due():
            self._checkpoint(self._offsets.owned)
        self._observe(records)

    def _poll(self) -> list[Message]:
        assert self._consumer is not None
        messages: list[Message] = self._consumer.consume(
            self.settings.batch_size, self.settings.poll_timeout
        )
        self._progress.batch_started = time.perf_counter()
        return messages

    def _decode(self, messages: list[Message]) -> list[InputRecord]:
        """The records whose turn has come in each partition's event-time merge of the two
        input topics (:mod:`streams.runner.align`); bad ones go to the dead-letter topic."""
        assert self._consumer is not None
        batch = decode_batch(messages, self.settings.predictions_topic, self._intake.fetched)
        for error in batch.errors:
            self._consumer_error(error)
        for partition, model_id in batch.models:
            self._models.setdefault(partition, set()).add(model_id)
        records: list[InputRecord] = []
        letters = 0
        for item in self._intake.take(batch.lanes, self._consumer):
            if isinstance(item, Rejected):
                self._dead_letter(item.message, item.reason)
                letters += 1
            else:
                records.append(item)
        self._progress.events += len(records) + letters
        self._progress.since_checkpoint += len(records) + letters
        return records

    def _update(self, records: list[InputRecord]) -> EngineOutput:
        if not records:
            return EngineOutput()
        self._pending.prefetch(records)  # pending predictions the batch's labels need
        return self._engine.process(records)

    def _publish(self, output: EngineOutput) -> None:
        assert self._publisher is not None
        if output:
            self._publisher.alerts(output.alerts)
            self._publisher.retrain_requests(output.retrain_requests)
            self.observer.output(output)
        self._publisher.poll()

    def _observe(self, records: list[InputRecord]) -> None:
        """Metrics of the turn: the batch as a whole, the engine view about once a second."""
        progress = self._progress
        if records or progress.batch_dead_letters:
            duration = time.perf_counter() - progress.batch_started
            self.observer.batch(records, progress.batch_dead_letters, duration=duration)
            progress.batch_dead_letters = []
        self.observer.maybe_view(self._engine)
        self.observer.heartbeat()

    def _maybe_tick(self) -> None:
        now = time.monotonic()
        if now - self._progress.last_tick >= self.settings.tick_seconds:
            self._progress.last_tick = now
            self._publish(self._engine.tick(self._clock()))

    def _checkpoint_due(self) -> bool:
        progress = self._progress
        return progress.since_checkpoint >= self.settings.checkpoint_events or (
            time.monotonic() - progress.last_checkpoint >= self.settings.checkpoint_seconds
        )

    def _checkpoint(self, partitions: frozenset[int]) -> None:
        """Flush outputs, save state + offsets of ``partitions`` atomically, then commit."""
        assert self._publisher is not None
        assert self._store is not None
        self._publisher.flush()  # alerts of the checkpointed records are delivered first
        models = self._engine.status().get("models", {})
        checkpoints = [
            PartitionCheckpoint(
                partition=p,
                offsets=self._offsets.offsets(p),
                state=self._engine.snapshot_partition(p),
                status={m: models[m] for m in sorted(self._models.get(p, ())) if m in models},
                alignment=self._intake.status(p),
                pending=self._pending.delta(p),
            )
            for p in sorted(partitions)
        ]
        started = time.perf_counter()
        try:
            self._store.save(checkpoints, now=self._clock())
        except BaseException as exc:
            self.observer.checkpoint_failed(exc)
            raise
        self.observer.checkpoint(time.perf_counter() - started)
        for p in partitions:
            self._pending.saved(p)
            self._intake.refresh_lead(p)
        self._offsets.mark_clean(set(partitions))
        self._progress.checkpoints += 1
        self._progress.since_checkpoint = 0
        self._progress.last_checkpoint = time.monotonic()
        self._commit(checkpoints)
        log.debug("checkpointed partitions %s", sorted(partitions))

    def _commit(self, checkpoints: list[PartitionCheckpoint]) -> None:
        offsets = [
            TopicPartition(topic, cp.partition, offset)
            for cp in checkpoints
            for topic, offset in cp.offsets.items()
        ]
        if offsets and self._consumer is not None:
            with contextlib.suppress(KafkaException):  # informational: Redis is the truth
                self._consumer.commit(offsets=offsets, asynchronous=True)

    # -- dead letters and errors ---------------------------------------------------------

    def _dead_letter(self, message: Message, reason: str) -> None:
        assert self._publisher is not None
        partition = cast(int, message.partition())
        key = message.key()
        self._publisher.dead_letter(
            dead_letter(
                cast(str, message.topic()),
                partition,
                cast(int, message.offset()),
                key,
                message.value(),
                reason,
                failed_at=self._clock(),
            )
        )
        model_id = model_hint(key)
        self._engine.record_dead_letter(model_id, partition)
        if model_id is not None:
            self._models.setdefault(partition, set()).add(model_id)
        self._progress.dead_letters += 1
        self._progress.batch_dead_letters.append((cast(str, message.topic()), reason))

    def _consumer_error(self, error: KafkaError) -> None:
        if error.code() in _TRANSIENT and not error.fatal():
            log.warning("consumer: %s (retrying)", error.str())
            if error.code() in _BROKER_DOWN:
                self.observer.broker_error(f"consumer: {error.str()}")
            return
        raise ConsumeError(f"consumer failed: {error.str()}")

    # -- setup, rebalance and shutdown ---------------------------------------------------

    def _check_topics(self) -> None:
        settings = self.settings
        outputs = self.settings.outputs
        names = (*settings.inputs, outputs.alerts, outputs.retrain_requests, outputs.dead_letter)
        try:
            counts = partition_counts(
                settings.bootstrap, names, config=common_properties(settings.kafka)
            )
        except KafkaException as exc:
            raise UnreachableError(
                f"cannot reach Kafka at {settings.bootstrap}: {exc.args[0].str()}"
            ) from None
        partitions = check_layout(counts, settings.inputs, names[2:])
        log.info(
            "topics %s and %s are co-partitioned (%d partitions)", *settings.inputs, partitions
        )

    def _open_consumer(self) -> Consumer:
        settings = self.settings
        extra = {
            "statistics.interval.ms": settings.stats_interval_ms,
            "stats_cb": self._on_stats,
            **self._consumer_properties,
        }
        config = consumer_config(
            settings.bootstrap, settings.group_id, extra, group_timings=settings.group_timings
        )
        consumer = Consumer(config)
        consumer.subscribe(
            list(settings.inputs),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self.observer.consumer_opened()
        return consumer

    def _on_assign(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        """Restore the stored state of the new partitions and seek to its offsets."""
        assert self._store is not None
        numbers = {tp.partition for tp in assigned}
        stored = self._store.load(numbers)
        self.observer.redis_ok()
        for p in sorted(numbers):
            checkpoint = stored.get(p)
            if checkpoint is not None:
                try:
                    self._engine.restore_partition(p, checkpoint.state)
                except (ValueError, KeyError, TypeError) as exc:
                    key = partition_key(self.settings.group_id, p)
                    raise CorruptCheckpointError(f"{key}: cannot restore its state: {exc}") from exc
                self._models[p] = set(checkpoint.status)
                self.observer.restored(checkpoint.status)
            self._intake.own(p, checkpoint.offsets if checkpoint else {})
        for tp in assigned:
            next_offset = self._offsets.next_offset(tp.topic, tp.partition)
            tp.offset = OFFSET_BEGINNING if next_offset is None else next_offset
        consumer.assign(assigned)
        self.observer.assignment(self._offsets.owned)
        log.info("assigned partitions %s (%d restored from Redis)", sorted(numbers), len(stored))

    def _on_revoke(self, consumer: Consumer, revoked: list[TopicPartition]) -> None:
        """Checkpoint the partitions we lose, then forget them."""
        numbers = frozenset(tp.partition for tp in revoked) & self._offsets.owned
        if numbers and not self._failed:
            self._checkpoint(numbers)
        self._release(numbers)
        log.info("revoked partitions %s", sorted(numbers))

    def _on_lost(self, consumer: Consumer, lost: list[TopicPartition]) -> None:
        """Partitions already owned by someone else: forget them without writing state."""
        numbers = frozenset(tp.partition for tp in lost) & self._offsets.owned
        self._release(numbers)
        log.warning("lost partitions %s (not checkpointed: another member owns them)", numbers)

    def _release(self, numbers: frozenset[int]) -> None:
        for p in numbers:
            self._engine.drop_partition(p)
            self._intake.release(p)
            self._models.pop(p, None)
        self.observer.assignment(self._offsets.owned)

    def _on_stats(self, stats_json: str) -> None:
        owned = self._offsets.owned
        wanted = {
            (topic, p): self._offsets.next_offset(topic, p)
            for p in owned
            for topic in self.settings.inputs
        }
        reading = read_stats(stats_json, wanted)
        self.observer.broker_states(reading.broker_states)
        self.observer.lag(reading.lags)
        per_partition: dict[int, int] = {}
        for (_, partition), lag in reading.lags.items():
            per_partition[partition] = per_partition.get(partition, 0) + lag
        self._publish(self._engine.report_lag(per_partition))

    def _close_consumer(self) -> None:
        if self._consumer is not None:
            self.observer.consumer_closed()
            self._consumer.close()  # leaves the group; on_revoke checkpoints unless failed
            self._consumer = None

    @contextlib.contextmanager
    def _signals_stop_loop(self) -> Iterator[None]:
        def handler(signum: int, frame: FrameType | None) -> None:
            if self._stopping:
                raise KeyboardInterrupt  # a second signal: stop now, without a checkpoint
            log.info(
                "%s: finishing the batch, checkpointing and leaving the group",
                signal.Signals(signum).name,
            )
            self.stop()

        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for signum, old in previous.items():
                signal.signal(signum, old)
