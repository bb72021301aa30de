"""Data-quality faults for the ``quality`` scenario: nulls, out-of-range values, unseen
categories, and malformed messages (invalid JSON, JSON that breaks the event schema).

>>> from producers.churn import REFERENCE_POPULATION, sample_customers
>>> rng = np.random.default_rng(1)
>>> customers = sample_customers(rng, 5_000, REFERENCE_POPULATION)
>>> corrupt_customers(rng, customers)
>>> bool(np.isnan(customers.monthly_charges).any()), bool((customers.contract == -1).any())
(True, True)
>>> break_message(b'{"event_id":"e1","model_id":"churn","features":{},"prediction":0.5}', 0)
b'{"event_id":"e1","model_id":"chur'
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import numpy as np

from producers.churn import CATEGORICAL, NUMERIC, RANGES, Customers

__all__ = [
    "MALFORMED_KINDS",
    "MALFORMED_RATE",
    "NULL_RATE",
    "OUT_OF_RANGE_RATE",
    "UNSEEN",
    "UNSEEN_RATE",
    "break_message",
    "corrupt_customers",
]

#: Per numeric column, the share of values replaced by null.
NULL_RATE: Final = 0.04
#: Per numeric column, the share of values replaced by an impossible one.
OUT_OF_RANGE_RATE: Final = 0.02
#: Per categorical column, the share of values replaced by a category the model never saw.
UNSEEN_RATE: Final = 0.03
#: Share of messages replaced by bytes that break the contract.
MALFORMED_RATE: Final = 0.01
UNSEEN: Final[dict[str, tuple[str, ...]]] = {
    "contract": ("three-year", "weekly"),
    "payment_method": ("crypto", "gift-card"),
}
#: What :func:`break_message` does for each kind number.
MALFORMED_KINDS: Final = (
    "invalid JSON (truncated)",
    "features is an array",
    "prediction is null",
    "timestamp has no offset",
)

_DECODER: Final = msgspec.json.Decoder(dict[str, Any])


def corrupt_customers(rng: np.random.Generator, customers: Customers) -> None:
    """Replace some values, in place, by nulls, out-of-range values and unseen categories."""
    count = len(customers)
    for name in NUMERIC:
        column = getattr(customers, name)
        low, high = RANGES[name]
        out_of_range = rng.random(count) < OUT_OF_RANGE_RATE
        too_high = rng.random(count) < 0.5
        outside = np.where(
            too_high, high * rng.uniform(2, 10, count), low - rng.uniform(1, 50, count)
        )
        column[out_of_range] = np.round(outside[out_of_range])
        column[rng.random(count) < NULL_RATE] = np.nan
    for name in CATEGORICAL:
        unseen = rng.random(count) < UNSEEN_RATE
        names = np.asarray(UNSEEN[name])[rng.integers(0, len(UNSEEN[name]), count)]
        getattr(customers, name)[unseen] = -1
        customers.unseen[name] = np.where(unseen, names, "")


def break_message(valid: bytes, kind: int) -> bytes:
    """A malformed version of the valid message ``valid``, of kind ``MALFORMED_KINDS[kind]``."""
    if kind == 0:
        return valid[: len(valid) // 2]
    body = _DECODER.decode(valid)
    if kind == 1:
        body["features"] = list(body["features"].values())
    elif kind == 2:
        body["prediction"] = None
    elif kind == 3:
        body["timestamp"] = "2026-01-01T00:00:00"
    else:
        raise ValueError(f"malformed kind must be 0..{len(MALFORMED_KINDS) - 1}, got {kind}")
    return msgspec.json.encode(body)
