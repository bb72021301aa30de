"""The monitor's consumer loop: one consumer-group member driving the engine.

Each turn of the loop is a short list of named steps::

    poll batch -> decode -> align (the two topics of each partition merged by event time,
               streams.runner.intake; bad -> dead letter) -> read the pending predictions
               the batch needs (streams.runner.pending) -> engine update -> the retrain
               worker's decisions (``retrain-results``) -> publish alerts
               -> (every N events / T seconds) flush -> checkpoint changed partitions
               (state + offsets + pending delta) -> commit
               -> observe (metrics: one call per batch; the engine view about once a second)

Guarantees (DESIGN.md "Guarantees"):

* Engine state and the next offsets of the consumed topics are saved to Redis together, in one
  atomic script (:mod:`streams.checkpoint`). On assignment the member claims the partitions
  (an owner token that fences off any previous owner) and seeks to the offsets saved with
  the state, so after any crash each record reaches the engine exactly once.
* Alerts, retrain requests and dead letters are produced as they happen and the producer is
  flushed *before* the checkpoint that records their source offsets is written. A crash
  before the checkpoint replays the records and re-creates the same (deterministic-id)
  alerts; a crash after it has already delivered them: at-least-once, never lost.
* No message stops the loop: whatever a message provokes ends in the dead-letter topic.
* Outages are ridden out: when a due checkpoint cannot be written (Redis does not answer,
  or the broker does not acknowledge the outputs), the member pauses its partitions —
  so it never holds more than one checkpoint interval of unsaved work — keeps polling (its
  group membership and health endpoints stay alive), reports the outage on ``/readyz``, in
  metrics and in an ``infrastructure`` alert, and retries with backoff. When the checkpoint
  goes through it resumes from its in-memory state; if another member claimed a partition
  meanwhile, the write is refused and the state of that partition is dropped (the owner
  continues from Redis). After ``redis.give_up_seconds`` it stops with a one-line message.
* The Kafka commit follows the checkpoint and is informational (for lag tooling); the
  offsets stored in Redis are the truth.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Final, Protocol, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from redis.backoff import ExponentialBackoff

from streams.checkpoint import (
    CorruptCheckpointError,
    PartitionCheckpoint,
    StaleBaseError,
    StaleOwnerError,
    partition_key,
)
from streams.core.dead_letter import dead_letter, model_hint
from streams.core.events import (
    Alert,
    EventDecodeError,
    Prediction,
    RetrainResult,
    decode_retrain_result,
    describe_result,
    encode,
)
from streams.core.kafka import FAST_GROUP
from streams.core.publisher import DeliveryPendingError
from streams.core.redact import redact_text, redact_url, secrets_of_url
from streams.core.redis_client import RETRYABLE
from streams.core.settings import BrokerConfig, RedisConfig, TopicsConfig
from streams.engine.config import CheckpointConfig, JoinConfig
from streams.engine.engine import MisroutedResultError
from streams.engine.records import EngineOutput, InputRecord, PartitionChanges
from streams.metrics import MonitorMetrics
from streams.runner.allocator import release_free_memory, tune_malloc
from streams.runner.cadence import CheckpointCadence
from streams.runner.chunks import ModelChunks
from streams.runner.decode import Rejected, decode_batch, key_mismatch
from streams.runner.errors import ConsumeError, OutageError
from streams.runner.intake import Intake
from streams.runner.lag import read_stats
from streams.runner.observe import LoopObserver
from streams.runner.offsets import OffsetBook
from streams.runner.outage import OutageTracker
from streams.runner.pending import PendingHooks
from streams.runner.properties import split_properties
from streams.runner.session import Session, SessionSettings, open_session

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
        KafkaError._MAX_POLL_EXCEEDED,  # noqa: SLF001
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
    }
)
#: Transient errors after which ``/readyz`` reports Kafka as not ready until a broker is up.
_BROKER_DOWN: Final = frozenset(
    {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}  # noqa: SLF001
)
#: Retry schedule of a blocked checkpoint: 0.5, 1, 2, 2… seconds (redis-py's backoff).
_OUTAGE_BACKOFF: Final = (0.5, 2.0)  # base, cap


class Engine(Protocol):
    """What the runner needs from the transport-independent engine (streams.engine)."""

    def process(self, records: list[InputRecord]) -> EngineOutput: ...
    def tick(self, now: float) -> EngineOutput: ...
    def admit(self, model_id: str, partition: int) -> str | None: ...
    def retrain_result(self, result: RetrainResult, partition: int) -> EngineOutput: ...
    def record_dead_letter(self, model_id: str | None, partition: int, reason: str) -> None: ...
    def report_lag(self, lags: Mapping[int, int]) -> EngineOutput: ...
    def monitor_alert(
        self, signal: str, detector: str, key: str, details: Mapping[str, Any], *, severity: str
    ) -> Alert: ...
    def checkpoint_partition(self, partition: int) -> PartitionChanges: ...
    def checkpoint_saved(self, partition: int) -> None: ...
    def save_whole(self, partition: int) -> None: ...
    def restore_partition(
        self, partition: int, data: Any, models: Mapping[str, Any] | None = None
    ) -> None: ...
    def drop_partition(self, partition: int) -> None: ...


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """Everything the loop needs besides the engine; see ``driftradar run --help``.

    ``topics``, ``checkpoint``, ``redis`` and ``broker`` are the configuration's
    (:class:`~streams.engine.config.MonitorConfig`), ``join`` its ``defaults.join`` (the
    alignment of the two input topics is per partition); ``flush_seconds`` is how long a
    checkpoint waits for the broker to acknowledge the outputs before it counts as blocked
    by a broker outage.
    """

    bootstrap: str
    redis_url: str
    group_id: str
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    join: JoinConfig = field(default_factory=JoinConfig)
    batch_size: int = 10_000
    poll_timeout: float = 0.2
    flush_seconds: float = 5.0
    tick_seconds: float = 1.0
    view_seconds: float = 1.0
    view_share: float = 0.05  # the most of the loop's time the engine views may take
    stats_interval_ms: int = 5000
    kafka: Mapping[str, Any] = field(default_factory=dict)
    group_timings: Mapping[str, Any] = field(default_factory=lambda: dict(FAST_GROUP))

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        for name in ("poll_timeout", "flush_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    @property
    def inputs(self) -> tuple[str, str]:
        return self.topics.inputs

    @property
    def consumed(self) -> tuple[str, str, str]:
        return self.topics.consumed


@dataclass(slots=True)
class _Progress:
    """Counters since the start, and what is pending since the last checkpoint."""

    events: int = 0
    dead_letters: int = 0
    batch_started: float = 0.0
    batch_dead_letters: list[tuple[str, str]] = field(default_factory=list)
    #: records the engine took outside a turn's batch (chunks processed at a checkpoint)
    unobserved: list[InputRecord] = field(default_factory=list)
    checkpoints: int = 0
    since_checkpoint: int = 0
    #: the last poll returned a full batch: the consumer has a backlog
    behind: bool = False
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
        self.engine = engine
        self.clock = clock
        self.metrics = metrics if metrics is not None else MonitorMetrics(process_collectors=False)
        self.observer = LoopObserver(
            self.metrics,
            settings.inputs,
            view_seconds=settings.view_seconds,
            view_share=settings.view_share,
            clock=clock,
        )
        self.offsets = OffsetBook(settings.consumed)
        self.progress = _Progress()
        self.stopping = False
        self.malloc_tuned = False  # then free pages go back to the system after checkpoints
        consumer_properties, producer_properties = split_properties(settings.kafka)
        self._session_settings = SessionSettings(
            bootstrap=settings.bootstrap,
            redis_url=settings.redis_url,
            group_id=settings.group_id,
            topics=settings.topics,
            redis=settings.redis,
            kafka=dict(settings.kafka),
            consumer_properties={
                "statistics.interval.ms": settings.stats_interval_ms,
                **consumer_properties,
            },
            producer_properties=dict(producer_properties),
            group_timings=dict(settings.group_timings),
        )

    # -- public ------------------------------------------------------------------------

    @property
    def events(self) -> int:
        """Records consumed so far (valid and dead-lettered)."""
        return self.progress.events

    @property
    def checkpoints(self) -> int:
        return self.progress.checkpoints

    @property
    def assigned(self) -> frozenset[int]:
        """Input partition numbers this member owns now."""
        return self.offsets.owned

    def stop(self) -> None:
        """Ask the loop to finish its batch, checkpoint and close (safe from any thread)."""
        self.stopping = True

    def run(self, *, handle_signals: bool = True) -> None:
        """Consume until stopped; checkpoints what was applied before returning (if it can)."""
        with contextlib.ExitStack() as stack:
            if handle_signals:
                stack.enter_context(self._signals_stop_loop())
            loop: _Loop | None = None

            def on_stats(stats: str) -> None:
                if loop is not None:
                    loop.on_stats(stats)

            session = stack.enter_context(open_session(self._session_settings, on_stats=on_stats))
            self.observer.redis_ok()
            loop = _Loop(self, session)
            loop.subscribe()
            # Everything imported and built so far lives as long as the process: keep the
            # cyclic garbage collector from rescanning it on every collection.
            gc.collect()
            gc.freeze()
            tuned = tune_malloc()
            self.malloc_tuned = bool(tuned)
            if tuned:
                log.debug("malloc tuned: %s", tuned)
            try:
                while not self.stopping:
                    loop.step()
                loop.final_checkpoint()
            except BaseException:
                loop.failed = True  # no checkpoint on the way out: its state is suspect
                raise
            finally:
                self.observer.consumer_closed()

    @contextlib.contextmanager
    def _signals_stop_loop(self) -> Iterator[None]:
        def handler(signum: int, frame: FrameType | None) -> None:
            if self.stopping:
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


class _Loop:
    """The steps of one run over an open :class:`Session`."""

    def __init__(self, runner: Runner, session: Session) -> None:
        self.runner = runner
        self.settings = runner.settings
        self.engine = runner.engine
        self.observer = runner.observer
        self.book = runner.offsets
        self.progress = runner.progress
        self.session = session
        self.failed = False
        join = self.settings.join
        self.intake = Intake(
            self.settings.inputs,
            self.book,
            max_lead=join.max_lead_seconds,
            max_idle=join.max_idle_seconds,
            max_buffered=join.max_buffered,
            engine=self.engine,
        )
        self.pending = PendingHooks(self.engine)
        self.pending.connect(session.store)
        #: records taken from the intake whose pending entries could not be read (Redis
        #: away): processed before anything else when Redis answers again
        self.held: list[InputRecord] = []
        #: under load, the records of models with few per batch wait for more of their own
        #: (streams.runner.chunks)
        self.chunks = ModelChunks(batch_size=self.settings.batch_size)
        #: when checkpoints are due (slower while behind if they are costly)
        self.cadence = CheckpointCadence(self.settings.checkpoint)
        #: ``retrain-results`` messages polled and not yet given to the engine
        self.results: list[Message] = []
        #: owner token per claimed partition (fencing: see CheckpointStore.claim)
        self.tokens: dict[int, str] = {}
        self._member = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._claims = 0
        #: assigned while Redis was away: consumed only once their state is restored
        self.awaiting: set[int] = set()
        self.outages = OutageTracker(
            ExponentialBackoff(cap=_OUTAGE_BACKOFF[1], base=_OUTAGE_BACKOFF[0]),
            give_up_after=self.settings.redis.give_up_seconds,
        )
        self._unassigned_since: float | None = time.monotonic()
        self._unassigned_alerted = False
        self._last_redis_check = time.monotonic()

    # -- setup ---------------------------------------------------------------------------

    def subscribe(self) -> None:
        self.session.consumer.subscribe(
            list(self.settings.consumed),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self.observer.consumer_opened()

    # -- the steps of one turn -----------------------------------------------------------

    def step(self) -> None:
        records = self._consume()
        if self.outages.current is not None:
            self._ride_out()
        else:
            self._maybe_tick()
            if self._checkpoint_due():
                self._checkpoint_or_block(self.book.dirty)
        self._watch_assignment()
        self._observe(records)

    def _consume(self) -> list[InputRecord]:
        """Poll, decode, align, update the engine and publish: one batch. During an outage
        what is polled is only buffered (the engine cannot save or look up anything)."""
        polled = self._poll()
        messages = self._set_aside_results(polled)
        if self.outages.current is not None:
            self._hold(messages)
            return []
        behind = self.progress.behind = len(polled) >= self.settings.batch_size
        records = self.chunks.take(self._decode(messages), under_load=behind)  # per model
        output = self._update(records)
        if self.outages.current is None:
            output.extend(self._apply_results())
        self._publish(output)
        return records

    def _poll(self) -> list[Message]:
        messages: list[Message] = self.session.consumer.consume(
            self.settings.batch_size, self.settings.poll_timeout
        )
        self.progress.batch_started = time.perf_counter()
        return messages

    def _decode(self, messages: list[Message]) -> list[InputRecord]:
        """The records whose turn has come in each partition's event-time merge of the two
        input topics (:mod:`streams.runner.align`); bad ones, and events of models the
        engine does not admit, go to the dead-letter topic, in that same order."""
        batch = decode_batch(messages, self.settings.topics.predictions, self.intake.fetched)
        for error in batch.errors:
            self._consumer_error(error)
        records: list[InputRecord] = []
        admit = self.engine.admit
        consumed = 0
        for item in self.intake.take(batch.lanes, self.session.consumer):
            consumed += 1
            if isinstance(item, Rejected):
                self._dead_letter(item.message, item.reason)
                continue
            refused = admit(item.event.model_id, item.partition)
            if refused is None:
                records.append(item)
            else:
                self._dead_letter_record(item, refused)
        self.progress.events += consumed
        self.progress.since_checkpoint += consumed
        return records

    def _set_aside_results(self, messages: list[Message]) -> list[Message]:
        """Keep the ``retrain-results`` messages for :meth:`_apply_results`; return the rest.
        (Decisions are not merged with the inputs by event time: they come when they come.)"""
        topic = self.settings.topics.retrain_results
        rest: list[Message] = []
        for message in messages:
            if message.error() is None and message.topic() == topic:
                self.results.append(message)
            else:
                rest.append(message)
        return rest

    def _apply_results(self) -> EngineOutput:
        """The retrain worker's decisions, to the engine (each model's policy); a result that
        cannot be decoded, or is not on its model's partition, goes to the dead-letter topic."""
        output = EngineOutput()
        messages, self.results = self.results, []
        topic = self.settings.topics.retrain_results
        for message in messages:
            partition = cast(int, message.partition())
            offset = cast(int, message.offset())
            if not self.book.accepts(topic, partition, offset):
                continue  # a refetch, or a partition no longer ours
            self.book.advance(topic, partition, offset)
            self.progress.events += 1
            self.progress.since_checkpoint += 1
            try:
                result = decode_retrain_result(message.value() or b"")
                key = message.key()
                if key != result.model_id.encode():
                    self._dead_letter(message, key_mismatch(result.model_id, key))
                    continue
                output.extend(self.engine.retrain_result(result, partition))
            except EventDecodeError as exc:
                self._dead_letter(message, exc.reason)
                continue
            except MisroutedResultError as exc:
                self._dead_letter(message, str(exc))
                continue
            log.info("%s", describe_result(result))
        return output

    def _hold(self, messages: list[Message]) -> None:
        """Buffer what a poll returned during an outage (nothing is released)."""
        if messages:
            batch = decode_batch(messages, self.settings.topics.predictions, self.intake.fetched)
            for error in batch.errors:
                self._consumer_error(error)
            self.intake.hold(batch.lanes)

    def _update(self, records: list[InputRecord]) -> EngineOutput:
        """The engine's output for ``records``, after reading (one round trip) the pending
        predictions their labels need; if Redis does not answer, they are held."""
        if not records:  # the alerts raised while admitting (max_models, a split model)
            return self.engine.process(records)  # go out before the checkpoint counting them
        try:
            self.pending.prefetch(records)
        except RETRYABLE as exc:
            self.held = records
            self._block("redis", redact_text(f"{type(exc).__name__}: {exc}", self._secrets()))
            return EngineOutput()
        return self.engine.process(records)

    def _publish(self, output: EngineOutput) -> None:
        publisher = self.session.publisher
        if output:
            publisher.alerts(output.alerts)
            publisher.retrain_requests(output.retrain_requests)
            self.observer.output(output)
        publisher.poll()

    def _observe(self, records: list[InputRecord]) -> None:
        """Metrics of the turn: the batch as a whole, the engine view about once a second."""
        progress = self.progress
        if progress.unobserved:
            records, progress.unobserved = [*progress.unobserved, *records], []
        if records or progress.batch_dead_letters:
            duration = time.perf_counter() - progress.batch_started
            self.observer.batch(records, progress.batch_dead_letters, duration=duration)
            progress.batch_dead_letters = []
        self.observer.maybe_view(self.engine)
        self.observer.heartbeat()

    def _maybe_tick(self) -> None:
        now = time.monotonic()
        if now - self.progress.last_tick >= self.settings.tick_seconds:
            self.progress.last_tick = now
            self._publish(self.engine.tick(self.runner.clock()))

    def _checkpoint_due(self) -> bool:
        progress = self.progress
        return self.cadence.due(progress.since_checkpoint, behind=progress.behind)

    # -- checkpoints and outages ---------------------------------------------------------

    def _checkpoint_or_block(self, partitions: frozenset[int], *, retry: bool = False) -> bool:
        """Checkpoint ``partitions``; on an outage, pause consumption and return False.
        ``retry``: an outage's retry, which must reach Redis even with nothing to save."""
        try:
            if partitions:
                self._checkpoint(partitions)
            else:
                self._check_redis(force=retry)
        except DeliveryPendingError as exc:
            self._block("kafka", str(exc))
            return False
        except RETRYABLE as exc:
            reason = redact_text(f"{type(exc).__name__}: {exc}", self._secrets())
            self.observer.checkpoint_failed(reason)
            self._block("redis", reason)
            return False
        except StaleOwnerError as exc:
            log.warning(
                "partitions %s were claimed by another member: dropping their state here "
                "(the owner continues from the stored checkpoint)",
                exc.partitions,
            )
            self._release(frozenset(exc.partitions))
            return self._checkpoint_or_block(partitions - frozenset(exc.partitions), retry=retry)
        return True

    def _check_redis(self, *, force: bool = False) -> None:
        """Nothing to save: a PING keeps ``/readyz`` honest about Redis while idle (every
        ``every_seconds``, or now if ``force``: an outage ends only once Redis answered)."""
        now = time.monotonic()
        if force or now - self._last_redis_check >= self.settings.checkpoint.every_seconds:
            self._last_redis_check = now
            self.observer.redis_call(now)
            try:
                self.session.redis.ping()
            finally:
                self.observer.redis_call(None)
            self.cadence.pinged()
            self.observer.nothing_unsaved()

    def _checkpoint(self, partitions: frozenset[int]) -> None:
        """Process what the chunks hold of ``partitions`` (their offsets are taken), flush
        outputs, save state + offsets of ``partitions`` atomically, then commit."""
        for chunked in self.chunks.drain(partitions):  # two polls' worth at a time
            self._apply(chunked)  # Redis away: raises, this part and the rest still held
            self.progress.unobserved += chunked
        started = time.perf_counter()
        self.session.publisher.flush(self.settings.flush_seconds)  # alerts first, then state
        self.observer.broker_answered()
        try:
            checkpoints = self._save(partitions)
        except StaleBaseError as exc:  # Redis lost writes: the stored models cannot be updated
            log.warning(
                "the stored models of partitions %s are not the ones this member wrote "
                "(Redis lost data?): saving them whole",
                exc.partitions,
            )
            for p in exc.partitions:
                self.engine.save_whole(p)
            checkpoints = self._save(partitions)
        for p in partitions:
            self.pending.saved(p)
            self.engine.checkpoint_saved(p)
            self.intake.refresh_lead(p)
        self.book.mark_clean(set(partitions))
        progress = self.progress
        progress.checkpoints += 1
        progress.since_checkpoint = 0
        self._last_redis_check = time.monotonic()
        self._commit(checkpoints)
        del checkpoints  # (their encoded models are the bulk of what is freed)
        if self.runner.malloc_tuned:
            release_free_memory()  # what the checkpoint and the batches since freed
        self.cadence.done(time.perf_counter() - started)
        log.debug(
            "checkpointed partitions %s in %.3f s (while behind, the next in %.1f s at least)",
            sorted(partitions),
            self.cadence.took,
            self.cadence.pause,
        )

    def _save(self, partitions: frozenset[int]) -> list[PartitionCheckpoint]:
        """Write state + offsets of ``partitions`` in one atomic step: of their models, those
        that changed since the last checkpoint."""
        checkpoints = [self._partition_checkpoint(p) for p in sorted(partitions)]
        started = time.perf_counter()
        called = time.monotonic()
        self.observer.redis_call(called)
        try:
            self.session.store.save(
                checkpoints,
                now=self.runner.clock(),
                writing=lambda seconds: self.observer.redis_call(called, seconds),
            )
        finally:
            self.observer.redis_call(None)
        self.observer.checkpoint(time.perf_counter() - started)
        return checkpoints

    def _partition_checkpoint(self, partition: int) -> PartitionCheckpoint:
        changes = self.engine.checkpoint_partition(partition)
        return PartitionCheckpoint(
            partition=partition,
            offsets=self.book.offsets(partition),
            state=changes.state,
            status=changes.status,
            owner=self.tokens.get(partition, ""),
            summary=changes.summary,
            alignment=self.intake.status(partition),
            pending=self.pending.delta(partition),
            models=changes.models,
            complete=changes.complete,
        )

    def _commit(self, checkpoints: list[PartitionCheckpoint]) -> None:
        offsets = [
            TopicPartition(topic, cp.partition, offset)
            for cp in checkpoints
            for topic, offset in cp.offsets.items()
        ]
        if offsets:
            with contextlib.suppress(KafkaException):  # informational: Redis is the truth
                self.session.consumer.commit(offsets=offsets, asynchronous=True)

    def _block(self, dependency: str, reason: str) -> None:
        """A due checkpoint cannot be written: consume nothing until it can."""
        first = self.outages.current is None
        outage = self.outages.fail(dependency, reason)
        wait = outage.next_attempt - time.monotonic()
        self.observer.outage(dependency, reason, self.outages.elapsed())
        if first:
            self._pause(self.book.owned)
            log.warning(
                "%s unavailable (%s): consumption paused with %d unsaved records; retrying "
                "the checkpoint with backoff, giving up after %.0f s",
                _SERVICE[dependency],
                reason,
                self.progress.since_checkpoint,
                self.outages.give_up_after,
            )
            self._publish_monitor_alert(
                dependency,
                "outage",
                {"reason": reason, "unsaved_records": self.progress.since_checkpoint},
                severity="critical",
            )
        else:
            log.info("%s still unavailable: next attempt in %.1f s", _SERVICE[dependency], wait)

    def _ride_out(self) -> None:
        """One turn during an outage: retry when due, give up when it lasted too long."""
        outage = self.outages.current
        assert outage is not None
        if self.outages.expired():
            raise OutageError(self._give_up_message(outage.dependency, outage.reason))
        if not self.outages.due():
            return
        if self.awaiting and not self._restore_awaiting():
            return
        if self.held and not self._process_held():
            return
        if self._checkpoint_or_block(self.book.dirty, retry=True):
            self._recovered()

    def _process_held(self) -> bool:
        """The records taken before Redis went away, now that it may answer again."""
        try:
            self._apply(self.held)  # observed when they were taken
        except RETRYABLE as exc:
            self._block("redis", redact_text(f"{type(exc).__name__}: {exc}", self._secrets()))
            return False
        self.held = []
        return True

    def _apply(self, records: list[InputRecord]) -> None:
        """Read the pending entries ``records`` need (one Redis round trip; raises while
        Redis is away, before anything is applied), then process and publish them."""
        self.pending.prefetch(records)
        self._publish(self.engine.process(records))

    def _recovered(self) -> None:
        outage = self.outages.recover()
        if outage is None:
            return
        duration = outage.duration(time.monotonic())
        self._resume_after_outage()
        self.observer.outage_ended(outage.dependency)
        log.warning(
            "%s answers again after %.1f s: consumption resumed from this member's state",
            _SERVICE[outage.dependency],
            duration,
        )
        self._publish_monitor_alert(
            outage.dependency,
            "recovered",
            {"outage_seconds": round(duration, 3), "reason": outage.reason},
            severity="info",
        )

    def _give_up_message(self, dependency: str, reason: str) -> str:
        where = (
            f"Redis at {redact_url(self.settings.redis_url)}"
            if dependency == "redis"
            else f"the broker at {self.settings.bootstrap}"
        )
        return (
            f"{where} unavailable for {self.outages.elapsed():.0f} s (last error: {reason}); "
            f"giving up: {self.progress.since_checkpoint} records since the last checkpoint "
            "are not saved and will be replayed from Kafka by the next start"
        )

    def final_checkpoint(self) -> None:
        """At shutdown: save what changed, unless an outage makes it impossible."""
        if (
            self.outages.current is not None
            or self.held
            or not self._checkpoint_or_block(self.book.dirty)
        ):
            log.warning(
                "stopping without a final checkpoint (%s): %d records since the last one "
                "will be replayed by the next start",
                self.outages.current.reason if self.outages.current else "unknown",
                self.progress.since_checkpoint,
            )
            self.failed = True  # the revocation must not try again

    # -- dead letters and errors ---------------------------------------------------------

    def _dead_letter(self, message: Message, reason: str) -> None:
        partition = cast(int, message.partition())
        topic = cast(str, message.topic())
        key = message.key()
        self.session.publisher.dead_letter(
            dead_letter(
                topic,
                partition,
                cast(int, message.offset()),
                key,
                message.value(),
                reason,
                failed_at=self.runner.clock(),
            )
        )
        self.engine.record_dead_letter(model_hint(key), partition, reason)
        self.progress.dead_letters += 1
        self.progress.batch_dead_letters.append((topic, reason))

    def _dead_letter_record(self, record: InputRecord, reason: str) -> None:
        """Dead-letter a decoded event the engine refused (``max_models``, or its model lives
        on another partition: a split model). Its value is the
        event re-encoded (the same content in the contract's compact form); topic,
        partition and offset find the original."""
        event = record.event
        topic = self.settings.topics.inputs[0 if isinstance(event, Prediction) else 1]
        self.session.publisher.dead_letter(
            dead_letter(
                topic,
                record.partition,
                record.offset,
                event.model_id.encode(),
                encode(event),
                reason,
                failed_at=self.runner.clock(),
            )
        )
        self.engine.record_dead_letter(event.model_id, record.partition, reason)
        self.progress.dead_letters += 1
        self.progress.batch_dead_letters.append((topic, reason))

    def _consumer_error(self, error: KafkaError) -> None:
        if error.code() in _TRANSIENT and not error.fatal():
            log.warning("consumer: %s (retrying)", error.str())
            if error.code() in _BROKER_DOWN:
                self.observer.broker_error(f"consumer: {error.str()}")
            return
        raise ConsumeError(f"consumer failed: {error.str()}")

    def _publish_monitor_alert(
        self, signal_name: str, detector: str, details: Mapping[str, Any], *, severity: str
    ) -> None:
        key = f"{self.settings.group_id}:{self._member}:{self.progress.checkpoints}"
        alert = self.engine.monitor_alert(signal_name, detector, key, details, severity=severity)
        self._publish(EngineOutput(alerts=[alert]))

    def _secrets(self) -> list[str]:
        return secrets_of_url(self.settings.redis_url)

    # -- rebalance -----------------------------------------------------------------------

    def _on_assign(self, consumer: Any, assigned: list[TopicPartition]) -> None:
        """Claim the new partitions, restore their stored state and seek to its offsets."""
        numbers = {tp.partition for tp in assigned}
        token = self._token()
        try:
            stored = self.session.store.claim(numbers, token)
        except RETRYABLE as exc:
            # Redis is away: take the partitions, paused, and restore them when it answers.
            consumer.assign(assigned)
            consumer.pause(assigned)
            self.awaiting |= numbers
            reason = redact_text(f"{type(exc).__name__}: {exc}", self._secrets())
            log.warning(
                "assigned partitions %s, but Redis is unavailable (%s): their "
                "state is restored when it answers",
                sorted(numbers),
                reason,
            )
            self._block("redis", reason)
            return
        self._take(numbers, stored, token)
        for tp in assigned:
            next_offset = self.book.next_offset(tp.topic, tp.partition)
            tp.offset = OFFSET_BEGINNING if next_offset is None else next_offset
        consumer.assign(assigned)
        # a partition paused before (an outage, flow control) starts afresh, unless an
        # outage is still going on
        (consumer.pause if self.outages.current is not None else consumer.resume)(assigned)
        log.info("assigned partitions %s (%d restored from Redis)", sorted(numbers), len(stored))

    def _take(
        self, numbers: set[int], stored: Mapping[int, PartitionCheckpoint], token: str
    ) -> None:
        for p in sorted(numbers):
            checkpoint = stored.get(p)
            if checkpoint is not None:
                try:
                    self.engine.restore_partition(p, checkpoint.state, checkpoint.models)
                except (ValueError, KeyError, TypeError) as exc:
                    key = partition_key(self.settings.group_id, p)
                    raise CorruptCheckpointError(f"{key}: cannot restore its state: {exc}") from exc
                self.observer.restored(checkpoint.status)
            self.intake.own(p, checkpoint.offsets if checkpoint else {})
            self.tokens[p] = token
        self.observer.assignment(self.book.owned)

    def _restore_awaiting(self) -> bool:
        """Partitions assigned during a Redis outage: claim, restore, seek and resume them."""
        numbers = set(self.awaiting)
        token = self._token()
        try:
            stored = self.session.store.claim(numbers, token)
        except RETRYABLE as exc:
            self._block("redis", redact_text(f"{type(exc).__name__}: {exc}", self._secrets()))
            return False
        self.awaiting -= numbers
        self._take(numbers, stored, token)
        consumer = self.session.consumer
        for p in sorted(numbers):
            for topic in self.settings.consumed:
                next_offset = self.book.next_offset(topic, p)
                start = OFFSET_BEGINNING if next_offset is None else next_offset
                consumer.resume([TopicPartition(topic, p)])
                consumer.seek(TopicPartition(topic, p, start))
        log.info("restored partitions %s from Redis after the outage", sorted(numbers))
        return True

    def _on_revoke(self, consumer: Any, revoked: list[TopicPartition]) -> None:
        """Checkpoint the partitions we lose (if we can), then forget them."""
        numbers = frozenset(tp.partition for tp in revoked)
        self.awaiting -= numbers
        owned = numbers & self.book.owned
        dirty = owned & self.book.dirty
        saved = True
        if dirty and not self.failed:
            saved = self.outages.current is None and self._try_checkpoint(dirty)
        self._release(owned)
        if saved:
            log.info("revoked partitions %s", sorted(owned))
        else:
            log.warning(
                "revoked partitions %s without a checkpoint (%s): their new owner replays "
                "what followed the last one",
                sorted(owned),
                self.outages.current.reason if self.outages.current else "checkpoint failed",
            )

    def _try_checkpoint(self, partitions: frozenset[int]) -> bool:
        try:
            self._checkpoint(partitions)
        except (DeliveryPendingError, *RETRYABLE, StaleOwnerError) as exc:
            log.warning("checkpoint of %s failed: %s", sorted(partitions), exc)
            return False
        return True

    def _on_lost(self, consumer: Any, lost: list[TopicPartition]) -> None:
        """The group moved our partitions without a revocation: drop them unsaved."""
        numbers = frozenset(tp.partition for tp in lost)
        self.awaiting -= numbers
        owned = numbers & self.book.owned
        self._release(owned)
        settings = self.runner.settings
        timeout = settings.kafka.get(
            "session.timeout.ms", settings.group_timings.get("session.timeout.ms", "?")
        )
        log.warning(
            "lost partitions %s: the group coordinator did not hear from this member within "
            "session.timeout.ms (%s ms) — the broker was unreachable or this process was "
            "paused; their state since the last checkpoint is dropped and re-read from Redis "
            "when they are assigned again (possibly to this member)",
            sorted(owned),
            timeout,
        )

    def _release(self, numbers: frozenset[int]) -> None:
        """Forget ``numbers``: their records are skipped from now on (not ours) until a
        rebalance assigns them again, restored from Redis."""
        if self.held:  # taken before an outage, never applied: the next owner replays them
            self.held = [r for r in self.held if r.partition not in numbers]
        self.chunks.drop(numbers)  # likewise
        self.results = [m for m in self.results if m.partition() not in numbers]
        for p in numbers:
            self.engine.drop_partition(p)
            self.intake.release(p)
            self.tokens.pop(p, None)
        self.observer.assignment(self.book.owned)

    def _token(self) -> str:
        self._claims += 1
        return f"{self._member}:{self._claims}"

    def _pause(self, numbers: frozenset[int]) -> None:
        if numbers:
            self.session.consumer.pause(self._partitions(numbers))

    def _resume_after_outage(self) -> None:
        """Resume what the outage paused, except what the aligner keeps paused itself."""
        wanted = [
            TopicPartition(t, p)
            for p in sorted(self.book.owned)
            for t in self.settings.consumed
            if not self.intake.paused(t, p)
        ]
        if wanted:
            self.session.consumer.resume(wanted)

    def _partitions(self, numbers: frozenset[int]) -> list[TopicPartition]:
        return [TopicPartition(t, p) for p in sorted(numbers) for t in self.settings.consumed]

    def _watch_assignment(self) -> None:
        """Say so, once, when this member has owned no partition for too long."""
        if self.book.owned or self.awaiting:
            self._unassigned_since = None
            self._unassigned_alerted = False
            return
        now = time.monotonic()
        if self._unassigned_since is None:
            self._unassigned_since = now
            return
        waited = now - self._unassigned_since
        if self._unassigned_alerted or waited < self.settings.broker.no_assignment_seconds:
            return
        self._unassigned_alerted = True
        log.warning(
            "no partitions assigned to this member for %.0f s: if other members of group %r "
            "own them all (more members than partitions) this is expected; otherwise the "
            "group is stuck — check the group with your Kafka tools (e.g. "
            "kafka-consumer-groups --describe --group %s) and restart the monitors",
            waited,
            self.settings.group_id,
            self.settings.group_id,
        )
        self._publish_monitor_alert(
            "assignment",
            "no_partitions",
            {"waited_seconds": round(waited, 1), "group_id": self.settings.group_id},
            severity="warning",
        )

    def on_stats(self, stats_json: str) -> None:
        owned = self.book.owned
        wanted = {
            (topic, p): self.book.next_offset(topic, p)
            for p in owned
            for topic in self.settings.consumed
        }
        reading = read_stats(stats_json, wanted)
        self.observer.broker_states(reading.broker_states)
        self.observer.broker_idle(reading.receive_idle, self.settings.broker.idle_seconds)
        self.observer.lag(reading.lags)
        per_partition: dict[int, int] = {}
        for (_, partition), lag in reading.lags.items():
            per_partition[partition] = per_partition.get(partition, 0) + lag
        self._publish(self.engine.report_lag(per_partition))


#: How the log names each dependency.
_SERVICE: Final = {"redis": "Redis", "kafka": "the broker (outputs not acknowledged)"}
