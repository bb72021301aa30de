"""The contract every registered detector honours (like river's ``check_estimator``).

For each kind in ``detectors.registry.DETECTORS``: snapshot -> JSON/msgpack -> restore gives
a detector that behaves exactly like the original afterwards; batch updates equal one-by-one
updates; bad parameters and bad values are refused by name or counted, never crash;
``reset()`` is a fresh start; a corrupt snapshot raises ``SnapshotError``.

Every kind needs a stream factory in ``STREAMS`` (a kind without one fails the suite).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import msgspec
import numpy as np
import pytest

from detectors.base import Detector, DriftState, InvalidParameterError, SnapshotError
from detectors.policy import BUDGETED, AlarmPolicy
from detectors.registry import DETECTORS, create, restore

Stream = Callable[[np.random.Generator, int], list[Any]]


def _segments(n: int, length: int) -> list[int]:
    """Segment index of each position: the regime switches every ``length`` values."""
    return [i // length % 2 for i in range(n)]


def numeric_shifts(rng: np.random.Generator, n: int) -> list[Any]:
    """N(0, 1) with the mean moving to 1.5 and back every 1500 values."""
    shift = np.array(_segments(n, 1500)) * 1.5
    return (rng.normal(0.0, 1.0, n) + shift).tolist()


def binary_errors(rng: np.random.Generator, n: int) -> list[Any]:
    """Error indicators, rate 0.1 then 0.4, switching every 1500 values."""
    rate = np.where(np.array(_segments(n, 1500)) == 1, 0.4, 0.1)
    return (rng.random(n) < rate).astype(int).tolist()


def categories(rng: np.random.Generator, n: int) -> list[Any]:
    """Plan names whose mix changes every 2500 values (a new category appears)."""
    calm = rng.choice(["basic", "premium", "pro"], size=n, p=[0.6, 0.3, 0.1])
    moved = rng.choice(["basic", "premium", "pro", "trial"], size=n, p=[0.2, 0.3, 0.2, 0.3])
    return [str(m if seg else c) for c, m, seg in zip(calm, moved, _segments(n, 2500), strict=True)]


def flags(rng: np.random.Generator, n: int) -> list[Any]:
    """'true'/'false' strings, with unexpected 'maybe' values every other 2500 values."""
    values = rng.choice(["true", "false", "maybe"], size=n, p=[0.5, 0.45, 0.05])
    return [
        str(v) if seg or v != "maybe" else "true"
        for v, seg in zip(values, _segments(n, 2500), strict=True)
    ]


def probabilities(rng: np.random.Generator, n: int) -> list[Any]:
    """Churn probabilities: Beta(2, 5), then shifted towards 1 every other 2500 values."""
    calm, moved = rng.beta(2, 5, n), rng.beta(5, 2, n)
    return [
        float(m if seg else c) for c, m, seg in zip(calm, moved, _segments(n, 2500), strict=True)
    ]


def with_missing(rng: np.random.Generator, n: int) -> list[Any]:
    """Numbers in [0, 1] with None: 1 % missing, then 20 % every other 2500 values."""
    rate = np.where(np.array(_segments(n, 2500)) == 1, 0.2, 0.01)
    values = rng.random(n)
    return [
        None if miss else float(v) for v, miss in zip(values, rng.random(n) < rate, strict=True)
    ]


def mixed_types(rng: np.random.Generator, n: int) -> list[Any]:
    """Numbers, some strings and None; strings become frequent every other 2500 values."""
    rate = np.where(np.array(_segments(n, 2500)) == 1, 0.1, 0.002)
    values = rng.random(n)
    draws = rng.random(n)
    out: list[Any] = []
    for v, d, r in zip(values, draws, rate, strict=True):
        out.append("n/a" if d < r else (None if d > 0.99 else float(v)))
    return out


def out_of_range(rng: np.random.Generator, n: int) -> list[Any]:
    """Values in [0, 1], with values above 1 creeping in every other 2500 values."""
    rate = np.where(np.array(_segments(n, 2500)) == 1, 0.1, 0.001)
    values = rng.random(n)
    return [
        float(v + 1.0) if d < r else float(v)
        for v, d, r in zip(values, rng.random(n), rate, strict=True)
    ]


#: The input stream each kind is built for.
STREAMS: dict[str, Stream] = {
    "adwin": numeric_shifts,
    "page_hinkley": numeric_shifts,
    "kswin": numeric_shifts,
    "ddm": binary_errors,
    "eddm": binary_errors,
    "hddm_a": binary_errors,
    "hddm_w": binary_errors,
    "fhddm": binary_errors,
    "psi": numeric_shifts,
    "ks": numeric_shifts,
    "jensen_shannon": categories,
    "chi_square": categories,
    "prediction_band": probabilities,
    "type": mixed_types,
    "missing_rate": with_missing,
    "value_range": out_of_range,
    "allowed_categories": flags,
}

#: Values fed before the snapshot, and compared after it.
PREFIX = 4000
CONTINUATION = 10_000
#: ``result()`` is compared every this many updates after a restore and whenever the state
#: changes; states are compared on every update.
RESULT_EVERY = 25
#: Stream lengths are scaled down for slow kinds: KSWIN runs a scipy KS test per update
#: (~0.2 ms), so it gets a tenth of each length to keep the unit suite fast.
SCALE = {"kswin": 0.1}
#: Values that are never usable, whatever the detector.
JUNK: list[Any] = [None, math.nan, math.inf, -math.inf, "text", [1.0], {"x": 1}, b"\x00"]

KINDS = sorted(DETECTORS)
#: Every budgeted kind again, with the parameters its share of a false-alarm budget gives
#: (a short one, so that the test streams' changes are detected): window tests then
#: calibrate their thresholds, and the calibration must survive snapshots like the rest.
BUDGET = AlarmPolicy(expected_run_time=2000)
VARIANTS = KINDS + [f"{kind}+budget" for kind in sorted(BUDGETED)]


def base(variant: str) -> str:
    return variant.partition("+")[0]


def make(variant: str) -> Detector:
    """A fresh detector of ``kind`` or ``kind+budget``."""
    kind, _, flavour = variant.partition("+")
    if flavour:
        return create(kind, BUDGET.detector_params(kind, 1))
    return create(kind)


def size(kind: str, n: int) -> int:
    return int(n * SCALE.get(base(kind), 1.0))


def stream_for(kind: str, n: int, seed: int = 7) -> list[Any]:
    kind = base(kind)
    n = size(kind, n)
    if kind not in STREAMS:
        pytest.fail(f"no stream factory for detector kind {kind!r}: add one to STREAMS")
    return STREAMS[kind](np.random.default_rng(seed), n)


def result_text(detector: Detector) -> str:
    """``result()`` as canonical JSON: comparable even with NaN, and proves it is plain data."""
    return json.dumps(detector.result().to_dict(), sort_keys=True)


def assert_plain(value: Any, where: str = "snapshot") -> None:
    """Only JSON/msgpack-native types (tuples allowed: both encode them as arrays)."""
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        assert math.isfinite(value), f"{where} holds a non-finite float (not strict JSON)"
        return
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), f"{where} has a non-string key {key!r}"
            assert_plain(item, f"{where}.{key}")
        return
    assert isinstance(value, list | tuple), f"{where} holds {type(value).__name__}: {value!r}"
    for i, item in enumerate(value):
        assert_plain(item, f"{where}[{i}]")


def fed(kind: str, values: list[Any]) -> Detector:
    detector = make(kind)
    for value in values:
        detector.update(value)
    return detector


def snapshot_points(kind: str, prefix: list[Any]) -> dict[str, int]:
    """Where to cut: a fixed point, and the first update that reported drift (if any)."""
    states = make(kind).update_many(list(prefix))
    points = {"fixed": len(prefix)}
    drifted = np.flatnonzero(states == DriftState.DRIFT)
    if len(drifted):
        points["at_drift"] = int(drifted[0]) + 1
    return points


def test_every_kind_has_a_stream() -> None:
    assert sorted(STREAMS) == KINDS


@pytest.mark.parametrize("kind", VARIANTS)
def test_snapshot_restore_continues_exactly(kind: str) -> None:
    prefix, continuation = size(kind, PREFIX), size(kind, CONTINUATION)
    values = stream_for(kind, PREFIX + CONTINUATION)
    for label, cut in snapshot_points(kind, values[:prefix]).items():
        original = fed(kind, values[:cut])
        snapshot = original.snapshot()
        assert_plain(snapshot)
        via_json = json.loads(json.dumps(snapshot, allow_nan=False))
        via_msgpack = msgspec.msgpack.decode(msgspec.msgpack.encode(snapshot))
        assert via_msgpack == via_json
        revived = restore(via_json)
        assert type(revived) is type(original)
        assert revived.params == original.params
        assert (revived.updates, revived.rejected, revived.state) == (
            original.updates,
            original.rejected,
            original.state,
        )
        assert result_text(revived) == result_text(original), label
        previous = original.state
        for i, value in enumerate(values[cut : cut + continuation]):
            state = original.update(value)
            assert revived.update(value) == state, f"{label}: update {i}"
            if state is not previous or i % RESULT_EVERY == 0:
                assert result_text(revived) == result_text(original), f"{label}: result {i}"
            previous = state
        assert result_text(revived) == result_text(original)
        assert revived.snapshot() == original.snapshot()


@pytest.mark.parametrize("kind", VARIANTS)
def test_batch_equals_one_by_one(kind: str) -> None:
    values: list[Any] = stream_for(kind, 6000, seed=11)
    n = len(values)
    for i in range(5, n, 97):  # sprinkle unusable values
        values[i] = JUNK[i % len(JUNK)]
    one = make(kind)
    expected = np.array([one.update(v) for v in values], dtype=np.int8)

    as_list = make(kind)
    halves = [as_list.update_many(values[: n // 3]), as_list.update_many(values[n // 3 :])]
    np.testing.assert_array_equal(np.concatenate(halves), expected)
    assert as_list.snapshot() == one.snapshot()
    assert result_text(as_list) == result_text(one)

    numeric = [v if isinstance(v, int | float) else math.nan for v in values]
    if all(isinstance(v, int | float) for v in stream_for(kind, 50, seed=11)):
        one_numeric = make(kind)
        expected_numeric = np.array([one_numeric.update(v) for v in numeric], dtype=np.int8)
        as_array = make(kind)
        got = as_array.update_many(np.asarray(numeric, dtype=np.float64))
        assert got.dtype == np.int8
        np.testing.assert_array_equal(got, expected_numeric)
        assert as_array.snapshot() == one_numeric.snapshot()
        assert as_array.updates + as_array.rejected == n


@pytest.mark.parametrize("kind", VARIANTS)
def test_small_uneven_batches_equal_one_by_one(kind: str) -> None:
    """Batches of 1 to 120 values (most end no window), between single updates that move
    the ring's write position (so batches wrap around it), change nothing."""
    values: list[Any] = stream_for(kind, 4000, seed=5)
    one = make(kind)
    expected = [int(one.update(v)) for v in values]
    batched = make(kind)
    sizes = np.random.default_rng(5).integers(1, 121, len(values))
    got: list[int] = []
    start = 0
    for size in sizes:
        if start >= len(values):
            break
        chunk = values[start : start + int(size)]
        if size % 3 == 0:
            got.extend(int(batched.update(v)) for v in chunk)
        else:
            got.extend(batched.update_many(chunk).tolist())
        start += int(size)
    assert got == expected
    assert batched.snapshot() == one.snapshot()
    assert result_text(batched) == result_text(one)


