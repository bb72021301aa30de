"""Consumer lag from librdkafka's statistics (the local broker's ListOffsets is unreliable).

``statistics.interval.ms`` makes librdkafka call ``stats_cb`` with a JSON document; each
partition there has ``hi_offset`` (the high watermark from fetch responses). Lag is the high
watermark minus the next offset we will apply; ``consumer_lag`` is used when it is valid.

>>> stats = '''{"topics": {"predictions": {"partitions": {
...   "0": {"hi_offset": 120, "consumer_lag": -1},
...   "-1": {"hi_offset": -1, "consumer_lag": -1}}}}}'''
>>> lag_from_stats(stats, {("predictions", 0): 100})
{('predictions', 0): 20}

:func:`read_stats` also returns each broker's connection state (``UP``, ``DOWN``…), which
the readiness check of ``/readyz`` caches:

>>> read_stats('{"brokers": {"b:9092/1": {"state": "UP", "rxidle": 40000}}, "topics": {}}', {})
StatsReading(lags={}, broker_states=['UP'], receive_idle=0.04)

``receive_idle`` is the least time, in seconds, since any broker connection last received
anything (``None`` before the first receive): a broker that is frozen (paused, overloaded)
keeps its TCP connections "UP" but stops answering, so only this shows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import msgspec

__all__ = ["StatsReading", "lag_from_stats", "read_stats"]


class _Partition(msgspec.Struct):
    hi_offset: int = -1
    consumer_lag: int = -1


class _Topic(msgspec.Struct):
    partitions: dict[str, _Partition] = msgspec.field(default_factory=dict)


class _Broker(msgspec.Struct):
    state: str = ""
    rxidle: int = -1  # microseconds since the last receive on this connection; -1: none yet


class _Stats(msgspec.Struct):
    topics: dict[str, _Topic] = msgspec.field(default_factory=dict)
    brokers: dict[str, _Broker] = msgspec.field(default_factory=dict)


class StatsReading(NamedTuple):
    """What the loop takes from one statistics document."""

    lags: dict[tuple[str, int], int]
    broker_states: list[str]
    receive_idle: float | None = None


_DECODER: msgspec.json.Decoder[_Stats] = msgspec.json.Decoder(_Stats)


def lag_from_stats(
    stats_json: str | bytes, next_offsets: Mapping[tuple[str, int], int | None]
) -> dict[tuple[str, int], int]:
    """Lag of each ``(topic, partition)`` in ``next_offsets`` that the statistics mention."""
    return read_stats(stats_json, next_offsets).lags


def read_stats(
    stats_json: str | bytes, next_offsets: Mapping[tuple[str, int], int | None]
) -> StatsReading:
    """Lags as :func:`lag_from_stats` gives them, and every broker's state."""
    stats = _DECODER.decode(stats_json)
    lags: dict[tuple[str, int], int] = {}
    for (topic, partition), next_offset in next_offsets.items():
        entry = stats.topics.get(topic)
        part = entry.partitions.get(str(partition)) if entry else None
        if part is None:
            continue
        if part.hi_offset >= 0:
            lags[(topic, partition)] = max(part.hi_offset - (next_offset or 0), 0)
        elif part.consumer_lag >= 0:
            lags[(topic, partition)] = part.consumer_lag
    idle = [b.rxidle for b in stats.brokers.values() if b.rxidle >= 0]
    return StatsReading(
        lags,
        [broker.state for broker in stats.brokers.values()],
        min(idle) / 1e6 if idle else None,
    )
