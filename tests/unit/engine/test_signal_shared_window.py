"""The PSI and KS tests of one signal keep one ring buffer, and one warm-up buffer, between
them (WindowedDetector.share_window, Signal._share_windows): every result and snapshot is
what two detectors with their own give, through any chunks, restores, windows and missing
values."""

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
#: PSI's reference with other bins than KS's: each builds its own from the shared warm-up
BINS = {"psi": {"window_size": 50, "stride": 7, "bins": 4}, "ks": {"window_size": 40, "stride": 9}}


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


def _stream(seed: int, n: int, missing: float = 0.0) -> np.ndarray:
    """Normal values shifting half way, a ``missing`` share of them NaN (which the window
    tests reject, so their warm-up ends later than the signal's)."""
    rng = np.random.default_rng(seed)
    values = np.concatenate((rng.normal(0, 1, n // 2), rng.normal(0.8, 1.3, n - n // 2)))
    values[rng.random(n) < missing] = np.nan
    return values


def _shared(signal: Signal) -> bool:
    """Whether the signal's KS test reads its PSI test's ring and, while they warm up, its
    warm-up buffer (and keeps neither itself)."""
    psi, ks = _windows(signal)
    return (
        ks._follows is not None
        and ks._follows.leader is psi
        and ks._ring.size == 0
        and (psi.ready or ks._warm is psi._warm)
    )


def test_the_two_window_tests_of_a_signal_hold_one_ring() -> None:
    signal = _signal()
    psi, ks = signal.detector("psi"), signal.detector("ks")
    assert isinstance(psi, PopulationStability)
    assert isinstance(ks, KolmogorovSmirnov)
    assert _shared(signal)
    signal.feed(_stream(1, 400))
    assert _shared(signal)


def default_numeric_signal(*, transform: bool = False) -> Signal:
    """A numeric feature's signal with the engine's default detectors and warm-up."""
    config = MonitorConfig()
    return Signal.create(
        "feature:x",
        "data_drift",
        config.defaults.detectors["numeric"],
        warmup=config.defaults.warmup,
        policy=POLICY,
        n_detectors=4,
        transform=transform,
    )


def test_the_engine_defaults_share_too() -> None:
    """PSI's window (1 000) holds KS's (500): KS reads the newest half."""
    assert _shared(default_numeric_signal())


@given(
    st.integers(0, 3),
    st.lists(st.integers(1, 120), min_size=1, max_size=12),
    st.lists(st.booleans(), min_size=1, max_size=12),
    st.sampled_from([WINDOWS, UNEQUAL, BINS]),
    st.sampled_from([0.0, 0.3]),
)
@settings(max_examples=80, deadline=None)
def test_results_equal_those_of_detectors_with_their_own_rings(
    seed: int,
    sizes: list[int],
    restores: list[bool],
    windows: dict[str, dict[str, int]],
    missing: float,
) -> None:
    values = _stream(seed, 900, missing)
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


def test_the_warm_up_is_held_once_and_each_test_builds_its_own_reference() -> None:
    signal = _signal(BINS)
    psi, ks = _windows(signal)
    signal.feed(_stream(5, 45, missing=0.2))  # the warm-up takes 60 accepted values
    assert not psi.ready
    assert not ks.ready
    assert ks._warm is psi._warm
    assert 30 < len(psi._warm) < 45
    signal.feed(_stream(6, 45, missing=0.2))
    assert psi.ready
    assert ks.ready
    assert psi.reference != ks.reference  # 4 bins against 10, from the same 60 values
    assert psi.reference is not None
    assert ks.reference is not None
    assert psi.reference.quantiles == ks.reference.quantiles
    assert psi.reference.count == ks.reference.count == 60


def test_a_warming_follower_fed_alone_is_refused() -> None:
    signal = _signal()
    signal.feed(_stream(7, 20))
    with pytest.raises(RuntimeError, match="shared warm-up is at value 20, it is at 25"):
        signal.detector("ks").update_many(_stream(8, 5))
    signal = _signal()
    signal.feed(_stream(7, 20))
    ks = signal.detector("ks")
    expected = type(ks).from_snapshot(ks.snapshot())
    ks.update(0.5)  # a single update: the follower copies the warm-up values first
    expected.update(0.5)
    assert ks.snapshot() == expected.snapshot()
    assert not _shared(signal)
    assert len(signal.detector("psi")._warm) == 20  # type: ignore[attr-defined]


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
    assert sum(d._ring.nbytes for d in _windows(shared)) == 0  # no ring while warming up
    assert sum(d._ring.nbytes for d in separate.values()) == 0
    shared.feed(_stream(10, 70))
    for detector in separate.values():
        detector.update_many(_stream(10, 70))
    assert sum(d._ring.nbytes for d in _windows(shared)) == 50 * 8
    assert sum(d._ring.nbytes for d in separate.values()) == (50 + 30) * 8


def test_one_warm_up_buffer_per_signal_is_what_a_warming_model_saves() -> None:
    """The engine's defaults: 1 000 warm-up values; a model at 600 of them."""
    signal = default_numeric_signal()
    for start in range(0, 600, 100):
        signal.feed(_stream(9, 600)[start : start + 100])
    buffers = {id(d._warm): d._warm for d in _windows(signal)}
    assert len(buffers) == 1
    assert sum(len(b) * b.itemsize for b in buffers.values()) == 600 * 8


def _windows(signal: Signal) -> list[WindowedDetector]:
    out = []
    for label in ("psi", "ks"):
        detector = signal.detector(label)
        assert isinstance(detector, WindowedDetector)
        out.append(detector)
    return out