@pytest.mark.parametrize("kind", VARIANTS)
def test_unusable_values_are_counted_never_raised(kind: str) -> None:
    detector = fed(kind, stream_for(kind, 300))
    seen = detector.updates + detector.rejected
    for value in JUNK:
        assert isinstance(detector.update(value), DriftState)
        seen += 1
        assert detector.updates + detector.rejected == seen
    states = detector.update_many(JUNK)
    assert len(states) == len(JUNK)
    assert detector.updates + detector.rejected == seen + len(JUNK)
    states = detector.update_many(np.array([math.nan, math.inf, -math.inf]))
    assert len(states) == 3
    assert_plain(detector.snapshot())


@pytest.mark.parametrize("kind", VARIANTS)
def test_reset_is_a_fresh_start(kind: str) -> None:
    values = stream_for(kind, 3000)
    detector = fed(kind, values)
    detector.reset()
    fresh = make(kind)
    assert detector.snapshot() == fresh.snapshot()
    assert (detector.updates, detector.rejected, detector.state) == (0, 0, DriftState.NONE)
    np.testing.assert_array_equal(detector.update_many(values), fresh.update_many(values))


BAD_VALUES: list[Any] = ["x", -1, -1.5, math.nan, math.inf, None, 10**12, [1], True]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_parameters_are_refused_by_name(kind: str) -> None:
    params_type = DETECTORS[kind].params_type
    defaults = params_type().to_dict()
    names = {field.name for field in fields(params_type)}
    for field in fields(params_type):
        refusals: list[InvalidParameterError] = []
        for bad in BAD_VALUES:
            try:
                params_type.from_mapping({**defaults, field.name: bad})
            except InvalidParameterError as exc:
                refusals.append(exc)
        for exc in refusals:
            assert exc.parameter in names  # a constraint between two fields names either
            assert repr(exc.parameter) in str(exc)
        named = [exc.parameter for exc in refusals]
        assert field.name in named, f"{kind}: no invalid value of {field.name!r} was refused"
    with pytest.raises(InvalidParameterError) as info:
        create(kind, {"no_such_parameter": 1})
    assert info.value.parameter == "no_such_parameter"
    with pytest.raises(InvalidParameterError):
        create("no_such_detector")


