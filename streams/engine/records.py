"""What the engine consumes and produces: decoded records in, alerts and retrain requests out."""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.core.events import Alert, GroundTruth, Prediction, RetrainRequest

__all__ = ["EngineOutput", "InputRecord"]


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One decoded event with where it came from.

    ``timestamp`` is the Kafka message timestamp in epoch seconds; it is the event time of
    events that carry none.
    """

    event: Prediction | GroundTruth
    partition: int
    offset: int
    timestamp: float


@dataclass(slots=True)
class EngineOutput:
    """Alerts and retrain requests produced by one engine call, in the order they happened."""

    alerts: list[Alert] = field(default_factory=list)
    retrain_requests: list[RetrainRequest] = field(default_factory=list)

    def extend(self, other: EngineOutput) -> None:
        self.alerts.extend(other.alerts)
        self.retrain_requests.extend(other.retrain_requests)

    def __bool__(self) -> bool:
        return bool(self.alerts or self.retrain_requests)
