"""Reference-window tests: each detects the change it is made for, at a checked index."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from detectors.base import DriftState, InvalidParameterError
from detectors.profile import build_profile
from detectors.registry import create, restore
from detectors.window import (
    ChiSquare,
    ChiSquareParams,
    JensenShannon,
    JensenShannonParams,
    KolmogorovSmirnov,
    KolmogorovSmirnovParams,
    PopulationStability,
    PopulationStabilityParams,
)


def first_drift(states: np.ndarray[Any, Any]) -> int | None:
    hits = np.flatnonzero(states == DriftState.DRIFT)
    return int(hits[0]) if len(hits) else None


def mean_shift(
    seed: int, pre: int = 5000, post: int = 2000, shift: float = 1.0
) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    return np.concatenate((rng.normal(0, 1, pre), rng.normal(shift, 1, post)))


def plan_shift(seed: int, pre: int = 5000, post: int = 2000) -> list[str]:
    rng = np.random.default_rng(seed)
    before = rng.choice(["basic", "premium", "pro"], pre, p=[0.6, 0.3, 0.1])
    after = rng.choice(["basic", "premium", "pro"], post, p=[0.45, 0.3, 0.25])
    return [str(v) for v in np.concatenate((before, after))]


def test_ks_detects_a_mean_shift_at_the_expected_window() -> None:
    detector = KolmogorovSmirnov()
    states = detector.update_many(mean_shift(3))
    # warm-up 2000, windows of 500 every 50 values: boundaries at 2499 + 50k
    assert first_drift(states) == 5149
    result = detector.result()
    assert result.p_value is not None
    assert result.threshold is not None
    assert result.p_value < result.threshold
    assert result.window_size == 500
    assert result.details["mean_after"] > result.details["mean_before"] + 0.8
    assert sum(result.details["proportions_after"]) == pytest.approx(1.0)


def test_psi_detects_a_mean_shift_and_reports_bins() -> None:
    detector = PopulationStability()
    states = detector.update_many(mean_shift(3))
    assert first_drift(states) == 5599
    result = detector.result()
    assert result.statistic is not None
    assert result.statistic > 0.25
    assert len(result.details["proportions_before"]) == len(result.details["bin_edges"]) - 1
    assert states[5598] == DriftState.WARNING  # moderate shift first (PSI > 0.1)


@pytest.mark.parametrize("kind", ["ks", "psi", "jensen_shannon", "chi_square"])
def test_stable_streams_stay_quiet(kind: str) -> None:
    rng = np.random.default_rng(5)
    if kind in ("ks", "psi"):
        values: Any = rng.normal(0, 1, 30_000)
    else:
        values = [str(v) for v in rng.choice(["a", "b", "c"], 30_000, p=[0.5, 0.3, 0.2])]
    states = create(kind).update_many(values)
    assert first_drift(states) is None


def test_categorical_tests_detect_a_frequency_shift() -> None:
    values = plan_shift(4)
    js = JensenShannon().update_many(values)
    chi = ChiSquare().update_many(values)
    assert first_drift(js) == 5699
    assert first_drift(chi) == 5499


def test_unseen_categories_count_as_mass_absent_from_the_reference() -> None:
    reference = build_profile("plan", ["basic"] * 600 + ["premium"] * 400)
    params = {"window_size": 100, "mode": "tumbling"}
    new = ["trial"] * 30 + ["basic"] * 40 + ["premium"] * 30
    for kind in ("jensen_shannon", "chi_square"):
        detector = create(kind, params, reference=reference)
        states = detector.update_many(new)
        assert states[-1] == DriftState.DRIFT, kind
        details = detector.result().details
        assert details["unseen_fraction"] == pytest.approx(0.3)
        assert "<unseen>" in details["categories"]
        assert np.isfinite(detector.result().statistic)  # type: ignore[arg-type]


def test_js_distance_of_disjoint_windows_is_one() -> None:
    reference = build_profile("c", ["a"] * 100)
    detector = create(
        "jensen_shannon", {"window_size": 10, "mode": "tumbling"}, reference=reference
    )
    detector.update_many(["b"] * 10)
    assert detector.result().statistic == pytest.approx(1.0)


def test_a_given_reference_skips_the_warm_up() -> None:
    reference = build_profile("x", np.random.default_rng(0).normal(0, 1, 10_000))
    detector = create("ks", {"window_size": 200, "stride": 20}, reference=reference)
    states = detector.update_many(mean_shift(1, pre=400, post=400))
    assert first_drift(states) == 479  # 80 shifted values in the window ending there
    assert isinstance(detector, KolmogorovSmirnov)
    assert detector.reference == reference


def test_wrong_reference_kind_is_refused_by_name() -> None:
    with pytest.raises(InvalidParameterError) as info:
        create("ks", reference=build_profile("plan", ["a", "b"]))
    assert info.value.parameter == "reference"
    with pytest.raises(InvalidParameterError) as info:
        create("chi_square", reference=build_profile("x", [1.0, 2.0]))
    assert info.value.parameter == "reference"


def test_tumbling_windows_change_state_only_at_window_ends() -> None:
    detector = KolmogorovSmirnov(KolmogorovSmirnovParams(window_size=500, mode="tumbling"))
    states = detector.update_many(mean_shift(3))
    changes = np.flatnonzero(np.diff(states.astype(int))) + 1
    assert len(changes) > 0
    assert all((c - 2000 + 1) % 500 == 0 for c in changes)


def test_confirmations_need_consecutive_windows() -> None:
    one = KolmogorovSmirnov()
    three = KolmogorovSmirnov(KolmogorovSmirnovParams(confirmations=3))
    values = mean_shift(3)
    first_one = first_drift(one.update_many(values))
    first_three = first_drift(three.update_many(values))
    assert first_one is not None
    assert first_three == first_one + 2 * 50


@pytest.mark.parametrize("kind", ["ks", "psi", "jensen_shannon", "chi_square"])
def test_odd_batches_equal_one_by_one_across_warm_up_and_window_ends(kind: str) -> None:
    params = {"window_size": 50, "stride": 7, "warmup": 60}
    if kind in ("ks", "psi"):
        values: list[Any] = mean_shift(2, pre=300, post=300).tolist()
    else:
        values = plan_shift(2, pre=300, post=300)
    one = create(kind, params)
    expected = [one.update(v) for v in values]
    batched = create(kind, params)
    got: list[int] = []
    start = 0
    for size in (1, 59, 3, 50, 7, 6, 200, 1000):
        got.extend(batched.update_many(values[start : start + size]).tolist())
        start += size
    assert got == expected
    assert batched.snapshot() == one.snapshot()
    assert batched.result() == one.result()


def test_snapshot_during_warm_up_continues_exactly() -> None:
    values = mean_shift(9, pre=3000, post=1000)
    original = create("psi")
    original.update_many(values[:1234])
    revived = restore(json.loads(json.dumps(original.snapshot())))
    np.testing.assert_array_equal(
        revived.update_many(values[1234:]), original.update_many(values[1234:])
    )


@pytest.mark.parametrize(
    ("params_type", "values", "parameter"),
    [
        (KolmogorovSmirnovParams, {"stride": 600}, "stride"),
        (KolmogorovSmirnovParams, {"mode": "hopping"}, "mode"),
        (KolmogorovSmirnovParams, {"warning_alpha": 1e-9}, "warning_alpha"),
        (PopulationStabilityParams, {"warning_threshold": 0.5}, "warning_threshold"),
        (PopulationStabilityParams, {"bins": 1}, "bins"),
        (JensenShannonParams, {"threshold": 1.5}, "threshold"),
        (ChiSquareParams, {"alpha": 0.0}, "alpha"),
    ],
)
def test_bad_params_name_the_parameter(
    params_type: Any, values: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(InvalidParameterError) as info:
        params_type.from_mapping(values)
    assert info.value.parameter == parameter


def test_ks_on_a_stable_discrete_feature_raises_no_drift() -> None:
    """Counts (many ties) must compare ECDF and reference CDF at matching limits."""
    rng = np.random.default_rng(0)
    detector = create("ks")
    states = detector.update_many(rng.poisson(1.5, 50_000).astype(float))
    assert not (states == DriftState.DRIFT).any()
    assert detector.result().statistic is not None
    assert detector.result().statistic < 0.1


def test_ks_detects_a_shift_of_a_discrete_feature() -> None:
    rng = np.random.default_rng(1)
    stream = np.concatenate([rng.poisson(1.5, 5000), rng.poisson(2.0, 5000)]).astype(float)
    states = create("ks").update_many(stream)
    first = int(np.argmax(states == DriftState.DRIFT))
    assert 5000 < first < 5600


@pytest.mark.parametrize(
    ("kind", "mode"),
    [
        ("psi", "sliding"),
        ("ks", "tumbling"),
        ("chi_square", "sliding"),
        ("missing_rate", "sliding"),
    ],
)
def test_batches_that_wrap_the_ring_equal_one_by_one(kind: str, mode: str) -> None:
    """Single updates leave the ring's write position anywhere; a later batch that ends no
    window is written around the end of the ring, and nothing differs from one by one."""
    rng = np.random.default_rng(2)
    shifted = np.repeat([False, True, False], 1000)  # the middle third moves
    if kind == "chi_square":
        calm = rng.choice(["a", "b", "c"], 3000, p=[0.5, 0.3, 0.2])
        moved = rng.choice(["a", "b", "c"], 3000, p=[0.1, 0.2, 0.7])
        values: list[Any] = np.where(shifted, moved, calm).tolist()
    else:
        values = (rng.normal(0.0, 1.0, 3000) + shifted).tolist()
        if kind == "missing_rate":
            values = [None if s and v > 0 else v for v, s in zip(values, shifted, strict=True)]
    params = {"window_size": 16, "stride": 7, "mode": mode}
    if kind != "missing_rate":
        params["warmup"] = 50
    one, mixed = create(kind, params), create(kind, params)
    expected = [int(one.update(v)) for v in values]
    got: list[int] = []
    start, sizes = 0, rng.integers(1, 16, len(values))
    for k, size in enumerate(sizes):
        chunk = values[start : start + int(size)]
        if k % 2:
            got.extend(int(mixed.update(v)) for v in chunk)
        else:
            got.extend(mixed.update_many(chunk).tolist())
        start += int(size)
    assert got == expected
    assert 2 in expected
    assert mixed.snapshot() == one.snapshot()


def test_precomputed_reference_cdf_is_bit_identical() -> None:
    """KS's per-reference CDF gives exactly :func:`reference_cdf`'s values (both limits),
    and so does the quantile transform where the CDF has no jump; a continuous reference
    (distinct percentiles) takes the short path (no left limit to compute), the others the
    whole one."""
    from detectors.profile import QUANTILE_LEVELS
    from detectors.transform import QuantileTransform
    from detectors.window import _ReferenceCdf, reference_cdf

    rng = np.random.default_rng(4)
    samples = [
        rng.normal(0.0, 1.0, 2000),
        rng.poisson(2.0, 2000).astype(float),  # ties: the CDF jumps
        rng.integers(0, 3, 2000).astype(float),
        np.round(rng.normal(0.0, 1.0, 2000), 1),
    ]
    for sample in samples:
        quantiles = np.maximum.accumulate(np.quantile(sample, QUANTILE_LEVELS))
        values = np.sort(
            np.concatenate((rng.choice(sample, 400), rng.normal(0.0, 3.0, 100), quantiles))
        )
        cdf = _ReferenceCdf(quantiles)
        expected, fast = reference_cdf(quantiles, values), cdf(values)
        for want, got in zip(expected, fast, strict=True):
            assert want.tobytes() == got.tobytes()
        assert cdf.right(values).tobytes() == expected[0].tobytes()
        assert cdf.continuous == bool(np.all(np.diff(quantiles) > 0))
        if cdf.continuous:
            assert QuantileTransform(quantiles).transform(values).tobytes() == expected[0].tobytes()
    assert [_ReferenceCdf(np.quantile(s, QUANTILE_LEVELS)).continuous for s in samples] == [
        True,
        False,
        False,
        False,
    ]


@pytest.mark.parametrize("kind", ["psi", "ks", "jensen_shannon", "chi_square"])
def test_a_test_warming_up_keeps_no_ring_until_its_reference(kind: str) -> None:
    """Hundreds of models in their warm-up hold only their warm-up values (issue 15)."""
    detector = create(kind, {"window_size": 100, "warmup": 50})
    values: list[Any] = (
        [str(i % 4) for i in range(80)]
        if kind in ("jensen_shannon", "chi_square")
        else np.random.default_rng(0).normal(size=80).tolist()
    )
    detector.update_many(values[:49])
    assert detector._ring.nbytes == 0  # type: ignore[attr-defined]
    copy = restore(json.loads(json.dumps(detector.snapshot())))
    assert copy._ring.nbytes == 0  # type: ignore[attr-defined]
    detector.update_many(values[49:])
    copy.update_many(values[49:])
    assert detector._ring.size == 100  # type: ignore[attr-defined]
    assert copy.snapshot() == detector.snapshot()


@pytest.mark.parametrize("kind", ["jensen_shannon", "chi_square"])
def test_a_categorical_warm_up_holds_each_name_once(kind: str) -> None:
    """Each event decodes its own copy of a category's name (~50 bytes); the warm-up keeps
    one per name, through a snapshot too (issue 15: ~37 → ~5 KiB per test at 600 values)."""
    detector = create(kind, {"warmup": 1000})
    decoded = [json.loads(f'"plan_{i % 5}"') for i in range(600)]  # 600 distinct objects
    detector.update_many(decoded)
    assert len({id(name) for name in detector._warm}) == 5  # type: ignore[attr-defined]
    copy = restore(json.loads(json.dumps(detector.snapshot())))
    assert len({id(name) for name in copy._warm}) == 5  # type: ignore[attr-defined]
    copy.update_many(decoded[:100])
    detector.update_many(decoded[:100])
    assert copy.snapshot() == detector.snapshot()


class _WideJensenShannon(JensenShannon):
    """Jensen-Shannon keeping 4-byte codes, as every categorical test did before."""

    def _set_reference(self, reference: Any) -> None:
        super()._set_reference(reference)
        self.code_dtype = np.int32
        self._ring = self._ring.astype(np.int32)


class _WideChiSquare(ChiSquare):
    """Chi-square keeping 4-byte codes, as every categorical test did before."""

    def _set_reference(self, reference: Any) -> None:
        super()._set_reference(reference)
        self.code_dtype = np.int32
        self._ring = self._ring.astype(np.int32)


@pytest.mark.parametrize(
    ("categories", "dtype"), [(3, np.uint8), (255, np.uint8), (300, np.uint16)]
)
@pytest.mark.parametrize("kind", ["jensen_shannon", "chi_square"])
def test_a_categorical_window_keeps_its_codes_in_the_fewest_bytes(
    kind: str, categories: int, dtype: type[np.generic]
) -> None:
    """Codes 0..n (n: a category the reference lacks) take a byte each up to 255 categories
    (issue 15: 4 → 1 KB per test); every state, result and snapshot is the one 4-byte
    codes give, through odd chunks, unseen categories and a restore."""
    rng = np.random.default_rng(categories)
    params = {"window_size": 200, "warmup": 3000, "stride": 50}
    narrow = create(kind, params)
    wide_type = _WideJensenShannon if kind == "jensen_shannon" else _WideChiSquare
    wide: Any = wide_type(narrow.params)  # type: ignore[arg-type]
    names = [f"c{i}" for i in range(categories)]
    warm = names + [str(v) for v in rng.choice(names, 3000 - categories)]
    later = [str(v) for v in rng.choice([*names[: categories // 2], "new-1", "new-2"], 3000)]
    stream = warm + later
    start, drifts = 0, 0
    for size in rng.integers(1, 400, 100).tolist():
        chunk = stream[start : start + size]
        if not chunk:
            break
        got, expected = narrow.update_many(chunk), wide.update_many(chunk)
        np.testing.assert_array_equal(got, expected)
        drifts += int(np.count_nonzero(got == DriftState.DRIFT))
        assert narrow.result() == wide.result()
        start += size
        if start // 1000 != (start - size) // 1000:  # now and then through a snapshot
            narrow = restore(json.loads(json.dumps(narrow.snapshot())))
    assert narrow.snapshot() == wide.snapshot()
    assert narrow._ring.dtype == dtype  # type: ignore[attr-defined]
    assert narrow._ring.nbytes == 200 * np.dtype(dtype).itemsize  # type: ignore[attr-defined]
    if kind == "jensen_shannon" or categories == 3:  # (chi-square pools cells expected to
        assert drifts  # hold < 5 of 200 values: with 255 categories, all of them)
