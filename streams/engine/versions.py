"""The detectors and baseline of one ``model_version``, and their plain-data snapshot.

>>> version = VersionState("v1")
>>> VersionState.restore(version.snapshot(), AlarmPolicy(), None).snapshot() == version.snapshot()
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from detectors.policy import AlarmPolicy
from streams.engine.performance import RollingPerformance
from streams.engine.signals import Signal

__all__ = ["VersionState"]


class VersionState:
    """The detectors and baseline of one ``model_version``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.signals: dict[str, Signal] = {}
        # categorical feature -> [reference categories | None, warm-up categories, warm count]
        self.unseen: dict[str, list[Any]] = {}
        self.performance: RollingPerformance | None = None
        self.predictions = 0
        self.last_position = 0
        self.first_position = 0
        self.last_time = -math.inf
        self.first_time = math.inf
        # detectors sharing the model's false-alarm budget in this version (fixed when the
        # version starts: see streams.engine.budget); 0 until then
        self.n_detectors = 0
        # deployment verification of a version that replaced another (plain data), or None:
        # {"previous", "request_id", "baseline": {metric: value}, "state", "results"}
        self.verify: dict[str, Any] | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "signals": [signal.snapshot() for signal in self.signals.values()],
            "unseen": {
                name: [None if ref is None else sorted(ref), sorted(warm), count]
                for name, (ref, warm, count) in self.unseen.items()
            },
            "performance": None if self.performance is None else self.performance.snapshot(),
            "predictions": self.predictions,
            "last_position": self.last_position,
            "last_time": self.last_time,
            "first_time": self.first_time,
            "first_position": self.first_position,
            "n_detectors": self.n_detectors,
            "verify": self.verify,
        }

    @classmethod
    def restore(
        cls,
        data: Mapping[str, Any],
        alarms: AlarmPolicy,
        new_performance: Callable[[int], RollingPerformance] | None,
    ) -> VersionState:
        """Rebuild a version from :meth:`snapshot`; ``new_performance`` makes the rolling
        performance to restore into (``None`` while the model's task is unknown)."""
        version = cls(str(data["name"]))
        version.n_detectors = int(data.get("n_detectors", 0))
        for item in data["signals"]:
            signal = Signal.restore(item, alarms)
            version.signals[signal.name] = signal
        version.unseen = {
            name: [None if ref is None else set(ref), set(warm), int(count)]
            for name, (ref, warm, count) in data["unseen"].items()
        }
        if data["performance"] is not None and new_performance is not None:
            version.performance = new_performance(version.n_detectors)
            version.performance.restore(data["performance"])
        version.predictions = int(data["predictions"])
        version.last_position = int(data["last_position"])
        version.last_time = float(data["last_time"])
        version.first_time = float(data["first_time"])
        version.first_position = int(data["first_position"])
        verify = data.get("verify")
        version.verify = None if verify is None else dict(verify)
        return version
