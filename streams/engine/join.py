"""The prediction / ground-truth join of one model: a bounded buffer with an event-time TTL.

Either side may come first. An entry waits until its partner arrives, until the model's
event-time watermark (largest event time seen) passes ``event_time + ttl``, or until the
buffer is full (the oldest entry is evicted). Expiry is FIFO per side, checked after every
record, so the outcome depends only on the sequence of records, never on batch boundaries
or wall-clock: a replay after a crash joins exactly the same pairs.

>>> join = JoinBuffer(ttl_seconds=10.0, max_pending=100)
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

import enum
from collections import OrderedDict
from typing import Any, Final, Literal, NamedTuple

__all__ = ["DUPLICATE", "JOIN_OUTCOMES", "JoinBuffer", "JoinedPair"]


class _Outcome(enum.Enum):
    DUPLICATE = "duplicate"


#: Returned by the ``add_*`` methods for an event id already seen on that side.
DUPLICATE: Final = _Outcome.DUPLICATE

#: Outcome counters exported by :meth:`JoinBuffer.counts`.
JOIN_OUTCOMES: Final = (
    "joined",
    "label_without_prediction",
    "expired_unlabelled",
    "evicted_predictions",
    "evicted_labels",
    "duplicate_predictions",
    "duplicate_labels",
)

_INF: Final = float("inf")


class JoinedPair(NamedTuple):
    """A prediction with its label; ``lag`` = label event time - prediction event time."""

    event_id: str
    version: str
    prediction: float | str
    label: float | str | bool
    event_time: float
    lag: float
    usable: bool


class JoinBuffer:
    """Pending predictions and labels of one model, plus recently joined ids (duplicates)."""

    def __init__(self, ttl_seconds: float, max_pending: int, remember_joined: int = 10_000) -> None:
        self.ttl = float(ttl_seconds)
        self.max_pending = int(max_pending)
        self.remember_joined = int(remember_joined)
        # Entries are tuples of atoms, which the garbage collector stops tracking: a full
        # buffer then adds nothing to the cost of every collection (lists would).
        # event_id -> (version, prediction, event_time, usable)
        self._predictions: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        # event_id -> (label, event_time)
        self._labels: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        # event_id -> event_time of the join (kept one TTL to recognise duplicates)
        self._done: OrderedDict[str, float] = OrderedDict()
        self._counts = dict.fromkeys(JOIN_OUTCOMES, 0)
        self.watermark = -_INF
        self._lag_sum = 0.0
        self._lag_max = -_INF
        self._lag_last: float | None = None
        # no entry is older than this event time (may be lower: then a scan finds nothing)
        self._horizon = _INF

    # -- feeding -------------------------------------------------------------------------

    def add_prediction(
        self, event_id: str, version: str, prediction: float | str, event_time: float, usable: bool
    ) -> JoinedPair | Literal[_Outcome.DUPLICATE] | None:
        """A prediction arrives: the pair if its label was waiting, :data:`DUPLICATE` if this
        id was already seen, else ``None`` (it waits)."""
        waiting = self._labels.pop(event_id, None)
        if waiting is not None:
            return self._joined(event_id, version, prediction, event_time, usable, *waiting)
        if event_id in self._predictions or event_id in self._done:
            self._counts["duplicate_predictions"] += 1
            return DUPLICATE
        self._predictions[event_id] = (version, prediction, event_time, usable)
        if event_time < self._horizon:
            self._horizon = event_time
        if len(self._predictions) + len(self._labels) > self.max_pending:
            self._enforce_cap()
        return None

    def add_label(
        self, event_id: str, label: float | str | bool, event_time: float
    ) -> JoinedPair | Literal[_Outcome.DUPLICATE] | None:
        """A label arrives: the pair if its prediction was waiting, :data:`DUPLICATE` if this
        id was already labelled, else ``None`` (it waits)."""
        waiting = self._predictions.pop(event_id, None)
        if waiting is not None:
            version, prediction, prediction_time, usable = waiting
            return self._joined(
                event_id, version, prediction, prediction_time, usable, label, event_time
            )
        if event_id in self._labels or event_id in self._done:
            self._counts["duplicate_labels"] += 1
            return DUPLICATE
        self._labels[event_id] = (label, event_time)
        if event_time < self._horizon:
            self._horizon = event_time
        if len(self._predictions) + len(self._labels) > self.max_pending:
            self._enforce_cap()
        return None

    def advance(self, event_time: float) -> None:
        """Move the watermark to ``event_time`` (if later) and expire what is overdue."""
        if event_time <= self.watermark:
            return
        self.watermark = event_time
        limit = event_time - self.ttl
        if limit <= self._horizon:
            return
        # time_at: where the entry's event time sits in the entry list
        for pending, time_at, outcome in (
            (self._predictions, 2, "expired_unlabelled"),
            (self._labels, 1, "label_without_prediction"),
        ):
            while pending:
                first = next(iter(pending))
                if pending[first][time_at] >= limit:
                    break
                del pending[first]
                self._counts[outcome] += 1
        done = self._done
        while done:
            first = next(iter(done))
            if done[first] >= limit:
                break
            del done[first]
        self._horizon = self._oldest()

    def _oldest(self) -> float:
        """The earliest event time at the front of the three FIFO buffers."""
        oldest = _INF
        if self._predictions:
            oldest = self._predictions[next(iter(self._predictions))][2]
        if self._labels:
            oldest = min(oldest, self._labels[next(iter(self._labels))][1])
        if self._done:
            oldest = min(oldest, self._done[next(iter(self._done))])
        return oldest

    # -- reading -------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Outcome counters (see :data:`JOIN_OUTCOMES`)."""
        return dict(self._counts)

    @property
    def pending(self) -> int:
        return len(self._predictions) + len(self._labels)

    def stats(self) -> dict[str, Any]:
        """Counters, buffer sizes, label lag (seconds) and label coverage, as plain data."""
        counts = self.counts()
        joined = counts["joined"]
        settled = joined + counts["expired_unlabelled"] + counts["evicted_predictions"]
        return {
            **counts,
            "pending_predictions": len(self._predictions),
            "pending_labels": len(self._labels),
            "label_lag_mean": self._lag_sum / joined if joined else None,
            "label_lag_max": self._lag_max if joined else None,
            "label_lag_last": self._lag_last,
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
        self._counts["joined"] += 1
        lag = label_time - event_time
        self._lag_sum += lag
        self._lag_max = max(self._lag_max, lag)
        self._lag_last = lag
        done_at = max(event_time, label_time)
        self._done[event_id] = done_at
        if done_at < self._horizon:
            self._horizon = done_at
        if len(self._done) > self.remember_joined:
            self._done.popitem(last=False)
        return JoinedPair(event_id, version, prediction, label, event_time, lag, usable)

    def _enforce_cap(self) -> None:
        while len(self._predictions) + len(self._labels) > self.max_pending:
            oldest_prediction = (
                self._predictions[next(iter(self._predictions))][2] if self._predictions else _INF
            )
            oldest_label = self._labels[next(iter(self._labels))][1] if self._labels else _INF
            if oldest_prediction <= oldest_label:
                self._predictions.popitem(last=False)
                self._counts["evicted_predictions"] += 1
            else:
                self._labels.popitem(last=False)
                self._counts["evicted_labels"] += 1

    # -- checkpointing -------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Plain data (msgpack/JSON-able) from which :meth:`restore` rebuilds this buffer.

        Columnar: one list per field, in arrival order, not one list per entry, because a
        full buffer holds ``max_pending`` entries and the checkpoint writes it every time.
        """
        return {
            "layout": "columns",
            "predictions": _columns(self._predictions, _PREDICTION_FIELDS),
            "labels": _columns(self._labels, _LABEL_FIELDS),
            "done": {"ids": list(self._done), "times": list(self._done.values())},
            "counts": dict(self._counts),
            "watermark": self.watermark,
            "lag": [self._lag_sum, self._lag_max, self._lag_last],
        }

    @classmethod
    def restore(
        cls,
        data: dict[str, Any],
        ttl_seconds: float,
        max_pending: int,
        remember_joined: int = 10_000,
    ) -> JoinBuffer:
        join = cls(ttl_seconds, max_pending, remember_joined)
        if data.get("layout") == "columns":
            join._predictions = _entries(data["predictions"], _PREDICTION_FIELDS)
            join._labels = _entries(data["labels"], _LABEL_FIELDS)
            done = data["done"]
            join._done = OrderedDict(zip(done["ids"], map(float, done["times"]), strict=True))
        else:  # one row per entry (checkpoints written before the columnar layout)
            join._predictions = OrderedDict((row[0], tuple(row[1:])) for row in data["predictions"])
            join._labels = OrderedDict((row[0], tuple(row[1:])) for row in data["labels"])
            join._done = OrderedDict((row[0], float(row[1])) for row in data["done"])
        join._counts.update({k: int(v) for k, v in data["counts"].items()})
        join.watermark = float(data["watermark"])
        join._lag_sum, join._lag_max, join._lag_last = data["lag"]
        join._horizon = join._oldest()
        return join


#: Column names of the snapshot's pending predictions and labels (entry order).
_PREDICTION_FIELDS: Final = ("versions", "predictions", "times", "usable")
_LABEL_FIELDS: Final = ("labels", "times")


def _columns(
    pending: OrderedDict[str, tuple[Any, ...]], names: tuple[str, ...]
) -> dict[str, list[Any]]:
    """``{"ids": [...], name: [...], ...}``: the entries of ``pending`` as columns."""
    columns = zip(*pending.values(), strict=True) if pending else ((),) * len(names)
    return {"ids": list(pending), **{name: list(c) for name, c in zip(names, columns, strict=True)}}


def _entries(
    data: dict[str, list[Any]], names: tuple[str, ...]
) -> OrderedDict[str, tuple[Any, ...]]:
    """Inverse of :func:`_columns`; columns of unequal length are refused."""
    rows = zip(*(data[name] for name in names), strict=True)
    return OrderedDict(zip(data["ids"], rows, strict=True))
