"""Connections named by the environment: Redis from ``REDIS_URL``, the group id.

Connection problems become :class:`UnreachableError` with a message that says which service
and where (any password hidden by :mod:`streams.core.redact`), so ``driftradar run``/``status``
can print it as is. Every Redis client of the project retries short failures itself with
redis-py's :class:`~redis.retry.Retry` and exponential backoff (:func:`redis_retry`): a
dropped connection, a Redis still loading its append-only file or one busy running a long
script (:class:`RedisBusyError`) costs a few retries, not a traceback.

>>> redis_retry(RedisConfig(retries=3)).get_retries()
3
"""

from __future__ import annotations

import os
from typing import Any, Final

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import AbstractConnection
from redis.exceptions import BusyLoadingError
from redis.retry import Retry

from streams.core.errors import ConfigError, DriftradarError, UnreachableError
from streams.core.redact import malformed_userinfo, redact_text, redact_url, secrets_of_url
from streams.core.settings import RedisConfig

__all__ = [
    "DEFAULT_GROUP_ID",
    "RETRYABLE",
    "RedisBusyError",
    "group_id",
    "open_redis",
    "redis_retry",
    "redis_url",
]

#: Consumer group (and Redis key namespace) when neither ``--group-id`` nor the environment
#: variable ``DRIFTRADAR_GROUP_ID`` names one.
DEFAULT_GROUP_ID: Final = "driftradar"


class RedisBusyError(BusyLoadingError, DriftradarError):
    """Redis answered ``BUSY``: a script has run past its ``busy-reply-threshold`` (5 s by
    default; another member's checkpoint of a thousand models or more, another
    application's script) and every other command is refused until it ends. redis-py raises
    a plain ``ResponseError`` for it, which nothing retries; it is a Redis away for a
    while, like one loading its data."""


#: Redis errors worth retrying: the server is away, slow, loading its data after a restart,
#: or busy running a long script.
RETRYABLE: Final = (redis.ConnectionError, redis.TimeoutError, BusyLoadingError)
#: The same but a timeout (a Redis that has not answered within a long timeout is stalled).
_AWAY: Final = (redis.ConnectionError, BusyLoadingError)


def _busy_aware(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """``connection_class`` raising :class:`RedisBusyError` for a ``BUSY`` reply (single
    calls, pipelines and scripts all read their replies through ``read_response``)."""

    class BusyAware(connection_class):  # type: ignore[misc,valid-type]
        def read_response(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().read_response(*args, **kwargs)
            except redis.ResponseError as exc:
                if str(exc).startswith("BUSY "):
                    raise RedisBusyError(str(exc)) from None
                raise

    BusyAware.__name__ = BusyAware.__qualname__ = f"BusyAware{connection_class.__name__}"
    return BusyAware


def group_id(explicit: str | None = None, configured: str | None = None) -> str:
    """``explicit``, else ``$DRIFTRADAR_GROUP_ID``, else ``configured`` (the config file),
    else :data:`DEFAULT_GROUP_ID`."""
    return explicit or os.environ.get("DRIFTRADAR_GROUP_ID") or configured or DEFAULT_GROUP_ID


def redis_url(explicit: str | None = None) -> str:
    """``explicit``, else ``$REDIS_URL``; :class:`ConfigError` if neither is set."""
    value = explicit or os.environ.get("REDIS_URL")
    if not value:
        raise ConfigError(
            "REDIS_URL",
            'no Redis configured: set it (or run `eval "$(driftradar stack up)"` to start a '
            "local one)",
        )
    return value


def redis_retry(settings: RedisConfig, *, timeouts: bool = True) -> Retry:
    """redis-py's retry policy for ``settings``: exponential backoff with jitter; a call that
    timed out is retried only if ``timeouts``."""
    backoff = ExponentialWithJitterBackoff(
        cap=settings.backoff_cap_seconds, base=settings.backoff_base_seconds
    )
    return Retry(backoff, settings.retries, supported_errors=_retried(timeouts=timeouts))


def _retried(*, timeouts: bool) -> tuple[type[Exception], ...]:
    """The errors a client retries: :data:`RETRYABLE`, or all but a timeout."""
    return RETRYABLE if timeouts else _AWAY


def open_redis(
    url: str, settings: RedisConfig | None = None, *, socket_timeout: float | None = None
) -> redis.Redis:
    """A retrying Redis client for ``url`` that has answered a PING; its calls wait
    ``socket_timeout`` for an answer (default: ``settings.socket_timeout_seconds``), and a
    call that waited a ``socket_timeout`` of its own is not retried after a timeout: a
    stalled Redis then shows after that long, not after ``retries + 1`` times it.

    The message of a failure names the URL with its password hidden, and never quotes a
    piece of the password (a URL whose password holds ``/`` or ``#`` is refused first,
    with how to fix it).
    """
    settings = settings or RedisConfig()
    problem = malformed_userinfo(url)
    if problem is not None:
        raise ConfigError("REDIS_URL", f"{redact_url(url)} cannot be used: {problem}")
    try:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=settings.connect_timeout_seconds,
            socket_timeout=socket_timeout or settings.socket_timeout_seconds,
            retry=redis_retry(settings, timeouts=socket_timeout is None),
            retry_on_error=list(_retried(timeouts=socket_timeout is None)),
        )
        pool = client.connection_pool  # (no connection made yet: every one is busy-aware)
        pool.connection_class = _busy_aware(pool.connection_class)
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        reason = redact_text(f"{type(exc).__name__}: {exc}", secrets_of_url(url))
        raise UnreachableError(f"cannot reach Redis at {redact_url(url)}: {reason}") from None
    return client
