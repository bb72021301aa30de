"""Bad arguments both reporting clients must refuse, naming the argument (shared tables).

Used by the sync SDK's tests (test_sdk_arguments.py) and the Faust client's
(test_faust_client_arguments.py): one table, so the two clients cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

#: A valid prediction's arguments.
GOOD: dict[str, Any] = {
    "model_id": "churn",
    "features": {"tenure_months": 3, "plan": "basic", "autopay": True, "age": None},
    "prediction": 0.4,
}

#: (changes to GOOD, the argument named, a fragment of the problem)
BAD_PREDICTIONS: list[tuple[dict[str, Any], str, str]] = [
    ({"model_id": ""}, "model_id", "length >= 1"),
    ({"model_id": 7}, "model_id", "expected `str`, got `int`"),
    ({"model_id": "m" * 257}, "model_id", "length <= 256"),
    ({"model_version": None}, "model_version", "expected `str`, got `null`"),
    ({"event_id": ""}, "event_id", "length >= 1"),
    ({"features": [1, 2]}, "features", "expected `object`, got `array`"),
    ({"features": {"plan": ["a"]}}, "features['plan']", "got `array`"),
    ({"features": {"geo": {"lat": 1}}}, "features['geo']", "got `object`"),
    ({"features": {"blob": object()}}, "features['blob']", "unsupported value"),
    ({"features": {"v": np.array([1.0, 2.0])}}, "features['v']", "unsupported value"),
    ({"prediction": None}, "prediction", "got `null`"),
    ({"prediction": True}, "prediction", "got `bool`"),
    ({"prediction": float("nan")}, "prediction", "got `null`"),
    ({"prediction": float("inf")}, "prediction", "got `null`"),
    ({"prediction": [0.1, 0.9]}, "prediction", "got `array`"),
    ({"timestamp": datetime(2026, 1, 1)}, "timestamp", "timezone"),
]

#: (ground-truth arguments replacing event_id="e1", model_id="churn", label=1; the argument)
BAD_GROUND_TRUTH: list[tuple[dict[str, Any], str]] = [
    ({"event_id": ""}, "event_id"),
    ({"event_id": None}, "event_id"),
    ({"model_id": "x" * 300}, "model_id"),
    ({"label": None}, "label"),
    ({"label": [1]}, "label"),
    ({"label": float("nan")}, "label"),
    ({"timestamp": datetime(2026, 1, 1)}, "timestamp"),
]
