"""Create topics explicitly, with one partition count, so that co-partitioned topics agree.

Brokers that auto-create topics pick their own partition count (tansu: 4), and the monitor
needs ``predictions`` and ``ground-truth`` to have the same one, so we create ours first.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.core.errors import TopicLayoutError
from streams.core.kafka import admin_config

__all__ = [
    "DEFAULT_PARTITIONS",
    "TopicError",
    "ensure_topics",
    "partition_counts",
    "validate_topic_name",
]

#: Partition count of the topics the local stack creates (and the tests' default).
DEFAULT_PARTITIONS: Final = 4

_LEGAL_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")


class TopicError(TopicLayoutError):
    """A topic could not be created, or exists with another partition count."""


def validate_topic_name(name: str) -> str:
    """Return ``name`` if Kafka accepts it as a topic name, else raise ValueError naming it.

    >>> validate_topic_name("ground-truth")
    'ground-truth'
    >>> validate_topic_name("bad name")
    Traceback (most recent call last):
    ...
    ValueError: topic name 'bad name' is not valid: use 1-249 of [a-zA-Z0-9._-], not '.' or '..'
    """
    if not isinstance(name, str) or not _LEGAL_NAME.fullmatch(name) or name in {".", ".."}:
        raise ValueError(
            f"topic name {name!r} is not valid: use 1-249 of [a-zA-Z0-9._-], not '.' or '..'"
        )
    return name


def partition_counts(
    bootstrap: str,
    names: Iterable[str],
    *,
    timeout: float = 10.0,
    config: Mapping[str, Any] | None = None,
) -> dict[str, int | None]:
    """Each topic's partition count from the broker's metadata (None: the topic does not exist)."""
    admin = AdminClient(admin_config(bootstrap, config))
    return _partition_counts(admin, list(names), timeout)


def _partition_counts(
    admin: AdminClient, names: list[str], timeout: float
) -> dict[str, int | None]:
    topics = admin.list_topics(timeout=timeout).topics
    counts: dict[str, int | None] = {}
    for name in names:
        meta = topics.get(name)
        counts[name] = None if meta is None or meta.error is not None else len(meta.partitions)
    return counts


def ensure_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = DEFAULT_PARTITIONS,
    *,
    replication_factor: int = -1,
    timeout: float = 30.0,
    config: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Create the missing topics among ``names``, all with ``partitions`` partitions.

    Idempotent: a topic that already exists with ``partitions`` partitions is fine; one
    with a different count raises :class:`TopicError` (co-partitioned topics must agree).
    ``replication_factor=-1`` takes the broker's default. Returns once the broker's
    metadata lists every topic, as ``{name: partitions}``. ``config`` adds librdkafka
    settings (SASL/TLS) to the admin client.
    """
    wanted = [validate_topic_name(name) for name in dict.fromkeys(names)]
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ValueError(f"partitions must be a positive integer, got {partitions!r}")
    if not wanted:
        return {}
    admin = AdminClient(admin_config(bootstrap, config))
    deadline = time.monotonic() + timeout
    existing = _partition_counts(admin, wanted, timeout)
    missing = [name for name, count in existing.items() if count is None]
    if missing:
        new = [NewTopic(name, partitions, replication_factor) for name in missing]
        futures = admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:
                error = exc.args[0]
                if not (
                    isinstance(error, KafkaError)
                    and error.code() == KafkaError.TOPIC_ALREADY_EXISTS
                ):
                    raise TopicError(f"could not create topic {name!r}: {error}") from exc
    while True:
        counts = _partition_counts(admin, wanted, max(deadline - time.monotonic(), 1.0))
        wrong = {name: count for name, count in counts.items() if count not in (None, partitions)}
        if wrong:
            listing = ", ".join(f"{name!r} has {count}" for name, count in wrong.items())
            raise TopicError(
                f"topics exist with another partition count than {partitions}: {listing} "
                "(co-partitioned topics must agree; delete them or pass that count)"
            )
        if all(count is not None for count in counts.values()):
            return {name: partitions for name in wanted}
        if time.monotonic() >= deadline:
            absent = [name for name, count in counts.items() if count is None]
            raise TopicError(f"topics {absent} not visible in metadata after {timeout:g} s")
        time.sleep(0.05)
