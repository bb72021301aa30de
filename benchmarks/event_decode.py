"""Decode speed of the event contract (msgspec, validated) against the standard ``json`` module.

Run ``python -m benchmarks.event_decode [--events N] [--repeat R]``. Every decoder reads the
same realistic prediction messages (10 numeric and 2 categorical features, an RFC 3339
timestamp), in the same run; the table gives the best of R passes in µs per event and the
ratio to ``json.loads`` + the equivalent hand-written validation (the baseline).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from streams.core.events import MAX_ID_LENGTH, Prediction, decode_prediction, encode

__all__ = ["json_validated", "main", "make_messages"]

_NUMERIC: Final = (
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "age",
    "logins_30d",
    "data_usage_gb",
    "late_payments",
    "discount_pct",
    "devices",
)
_START: Final = datetime(2026, 11, 27, 10, tzinfo=UTC)
_CATEGORIES: Final = {
    "contract": ("month-to-month", "one-year", "two-year"),
    "payment_method": ("electronic-check", "credit-card", "bank-transfer", "mailed-check"),
}


def make_messages(count: int, seed: int = 7) -> list[bytes]:
    """``count`` encoded prediction events as a model server would publish them."""
    rng = random.Random(seed)
    messages = []
    for index in range(count):
        features: dict[str, float | str | bool | None] = {
            name: round(rng.uniform(0, 120), 2) for name in _NUMERIC
        }
        features.update({name: rng.choice(values) for name, values in _CATEGORIES.items()})
        event = Prediction(
            event_id=f"{rng.getrandbits(128):032x}",
            model_id="churn",
            model_version="v3",
            timestamp=_START + timedelta(seconds=index, milliseconds=125),
            features=features,
            prediction=rng.random(),
        )
        messages.append(encode(event))
    return messages


def _check_id(body: dict[str, Any], name: str, required: bool = True) -> None:
    if name not in body:
        if required:
            raise ValueError(f"$.{name}: required field is missing")
        return
    value = body[name]
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH:
        raise ValueError(f"$.{name}: expected a string of 1..{MAX_ID_LENGTH} characters")


def json_validated(data: bytes) -> dict[str, Any]:
    """``json.loads`` plus the checks :func:`streams.core.events.decode_prediction` makes."""
    body = json.loads(data)
    if not isinstance(body, dict):
        raise ValueError("$: expected an object")
    _check_id(body, "event_id")
    _check_id(body, "model_id")
    _check_id(body, "model_version", required=False)
    features = body.get("features")
    if not isinstance(features, dict):
        raise ValueError("$.features: expected an object")
    for key, value in features.items():
        if value is not None and not isinstance(value, int | float | str | bool):
            raise ValueError(f"$.features.{key}: expected a number, string, bool or null")
    prediction = body.get("prediction")
    if isinstance(prediction, bool) or not isinstance(prediction, int | float | str):
        raise ValueError("$.prediction: expected a number or a string")
    timestamp = body.get("timestamp")
    if isinstance(timestamp, str):
        parsed = datetime.fromisoformat(timestamp)
        if parsed.tzinfo is None:
            raise ValueError("$.timestamp: expected an offset")
        body["timestamp"] = parsed
    elif timestamp is not None and (
        isinstance(timestamp, bool) or not isinstance(timestamp, int | float)
    ):
        raise ValueError("$.timestamp: expected RFC 3339 text or epoch seconds")
    return body


_UNTYPED: Final = msgspec.json.Decoder()
DECODERS: Final[dict[str, Callable[[bytes], object]]] = {
    "streams.core.events (msgspec, validated)": decode_prediction,
    "json.loads + manual validation": json_validated,
    "json.loads alone (no validation)": json.loads,
    "msgspec untyped (no validation)": _UNTYPED.decode,
}
BASELINE: Final = "json.loads + manual validation"


def _best_seconds(
    decode: Callable[[bytes], object], messages: Sequence[bytes], repeat: int
) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for message in messages:
            decode(message)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=50_000, help="messages per pass")
    parser.add_argument("--repeat", type=int, default=5, help="passes; the best one counts")
    args = parser.parse_args(argv)
    messages = make_messages(args.events)
    size = sum(map(len, messages)) / len(messages)
    for data in messages[:100]:  # both validating decoders agree on what they accept
        assert decode_prediction(data).event_id == json_validated(data)["event_id"]
    seconds = {name: _best_seconds(fn, messages, args.repeat) for name, fn in DECODERS.items()}
    print(
        f"event decode: {len(messages)} prediction messages, {size:.0f} B average, "
        f"10 numeric + 2 categorical features; best of {args.repeat} passes"
    )
    print(f"{'decoder':<38} {'µs/event':>9} {'events/s':>11} {'vs baseline':>12}")
    for name, elapsed in seconds.items():
        per_event = elapsed / len(messages)
        ratio = seconds[BASELINE] / elapsed
        print(f"{name:<38} {per_event * 1e6:>9.2f} {1 / per_event:>11,.0f} {ratio:>11.2f}x")
    print(f"(vs baseline = how many times faster than '{BASELINE}')")


if __name__ == "__main__":
    main()
