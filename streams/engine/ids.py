"""Deterministic identifiers: the same inputs always give the same id, never wall-clock.

>>> alert_id("churn", "v3", "feature:plan", "adwin", 1234)
'a-b784940d6ae4354ccca9273248dc99f3'
"""

from __future__ import annotations

import hashlib

__all__ = ["alert_id", "request_id"]


def _digest(*parts: object) -> str:
    text = "\x1f".join(str(part) for part in parts)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def alert_id(model_id: str, version: str, signal: str, detector: str, position: int | str) -> str:
    """Id of the alert raised when ``signal``/``detector`` entered drift at ``position``
    (the detector's update count, another per-stream event count for ops signals, or a key
    that names the occasion for alerts about the monitor itself)."""
    return "a-" + _digest("alert", model_id, version, signal, detector, position)


def request_id(model_id: str, version: str, sequence: int, trigger_alert_id: str) -> str:
    """Id of the ``sequence``-th retrain request of a model, triggered by an alert."""
    return "r-" + _digest("retrain", model_id, version, sequence, trigger_alert_id)
