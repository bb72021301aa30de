"""The retrain worker's consumer loop: claim, act with retries, decide, report, then commit.

For each message of ``retrain-requests`` (its own consumer group), in order:

1. decode — a message that is not a retrain request goes to ``dead-letter``;
2. claim the request in Redis (:mod:`~producers.retrain.state`) — already final:
   skip (a redelivery); another live worker holds it: wait for its lease to expire;
3. if a decision was stored before a crash, report that one (step 5); otherwise run the
   action, up to ``max_attempts`` times with exponential backoff; the attempt count lives
   in Redis, so a restart does not reset the budget;
4. store the decision in Redis, once: ``deployed`` or ``declined`` as the action says, or
   ``failed`` when the attempts ran out (:mod:`~producers.retrain.decision`);
5. report it: a ``failed`` one also publishes an ``infrastructure`` alert (signal
   ``retrain``) to ``drift-alerts`` and the original bytes to ``dead-letter``; every one
   is published to ``retrain-results`` (key = model_id, id = ``o-<request_id>``), flushed,
   logged in one line, and only then is the request's status final;
6. commit the message's offset — only after its status is durable in Redis.

A crash anywhere replays the message: before step 4 the request runs again (after its
lease expires), between 4 and 5 the stored decision is published again (the same bytes),
after 5 the request is skipped. Actions therefore get at-least-once calls with the request
id as the idempotency key (the webhook header, the CI variable, the local trainer's stored
deployment), and ``retrain-results`` gets one decision per request, possibly repeated
with the same id after a crash at the very end.

A request an external pipeline takes over (``handed_over``) gets no result from the
worker: the pipeline publishes it under the id it was given.
"""

from __future__ import annotations

import hashlib
import logging
import math
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
from producers.retrain.decision import (
    DEPLOYED,
    FAILED,
    HANDED_OVER,
    Decision,
    failed_result,
    result_of,
)
from producers.retrain.errors import ActionError, ConfigError
from producers.retrain.metrics import RetrainMetrics
from producers.retrain.state import ClaimKind, RequestStore, Status
from streams.core.dead_letter import dead_letter, model_hint
from streams.core.errors import ConsumeError
from streams.core.events import (
    Alert,
    EventDecodeError,
    RetrainRequest,
    RetrainResult,
    decode_retrain_request,
    decode_retrain_result,
    describe_result,
    encode,
    result_id,
    rfc3339,
)
from streams.core.kafka import FAST_GROUP, consumer_config
from streams.core.publisher import Publisher
from streams.core.settings import TopicsConfig

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
#: Seconds between two Redis pings of an idle worker (its ``/readyz`` answer).
PING_EVERY_S: Final = 5.0
_EOF: Final = KafkaError._PARTITION_EOF  # noqa: SLF001 (librdkafka's public code, _-named)


