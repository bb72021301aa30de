"""An outage of a dependency the checkpoint needs: since when, why, when to retry, when to stop.

While Redis (the checkpoint store) or the broker (which must acknowledge the outputs before
a checkpoint) does not answer, the runner consumes nothing and retries the checkpoint on the
schedule kept here. The schedule is redis-py's backoff object, the same one its clients use
for their own retries; the runner's loop keeps turning in between (so the consumer keeps its
group membership and the health endpoints stay live) instead of sleeping in a retry loop.

>>> from redis.backoff import ExponentialBackoff
>>> now = [0.0]
>>> tracker = OutageTracker(ExponentialBackoff(cap=8.0, base=1.0), give_up_after=60.0,
...                         monotonic=lambda: now[0])
>>> outage = tracker.fail("redis", "ConnectionError: refused")
>>> tracker.due(), outage.next_attempt
(False, 1.0)
>>> now[0] = 1.5; tracker.due()
True
>>> _ = tracker.fail("redis", "ConnectionError: refused"); outage.next_attempt, outage.attempts
(3.5, 2)
>>> now[0] = 61.0; tracker.expired()
True
>>> now[0] = 4.0; tracker.recover().duration(4.0), tracker.current
(4.0, None)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.backoff import AbstractBackoff

__all__ = ["Outage", "OutageTracker"]


@dataclass(slots=True)
class Outage:
    """One ongoing outage of ``dependency`` (``"redis"`` or ``"kafka"``)."""

    dependency: str
    reason: str
    started: float
    attempts: int = 0
    next_attempt: float = 0.0

    def duration(self, now: float) -> float:
        return now - self.started


class OutageTracker:
    """At most one outage at a time (the first dependency that blocked the checkpoint)."""

    def __init__(
        self,
        backoff: AbstractBackoff,
        *,
        give_up_after: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backoff = backoff
        self.give_up_after = give_up_after
        self._monotonic = monotonic
        self.current: Outage | None = None

    def fail(self, dependency: str, reason: str) -> Outage:
        """A checkpoint attempt failed because of ``dependency``: start or extend the outage."""
        now = self._monotonic()
        outage = self.current
        if outage is None:
            self._backoff.reset()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            outage = self.current = Outage(dependency, reason, started=now)
        outage.dependency = dependency
        outage.reason = reason
        outage.attempts += 1
        outage.next_attempt = now + self._backoff.compute(outage.attempts - 1)
        return outage

    def due(self) -> bool:
        """Whether the next attempt may be made now."""
        return self.current is not None and self._monotonic() >= self.current.next_attempt

    def expired(self) -> bool:
        """Whether the outage has lasted longer than ``give_up_after`` seconds."""
        outage = self.current
        return outage is not None and outage.duration(self._monotonic()) > self.give_up_after

    def recover(self) -> Outage | None:
        """The checkpoint went through: end the outage (returned, or None if there was none)."""
        outage, self.current = self.current, None
        return outage

    def elapsed(self) -> float:
        """Seconds since the current outage started (0 without one)."""
        return 0.0 if self.current is None else self.current.duration(self._monotonic())
