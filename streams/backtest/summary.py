"""A backtest measured against its change points and the false-alarm budget.

Change points are prediction indexes of a model (``--change-at 10000``: the change starts
at its 10 000th prediction, as ``driftradar simulate --change-at`` counts). Alerts are
placed by event time, so signals counted in joined pairs (``error``, ``metric:*``) compare
with the same clock: an alert is a *false alarm* when it comes before the first change
point, and the *first detection* of a change is the first alert at or after it, its delay
counted in predictions. ``budget_used`` is the false alarms against what the model's
``alarms.expected_run_time`` allows over the stable span (1.0: exactly the budget).

>>> from streams.core.events import Alert
>>> def alert(t):
...     return Alert(alert_id="a", type="data_drift", severity="warning", model_id="m",
...                  signal="feature:x", detector="ks", detected_at="",
...                  event_time=f"2001-09-09T01:46:{t:02d}Z", details={"position": 0})
>>> times = [1e9 + i for i in range(60)]  # 2001-09-09T01:46:40Z onwards
>>> summary = summarise_model("m", [alert(45), alert(55)], times, [10], 1_000_000)
>>> summary.false_alarms, summary.stable_predictions, summary.signals[0].first_detection
(1, 10, {10: 6})
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from streams.backtest.replay import Backtest
from streams.core.events import Alert

__all__ = ["ModelSummary", "SignalSummary", "event_seconds", "summarise", "summarise_model"]


@dataclass
class SignalSummary:
    signal: str
    #: (position, event time, detector, type) of each alert, in order
    alarms: list[tuple[int, str, str, str]] = field(default_factory=list)
    #: change point -> delay in predictions of the first alert at or after it (None: missed)
    first_detection: dict[int, int | None] = field(default_factory=dict)
    false_alarms: int = 0


@dataclass
class ModelSummary:
    model_id: str
    predictions: int
    stable_predictions: int
    false_alarms: int
    expected_run_time: float
    signals: list[SignalSummary]

    @property
    def false_alarms_per_100k(self) -> float:
        return self.false_alarms / max(1, self.stable_predictions) * 1e5

    @property
    def budget_used(self) -> float:
        """False alarms over the stable span / false alarms the budget allows there."""
        allowed = self.stable_predictions / self.expected_run_time
        return self.false_alarms / allowed if allowed else 0.0


def summarise_model(
    model_id: str,
    alerts: Sequence[Alert],
    prediction_times: Sequence[float],
    change_points: Sequence[int],
    expected_run_time: float,
) -> ModelSummary:
    """One model's summary; ``prediction_times`` are its predictions' event times."""
    changes = sorted(c for c in change_points if 0 <= c <= len(prediction_times))
    last = len(prediction_times)
    change_times = [prediction_times[c] if c < last else float("inf") for c in changes]
    stable_until = change_times[0] if changes else float("inf")
    stable_predictions = changes[0] if changes else len(prediction_times)
    by_signal: dict[str, SignalSummary] = {}
    for alert in alerts:
        summary = by_signal.setdefault(alert.signal, SignalSummary(alert.signal))
        t = event_seconds(alert.event_time)
        position = alert.details.get("position", 0)
        summary.alarms.append((int(position), alert.event_time or "", alert.detector, alert.type))
        if t < stable_until and alert.type != "infrastructure":
            summary.false_alarms += 1
        # the prediction index of the alert: predictions with event time <= its event time
        index = bisect_right(prediction_times, t)
        for change, change_time in zip(changes, change_times, strict=True):
            if t >= change_time and summary.first_detection.get(change) is None:
                nxt = changes[changes.index(change) + 1] if change != changes[-1] else None
                if nxt is None or index <= nxt:
                    summary.first_detection[change] = max(0, index - change)
    for summary in by_signal.values():
        for change in changes:
            summary.first_detection.setdefault(change, None)
    signals = sorted(by_signal.values(), key=lambda s: s.signal)
    return ModelSummary(
        model_id,
        len(prediction_times),
        stable_predictions,
        sum(s.false_alarms for s in signals),
        expected_run_time,
        signals,
    )


def summarise(backtest: Backtest, change_points: Sequence[int]) -> list[ModelSummary]:
    """Every replayed model's summary."""
    out = []
    for model_id, times in sorted(backtest.prediction_times.items()):
        alerts = [a for a in backtest.alerts if a.model_id == model_id]
        budget = backtest.config.model(model_id).alarms.expected_run_time
        out.append(summarise_model(model_id, alerts, times, change_points, budget))
    return out


def event_seconds(rfc3339: str | None) -> float:
    """Epoch seconds of an alert's ``event_time`` (``0`` when absent)."""
    if not rfc3339:
        return 0.0
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