@pytest.mark.parametrize("kind", VARIANTS)
def test_corrupt_snapshots_raise_snapshot_error(kind: str) -> None:
    detector = fed(kind, stream_for(kind, 3000))
    good = json.loads(json.dumps(detector.snapshot()))
    first_param = fields(DETECTORS[base(kind)].params_type)[0].name
    broken: list[Any] = [
        None,
        [],
        "garbage",
        {**good, "kind": "no_such_detector"},
        {**good, "format": 999},
        {**good, "params": {"no_such_parameter": 1}},
        {**good, "params": {**good["params"], first_param: "garbage"}},
        {**good, "updates": -1},
        {**good, "state": 7},
        {**good, "data": "garbage"},
        {**good, "data": {}},
        *({k: v for k, v in good.items() if k != key} for key in good),
    ]
    for snapshot in broken:
        with pytest.raises(SnapshotError):
            restore(snapshot)
    # Each field of the state replaced by junk: refused with SnapshotError, or usable.
    probe = stream_for(kind, 200, seed=3)
    for key in good["data"]:
        for junk in ("garbage", -1, None, [], {"x": 1}, 1e308):
            snapshot = {**good, "data": {**good["data"], key: junk}}
            try:
                revived = restore(snapshot)
            except SnapshotError:
                continue
            revived.update_many(probe)
            revived.snapshot()


def test_detectors_with_equal_parameters_share_their_plain_parameters() -> None:
    """Hundreds of models' detectors keep one ``params.to_dict()`` (issue 15: ~18 KiB per
    model); parameters equal only across types (1 and 1.0) keep their own."""
    first, second = create("psi", {}), create("psi", {})
    assert first.snapshot()["params"] == second.snapshot()["params"]
    assert first._params_plain() is second._params_plain()
    whole = create("page_hinkley", {"threshold": 50})
    real = create("page_hinkley", {"threshold": 50.0})
    assert whole.params == real.params
    assert whole._params_plain() is not real._params_plain()
    assert type(whole.snapshot()["params"]["threshold"]) is int
    assert type(real.snapshot()["params"]["threshold"]) is float
