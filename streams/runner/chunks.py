"""Per-model chunks under load: many models, few records each per batch, cost the engine a
fixed price per model and batch (every signal and detector is called), so a batch of 10 000
records spread over 1 000 models runs ten times slower than over 10. When the consumer is
behind (a poll returned a full batch), the records of a model wait, at most ``max_wait``
seconds (and never past the next checkpoint), for a chunk of their own; its alerts come that
much later, while the consumer lags anyway. When it is caught up everything goes at once, so
the live tail keeps its latency.

A chunk is as large as ``held_budget`` records shared by the models holding some allows,
between ``min_records`` and ``max_records`` and never more than one poll of ``batch_size``
records: 4 096 records for 16 models or fewer, 655 for 100, 256 from 256 models on (as many
as ever: 1 000 models hold up to 256 000 records, ~180 MiB at 12 features). The engine's
cost per event falls with the chunk (~15 µs at 256 records, ~10 at 1 024, ~8.4 at 4 096:
``python -m benchmarks.chunk_cost``), so a few models get larger chunks within the memory
that 256 models' chunks take (~45 MiB).

Nothing is lost or reordered within a model: the runner processes a partition's held records
before it checkpoints it (its offsets cover them) and drops them when it loses the partition
(the next owner replays them from the checkpoint).

>>> from types import SimpleNamespace
>>> chunks = ModelChunks(min_records=3, max_records=3, max_wait=10.0, clock=lambda: 0.0)
>>> def record(model, offset):
...     return SimpleNamespace(event=SimpleNamespace(model_id=model), partition=0, offset=offset)
>>> [r.offset for r in chunks.take([record("a", 1), record("b", 2)], under_load=True)]
[]
>>> [r.offset for r in chunks.take([record("a", 3), record("a", 4)], under_load=True)]
[1, 3, 4]
>>> [r.offset for r in chunks.take([], under_load=False)]  # caught up: everything goes
[2]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence

from streams.engine.records import InputRecord

__all__ = ["ModelChunks"]


class ModelChunks:
    """Records held per model until they make a chunk worth the engine's fixed cost."""

    def __init__(
        self,
        min_records: int = 256,
        max_wait: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_records: int = 4096,
        held_budget: int = 65_536,
        batch_size: int | None = None,
    ) -> None:
        if min_records < 1:
            raise ValueError(f"min_records must be >= 1, got {min_records}")
        self.min_records = min_records
        if batch_size is not None:  # a model that filled a whole poll never waits
            max_records = min(max_records, batch_size)
        self.max_records = max(max_records, min_records)
        self.held_budget = held_budget
        self.max_wait = max_wait
        self._clock = clock
        self._held: dict[str, list[InputRecord]] = {}
        self._since: dict[str, float] = {}  # when each model's oldest held record came

    def __len__(self) -> int:
        return sum(len(records) for records in self._held.values())

    def take(self, records: Sequence[InputRecord], *, under_load: bool) -> list[InputRecord]:
        """Add ``records``; return those due now, each model's in their order: every held
        record when not ``under_load``, else the models with a chunk held
        (:meth:`chunk_size`) or whose oldest waited ``max_wait``."""
        now = self._clock()
        held, since = self._held, self._since
        for record in records:
            model = record.event.model_id
            group = held.get(model)
            if group is None:
                held[model] = [record]
                since[model] = now
            else:
                group.append(record)
        due: list[InputRecord] = []
        enough = self.chunk_size(len(held))
        for model in list(held):
            group = held[model]
            if not under_load or len(group) >= enough or (now - since[model] >= self.max_wait):
                due.extend(group)
                del held[model], since[model]
        return due

    def chunk_size(self, models: int) -> int:
        """Records a model holds before its chunk goes, with ``models`` models holding: the
        largest that keeps every model's chunk within ``held_budget`` records in all,
        between ``min_records`` and ``max_records``."""
        return max(self.min_records, min(self.max_records, self.held_budget // max(models, 1)))

    def peek(self, partitions: Collection[int]) -> list[InputRecord]:
        """The held records of ``partitions`` (kept until :meth:`drop`)."""
        return [r for group in self._held.values() for r in group if r.partition in partitions]

    def drop(self, partitions: Collection[int]) -> None:
        """Forget the held records of ``partitions`` (processed, or no longer ours)."""
        for model in list(self._held):
            kept = [r for r in self._held[model] if r.partition not in partitions]
            if kept:
                self._held[model] = kept
            else:
                del self._held[model], self._since[model]
