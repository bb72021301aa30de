"""Acceptable limits of a performance figure (realised or estimated), with hysteresis.

Two checks per metric: ``threshold``, the configured acceptable limit, and ``baseline``, the
limit calibrated on the version's reference pairs (:mod:`streams.engine.baseline`), set in
:attr:`LimitChecks.calibrated` by whoever calibrates it (the rolling performance; an estimate
shares its version's). A figure that crossed its limit stays degraded until it has been back
within the limit for ``clear_after`` updates (as the detectors' ``SignalGate``), so a value
hovering around the limit raises one alert, not one per crossing.

>>> checks = LimitChecks({"accuracy": 0.8}, clear_after=1)
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

from streams.engine.baseline import BaselineLimit

__all__ = ["LimitChecks", "MetricChange"]


@dataclass(frozen=True, slots=True)
class MetricChange:
    """A metric crossed its limit (``entered``) or came back (not ``entered``) after
    ``position`` updates; ``detector`` is ``threshold`` (configured) or ``baseline``
    (calibrated: ``baseline`` holds how)."""

    metric: str
    detector: str
    entered: bool
    position: int
    value: float
    limit: float
    baseline: BaselineLimit | None = None


class LimitChecks:
    """The ``threshold`` and ``baseline`` checks of a set of metrics, and their state."""

    def __init__(self, thresholds: Mapping[str, float], clear_after: int) -> None:
        self.thresholds = dict(thresholds)
        self.clear_after = clear_after
        #: metric -> calibrated baseline limit (empty until calibrated)
        self.calibrated: dict[str, BaselineLimit] = {}
        self.active: dict[str, bool] = {}  # "<metric>/<detector>" -> beyond its limit
        self.last_bad: dict[str, int] = {}  # "<metric>/<detector>" -> position of last breach

    def limits(self, metric: str) -> dict[str, float]:
        """``{detector: limit}`` of ``metric`` now."""
        out = {}
        if metric in self.thresholds:
            out["threshold"] = self.thresholds[metric]
        calibrated = self.calibrated.get(metric)
        if calibrated is not None:
            out["baseline"] = calibrated.limit
        return out

    def check(
        self, metric: str, higher_better: bool, value: float, position: int
    ) -> list[MetricChange]:
        """Check ``value`` of ``metric`` at ``position``; the changes of state it causes."""
        changes = []
        for detector, limit in self.limits(metric).items():
            bad = value < limit if higher_better else value > limit
            key = f"{metric}/{detector}"
            if bad:
                self.last_bad[key] = position
            elif position - self.last_bad.get(key, 0) < self.clear_after:
                continue  # within the limit, but not for long enough to clear
            if bad != self.active.get(key, False):
                self.active[key] = bad
                calibrated = self.calibrated.get(metric) if detector == "baseline" else None
                changes.append(
                    MetricChange(metric, detector, bad, position, value, limit, calibrated)
                )
        return changes

    def snapshot(self) -> dict[str, Any]:
        """The check state (the calibrated limits are their owner's to save)."""
        return {"active": dict(self.active), "last_bad": dict(self.last_bad)}

    def restore(self, data: Mapping[str, Any]) -> None:
        self.active = {k: bool(v) for k, v in data["active"].items()}
        self.last_bad = {k: int(v) for k, v in data.get("last_bad", {}).items()}
