"""A model's retrain policy: which alerts request retraining, how often, with what evidence.

All times are EVENT times carried by the alerts, so replaying the same events after a crash
takes the same decisions and yields the same ``request_id`` values. The bookkeeping (alerts
awaiting confirmation, past requests) is plain data checkpointed with the model's state.

>>> from streams.engine.config import RetrainConfig
>>> policy = RetrainPolicy("churn", RetrainConfig(cooldown_seconds=600))
>>> first = policy.observe(_alert("a1", "concept_drift", "error"), 1000.0, data_start=0.0)
>>> first.reasons[0].alert_id, first.window.start, first.window.end
('a1', '1970-01-01T00:00:00.000Z', '1970-01-01T00:16:40.000Z')
>>> policy.observe(_alert("a2", "concept_drift", "error"), event_time=1300.0) is None
True
>>> policy.counters["cooldown"]
1
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from streams.core.events import (
    MODEL_ALERT_TYPES,
    Alert,
    AlertReason,
    RetrainRequest,
    TimeWindow,
    rfc3339,
)
from streams.engine.config import RetrainConfig
from streams.engine.ids import request_id

__all__ = ["VERIFICATION", "RetrainPolicy"]

#: ``detector`` of the alerts that report a deployment's verification: never a trigger.
VERIFICATION: Final = "verification"

_DAY: Final = 86400.0
#: Outcomes of alerts that could have requested retraining but did not.
OUTCOMES: Final = (
    "requested",
    "not_a_trigger",
    "unconfirmed",
    "performance_ok",
    "cooldown",
    "daily_limit",
)


class RetrainPolicy:
    """Decides, alert by alert (in event order), whether to request retraining."""

    def __init__(self, model_id: str, config: RetrainConfig) -> None:
        self.model_id = model_id
        self.config = config
        # [alert_id, type, signal, event_time] of trigger alerts within the confirm window
        self._pending: list[list[Any]] = []
        self._requests: list[float] = []  # event times of requests within the last day
        self._sequence = 0
        self._last: float | None = None
        self._degraded: set[str] = set()
        self.counters = dict.fromkeys(OUTCOMES, 0)

    def performance(self, key: str, degraded: bool) -> None:
        """Record that a performance check (e.g. ``metric:accuracy/threshold``) is below its
        limit or not; ``require_degraded_performance`` consults this."""
        if degraded:
            self._degraded.add(key)
        else:
            self._degraded.discard(key)

    def observe(
        self, alert: Alert, event_time: float, data_start: float | None = None
    ) -> RetrainRequest | None:
        """Take one alert (in event order); returns a request when the policy allows one.

        ``data_start`` is the earliest event time the data window may reach back to (the
        model version's first event)."""
        config = self.config
        if (
            not config.enabled
            or alert.detector == VERIFICATION
            or alert.type not in MODEL_ALERT_TYPES
            or alert.type not in config.triggers
        ):
            self.counters["not_a_trigger"] += 1
            return None
        horizon = event_time - config.confirm.within_seconds
        pending = [p for p in self._pending if p[3] >= horizon and p[2] != alert.signal]
        pending.append([alert.alert_id, alert.type, alert.signal, event_time])
        self._pending = pending
        if len({p[2] for p in pending}) < config.confirm.signals:
            self.counters["unconfirmed"] += 1
            return None
        if config.require_degraded_performance and not self._degraded:
            self.counters["performance_ok"] += 1
            return None
        if self._last is not None and event_time - self._last < config.cooldown_seconds:
            self.counters["cooldown"] += 1
            return None
        self._requests = [t for t in self._requests if t > event_time - _DAY]
        if len(self._requests) >= config.max_per_day:
            self.counters["daily_limit"] += 1
            return None
        return self._request(alert, event_time, data_start)

    def _request(self, alert: Alert, event_time: float, data_start: float | None) -> RetrainRequest:
        self._sequence += 1
        self._last = event_time
        self._requests.append(event_time)
        reasons = sorted(self._pending, key=lambda p: (p[3], p[0]))
        self._pending = []
        self.counters["requested"] += 1
        start = event_time - self.config.window_seconds
        if data_start is not None:
            start = min(max(start, data_start), event_time)
        return RetrainRequest(
            request_id=request_id(
                self.model_id, alert.model_version, self._sequence, alert.alert_id
            ),
            model_id=self.model_id,
            model_version=alert.model_version,
            requested_at=rfc3339(event_time),
            reasons=[AlertReason(alert_id=p[0], type=p[1], signal=p[2]) for p in reasons],
            window=TimeWindow(start=rfc3339(start), end=rfc3339(event_time)),
        )

    def stats(self) -> dict[str, Any]:
        return {
            **self.counters,
            "pending": len(self._pending),
            "last_request_event_time": self._last,
            "sequence": self._sequence,
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            "pending": [list(p) for p in self._pending],
            "requests": list(self._requests),
            "sequence": self._sequence,
            "last": self._last,
            "degraded": sorted(self._degraded),
            "counters": dict(self.counters),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        self._pending = [list(p) for p in data["pending"]]
        self._requests = [float(t) for t in data["requests"]]
        self._sequence = int(data["sequence"])
        self._last = None if data["last"] is None else float(data["last"])
        self._degraded = set(data["degraded"])
        self.counters.update({k: int(v) for k, v in data["counters"].items()})


def _alert(alert_id: str, kind: str, signal: str) -> Alert:
    """A minimal alert, for examples and tests."""
    return Alert(
        alert_id=alert_id,
        type=kind,
        severity="warning",
        model_id="churn",
        signal=signal,
        detector="adwin",
        detected_at="1970-01-01T00:00:00.000Z",
    )
