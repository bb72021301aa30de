"""The detectors and baseline of one ``model_version``, and their plain-data snapshot.

>>> version = VersionState("v1")
>>> VersionState.restore(version.snapshot(), AlarmPolicy(), None).snapshot() == version.snapshot()
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from detectors.policy import AlarmPolicy
from streams.engine.clock import EventClock
from streams.engine.performance import RollingPerformance
from streams.engine.signals import Signal

__all__ = ["UnseenCategories", "VerificationPlan", "VersionState"]


class VerificationPlan(msgspec.Struct):
    """What a version that replaced ``previous`` (deployed for ``request_id``) must show:
    the previous version's ``baseline`` metrics (its first window) and ``recent`` ones (its
    last window before the switch); ``state`` is ``pending`` until it has its labelled
    events, then ``verified``, ``failed`` or ``unverifiable`` with the ``results`` (see
    :mod:`streams.engine.verification`)."""

    previous: str
    request_id: str | None
    baseline: dict[str, float]
    state: str = "pending"
    results: list[dict[str, Any]] = msgspec.field(default_factory=list)
    recent: dict[str, float] = msgspec.field(default_factory=dict)


@dataclass(slots=True)
class UnseenCategories:
    """The categories of a feature that count as seen: the reference's (``known``), or, until
    ``count`` warm-up values have come, the ``warm`` ones gathered so far (``known`` None)."""

    known: set[str] | None
    warm: set[str] = field(default_factory=set)
    count: int = 0

    def to_data(self) -> list[Any]:
        known = None if self.known is None else sorted(self.known)
        return [known, sorted(self.warm), self.count]

    @classmethod
    def from_data(cls, data: list[Any]) -> UnseenCategories:
        known, warm, count = data
        return cls(None if known is None else set(known), set(warm), int(count))


class VersionState:
    """The detectors and baseline of one ``model_version``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.signals: dict[str, Signal] = {}
        self.unseen: dict[str, UnseenCategories] = {}  # per categorical feature
        self.performance: RollingPerformance | None = None
        self.predictions = 0
        self.last_position = 0
        self.first_position = 0
        self.last_time = -math.inf
        self.first_time = math.inf
        # detectors sharing the model's false-alarm budget in this version (fixed when the
        # version starts: see streams.engine.budget); 0 until then
        self.n_detectors = 0
        self.pairs = 0  # joined pairs of this version with a usable label (the pair index)
        self.pair_clock = EventClock()  # their predictions' event times, sampled
        # deployment verification of a version that replaced another, or None
        self.verify: VerificationPlan | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "signals": [signal.snapshot() for signal in self.signals.values()],
            "unseen": {name: unseen.to_data() for name, unseen in self.unseen.items()},
            "performance": None if self.performance is None else self.performance.snapshot(),
            "predictions": self.predictions,
            "last_position": self.last_position,
            "last_time": self.last_time,
            "first_time": self.first_time,
            "first_position": self.first_position,
            "n_detectors": self.n_detectors,
            "pairs": self.pairs,
            "pair_clock": self.pair_clock.snapshot(),
            "verify": None if self.verify is None else msgspec.to_builtins(self.verify),
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
        version.pairs = int(data.get("pairs", 0))
        if "pair_clock" in data:
            version.pair_clock.restore(data["pair_clock"])
        for item in data["signals"]:
            signal = Signal.restore(item, alarms)
            version.signals[signal.name] = signal
        version.unseen = {
            name: UnseenCategories.from_data(item) for name, item in data["unseen"].items()
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
        version.verify = None if verify is None else msgspec.convert(verify, VerificationPlan)
        return version
