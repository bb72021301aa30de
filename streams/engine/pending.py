"""The prediction / ground-truth join of one model, with its pending predictions held outside
the process (Redis, through the runner) and only what changed kept in memory.

What the join keeps of a pending prediction is small (version, prediction, event time,
usable; never the features) and lives in a key-value store the engine never calls itself:

* **write-back delta** — predictions that arrived since the last checkpoint (``_new``) and
  stored entries joined since then (``_gone``); :meth:`PendingJoin.delta` hands them to the
  checkpoint, which applies them atomically with the offsets and the engine state, so the
  store always matches the last checkpoint and recovery is exact;
* **prefetch** — before a batch, :meth:`PendingJoin.lookups` names the entries its records
  may need (for labels: their prediction; for predictions: a duplicate) and
  :meth:`PendingJoin.found` receives them (the runner reads them in one round trip);
* **expiry** — logical, by event time: an entry is gone once the model's watermark passes its
  event time + ``ttl``; the engine counts the entries per time slot (``ttl / 32`` wide) and a
  slot entirely past the TTL is counted ``expired_unlabelled`` at once. The store deletes
  expired fields later (a sweep of a few buckets per checkpoint): physical only.
* **cap** — beyond ``max_pending`` entries the oldest slot is evicted (counted
  ``evicted_predictions``).

Labels that come before their prediction (rare once the runner merges the two topics by
event time) wait in memory, at most ``max_early_labels`` (the oldest evicted beyond: counted
``evicted_labels``), with the same TTL.

Every decision depends on the sequence of records only, never on batch or checkpoint
boundaries: the delta plus the store always equal the logical pending set.

>>> join = PendingJoin("m", ttl_seconds=10.0, max_pending=100)
>>> join.add_label("e1", 1.0, event_time=0.0)
>>> pair = join.add_prediction("e1", "v1", 0.8, event_time=2.0, usable=True)
>>> pair.label, pair.lag
(1.0, -2.0)
>>> join.add_prediction("e2", "v1", 0.3, event_time=3.0, usable=True)
>>> join.add_prediction("e2", "v1", 0.3, event_time=3.0, usable=True)
<_Outcome.DUPLICATE: 'duplicate'>
>>> join.advance(20.0)
>>> join.counts()["expired_unlabelled"], join.counts()["joined"]
(1, 1)
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal

import numpy as np

from streams.engine.join import (
    _LABEL_FIELDS,
    DUPLICATE,
    JOIN_OUTCOMES,
    JoinBuffer,
    JoinedPair,
    _Outcome,
)
from streams.engine.joined_ids import JoinedIds
from streams.engine.pending_codec import (
    FLAG_CLASS,
    FLAG_USABLE,
    buckets_for,
    delta_section,
    locate,
    lookup_blob,
    model_tag,
    pack_values,
    unpack_value,
)

__all__ = ["DELAY_EDGES", "SLOTS_PER_TTL", "SWEEP_BUCKETS", "PendingJoin"]

#: Expiry is counted per slot of ``ttl / SLOTS_PER_TTL`` of event time.
SLOTS_PER_TTL: Final = 32
#: Buckets swept per model and checkpoint (deletes fields already logically expired).
SWEEP_BUCKETS: Final = 256
#: Label-delay histogram: bin 0 holds delays <= 0, then 20 bins per decade from 0.1 s.
DELAY_EDGES: Final = np.concatenate(([0.0], np.logspace(-1, 7, 161)))
#: The histogram is halved every so many joins, so its quantiles follow the recent delays.
DELAY_HALF_LIFE: Final = 10_000
_INF: Final = math.inf

# a pending prediction: (version, prediction, event time, usable)
Entry = tuple[str, float | str, float, bool]


class PendingJoin:
    """Pending predictions (outside), early labels and recent joins of one model."""

    def __init__(
        self,
        model_id: str,
        ttl_seconds: float,
        max_pending: int,
        remember_joined: int = 10_000,
        max_early_labels: int = 100_000,
        *,
        buckets: int | None = None,
    ) -> None:
        self.model_id = model_id
        self.tag = model_tag(model_id)
        self.ttl = float(ttl_seconds)
        self.max_pending = int(max_pending)
        self.remember_joined = int(remember_joined)
        self.max_early_labels = int(max_early_labels)
        self.buckets = buckets if buckets is not None else buckets_for(self.max_pending)
        self.slot_width = self.ttl / SLOTS_PER_TTL
        self.watermark = -_INF
        self._slots: dict[int, int] = {}  # time slot -> pending predictions in it
        self._pending = 0
        self._evicted_until = -_INF  # entries before this event time were evicted
        self._next_expiry = _INF  # watermark at which the oldest slot expires
        self._new: dict[str, Entry] = {}  # arrived since the last checkpoint
        self._gone: set[str] = set()  # stored entries joined since the last checkpoint
        self._found: dict[str, Entry | None] = {}  # prefetched for the current batch
        # (bucket, field) of ids looked up since the last checkpoint: hashed once, not twice
        self._where: dict[str, tuple[int, bytes]] = {}
        self._versions: list[str] = []
        self._version_index: dict[str, int] = {}
        self._classes: list[str] = []
        self._class_index: dict[str, int] = {}
        # event_id -> (label, event_time), arrival order
        self._labels: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        # ids joined (and the event time of the join), kept one TTL to recognise duplicates
        self._done = JoinedIds(self.remember_joined)
        self._counts = dict.fromkeys(JOIN_OUTCOMES, 0)
        self._lag_sum = 0.0
        self._lag_max = -_INF
        self._lag_last: float | None = None
        self._delays = np.zeros(len(DELAY_EDGES), dtype=np.int64)
        self._sweep_at = 0
        self._label_horizon = _INF  # no early label / done entry is older than this

    # -- feeding -------------------------------------------------------------------------

    @property
    def cutoff(self) -> float:
        """Entries with an event time below this are gone (expired or evicted)."""
        return max(self.watermark - self.ttl, self._evicted_until)

    def add_prediction(
        self, event_id: str, version: str, prediction: float | str, event_time: float, usable: bool
    ) -> JoinedPair | Literal[_Outcome.DUPLICATE] | None:
        """A prediction arrives: the pair if its label was waiting, :data:`DUPLICATE` if this
        id was already seen, else ``None`` (it waits)."""
        waiting = self._labels.pop(event_id, None)
        if waiting is not None:
            return self._joined(event_id, version, prediction, event_time, usable, *waiting)
        if event_id in self._new or event_id in self._done or self._stored(event_id) is not None:
            self._counts["duplicate_predictions"] += 1
            return DUPLICATE
        if type(prediction) is str:
            if prediction not in self._class_index:
                self._class_code(prediction)  # codes are known to the snapshot of this point
        else:
            prediction = float(prediction)
        if version not in self._version_index:
            self._version_code(version)
        self._new[event_id] = (version, prediction, event_time, usable)
        slot = math.floor(event_time / self.slot_width)
        slots = self._slots
        slots[slot] = slots.get(slot, 0) + 1
        self._pending += 1
        expiry = (slot + 1) * self.slot_width + self.ttl
        if expiry < self._next_expiry:
            self._next_expiry = expiry
        if self._pending > self.max_pending:
            self._evict_oldest_slot()
        return None

    def add_label(
        self, event_id: str, label: float | str | bool, event_time: float
    ) -> JoinedPair | Literal[_Outcome.DUPLICATE] | None:
        """A label arrives: the pair if its prediction was pending, :data:`DUPLICATE` if this
        id was already labelled, else ``None`` (it waits, in memory)."""
        cutoff = self.cutoff
        entry = self._new.pop(event_id, None)
        if entry is not None and entry[2] < cutoff:
            entry = None  # logically gone; its slot counts it when the slot expires
        if entry is None:
            entry = self._stored(event_id)
            if entry is not None:
                self._gone.add(event_id)
        if entry is not None:
            self._settle(entry[2])
            version, prediction, prediction_time, usable = entry
            return self._joined(
                event_id, version, prediction, prediction_time, usable, label, event_time
            )
        if event_id in self._labels or event_id in self._done:
            self._counts["duplicate_labels"] += 1
            return DUPLICATE
        self._labels[event_id] = (label, event_time)
        if event_time < self._label_horizon:
            self._label_horizon = event_time
        if len(self._labels) > self.max_early_labels:
            self._labels.popitem(last=False)
            self._counts["evicted_labels"] += 1
        return None

    def begin_batch(self, event_ids: Sequence[str]) -> None:
        """The ids of the coming records: the joined ones among them are looked up at once
        (call :meth:`end_batch` after them)."""
        self._done.expect(event_ids)

    def end_batch(self) -> None:
        """The records announced by :meth:`begin_batch` are processed."""
        self._done.flush()

    def advance(self, event_time: float) -> None:
        """Move the watermark to ``event_time`` (if later) and expire what is overdue."""
        if event_time <= self.watermark:
            return
        self.watermark = event_time
        if event_time >= self._next_expiry:
            self._expire_slots()
        limit = event_time - self.ttl
        if limit <= self._label_horizon:
            return
        labels = self._labels
        while labels:
            first = next(iter(labels))
            if labels[first][1] >= limit:
                break
            del labels[first]
            self._counts["label_without_prediction"] += 1
        self._done.expire(limit)
        self._label_horizon = self._oldest_kept()

    def _oldest_kept(self) -> float:
        """Event time of the oldest early label or joined id (infinity if none)."""
        labels = self._labels
        oldest = labels[next(iter(labels))][1] if labels else _INF
        return min(oldest, self._done.oldest_time())

    def _expire_slots(self) -> None:
        limit = self.watermark - self.ttl
        width = self.slot_width
        expired = [s for s in self._slots if (s + 1) * width <= limit]
        for slot in expired:
            count = self._slots.pop(slot)
            self._pending -= count
            self._counts["expired_unlabelled"] += count
        self._refresh_next_expiry()

    def _evict_oldest_slot(self) -> None:
        oldest = min(self._slots)
        count = self._slots.pop(oldest)
        self._pending -= count
        self._counts["evicted_predictions"] += count
        self._evicted_until = max(self._evicted_until, (oldest + 1) * self.slot_width)
        self._refresh_next_expiry()

    def _refresh_next_expiry(self) -> None:
        self._next_expiry = (
            (min(self._slots) + 1) * self.slot_width + self.ttl if self._slots else _INF
        )

    def _settle(self, event_time: float) -> None:
        """A pending prediction of ``event_time`` joined: it leaves its slot."""
        slot = math.floor(event_time / self.slot_width)
        count = self._slots.get(slot)
        if count is not None:
            if count <= 1:
                del self._slots[slot]
                self._refresh_next_expiry()
            else:
                self._slots[slot] = count - 1
            self._pending -= 1

    def _stored(self, event_id: str) -> Entry | None:
        """The prefetched stored entry of ``event_id`` if it is still live."""
        entry = self._found.get(event_id)
        if entry is None or event_id in self._gone or entry[2] < self.cutoff:
            return None
        return entry

    # -- the store -------------------------------------------------------------------------

    @property
    def stored(self) -> int:
        """Pending predictions held by the store (not in the write-back delta)."""
        return self._pending - len(self._new)

    def lookups(self, event_ids: Iterable[str]) -> tuple[list[str], bytes]:
        """The ids among ``event_ids`` that only the store can answer, and the lookup blob
        (:func:`~streams.engine.pending_codec.lookup_blob`) that asks for them."""
        self._found = {}
        if self.stored <= 0:
            return [], b""
        new, gone = self._new, self._gone  # (an id already joined is absent from the store)
        ids = [i for i in dict.fromkeys(event_ids) if i not in new and i not in gone]
        buckets, where = self.buckets, self._where
        located = []
        for event_id in ids:
            place = where.get(event_id)
            if place is None:
                place = where[event_id] = locate(event_id, buckets)
            located.append(place)
        return ids, lookup_blob(self.tag, located)

    def found(self, event_ids: Sequence[str], values: Sequence[bytes]) -> None:
        """The store's answers to :meth:`lookups` (``b""``: absent)."""
        found: dict[str, Entry | None] = {}
        versions, classes = self._versions, self._classes
        for event_id, value in zip(event_ids, values, strict=True):
            if not value:
                continue
            version, flags, time, score = unpack_value(value)
            prediction: float | str = classes[int(score)] if flags & FLAG_CLASS else score
            found[event_id] = (versions[version], prediction, time, bool(flags & FLAG_USABLE))
        self._found = found

    def delta(self) -> bytes:
        """What changed since the last checkpoint (module doc), as a delta blob section."""
        cutoff = self.cutoff
        live = [(i, e) for i, e in self._new.items() if e[2] >= cutoff]
        buckets, where = self.buckets, self._where
        located = [where.get(i) or locate(i, buckets) for i, _ in live]
        versions = np.fromiter((self._version_code(e[0]) for _, e in live), np.uint32, len(live))
        flags = np.empty(len(live), np.uint8)
        scores = np.empty(len(live), np.float64)
        for k, (_, (_, prediction, _, usable)) in enumerate(live):
            if type(prediction) is str:
                flags[k] = FLAG_CLASS | (FLAG_USABLE if usable else 0)
                scores[k] = self._class_code(prediction)
            else:
                flags[k] = FLAG_USABLE if usable else 0
                scores[k] = prediction
        times = np.fromiter((e[2] for _, e in live), np.float64, len(live))
        deletes = [where.get(i) or locate(i, buckets) for i in self._gone]
        sweep: list[int] = []
        if self._counts["expired_unlabelled"] or self._counts["evicted_predictions"]:
            count = min(SWEEP_BUCKETS, buckets)
            sweep = [(self._sweep_at + k) % buckets for k in range(count)]
        return delta_section(
            self.tag, located, pack_values(versions, flags, times, scores), deletes, sweep, cutoff
        )

    def saved(self) -> None:
        """The last :meth:`delta` is in the store: start a new one."""
        self._new = {}
        self._gone = set()
        self._where = {}
        self._found = {}
        if self._counts["expired_unlabelled"] or self._counts["evicted_predictions"]:
            self._sweep_at = (self._sweep_at + min(SWEEP_BUCKETS, self.buckets)) % self.buckets

    def _version_code(self, version: str) -> int:
        code = self._version_index.get(version)
        if code is None:
            code = self._version_index[version] = len(self._versions)
            self._versions.append(version)
        return code

    def _class_code(self, name: str) -> int:
        code = self._class_index.get(name)
        if code is None:
            code = self._class_index[name] = len(self._classes)
            self._classes.append(name)
        return code

    # -- reading -------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Outcome counters (see :data:`~streams.engine.join.JOIN_OUTCOMES`)."""
        return dict(self._counts)

    @property
    def pending(self) -> int:
        """Pending predictions (in the store or the delta) and early labels."""
        return self._pending + len(self._labels)

    @property
    def pending_predictions(self) -> int:
        return self._pending

    def delay_quantile(self, q: float) -> float | None:
        """The ``q`` quantile of recent label delays (label minus prediction event time),
        from a log-binned histogram (bins 12 % wide); None before the first join."""
        total = int(self._delays.sum())
        if total == 0:
            return None
        k = int(np.searchsorted(np.cumsum(self._delays), q * total, side="left"))
        return 0.0 if k == 0 else float(math.sqrt(DELAY_EDGES[k - 1] * DELAY_EDGES[k]))

    def stats(self) -> dict[str, Any]:
        """Counters, pending sizes, label delay (seconds) and label coverage, as plain data."""
        counts = self.counts()
        joined = counts["joined"]
        settled = joined + counts["expired_unlabelled"] + counts["evicted_predictions"]
        return {
            **counts,
            "pending_predictions": self._pending,
            "pending_labels": len(self._labels),
            "label_lag_mean": self._lag_sum / joined if joined else None,
            "label_lag_max": self._lag_max if joined else None,
            "label_lag_last": self._lag_last,
            "label_delay_p50": self.delay_quantile(0.5),
            "label_delay_p95": self.delay_quantile(0.95),
            "label_coverage": joined / settled if settled else None,
        }

    # -- internals -----------------------------------------------------------------------

    def _joined(
        self,
        event_id: str,
        version: str,
        prediction: float | str,
        event_time: float,
        usable: bool,
        label: float | str | bool,
        label_time: float,
    ) -> JoinedPair:
        counts = self._counts
        counts["joined"] += 1
        lag = label_time - event_time
        self._lag_sum += lag
        if lag > self._lag_max:
            self._lag_max = lag
        self._lag_last = lag
        self._delays[
            0 if lag <= 0.0 else min(160, max(1, int((math.log10(lag) + 1) * 20) + 1))
        ] += 1
        if counts["joined"] % DELAY_HALF_LIFE == 0:
            self._delays //= 2
        done_at = max(event_time, label_time)
        self._done.add(event_id, done_at)
        if done_at < self._label_horizon:
            self._label_horizon = done_at
        return JoinedPair(event_id, version, prediction, label, event_time, lag, usable)

    # -- checkpointing -------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Plain data from which :meth:`restore` rebuilds the join *given the store* (the
        delta is not in it: it goes to the store with the same checkpoint)."""
        labels = self._labels
        return {
            "layout": "store",
            "buckets": self.buckets,
            "slots": [[s, n] for s, n in self._slots.items()],
            "evicted_until": self._evicted_until,
            "versions": list(self._versions),
            "classes": list(self._classes),
            "labels": {
                "ids": list(labels),
                **dict(
                    zip(_LABEL_FIELDS, map(list, zip(*labels.values(), strict=True)), strict=True)
                ),
            }
            if labels
            else {"ids": [], "labels": [], "times": []},
            "done": self._done.to_data(),
            "counts": dict(self._counts),
            "watermark": self.watermark,
            "lag": [self._lag_sum, self._lag_max, self._lag_last],
            "delays": self._delays.tolist(),
            "sweep_at": self._sweep_at,
        }

    @classmethod
    def restore(
        cls,
        model_id: str,
        data: Mapping[str, Any],
        ttl_seconds: float,
        max_pending: int,
        remember_joined: int = 10_000,
        max_early_labels: int = 100_000,
    ) -> PendingJoin:
        """Rebuild from :meth:`snapshot`; a snapshot of the in-memory join of earlier
        releases (layout ``columns`` or rows) is migrated: its pending predictions become
        the write-back delta, written to the store by the next checkpoint."""
        if data.get("layout") != "store":
            return cls._migrate(
                model_id, data, ttl_seconds, max_pending, remember_joined, max_early_labels
            )
        join = cls(
            model_id,
            ttl_seconds,
            max_pending,
            remember_joined,
            max_early_labels,
            buckets=int(data["buckets"]),
        )
        join._slots = {int(s): int(n) for s, n in data["slots"]}
        join._pending = sum(join._slots.values())
        join._evicted_until = float(data["evicted_until"])
        join._versions = [str(v) for v in data["versions"]]
        join._version_index = {v: k for k, v in enumerate(join._versions)}
        join._classes = [str(c) for c in data["classes"]]
        join._class_index = {c: k for k, c in enumerate(join._classes)}
        labels = data["labels"]
        join._labels = OrderedDict(
            zip(labels["ids"], zip(labels["labels"], labels["times"], strict=True), strict=True)
        )
        join._done = JoinedIds.from_data(data["done"], join.remember_joined)
        join._counts.update({k: int(v) for k, v in data["counts"].items()})
        join.watermark = float(data["watermark"])
        join._lag_sum, join._lag_max, join._lag_last = data["lag"]
        join._delays = np.asarray(data["delays"], dtype=np.int64)
        join._sweep_at = int(data["sweep_at"])
        join._refresh_next_expiry()
        join._label_horizon = join._oldest_kept()
        return join

    @classmethod
    def _migrate(
        cls,
        model_id: str,
        data: Mapping[str, Any],
        ttl_seconds: float,
        max_pending: int,
        remember_joined: int,
        max_early_labels: int,
    ) -> PendingJoin:
        old = JoinBuffer.restore(dict(data), ttl_seconds, max(max_pending, 1), remember_joined)
        join = cls(model_id, ttl_seconds, max_pending, remember_joined, max_early_labels)
        join._counts.update(old.counts())
        join.watermark = old.watermark
        join._lag_sum, join._lag_max, join._lag_last = old._lag_sum, old._lag_max, old._lag_last  # noqa: SLF001
        done = old._done  # noqa: SLF001
        join._done = JoinedIds.from_data(
            {"ids": list(done), "times": list(done.values())}, join.remember_joined
        )
        join._labels = OrderedDict(old._labels)  # noqa: SLF001
        for event_id, (version, prediction, event_time, usable) in old._predictions.items():  # noqa: SLF001
            join._new[event_id] = (
                version,
                prediction if type(prediction) is str else float(prediction),
                event_time,
                usable,
            )
            slot = math.floor(event_time / join.slot_width)
            join._slots[slot] = join._slots.get(slot, 0) + 1
            join._pending += 1
        join._refresh_next_expiry()
        join._label_horizon = join._oldest_kept()
        return join
