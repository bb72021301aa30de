"""Connections named by the environment: Redis from ``REDIS_URL``, the group id.

Connection problems become :class:`UnreachableError` with a message that says which service
and where (any password hidden by :mod:`streams.core.redact`), so ``driftradar run``/``status``
can print it as is. Every Redis client of the project retries short failures itself with
redis-py's :class:`~redis.retry.Retry` and exponential backoff (:func:`redis_retry`): a
dropped connection or a Redis still loading its append-only file costs a few retries, not a
traceback.

>>> redis_retry(RedisConfig(retries=3)).get_retries()
3
"""

from __future__ import annotations

import os
from typing import Final

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import BusyLoadingError
from redis.retry import Retry

from streams.core.errors import ConfigError, UnreachableError
from streams.core.redact import malformed_userinfo, redact_text, redact_url, secrets_of_url
from streams.core.settings import RedisConfig

__all__ = [
    "DEFAULT_GROUP_ID",
    "RETRYABLE",
    "group_id",
    "open_redis",
    "redis_retry",
    "redis_url",
]

#: Consumer group (and Redis key namespace) when neither ``--group-id`` nor the environment
#: variable ``DRIFTRADAR_GROUP_ID`` names one.
DEFAULT_GROUP_ID: Final = "driftradar"

#: Redis errors worth retrying: the server is away, slow, or loading its data after a restart.
RETRYABLE: Final = (redis.ConnectionError, redis.TimeoutError, BusyLoadingError)


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


def redis_retry(settings: RedisConfig) -> Retry:
    """redis-py's retry policy for ``settings``: exponential backoff with jitter."""
    backoff = ExponentialWithJitterBackoff(
        cap=settings.backoff_cap_seconds, base=settings.backoff_base_seconds
    )
    return Retry(backoff, settings.retries, supported_errors=RETRYABLE)


def open_redis(url: str, settings: RedisConfig | None = None) -> redis.Redis:
    """A retrying Redis client for ``url`` that has answered a PING.

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
            socket_timeout=settings.socket_timeout_seconds,
            retry=redis_retry(settings),
            retry_on_error=list(RETRYABLE),
        )
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        reason = redact_text(f"{type(exc).__name__}: {exc}", secrets_of_url(url))
        raise UnreachableError(f"cannot reach Redis at {redact_url(url)}: {reason}") from None
    return client
