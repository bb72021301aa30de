"""The runner's side of the Redis-held pending predictions: the engine's lookups, once per
batch, and its write-back delta, handed to the checkpoint.

The engine (:mod:`streams.engine.pending`) never talks to Redis. Per batch it names the
pending entries the batch's records may need (``engine.pending_lookups``); this module reads
them with one script call per partition (:class:`~streams.checkpoint.CheckpointStore`
``.lookup_pending``) and hands the values back (``engine.pending_found``). At a checkpoint
it takes each partition's delta since the previous one (``engine.pending_delta``), which the
checkpoint script applies atomically with the offsets and the state, and tells the engine
once it is saved (``engine.pending_saved``).

An engine without these methods (the runner's test engines) is simply not asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.checkpoint import CheckpointStore
from streams.engine.records import InputRecord

__all__ = ["PendingHooks"]


class PendingHooks:
    """Calls the engine's pending-store methods when it has them (module doc)."""

    def __init__(self, engine: object) -> None:
        self._engine: Any = engine if hasattr(engine, "pending_lookups") else None
        self._store: CheckpointStore | None = None

    def connect(self, store: CheckpointStore) -> None:
        self._store = store

    def prefetch(self, records: Sequence[InputRecord]) -> None:
        """Read, in one round trip, the pending entries ``records`` may need."""
        if self._engine is None or self._store is None:
            return
        lookups = self._engine.pending_lookups(records)
        if lookups:
            self._engine.pending_found(self._store.lookup_pending(lookups))

    def delta(self, partition: int) -> bytes:
        if self._engine is None:
            return b""
        delta: bytes = self._engine.pending_delta(partition)
        return delta

    def saved(self, partition: int) -> None:
        if self._engine is not None:
            self._engine.pending_saved(partition)
