"""What emits events: the SDK a model server embeds, and the churn simulator."""

from producers.delivery import DeliveryError, DeliveryFailure
from producers.reporting import InvalidEventError
from producers.sdk import MonitorClient

__all__ = ["DeliveryError", "DeliveryFailure", "InvalidEventError", "MonitorClient"]
