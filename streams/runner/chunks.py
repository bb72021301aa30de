"""Per-model chunks under load: many models, few records each per batch, cost the engine a
fixed price per model and batch (every signal and detector is called), so a batch of 10 000
records spread over 1 000 models runs ten times slower than over 10. When the consumer is
behind (a poll returned a full batch), the records of a model wait, at most ``max_wait``
seconds (and never past the next checkpoint), for a chunk of their own; its alerts come that
much later, while the consumer lags anyway. When it is caught up everything goes (two polls'
worth at a time, below), so the live tail keeps its latency.

A chunk is as large as ``held_budget`` records shared by the models holding some allows,
between ``min_records`` and ``max_records`` and never more than one poll of ``batch_size``
records: 4 096 records for 16 models or fewer, 655 for 100, 256 from 256 models on. The
engine's cost per event falls with the chunk (~15 µs at 256 records, ~10 at 1 024, ~8.4 at
4 096: ``python -m benchmarks.chunk_cost``), so a few models get larger chunks.

Past ``held_budget / min_records`` models (256) the records would overrun the budget (1 000
models hold 256 000), so they wait compact, outside the interpreter's small-object arenas:
each call's records of a model as one msgpack array, a ``bytes`` object of its own (~200 to 290
bytes a prediction of 12 features instead of ~1 200 in 22 objects), decoded again when their
chunk goes (~1.2 µs an event for both ways, ~7 % of the 1 000-model rate in process).
And due chunks go oldest first, ``release_limit`` records at a time (whole chunks; two
polls' worth by default, so the queue drains while each poll brings one), so no more are
ever decoded at once: with a quarter of a million decoded records alive at once, the
objects the engine keeps meanwhile were spread over arenas that stayed resident once the
records were gone (1 000 models: 0.60 MiB per model instead of 0.43, ``python -m
benchmarks.many_models``). A limit of one poll's worth would keep the queue from ever
draining while behind: the chunks then grow, and a real run held more, not less. Fewer
models keep their records as they are (nothing to encode: the budget bounds them).

Nothing is lost or reordered within a model: the runner processes a partition's held records
before it checkpoints it (its offsets cover them) and drops them when it loses the partition
(the next owner replays them from the checkpoint).

>>> from types import SimpleNamespace
>>> chunks = ModelChunks(min_records=3, max_records=3, max_wait=10.0, clock=lambda: 0.0)
>>> def record(model, offset):
...     return SimpleNamespace(event=SimpleNamespace(model_id=model), partition=0, offset=offset,
...                            timestamp=0.0)
>>> [r.offset for r in chunks.take([record("a", 1), record("b", 2)], under_load=True)]
[]
>>> [r.offset for r in chunks.take([record("a", 3), record("a", 4)], under_load=True)]
[1, 3, 4]
>>> [r.offset for r in chunks.take([], under_load=False)]  # caught up: everything goes
[2]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, Final

import msgspec

from streams.core.events import GroundTruth, Prediction
from streams.engine.records import InputRecord

__all__ = ["ModelChunks"]


class _HeldPrediction(msgspec.Struct, array_like=True, tag=0):
    """A waiting prediction record as msgpack: ``[0, event, partition, offset, time]``."""

    event: Prediction
    partition: int
    offset: int
    timestamp: float


class _HeldLabel(msgspec.Struct, array_like=True, tag=1):
    """A waiting label record as msgpack: ``[1, event, partition, offset, time]``."""

    event: GroundTruth
    partition: int
    offset: int
    timestamp: float


_ENCODER: Final = msgspec.msgpack.Encoder()
#: (it checks the contract again: the runner's records passed it when their message was
#: decoded, so they pass it again; the tests cover its limits)
_DECODER: Final = msgspec.msgpack.Decoder(list[_HeldPrediction | _HeldLabel])
_WRAP: Final[dict[type, type[_HeldPrediction] | type[_HeldLabel]]] = {
    Prediction: _HeldPrediction,
    GroundTruth: _HeldLabel,
}


class _Held:
    """One model's waiting records: as they are, or ``compact``: each call's records as one
    msgpack array (a ``bytes`` object of its own, made once and freed once: no buffer that
    grows and moves), decoded again in one call; records msgpack cannot carry, none the
    decoder makes, are kept as they are."""

    __slots__ = ("count", "due", "partitions", "parts", "plain", "since")

    def __init__(self, since: float, compact: bool = True) -> None:
        self.since = since  # when the oldest record came
        self.due = False  # due, but others went first (``release_limit``)
        self.plain: list[Any] | None = None if compact else []
        self.parts: list[bytes | Sequence[Any]] = []  # each call's records, encoded or not
        self.count = 0
        self.partitions: set[int] = set()

    def __len__(self) -> int:
        return self.count

    def add(self, records: Sequence[Any]) -> None:
        self.count += len(records)
        self.partitions.update(r.partition for r in records)
        if self.plain is not None:
            self.plain += records
            return
        try:
            wrapped = [
                _WRAP[type(r.event)](r.event, r.partition, r.offset, r.timestamp) for r in records
            ]
            self.parts.append(_ENCODER.encode(wrapped))
        except (KeyError, TypeError, ValueError, OverflowError):  # (none the decoder makes)
            self.parts.append(records)

    def records(self) -> list[Any]:
        """The records, decoded, in their order."""
        if self.plain is not None:
            return self.plain
        out: list[Any] = []
        for part in self.parts:
            if isinstance(part, bytes):
                out += [
                    InputRecord(h.event, h.partition, h.offset, h.timestamp)
                    for h in _DECODER.decode(part)
                ]
            else:
                out += part
        return out

    def in_partitions(self, partitions: Collection[int]) -> bool | None:
        """Whether all of the records are of ``partitions`` (True), none (False) or some."""
        if self.partitions.isdisjoint(partitions):
            return False
        return True if self.partitions.issubset(partitions) else None

    def split(self, partitions: Collection[int]) -> tuple[list[Any], _Held | None]:
        """(the records of ``partitions``, a group of the others or ``None``)."""
        inside = self.in_partitions(partitions)
        if inside is not None:
            return (self.records(), None) if inside else ([], self)
        rest = _Held(self.since, self.plain is None)
        rest.due = self.due
        records = self.records()
        rest.add([r for r in records if r.partition not in partitions])
        return [r for r in records if r.partition in partitions], rest


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
        release_limit: int | None = None,
    ) -> None:
        if min_records < 1:
            raise ValueError(f"min_records must be >= 1, got {min_records}")
        self.min_records = min_records
        if batch_size is not None:  # a model that filled a whole poll never waits
            max_records = min(max_records, batch_size)
        self.max_records = max(max_records, min_records)
        self.held_budget = held_budget
        #: due records handed out per call at most (whole chunks, at least one): two polls'
        #: worth, more than a poll brings, so a queue of due chunks drains while behind
        self.release_limit = release_limit or 2 * (batch_size or 10_000)
        self.max_wait = max_wait
        self._clock = clock
        self._held: dict[str, _Held] = {}  # oldest first

    def __len__(self) -> int:
        return sum(len(group) for group in self._held.values())

    def take(self, records: Sequence[InputRecord], *, under_load: bool) -> list[InputRecord]:
        """Add ``records``; return those due now, each model's in their order: every held
        record when not ``under_load``, else the models with a chunk held
        (:meth:`chunk_size`) or whose oldest waited ``max_wait``; oldest first, up to
        ``release_limit`` records (the others are due at the next call)."""
        now = self._clock()
        held, limit = self._held, self.release_limit
        incoming: dict[str, list[InputRecord]] = {}
        for record in records:
            group = incoming.get(record.event.model_id)
            if group is None:
                incoming[record.event.model_id] = [record]
            else:
                group.append(record)
        models = len(held) + sum(1 for m in incoming if m not in held)
        enough = self.chunk_size(models)
        compact = models * self.min_records > self.held_budget  # (see the module's notes)
        due: list[InputRecord] = []
        for model in list(held):
            waiting = held[model]
            new = incoming.pop(model, ())
            waiting.due = waiting.due or (
                not under_load
                or len(waiting) + len(new) >= enough
                or now - waiting.since >= self.max_wait
            )
            if waiting.due and len(due) < limit:
                due += waiting.records()
                due += new
                del held[model]
            elif new:
                waiting.add(new)
        for model, new in incoming.items():
            ready = not under_load or len(new) >= enough or self.max_wait <= 0
            if ready and len(due) < limit:
                due += new  # (never held: the records as they came)
            else:
                waiting = held[model] = _Held(now, compact)
                waiting.add(new)
                waiting.due = ready
        return due

    def chunk_size(self, models: int) -> int:
        """Records a model holds before its chunk goes, with ``models`` models holding: the
        largest that keeps every model's chunk within ``held_budget`` records in all,
        between ``min_records`` and ``max_records``."""
        return max(self.min_records, min(self.max_records, self.held_budget // max(models, 1)))

    def drain(self, partitions: Collection[int]) -> Iterator[list[InputRecord]]:
        """The held records of ``partitions``, up to ``release_limit`` at a time (whole
        models); each part is forgotten when the next is asked for, after the caller
        processed it (a caller that raised leaves it held)."""
        while True:
            out: list[InputRecord] = []
            taken: list[tuple[str, _Held | None]] = []
            for model, group in self._held.items():
                if len(out) >= self.release_limit:
                    break
                if group.in_partitions(partitions) is not False:
                    records, rest = group.split(partitions)
                    out += records
                    taken.append((model, rest))
            if not out:
                return
            yield out
            for model, rest in taken:
                if rest is None:
                    del self._held[model]
                else:
                    self._held[model] = rest

    def drop(self, partitions: Collection[int]) -> None:
        """Forget the held records of ``partitions`` (no longer ours)."""
        for model in list(self._held):
            group = self._held[model]
            inside = group.in_partitions(partitions)
            if inside:
                del self._held[model]
            elif inside is None:
                rest = group.split(partitions)[1]
                assert rest is not None
                self._held[model] = rest
