"""Connections named by the environment: Redis from ``REDIS_URL``, the group id, redaction.

Connection problems become :class:`UnreachableError` with a message that says which service
and where (with any password removed), so ``driftradar run``/``status`` can print it as is.

>>> redact("redis://:s3cret@db.example:6379/0")
'redis://:***@db.example:6379/0'
>>> redact("redis://127.0.0.1:6379")
'redis://127.0.0.1:6379'
"""

from __future__ import annotations

import os
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import redis

from streams.core.errors import ConfigError, UnreachableError

__all__ = ["DEFAULT_GROUP_ID", "group_id", "open_redis", "redact", "redis_url"]

#: Consumer group (and Redis key namespace) when neither ``--group-id`` nor the environment
#: variable ``DRIFTRADAR_GROUP_ID`` names one.
DEFAULT_GROUP_ID: Final = "driftradar"


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


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def open_redis(url: str, *, timeout: float = 5.0) -> redis.Redis:
    """A Redis client for ``url`` that has answered a PING."""
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=max(timeout, 30.0)
        )
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise UnreachableError(f"cannot reach Redis at {redact(url)}: {exc}") from None
    return client
