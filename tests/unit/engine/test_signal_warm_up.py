"""A signal that warms up for its quantile transform keeps no warm-up values of its own while
its PSI and KS tests hold the same ones (Signal._borrow_warm_up): every entry, result and
snapshot is what a signal with its own buffer gives, through chunks, restores and missing
values; a missing value gives it its own buffer again."""

from __future__ import annotations

from array import array
from typing import Any

import msgspec
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine.config import MonitorConfig
from streams.engine.signals import Signal
from tests.unit.engine.test_signal_shared_window import default_numeric_signal

CONFIG = MonitorConfig()
POLICY = CONFIG.defaults.alarms
#: the engine's numeric detectors (ADWIN and Page-Hinkley on the transform, PSI and KS on
#: the values), on small windows so the short streams below get past warm-ups and windows
DETECTORS: dict[str, dict[str, Any]] = {
    "adwin": {},
    "page_hinkley": {},
    "psi": {"window_size": 50, "stride": 7},
    "ks": {"window_size": 40, "stride": 9},
}


def _signal(warmup: int = 60, detectors: dict[str, dict[str, Any]] = DETECTORS) -> Signal:
    return Signal.create(
        "feature:x",
        "data_drift",
        detectors,
        warmup=warmup,
        policy=POLICY,
        n_detectors=4,
        transform=True,
    )


def _own(signal: Signal) -> Signal:
    """The signal as it was before it borrowed: its warm-up in a buffer of its own."""
    if signal.warm is None:
        signal.warm = array("d", signal._borrowed_warm_up())
    return signal


def _stream(seed: int, n: int, missing_from: int | None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = np.concatenate((rng.lognormal(0, 1, n // 2), rng.lognormal(0.6, 1.3, n - n // 2)))
    if missing_from is not None:
        values[missing_from::11] = np.nan
    return values


def _entries(signal: Signal, chunk: np.ndarray) -> list[tuple[int, str, int]]:
    return [(e.batch_index, e.label, e.update) for e in signal.feed(chunk)]


def _plain(data: Any) -> bytes:
    return msgspec.msgpack.encode(data)


def _restored(signal: Signal) -> Signal:
    data = msgspec.msgpack.decode(msgspec.msgpack.encode(signal.snapshot()))
    return Signal.restore(data, POLICY)


@given(
    st.integers(0, 3),
    st.lists(st.integers(1, 60), min_size=1, max_size=10),
    st.lists(st.booleans(), min_size=1, max_size=10),
    st.sampled_from([None, 0, 25, 59, 200]),
)
@settings(max_examples=50, deadline=None)
def test_a_borrowing_signal_gives_what_one_with_its_own_buffer_gives(
    seed: int, sizes: list[int], restores: list[bool], missing_from: int | None
) -> None:
    values = _stream(seed, 320, missing_from)
    borrowing, own = _signal(), _own(_signal())
    assert borrowing.warm is None
    assert own.warm is not None
    start, k = 0, 0
    while start < len(values):
        chunk = values[start : start + sizes[k % len(sizes)]]
        assert _entries(borrowing, chunk) == _entries(own, chunk)
        assert _plain(borrowing.snapshot()) == _plain(own.snapshot())  # (NaN != NaN)
        assert _plain(borrowing.results()) == _plain(own.results())
        if restores[k % len(restores)]:
            borrowing, own = _restored(borrowing), _own(_restored(own))
        start += len(chunk)
        k += 1
    assert borrowing.scale is not None


def test_it_borrows_until_a_value_is_missing() -> None:
    signal = _signal()
    signal.feed(_stream(1, 30, None))
    assert signal.warm is None  # the PSI test's 30 values are its warm-up
    restored = _restored(signal)
    assert restored.warm is None  # a restored one borrows again
    signal.feed(np.array([1.0, np.nan, 2.0]))
    assert signal.warm is not None
    assert len(signal.warm) == 33
    assert _restored(signal).warm is not None


def test_it_keeps_its_own_when_the_tests_warm_up_otherwise() -> None:
    other = {**DETECTORS, "psi": {**DETECTORS["psi"], "warmup": 80}, "ks": {"warmup": 80}}
    assert _signal(detectors=other).warm is not None
    assert _signal(detectors={"adwin": {}, "page_hinkley": {}}).warm is not None


def test_a_warming_signal_holds_its_warm_up_values_once() -> None:
    """The engine's numeric defaults at 600 of their 1 000 warm-up values: one buffer of
    600 numbers for the signal, its PSI and its KS test (three before)."""
    signal = default_numeric_signal(transform=True)
    for start in range(0, 600, 100):
        signal.feed(_stream(2, 600, None)[start : start + 100])
    buffers = {id(b): b for b in (signal.warm, *(d._warm for d in _windows(signal)))}  # type: ignore[attr-defined]
    held = [b for b in buffers.values() if b is not None]
    assert len(held) == 1
    assert len(held[0]) == 600


def _windows(signal: Signal) -> list[Any]:
    return [signal.detector("psi"), signal.detector("ks")]