def _default_owner() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class WorkerSettings:
    """Where the worker reads (``topics.retrain_requests``) and writes
    (``topics.retrain_results``, ``topics.alerts``, ``topics.dead_letter``), and how long
    it may hold a request; :meth:`derive` builds them from the configuration file's
    sections and the worker's options."""

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

    >>> from streams.core.events import decode_retrain_request
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
        self._redis_ok: tuple[bool, str] = (True, "ok")
        self._pinged = -math.inf

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to stop (signal-safe); a request in its backoff wait is released."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def redis_ready(self) -> tuple[bool, str]:
        """The last Redis ping's answer (cached: ``/readyz`` never waits for Redis)."""
        return self._redis_ok

    def _ping(self) -> None:
        if time.monotonic() - self._pinged < PING_EVERY_S:
            return
        self._pinged = time.monotonic()
        try:
            self.store.ping()
        except Exception as exc:  # any client error means "not ready"; the loop goes on
            self._redis_ok = (False, f"Redis did not answer: {type(exc).__name__}: {exc}")
        else:
            self._redis_ok = (True, "ok")

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.set_assignment(len(partitions))

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.set_assignment(0)

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
            consumer.subscribe(
                [settings.topics.retrain_requests],
                on_assign=self._assigned,
                on_revoke=self._revoked,
                on_lost=self._revoked,
            )
            while not self._stop.is_set():
                self.metrics.heartbeat()
                if max_messages is not None and handled >= max_messages:
                    break
                message = consumer.poll(settings.poll_timeout)
                if message is None:
                    self._ping()
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
            self.metrics.set_assignment(0)
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
            self.metrics.heartbeat()
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
        stored = self.store.decision(rid)
        if stored is not None:
            log.info(
                "request %s (%s): decided before a restart; reporting that decision", rid, model
            )
            return self._report(decode_retrain_result(stored), request, raw, message)
        error = f"attempt budget ({self.backoff.max_attempts}) used up before a restart"
        attempt = done
        while self.backoff.allows(attempt + 1):
            attempt = self.store.begin_attempt(rid, owner, lease, self._clock())
            self.metrics.busy(until=self._clock() + lease)
            self.metrics.transition(model, Status.RUNNING)
            log.info("request %s (%s): attempt %d with action %s", rid, model, attempt, name)
            started = time.monotonic()
            try:
                decision = self.action.run(request, raw, attempt)
            except ActionError as exc:
                failure: ActionError | None = exc
            except Exception as exc:  # a bug or an unexpected library error: retry, then alert
                failure = ActionError(f"{type(exc).__name__}: {exc}", retryable=True)
            else:
                failure = None
            self.metrics.attempt(model, name, failure is None, time.monotonic() - started)
            if failure is None:
                if decision.outcome == HANDED_OVER:
                    return self._handed_over(request, decision)
                result = result_of(request, decision, attempt, self._clock())
                return self._decide(result, request, raw, message, decision.details)
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
        result = failed_result(request, f"{name}: {error}", attempt, self._clock())
        return self._decide(result, request, raw, message)

    def _decide(
        self,
        result: RetrainResult,
        request: RetrainRequest,
        raw: bytes,
        message: Message,
        details: Mapping[str, Any] | None = None,
    ) -> str:
        """Store ``result`` as the request's one decision (an earlier one wins), report it."""
        stored = self.store.decide(request.request_id, self.settings.owner, encode(result))
        return self._report(decode_retrain_result(stored), request, raw, message, details)

    def _report(
        self,
        result: RetrainResult,
        request: RetrainRequest,
        raw: bytes,
        message: Message,
        details: Mapping[str, Any] | None = None,
    ) -> str:
        """Publish the decision (and, for ``failed``, the alert and the dead letter), flush,
        then make the status final and log the decision's line."""
        now = self._clock()
        summary: dict[str, Any] = {
            "outcome": result.outcome,
            "result_id": result.result_id,
            "reason": result.reason,
            "attempts": result.attempts,
            "deployed_version": result.deployed_version,
            "details": dict(details or {}),
        }
        line = describe_result(result)
        if result.outcome == FAILED:
            alert = failure_alert(request, self.action.name, result.attempts, result.reason, now)
            letter = dead_letter(
                message.topic() or self.settings.topics.retrain_requests,
                message.partition() or 0,
                message.offset() or 0,
                message.key(),
                raw,
                f"retrain request failed after {result.attempts} attempt(s) with action "
                f"{result.reason}",
                failed_at=now,
            )
            self._publisher.alerts([alert])
            self._publisher.dead_letter(letter)
            summary["alert_id"] = alert.alert_id
            line += f" (alert {alert.alert_id} and a dead letter published)"
        self._publisher.retrain_results([result])
        self._publisher.flush()  # durable before the status is final
        failed = result.outcome == FAILED
        status = Status.FAILED if failed else Status.SUCCEEDED
        self.store.finish(
            request.request_id,
            self.settings.owner,
            status,
            now,
            error=result.reason if failed else "",
            result=summary,
        )
        model = request.model_id
        self.metrics.transition(model, status)
        self.metrics.handled_as(model, status)
        self.metrics.decided(model, result.outcome)
        if not failed:
            self.metrics.last_success.labels(model_id=model).set(now)
        level = logging.INFO if result.outcome == DEPLOYED else logging.WARNING
        log.log(logging.ERROR if failed else level, "%s", line)
        return result.outcome

    def _handed_over(self, request: RetrainRequest, decision: Decision) -> str:
        """An external pipeline took the request: it reports the outcome, not the worker."""
        now = self._clock()
        rid, model = request.request_id, request.model_id
        self.store.finish(
            rid,
            self.settings.owner,
            Status.SUCCEEDED,
            now,
            result={"outcome": HANDED_OVER, "reason": decision.reason, "details": decision.details},
        )
        self.metrics.transition(model, Status.SUCCEEDED)
        self.metrics.handled_as(model, Status.SUCCEEDED)
        self.metrics.decided(model, HANDED_OVER)
        self.metrics.last_success.labels(model_id=model).set(now)
        log.info(
            "retrain %s for %s: handed over: %s; the pipeline reports the outcome to %r as %s",
            rid,
            model,
            decision.reason,
            self.settings.topics.retrain_results,
            result_id(rid),
        )
        return HANDED_OVER

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` (the injected sleep, else interruptibly); True if stopping."""
        if self._sleep_fn is not None:
            self._sleep_fn(seconds)
            return self._stop.is_set()
        return self._stop.wait(seconds)
