"""The model the example serves: a fixed logistic churn rule over four customer fields.

Any model would do; this one is small enough to read. Missing or null fields take the
training population's typical value, unknown contracts count as month-to-month.

>>> round(churn_probability({"tenure_months": 24, "monthly_charges": 65.0,
...                          "support_calls": 1, "contract": "one-year"}), 3)
0.16
>>> round(churn_probability({"monthly_charges": 95.0}), 3)  # the rest at typical values
0.658
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

__all__ = ["MODEL_ID", "MODEL_VERSION", "churn_probability"]

MODEL_ID: Final = "churn"
MODEL_VERSION: Final = "v1"

_INTERCEPT: Final = -2.5
#: coefficient, and the value used when the field is missing or null
_NUMERIC: Final[dict[str, tuple[float, float]]] = {
    "tenure_months": (-0.04, 28.0),
    "monthly_charges": (0.03, 65.0),
    "support_calls": (0.35, 1.5),
}
_CONTRACT: Final[dict[str, float]] = {"month-to-month": 0.9, "one-year": -0.5, "two-year": -1.3}


def churn_probability(customer: Mapping[str, float | str | bool | None]) -> float:
    """The probability that ``customer`` leaves within the next billing period."""
    z = _INTERCEPT
    for name, (coefficient, typical) in _NUMERIC.items():
        value = customer.get(name)
        z += coefficient * (value if isinstance(value, int | float) else typical)
    contract = customer.get("contract")
    z += _CONTRACT.get(contract if isinstance(contract, str) else "", _CONTRACT["month-to-month"])
    return 1.0 / (1.0 + math.exp(-z))
