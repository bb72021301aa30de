"""The embedded local stack: a Kafka-compatible broker (tansu) and a Redis, no Docker needed.

:class:`LocalStack` runs them for the lifetime of a test session or demo;
``driftradar stack up|down`` (:mod:`streams.stack.daemon`) runs them in the background.
"""

from __future__ import annotations

from streams.stack.binaries import find_redis_server, find_tansu
from streams.stack.errors import (
    MissingBinaryError,
    StackError,
    StackStartupError,
    StackStateError,
)
from streams.stack.local import LocalStack
from streams.stack.services import kafka_answers, redis_answers

__all__ = [
    "LocalStack",
    "MissingBinaryError",
    "StackError",
    "StackStartupError",
    "StackStateError",
    "find_redis_server",
    "find_tansu",
    "kafka_answers",
    "redis_answers",
]
