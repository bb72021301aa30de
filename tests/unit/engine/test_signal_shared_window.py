"""The PSI and KS tests of one signal keep one ring buffer between them
(WindowedDetector.share_window, Signal._share_windows): every result and snapshot is what
two detectors with their own rings give, through any chunks, restores and windows."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import KolmogorovSmirnov, PopulationStability, WindowedDetector
from streams.engine.config import MonitorConfig
from streams.engine.signals import Signal

POLICY = MonitorConfig().defaults.alarms
WINDOWS = {"psi": {"window_size": 50, "stride": 7}, "ks": {"window_size": 50, "stride": 7}}
#: the engine's defaults in small: KS's window is shorter than PSI's, the strides differ
UNEQUAL = {"psi": {"window_size": 50, "stride": 10}, "ks": {"window_size": 30, "stride": 7}}


def _signal(detectors: dict[str, dict[str, int]] = WINDOWS) -> Signal:
    return Signal.create(
        "feature:x", "data_drift", detectors, warmup=60, policy=POLICY, n_detectors=2
    )


def _alone(signal: Signal) -> dict[str, WindowedDetector]:
    """The signal's window tests rebuilt from their snapshots, each with its own ring."""
    out = {}
    for label in ("psi", "ks"):
        detector = signal.detector(label)
        assert isinstance(detector, WindowedDetector)
        out[label] = type(detector).from_snapshot(detector.snapshot())
    return out


def _stream(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate((rng.normal(0, 1, n // 2), rng.normal(0.8, 1.3, n - n // 2)))


def _shared(signal: Signal) -> bool:
    """Whether the signal's KS test reads its PSI test's ring (and keeps none itself)."""
    psi, ks = _windows(signal)
    return ks._follows is not None and ks._follows.leader is psi and ks._ring.size == 0


def test_the_two_window_tests_of_a_signal_hold_one_ring() -> None:
    signal = _signal()
    psi, ks = signal.detector("psi"), signal.detector("ks")
    assert isinstance(psi, PopulationStability)
    assert isinstance(ks, KolmogorovSmirnov)
    assert _shared(signal)
    signal.feed(_stream(1, 400))
    assert _shared(signal)


def test_the_engine_defaults_share_too() -> None:
    """PSI's window (1 000) holds KS's (500): KS reads the newest half."""
    config = MonitorConfig()
    signal = Signal.create(
        "feature:x",
        "data_drift",
        config.defaults.detectors["numeric"],
        warmup=config.defaults.warmup,
        policy=POLICY,
        n_detectors=4,
    )
    assert _shared(signal)


@given(
    st.integers(0, 3),
    st.lists(st.integers(1, 120), min_size=1, max_size=12),
    st.lists(st.booleans(), min_size=1, max_size=12),
    st.sampled_from([WINDOWS, UNEQUAL]),
)
@settings(max_examples=60, deadline=None)
def test_results_equal_those_of_detectors_with_their_own_rings(
    seed: int, sizes: list[int], restores: list[bool], windows: dict[str, dict[str, int]]
) -> None:
    values = _stream(seed, 900)
    signal = _signal(windows)
    alone = _alone(signal)
    start, k = 0, 0
    while start < len(values):
        chunk = values[start : start + sizes[k % len(sizes)]]
        signal.feed(chunk)
        for label, detector in alone.items():
            detector.update_many(chunk)
            assert signal.detector(label).result() == detector.result()
            assert signal.detector(label).snapshot() == detector.snapshot()
        if restores[k % len(restores)]:
            data = msgspec.msgpack.decode(msgspec.msgpack.encode(signal.snapshot()))
            signal = Signal.restore(data, POLICY)
            assert _shared(signal)
        start += len(chunk)
        k += 1


def test_window_tests_with_other_windows_keep_their_own_rings() -> None:
    signal = _signal(
        {"psi": {"window_size": 50, "stride": 7}, "ks": {"window_size": 60, "stride": 7}}
    )
    assert signal.detector("psi")._ring is not signal.detector("ks")._ring  # type: ignore[attr-defined]


def test_a_follower_fed_alone_is_refused_and_one_updated_alone_gets_its_own_ring() -> None:
    signal = _signal()
    signal.feed(_stream(2, 300))
    psi, ks = signal.detector("psi"), signal.detector("ks")
    assert isinstance(psi, WindowedDetector)
    assert isinstance(ks, WindowedDetector)
    with pytest.raises(RuntimeError, match="a follower must get every chunk"):
        ks.update_many(_stream(3, 20))  # the leader did not see these values
    signal = _signal()
    signal.feed(_stream(2, 300))
    psi, ks = signal.detector("psi"), signal.detector("ks")
    assert isinstance(psi, WindowedDetector)
    expected = type(ks).from_snapshot(ks.snapshot())
    ks.update(0.5)  # a single update: the follower copies the ring first
    expected.update(0.5)
    assert ks.snapshot() == expected.snapshot()
    assert not _shared(signal)
    with pytest.raises(RuntimeError, match="cannot be fed alone"):
        _signal_leader_alone()


def _signal_leader_alone() -> None:
    signal = _signal()
    signal.feed(_stream(4, 300))
    signal.detector("psi").update(0.1)


def test_one_ring_per_signal_is_what_a_model_saves() -> None:
    shared, separate = _signal(UNEQUAL), _alone(_signal(UNEQUAL))
    assert sum(d._ring.nbytes for d in _windows(shared)) == 50 * 8
    assert sum(d._ring.nbytes for d in separate.values()) == (50 + 30) * 8


def _windows(signal: Signal) -> list[WindowedDetector]:
    out = []
    for label in ("psi", "ks"):
        detector = signal.detector(label)
        assert isinstance(detector, WindowedDetector)
        out.append(detector)
    return out
