"""An in-process store of pending predictions: what the checkpoint's Lua script does in
Redis (:mod:`streams.checkpoint`), in Python, for tests, benchmarks and embedding the engine
without Redis. It reads the same blobs (:mod:`streams.engine.pending_codec`).

>>> from streams.engine import Engine, InputRecord, MonitorConfig
>>> from streams.core.events import GroundTruth, Prediction
>>> engine, store = Engine(MonitorConfig(), clock=lambda: 0.0), MemoryPendingStore()
>>> _ = engine.process([InputRecord(Prediction("e1", "m", {"x": 1.0}, 0.7, timestamp=1.0),
...                                 0, 0, 1.0)])
>>> _ = store.checkpoint(engine, 0)  # the prediction leaves the process
>>> label = [InputRecord(GroundTruth("e1", "m", 1.0, timestamp=9.0), 0, 0, 9.0)]
>>> store.prefetch(engine, label)
>>> _ = engine.process(label)
>>> engine.status()["models"]["m"]["joined"], len(store)
(1, 1)
>>> _ = store.checkpoint(engine, 0)  # the joined entry is deleted
>>> len(store)
0
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, Final

from streams.engine.pending_codec import FIELD_SIZE, LOOKUP_RECORD, VALUE_SIZE, PendingLookup
from streams.engine.records import InputRecord

__all__ = ["MemoryPendingStore"]

_U32: Final = struct.Struct("<I")
_F64: Final = struct.Struct("<d")


class MemoryPendingStore:
    """``{(partition, tag, bucket): {field: value}}`` with the Redis script's semantics."""

    def __init__(self) -> None:
        self.hashes: dict[tuple[int, bytes, int], dict[bytes, bytes]] = {}

    def __len__(self) -> int:
        return sum(len(h) for h in self.hashes.values())

    def lookup(self, lookups: Sequence[PendingLookup]) -> list[list[bytes]]:
        out = []
        for lookup in lookups:
            blob, values = lookup.blob, []
            for pos in range(0, len(blob), LOOKUP_RECORD):
                tag = blob[pos : pos + 8]
                (bucket,) = _U32.unpack_from(blob, pos + 8)
                field = blob[pos + 12 : pos + 12 + FIELD_SIZE]
                values.append(self.hashes.get((lookup.partition, tag, bucket), {}).get(field, b""))
            out.append(values)
        return out

    def apply(self, partition: int, blob: bytes) -> None:
        """Apply one partition's write-back delta."""
        pos = 0
        while pos < len(blob):
            tag = blob[pos : pos + 8]
            pos += 8
            (n,) = _U32.unpack_from(blob, pos)
            pos += 4
            for _ in range(n):
                (bucket,) = _U32.unpack_from(blob, pos)
                field = blob[pos + 4 : pos + 4 + FIELD_SIZE]
                value = blob[pos + 4 + FIELD_SIZE : pos + 4 + FIELD_SIZE + VALUE_SIZE]
                self.hashes.setdefault((partition, tag, bucket), {})[field] = value
                pos += 4 + FIELD_SIZE + VALUE_SIZE
            (n,) = _U32.unpack_from(blob, pos)
            pos += 4
            for _ in range(n):
                (bucket,) = _U32.unpack_from(blob, pos)
                self._delete(partition, tag, bucket, [blob[pos + 4 : pos + 4 + FIELD_SIZE]])
                pos += 4 + FIELD_SIZE
            (n,) = _U32.unpack_from(blob, pos)
            pos += 4
            sweep = [_U32.unpack_from(blob, pos + 4 * k)[0] for k in range(n)]
            pos += 4 * n
            (cutoff,) = _F64.unpack_from(blob, pos)
            pos += 8
            for bucket in sweep:
                entries = self.hashes.get((partition, tag, bucket), {})
                dead = [f for f, v in entries.items() if _F64.unpack_from(v, 5)[0] < cutoff]
                self._delete(partition, tag, bucket, dead)

    def _delete(self, partition: int, tag: bytes, bucket: int, fields: list[bytes]) -> None:
        entries = self.hashes.get((partition, tag, bucket))
        if entries is None:
            return
        for field in fields:
            entries.pop(field, None)
        if not entries:  # Redis drops an empty hash
            del self.hashes[(partition, tag, bucket)]

    # -- what the runner does around the engine ------------------------------------------

    def prefetch(self, engine: Any, records: Sequence[InputRecord]) -> None:
        """Before ``engine.process(records)``: answer its lookups."""
        lookups = engine.pending_lookups(records)
        if lookups:
            engine.pending_found(self.lookup(lookups))

    def checkpoint(self, engine: Any, partition: int) -> Any:
        """Snapshot ``partition`` and apply its delta, as one checkpoint; returns the state."""
        state = engine.snapshot_partition(partition)
        self.apply(partition, engine.pending_delta(partition))
        engine.pending_saved(partition)
        engine.checkpoint_saved(partition)
        return state
