"""What emits events: the SDK a model server embeds, and the churn simulator."""

from producers.delivery import DeliveryError, DeliveryFailure
from producers.sdk import InvalidEventError, MonitorClient

__all__ = ["DeliveryError", "DeliveryFailure", "InvalidEventError", "MonitorClient"]
