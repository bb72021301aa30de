"""The retrain worker's consumer loop: claim, act with retries, record, then commit.

For each message of ``retrain-requests`` (its own consumer group), in order:

1. decode — a message that is not a retrain request goes to ``dead-letter``;
2. claim the request in Redis (:mod:`~producers.retrain.state`) — already final:
   skip (a redelivery); another live worker holds it: wait for its lease to expire;
3. run the action, up to ``max_attempts`` times with exponential backoff; the attempt count
   lives in Redis, so a restart does not reset the budget;
4. on success record ``succeeded``; on final failure publish an ``infrastructure`` alert
   (signal ``retrain``) to ``drift-alerts`` and the original bytes to ``dead-letter``,
   flush, then record ``failed``;
5. commit the message's offset — only after its status is durable in Redis.

A crash anywhere replays the message: before step 4 the request runs again (after its
lease expires), after it the request is skipped. Actions therefore get at-least-once calls
with the request id as the idempotency key (the webhook header, the CI variable, the local
trainer's stored deployment).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from producers.retrain.actions import Action
from producers.retrain.backoff import BackoffPolicy
from producers.retrain.config import DEFAULT_GROUP_ID, DEFAULT_LEASE_SECONDS, WorkerOptions
from producers.retrain.errors import ActionError, ConfigError
from producers.retrain.metrics import RetrainMetrics
from producers.retrain.state import ClaimKind, RequestStore, Status
from streams.core.errors import ConsumeError
from streams.core.settings import TopicsConfig
from streams.dead_letter import dead_letter, model_hint
from streams.events import Alert, EventDecodeError, RetrainRequest, decode_retrain_request, rfc3339
from streams.kafka_config import FAST_GROUP, consumer_config
from streams.publisher import Publisher

__all__ = [
    "DEFAULT_GROUP_ID",
    "FAILURE_SIGNAL",
    "RetrainWorker",
    "WorkerSettings",
    "failure_alert",
]

log = logging.getLogger("driftradar.retrain")

#: The alert signal of a retrain request that failed for good. Its type is
#: ``infrastructure``: a platform problem, which the retrain policy never acts on.
FAILURE_SIGNAL: Final = "retrain"
_EOF: Final = KafkaError._PARTITION_EOF  # noqa: SLF001 (librdkafka's public code, _-named)


def _default_owner() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class WorkerSettings:
    """Where the worker reads (``topics.retrain_requests``) and writes (``topics.alerts``,
    ``topics.dead_letter``), and how long it may hold a request; :meth:`derive` builds them
    from the configuration file's sections and the worker's options."""

    bootstrap: str
    group_id: str = DEFAULT_GROUP_ID
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    poll_timeout: float = 0.5
    kafka_extra: Mapping[str, Any] = field(default_factory=dict)
    group_timings: Mapping[str, Any] = field(default_factory=lambda: dict(FAST_GROUP))
    owner: str = field(default_factory=_default_owner)

    @classmethod
    def derive(
        cls,
        bootstrap: str,
        options: WorkerOptions,
        topics: TopicsConfig,
        kafka: Mapping[str, Any],
    ) -> WorkerSettings:
        """The settings of ``driftradar retrain-worker``: the config's topics and librdkafka
        properties, the options' group and lease."""
        return cls(
            bootstrap=bootstrap,
            group_id=options.group_id,
            topics=topics,
            lease_seconds=options.lease_seconds,
            kafka_extra=dict(kafka),
        )


def failure_alert(
    request: RetrainRequest, action: str, attempts: int, error: str, now: float
) -> Alert:
    """The alert of a request that failed for good; its id depends on the request only.

    >>> from streams.events import decode_retrain_request
    >>> req = decode_retrain_request(b'{"request_id": "r1", "model_id": "churn",'
    ...     b' "requested_at": "2026-11-27T10:05:00Z", "reasons": [],'
    ...     b' "window": {"start": "2026-11-27T09:00:00Z", "end": "2026-11-27T10:00:00Z"}}')
    >>> alert = failure_alert(req, "webhook", 5, "HTTP 503", 0.0)
    >>> alert.type, alert.signal, alert.is_model_problem, alert.alert_id
    ('infrastructure', 'retrain', False, 'retrain-failed-3fce0ce20f505dbc8819dad5')
    """
    digest = hashlib.sha256(f"retrain-failed\0{request.request_id}".encode()).hexdigest()
    return Alert(
        alert_id=f"retrain-failed-{digest[:24]}",
        type="infrastructure",
        severity="critical",
        model_id=request.model_id,
        signal=FAILURE_SIGNAL,
        detector="retrain-worker",
        detected_at=rfc3339(now),
        model_version=request.model_version,
        event_time=request.requested_at,
        details={
            "request_id": request.request_id,
            "action": action,
            "attempts": attempts,
            "error": error,
            "window_start": request.window.start,
            "window_end": request.window.end,
        },
    )


