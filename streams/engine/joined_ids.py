"""The ids of a model's recent joins, 20 bytes each: duplicates are recognised without
keeping the id strings.

A joined pair's id is remembered (the last ``join.remember_joined`` ids, at most one TTL of
event time) so that a prediction or label delivered again counts as a duplicate instead of
waiting for a partner that already came. An ordered dict of the id strings cost ~200 bytes
per id (the string, its time, the dict's node): 2 MiB per model at the default 10 000. Here
an id is a stable 64-bit key (:func:`id_keys`) and the time of its join, in two arrays;
membership is answered a batch at a time (:meth:`JoinedIds.expect`) by one
``searchsorted`` through the keys' sort order (4 bytes per id, kept beside them: 20 bytes
per id in all); ids added since that order was computed wait in a small dict (at most an
eighth of the entries, or 256).

>>> joined = JoinedIds(capacity=3)
>>> joined.add("e1", 10.0)
>>> joined.add("e2", 11.0)
>>> joined.flush()
>>> joined.expect(["e1", "e9"])
>>> "e1" in joined, "e9" in joined
(True, False)
>>> joined.expire(10.5)  # a join older than the limit is forgotten
>>> "e1" in joined, len(joined), joined.oldest_time()
(False, 1, 11.0)
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = ["JoinedIds", "id_keys"]

#: Weights of the code points of an id in its key (odd, fixed: keys are the same in every
#: process and release, so a snapshot's keys stay valid). Ids longer than this (the event
#: contract allows 256 characters) reuse the weights cyclically.
_WEIGHTS: Final = np.random.default_rng(0x1D5).integers(0, 2**62, 1024, dtype=np.uint64) * 2 + 1
_LENGTH_WEIGHT: Final = np.uint64(0x9E3779B97F4A7C15)
#: Fresh (not yet indexed) entries allowed: this, or an eighth of the entries if more.
_MIN_FRESH: Final = 256
_INF: Final = float("inf")


def id_keys(ids: Sequence[str]) -> npt.NDArray[np.uint64]:
    """Stable 64-bit keys of ids: a weighted sum of their code points and length, modulo
    2**64 (two ids of printable ASCII collide with probability below 2**-56).

    Unlike ``hash()`` of a string, a key is the same in every process, so it can be
    checkpointed; it is computed a batch at a time, ~0.2 µs per id.

    >>> keys = id_keys(["e1", "e2", "e1"])
    >>> bool(keys[0] == keys[2]), bool(keys[0] == keys[1])
    (True, False)
    """
    count = len(ids)
    if count == 0:
        return np.empty(0, dtype=np.uint64)
    text = np.array(ids, dtype=np.str_)
    width = text.dtype.itemsize // 4
    points = text.view(np.uint32).reshape(count, width).astype(np.uint64)
    weights = _WEIGHTS[:width] if width <= len(_WEIGHTS) else np.resize(_WEIGHTS, width)
    lengths = np.fromiter(map(len, ids), dtype=np.uint64, count=count)
    # trailing NULs are not in the array (numpy strips them): the length tells them apart
    keys: npt.NDArray[np.uint64] = points @ weights + lengths * _LENGTH_WEIGHT
    return keys


class JoinedIds:
    """The last ``capacity`` joined ids with the event time of their join, oldest first.

    Entries are added in join order and leave from the oldest (:meth:`expire` by time,
    beyond ``capacity`` by count). ``in`` answers exactly (up to key collisions) for the ids
    announced by the last :meth:`expect`, and computes the key of any other id on its own.
    """

    __slots__ = (
        "_base",
        "_fresh",
        "_head",
        "_hits",
        "_indexed",
        "_keys",
        "_order",
        "_times",
        "capacity",
    )

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self._keys = array("Q")  # indexed entries, oldest first; live from _head on
        self._times = array("d")
        self._head = 0
        self._base = 0  # sequence number of _keys[0]
        self._fresh: dict[str, float] = {}  # added since the index was built (newest)
        # the index: the entries of _keys from _indexed on, in key order (positions from
        # _indexed; 4 bytes each instead of a sorted copy of the keys and their sequence)
        self._indexed = 0
        self._order: npt.NDArray[np.signedinteger[Any]] = np.empty(0, dtype=np.int32)
        self._hits: dict[str, int] | None = None  # announced ids found in the index: seq

    def __len__(self) -> int:
        return len(self._keys) - self._head + len(self._fresh)

    def __contains__(self, event_id: str) -> bool:
        if event_id in self._fresh:
            return True
        if not self._order.size:
            return False
        hits = self._hits
        # not announced (outside a batch): this one is looked up on its own
        seq = hits.get(event_id) if hits is not None else self._lookup(id_keys([event_id])).get(0)
        return seq is not None and seq >= self._base + self._head

    def expect(self, event_ids: Sequence[str]) -> None:
        """Look the ids of the coming records up at once (until :meth:`flush`)."""
        if not self._order.size:
            self._hits = {}
            return
        found = self._lookup(id_keys(event_ids))
        self._hits = {event_ids[k]: seq for k, seq in found.items()}

    def _lookup(self, keys: npt.NDArray[np.uint64]) -> dict[int, int]:
        """Position in ``keys`` -> sequence number of the newest indexed entry with that key."""
        order, start = self._order, self._indexed
        indexed = np.frombuffer(self._keys, dtype=np.uint64)[start : start + order.size]
        place = np.searchsorted(indexed, keys, side="right", sorter=order) - 1
        position = order[np.maximum(place, 0)]
        match = np.flatnonzero((place >= 0) & (indexed[position] == keys))
        first = self._base + start
        return dict(zip(match.tolist(), (position[match] + first).tolist(), strict=True))

    def add(self, event_id: str, time: float) -> None:
        """Remember ``event_id``, joined at event time ``time`` (forgets the oldest beyond
        ``capacity``)."""
        fresh = self._fresh
        fresh[event_id] = time
        if len(fresh) + len(self._keys) - self._head > self.capacity:
            self._pop_oldest()

    def flush(self) -> None:
        """End of a batch: forget the lookups of :meth:`expect`; index the fresh entries once
        there are enough of them."""
        self._hits = None
        live = len(self._keys) - self._head
        if len(self._fresh) >= max(_MIN_FRESH, live // 8) or (self._fresh and not live):
            self._index()

    def _index(self) -> None:
        """Move the fresh entries into the arrays and rebuild the sorted index."""
        fresh = self._fresh
        self._keys.frombytes(id_keys(list(fresh)).tobytes())
        self._times.extend(fresh.values())
        self._fresh = {}
        if self._head > len(self._keys) // 2:  # drop the forgotten entries
            del self._keys[: self._head]
            del self._times[: self._head]
            self._base += self._head
            self._head = 0
        live = np.frombuffer(self._keys, dtype=np.uint64)[self._head :]
        order = np.argsort(live, kind="stable")  # equal keys: oldest first
        self._order = order.astype(np.int32) if live.size < 2**31 else order
        self._indexed = self._head

    def _pop_oldest(self) -> None:
        if self._head < len(self._keys):
            self._head += 1
        else:
            del self._fresh[next(iter(self._fresh))]

    def oldest_time(self) -> float:
        """Event time of the oldest entry's join (infinity when empty)."""
        if self._head < len(self._keys):
            return self._times[self._head]
        return next(iter(self._fresh.values()), _INF)

    def expire(self, limit: float) -> None:
        """Forget entries from the oldest while their join time is below ``limit``."""
        while len(self) and self.oldest_time() < limit:
            self._pop_oldest()

    # -- checkpointing -------------------------------------------------------------------

    def to_data(self) -> dict[str, bytes]:
        """Keys and times, oldest first, as little-endian bytes (u64, f64)."""
        head, fresh = self._head, self._fresh
        keys = np.concatenate(
            (np.frombuffer(self._keys, dtype=np.uint64)[head:], id_keys(list(fresh)))
        )
        times = np.concatenate(
            (np.frombuffer(self._times, dtype=np.float64)[head:], list(fresh.values()))
        )
        return {"keys": keys.astype("<u8").tobytes(), "times": times.astype("<f8").tobytes()}

    @classmethod
    def from_data(cls, data: Mapping[str, Any], capacity: int) -> JoinedIds:
        """Rebuild from :meth:`to_data`, or from the id strings of an older snapshot
        (``{"ids": [...], "times": [...]}``)."""
        if "ids" in data:
            keys = id_keys([str(i) for i in data["ids"]])
            times = np.asarray(data["times"], dtype=np.float64)
        else:
            keys = np.frombuffer(data["keys"], dtype="<u8").astype(np.uint64)
            times = np.frombuffer(data["times"], dtype="<f8").astype(np.float64)
        if len(keys) != len(times):
            raise ValueError(f"joined ids: {len(keys)} keys but {len(times)} times")
        joined = cls(capacity)
        start = max(0, len(keys) - joined.capacity)
        joined._keys.frombytes(keys[start:].tobytes())
        joined._times.frombytes(times[start:].tobytes())
        joined._index()
        return joined
