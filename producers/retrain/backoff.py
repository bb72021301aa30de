"""Retry policy for retrain actions: exponential backoff with a cap and optional jitter.

A policy is a frozen value object (like redis-py's ``Retry(backoff, retries)``): the worker
asks it for the delay before each new attempt and whether another attempt is allowed.

>>> policy = BackoffPolicy(base=1.0, factor=2.0, max_delay=5.0, max_attempts=5, jitter=False)
>>> policy.schedule()
[1.0, 2.0, 4.0, 5.0]
>>> policy.allows(5), policy.allows(6)
(True, False)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["BackoffPolicy"]


@dataclass(frozen=True)
class BackoffPolicy:
    """Delays ``base * factor**(n-1)`` seconds before retry ``n``, capped at ``max_delay``.

    ``max_attempts`` counts every try, the first included. With ``jitter`` the delay is
    drawn uniformly from ``[delay/2, delay]`` ("equal jitter"), so that many workers
    retrying the same failing endpoint spread out; tests switch it off to be exact.
    """

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    max_attempts: int = 5
    jitter: bool = True
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.base >= 0:
            raise ValueError(f"backoff base must be >= 0 seconds, got {self.base!r}")
        if not self.factor >= 1:
            raise ValueError(f"backoff factor must be >= 1, got {self.factor!r}")
        if not self.max_delay >= 0:
            raise ValueError(f"backoff max_delay must be >= 0 seconds, got {self.max_delay!r}")
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ValueError(f"max_attempts must be an integer, got {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")

    def allows(self, attempt: int) -> bool:
        """Whether attempt number ``attempt`` (1-based) may run."""
        return 1 <= attempt <= self.max_attempts

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the second attempt)."""
        if retry < 1:
            raise ValueError(f"retry number must be >= 1, got {retry}")
        try:
            raw = self.base * self.factor ** (retry - 1)
        except OverflowError:  # a huge retry number: the cap applies anyway
            raw = self.max_delay
        capped = min(raw, self.max_delay)
        if self.jitter:
            return self.rng.uniform(capped / 2, capped)
        return capped

    def schedule(self) -> list[float]:
        """Every delay of a request that fails all its attempts, in order."""
        return [self.delay(retry) for retry in range(1, self.max_attempts)]