class RetrainWorker:
    """One member of the retrain worker group. ``run()`` until :meth:`stop` is called."""

    def __init__(
        self,
        settings: WorkerSettings,
        action: Action,
        store: RequestStore,
        *,
        backoff: BackoffPolicy | None = None,
        metrics: RetrainMetrics | None = None,
        publisher: Publisher | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.action = action
        self.store = store
        self.backoff = backoff or BackoffPolicy()
        if self.backoff.max_delay >= settings.lease_seconds:
            raise ConfigError(
                "--lease-seconds",
                f"({settings.lease_seconds:g}) must exceed the largest backoff delay "
                f"({self.backoff.max_delay:g} s), or a waiting request looks abandoned",
            )
        self.metrics = metrics or RetrainMetrics()
        self._publisher = publisher or Publisher(
            settings.bootstrap,
            settings.topics,
            settings.kafka_extra,
        )
        self._clock = clock
        self._sleep_fn = sleep
        self._stop = threading.Event()
        self._consumer: Consumer | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to stop (signal-safe); a request in its backoff wait is released."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, *, max_messages: int | None = None, idle_timeout: float | None = None) -> int:
        """Consume until stopped (or ``max_messages`` handled, or idle ``idle_timeout`` s).

        Returns the number of messages handled and committed.
        """
        settings = self.settings
        extra = {
            # One request may take attempts x (timeout + backoff): don't get evicted meanwhile.
            "max.poll.interval.ms": int(
                min(max(settings.lease_seconds * 2, 300) * 1000, 86_400_000)
            ),
            **settings.kafka_extra,
        }
        consumer = Consumer(
            consumer_config(
                settings.bootstrap, settings.group_id, extra, group_timings=settings.group_timings
            )
        )
        self._consumer = consumer
        handled = 0
        idle_since = time.monotonic()
        log.info(
            "retrain worker %s: action %s, topic %r, group %r",
            settings.owner,
            self.action.name,
            settings.topics.retrain_requests,
            settings.group_id,
        )
        try:
            consumer.subscribe([settings.topics.retrain_requests])
            while not self._stop.is_set():
                if max_messages is not None and handled >= max_messages:
                    break
                message = consumer.poll(settings.poll_timeout)
                if message is None:
                    if idle_timeout is not None and time.monotonic() - idle_since > idle_timeout:
                        break
                    continue
                if not self._usable(message):
                    continue
                if self.handle(message) is None:
                    break  # stopped mid-request: leave the offset uncommitted
                self._commit(message)
                handled += 1
                idle_since = time.monotonic()
        finally:
            self._consumer = None
            consumer.close()
            self._publisher.close()
        return handled

    def _usable(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.code() != _EOF:
            log.warning(
                "consumer error on %r: %s", self.settings.topics.retrain_requests, error.str()
            )
            if error.fatal():
                raise ConsumeError(f"fatal consumer error: {error.str()}")
        return False

    def _commit(self, message: Message) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:
            return
        position = TopicPartition(topic, partition, offset + 1)
        try:
            consumer.commit(offsets=[position], asynchronous=False)
        except Exception as exc:  # the status is durable: a redelivery is skipped anyway
            log.warning(
                "offset commit failed (the request will be skipped if redelivered): %s", exc
            )

    # -- one message -----------------------------------------------------------------------

    def handle(self, message: Message) -> str | None:
        """Handle one message; return its outcome, or None if stopped before it finished."""
        raw = message.value() or b""
        try:
            request = decode_retrain_request(raw)
        except EventDecodeError as exc:
            return self._invalid(message, raw, exc)
        return self._handle_request(request, raw, message)

    def _invalid(self, message: Message, raw: bytes, exc: EventDecodeError) -> str:
        letter = dead_letter(
            message.topic() or self.settings.topics.retrain_requests,
            message.partition() or 0,
            message.offset() or 0,
            message.key(),
            raw,
            f"not a retrain request: {exc.reason}",
            failed_at=self._clock(),
        )
        self._publisher.dead_letter(letter)
        self._publisher.flush()
        model = model_hint(message.key()) or "unknown"
        self.metrics.handled_as(model, "invalid")
        log.warning(
            "dead-lettered an invalid retrain request at offset %s: %s", message.offset(), exc
        )
        return "invalid"

    def _handle_request(self, request: RetrainRequest, raw: bytes, message: Message) -> str | None:
        rid, model = request.request_id, request.model_id
        owner, lease = self.settings.owner, self.settings.lease_seconds
        while True:
            claim = self.store.claim(rid, model, owner, lease, self._clock())
            if claim.kind is ClaimKind.DONE:
                self.metrics.handled_as(model, "duplicate")
                log.info("request %s already %s: skipped", rid, claim.status.value)
                return "duplicate"
            if claim.kind is not ClaimKind.BUSY:
                break
            wait = max(claim.lease_until - self._clock(), 0.0)
            log.info("request %s is held by another worker for %.1f s more: waiting", rid, wait)
            if self._wait(min(wait + 0.05, 5.0)):
                return None
        if claim.kind is ClaimKind.NEW:
            self.metrics.transition(model, Status.RECEIVED)
        gauge = self.metrics.in_progress.labels(model_id=model)
        gauge.inc()
        try:
            return self._attempts(request, raw, message, claim.attempts)
        finally:
            gauge.dec()

    def _attempts(
        self, request: RetrainRequest, raw: bytes, message: Message, done: int
    ) -> str | None:
        rid, model, name = request.request_id, request.model_id, self.action.name
        owner, lease = self.settings.owner, self.settings.lease_seconds
        error = f"attempt budget ({self.backoff.max_attempts}) used up before a restart"
        attempt = done
        while self.backoff.allows(attempt + 1):
            attempt = self.store.begin_attempt(rid, owner, lease, self._clock())
            self.metrics.transition(model, Status.RUNNING)
            log.info("request %s (%s): attempt %d with action %s", rid, model, attempt, name)
            started = time.monotonic()
            try:
                result = self.action.run(request, raw, attempt)
            except ActionError as exc:
                failure: ActionError | None = exc
            except Exception as exc:  # a bug or an unexpected library error: retry, then alert
                failure = ActionError(f"{type(exc).__name__}: {exc}", retryable=True)
            else:
                failure = None
            self.metrics.attempt(model, name, failure is None, time.monotonic() - started)
            if failure is None:
                self.store.finish(rid, owner, Status.SUCCEEDED, self._clock(), result=result)
                self.metrics.transition(model, Status.SUCCEEDED)
                self.metrics.handled_as(model, Status.SUCCEEDED)
                self.metrics.last_success.labels(model_id=model).set(self._clock())
                log.info("request %s (%s): succeeded on attempt %d", rid, model, attempt)
                return Status.SUCCEEDED.value
            error = str(failure)
            if not failure.retryable or not self.backoff.allows(attempt + 1):
                if not failure.retryable:
                    log.warning("request %s: attempt %d failed for good: %s", rid, attempt, error)
                break
            delay = self.backoff.delay(attempt)
            log.warning(
                "request %s: attempt %d failed (%s); retrying in %.2f s", rid, attempt, error, delay
            )
            if self._wait(delay):
                self.store.release(rid, owner)
                return None
        return self._fail(request, raw, message, attempt, error)

    def _fail(
        self, request: RetrainRequest, raw: bytes, message: Message, attempts: int, error: str
    ) -> str:
        now = self._clock()
        alert = failure_alert(request, self.action.name, attempts, error, now)
        letter = dead_letter(
            message.topic() or self.settings.topics.retrain_requests,
            message.partition() or 0,
            message.offset() or 0,
            message.key(),
            raw,
            f"retrain request failed after {attempts} attempt(s) with action "
            f"{self.action.name}: {error}",
            failed_at=now,
        )
        self._publisher.alerts([alert])
        self._publisher.dead_letter(letter)
        self._publisher.flush()  # durable before the status says "failed"
        self.store.finish(
            request.request_id,
            self.settings.owner,
            Status.FAILED,
            now,
            error=error,
            result={"alert_id": alert.alert_id, "attempts": attempts},
        )
        self.metrics.transition(request.model_id, Status.FAILED)
        self.metrics.handled_as(request.model_id, Status.FAILED)
        log.error(
            "request %s (%s): failed after %d attempt(s): %s; alert %s published",
            request.request_id,
            request.model_id,
            attempts,
            error,
            alert.alert_id,
        )
        return Status.FAILED.value

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` (the injected sleep, else interruptibly); True if stopping."""
        if self._sleep_fn is not None:
            self._sleep_fn(seconds)
            return self._stop.is_set()
        return self._stop.wait(seconds)
