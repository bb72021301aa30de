"""Acceptable limits of a performance figure (realised or estimated): a configured
threshold, and a relative drop from the first value, with hysteresis.

A figure that crossed its limit stays degraded until it has been back within the limit for
``clear_after`` updates (as the detectors' ``SignalGate``), so a value hovering around the
limit raises one alert, not one per crossing.

>>> checks = LimitChecks({"accuracy": 0.8}, relative_drop=None, clear_after=1)
>>> [(c.detector, c.entered) for c in checks.check("accuracy", True, 0.7, position=100)]
[('threshold', True)]
>>> checks.check("accuracy", True, 0.75, position=200)
[]
>>> [(c.detector, c.entered) for c in checks.check("accuracy", True, 0.9, position=300)]
[('threshold', False)]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["LimitChecks", "MetricChange"]


@dataclass(frozen=True, slots=True)
class MetricChange:
    """A metric crossed its limit (``entered``) or came back (not ``entered``) after
    ``position`` updates; ``detector`` is ``threshold`` (configured) or ``baseline``."""

    metric: str
    detector: str
    entered: bool
    position: int
    value: float
    limit: float


class LimitChecks:
    """The ``threshold`` and ``baseline`` checks of a set of metrics, and their state."""

    def __init__(
        self, thresholds: Mapping[str, float], relative_drop: float | None, clear_after: int
    ) -> None:
        self.thresholds = dict(thresholds)
        self.relative_drop = relative_drop
        self.clear_after = clear_after
        self.baseline: dict[str, float] = {}  # metric -> first value
        self.active: dict[str, bool] = {}  # "<metric>/<detector>" -> beyond its limit
        self.last_bad: dict[str, int] = {}  # "<metric>/<detector>" -> position of last breach

    def limits(self, metric: str, higher_better: bool) -> dict[str, float]:
        """``{detector: limit}`` of ``metric`` now (the baseline once it has a first value)."""
        out = {}
        if metric in self.thresholds:
            out["threshold"] = self.thresholds[metric]
        if self.relative_drop is not None and metric in self.baseline:
            base = self.baseline[metric]
            drop = abs(base) * self.relative_drop
            out["baseline"] = base - drop if higher_better else base + drop
        return out

    def check(
        self, metric: str, higher_better: bool, value: float, position: int
    ) -> list[MetricChange]:
        """Check ``value`` of ``metric`` at ``position``; the changes of state it causes."""
        if metric not in self.baseline:
            self.baseline[metric] = value
        changes = []
        for detector, limit in self.limits(metric, higher_better).items():
            bad = value < limit if higher_better else value > limit
            key = f"{metric}/{detector}"
            if bad:
                self.last_bad[key] = position
            elif position - self.last_bad.get(key, 0) < self.clear_after:
                continue  # within the limit, but not for long enough to clear
            if bad != self.active.get(key, False):
                self.active[key] = bad
                changes.append(MetricChange(metric, detector, bad, position, value, limit))
        return changes

    def snapshot(self) -> dict[str, Any]:
        return {
            "baseline": dict(self.baseline),
            "active": dict(self.active),
            "last_bad": dict(self.last_bad),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        self.baseline = {k: float(v) for k, v in data["baseline"].items()}
        self.active = {k: bool(v) for k, v in data["active"].items()}
        self.last_bad = {k: int(v) for k, v in data.get("last_bad", {}).items()}
