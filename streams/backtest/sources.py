"""Recorded events for a backtest: JSONL or Parquet files, or the Kafka topics.

A file holds one event per line (JSONL) or per row (Parquet), predictions and ground truth
mixed or in separate files, each exactly as published on ``predictions`` /
``ground-truth`` (a Parquet ``features`` column may be a struct or a JSON string). Events
are replayed in file order, files in the order given; an event that breaks the schema is
counted and skipped (the monitor would dead-letter it).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "events.jsonl"
>>> _ = path.write_text(
...     '{"event_id": "e1", "model_id": "m", "features": {"x": 1.0}, "prediction": 0.7}\\n'
...     '{"event_id": "e1", "model_id": "m", "label": 1}\\n'
...     'not json\\n')
>>> records, skipped = read_files([path])
>>> [type(r.event).__name__ for r in records], skipped
(['Prediction', 'GroundTruth'], 1)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from streams.core.errors import DriftradarError
from streams.core.events import (
    EventDecodeError,
    GroundTruth,
    Prediction,
    decode_ground_truth,
    decode_prediction,
    epoch_seconds,
)
from streams.engine.records import InputRecord

__all__ = ["BacktestSourceError", "read_files", "read_topics", "write_jsonl"]


class BacktestSourceError(DriftradarError, ValueError):
    """A source cannot be read (missing file, unknown format, unreachable topic)."""


def _decode(raw: bytes) -> Prediction | GroundTruth:
    """A prediction if the object has ``prediction``, else a ground-truth event."""
    if b'"prediction"' in raw:
        return decode_prediction(raw)
    return decode_ground_truth(raw)


def _record(event: Prediction | GroundTruth, offset: int, fallback: float) -> InputRecord:
    ts = event.timestamp
    timestamp = fallback if ts is None else epoch_seconds(ts)
    return InputRecord(event, 0, offset, timestamp)


def _parquet_rows(path: Path) -> Iterable[bytes]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is in the dev extra
        raise BacktestSourceError(f"{path}: reading Parquet needs pyarrow ({exc})") from None
    for row in pq.read_table(path).to_pylist():
        clean = {key: value for key, value in row.items() if value is not None}
        if isinstance(clean.get("features"), str):
            clean["features"] = msgspec.json.decode(clean["features"])
        yield msgspec.json.encode(clean)


def read_files(paths: Sequence[str | Path]) -> tuple[list[InputRecord], int]:
    """Records from JSONL (``.jsonl``/``.ndjson``/``.json``) and ``.parquet`` files, and the
    number of lines or rows skipped as not valid events."""
    records: list[InputRecord] = []
    skipped = 0
    now = time.time()
    for path in map(Path, paths):
        if not path.is_file():
            raise BacktestSourceError(f"{path}: no such file")
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            rows: Iterable[bytes] = _parquet_rows(path)
        elif suffix in (".jsonl", ".ndjson", ".json"):
            rows = (line for line in path.read_bytes().splitlines() if line.strip())
        else:
            raise BacktestSourceError(f"{path}: unknown format (use .jsonl or .parquet)")
        for raw in rows:
            try:
                event = _decode(raw)
            except EventDecodeError:
                skipped += 1
                continue
            records.append(_record(event, len(records), now))
    return records, skipped


def read_topics(
    bootstrap: str,
    topics: Sequence[str],
    *,
    start_offset: int = 0,
    end_offset: int | None = None,
    since: float | None = None,
    until: float | None = None,
    kafka: dict[str, Any] | None = None,
) -> tuple[list[InputRecord], int]:
    """Records of ``topics`` (every partition) from ``start_offset`` to ``end_offset``
    (exclusive; ``None``: the end), keeping events whose event time is in
    ``[since, until)``; merged across topics by event time as the monitor consumes them."""
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    config = {
        "bootstrap.servers": bootstrap,
        "group.id": f"driftradar-backtest-{time.time_ns()}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "fetch.wait.max.ms": 50,
        **(kafka or {}),
    }
    consumer = Consumer(config)
    try:
        metadata = consumer.list_topics(timeout=10).topics
        assigned = []
        for topic in topics:
            info = metadata.get(topic)
            if info is None or info.error is not None:
                raise BacktestSourceError(f"topic {topic!r} does not exist")
            assigned += [TopicPartition(topic, p, start_offset) for p in info.partitions]
        consumer.assign(assigned)
        open_parts = {(tp.topic, tp.partition) for tp in assigned}
        rows: list[tuple[float, int, Prediction | GroundTruth, float]] = []
        skipped = 0
        idle = time.monotonic()
        while open_parts and time.monotonic() - idle < 30:
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                key = (message.topic(), message.partition())
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:  # noqa: SLF001 - librdkafka's name
                        open_parts.discard(key)
                        continue
                    raise KafkaException(error)
                idle = time.monotonic()
                offset = message.offset() or 0
                if end_offset is not None and offset >= end_offset:
                    open_parts.discard(key)
                    continue
                try:
                    event = _decode(message.value() or b"")
                except EventDecodeError:
                    skipped += 1
                    continue
                kind, stamp = message.timestamp()
                fallback = stamp / 1000.0 if kind else time.time()
                t = fallback if event.timestamp is None else epoch_seconds(event.timestamp)
                if (since is not None and t < since) or (until is not None and t >= until):
                    continue
                rows.append((t, len(rows), event, fallback))
    finally:
        consumer.close()
    rows.sort(key=lambda row: (row[0], row[1]))
    return [InputRecord(event, 0, i, t) for i, (t, _, event, _) in enumerate(rows)], skipped


def write_jsonl(records: Iterable[InputRecord], path: str | Path) -> int:
    """Write the records' events as JSONL (what :func:`read_files` reads); returns count."""
    encoder = msgspec.json.Encoder()
    count = 0
    with open(path, "wb") as out:
        for record in records:
            out.write(encoder.encode(record.event))
            out.write(b"\n")
            count += 1
    return count
