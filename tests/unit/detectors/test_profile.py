"""Reference profiles: building from arrays, merging, plain-data round trips."""

from __future__ import annotations

import copy
import json
import pickle
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.profile import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    ProfileError,
    build_profile,
    category_key,
    is_missing,
    profiles_from_columns,
)


@pytest.fixture
def sample() -> dict[str, list[object]]:
    rng = np.random.default_rng(0)
    n = 400
    return {
        "income": [round(float(v), 3) for v in rng.normal(50, 10, n)],
        "plan": [str(v) for v in rng.choice(["basic", "premium", "pro"], n)],
    }


def test_numeric_profile_from_array() -> None:
    values = np.random.default_rng(1).normal(3.0, 2.0, 5000)
    profile = build_profile("x", values)
    assert isinstance(profile, NumericProfile)
    assert profile.count == 5000
    assert profile.mean == pytest.approx(values.mean())
    assert profile.variance == pytest.approx(values.var(ddof=1))
    assert (profile.minimum, profile.maximum) == (values.min(), values.max())
    # quantile-based edges: every bin holds about a tenth of the sample
    assert len(profile.counts) == 10
    assert max(profile.counts) - min(profile.counts) <= 1
    assert profile.quantile(0.5) == pytest.approx(np.median(values))
    assert profile.cdf([profile.minimum - 1, profile.maximum + 1]).tolist() == [0.0, 1.0]


def test_missing_values_are_counted_and_kind_is_guessed() -> None:
    numeric = build_profile("n", [1, 2.5, None, float("nan"), 4])
    assert (numeric.kind, numeric.count, numeric.missing) == ("numeric", 3, 2)
    flags = build_profile("f", [True, False, True, None])
    assert isinstance(flags, CategoricalProfile)
    assert flags.counts == {"false": 1, "true": 2}
    codes = build_profile("c", [1, 2, 2], kind="categorical")
    assert codes.kind == "categorical"


_NAMES = st.sampled_from(["gold", "silver", "", "3", "true", "ünï"])


@given(
    st.lists(
        st.one_of(
            _NAMES,
            _NAMES.map(lambda name: "".join(list(name))),  # equal names, other objects
            st.none(),
            st.booleans(),
            st.integers(-3, 3),
            st.sampled_from([3.0, float("nan"), -0.0]),
        ),
        min_size=1,
        max_size=40,
    ),
    st.booleans(),
)
def test_a_categorical_profile_counts_each_value_by_its_category(
    values: list[object], names_only: bool
) -> None:
    """Names are counted at once (a warm-up of 1 000 names in ~0.04 ms instead of ~0.5);
    the counts are those of each value's category key, missing values apart."""
    if names_only:
        values = [v for v in values if type(v) is str] or ["gold"]
    keys = [str(category_key(v)) for v in values if not is_missing(v)]
    if not keys:
        with pytest.raises(ProfileError, match="no categorical values"):
            CategoricalProfile.from_values("plan", iter(values))
        return
    expected = {k: keys.count(k) for k in sorted(set(keys))}
    profile = CategoricalProfile.from_values("plan", iter(values))
    assert (profile.counts, profile.count) == (expected, len(keys))
    assert profile.missing == len(values) - len(keys)
    assert list(profile.counts) == sorted(profile.counts)


def test_a_value_that_is_no_category_is_refused_by_position() -> None:
    for bad in ([1], {"a": 1}, 2.5):
        with pytest.raises(ProfileError, match="at position 2 is not a category"):
            CategoricalProfile.from_values("plan", ["gold", "gold", bad, "silver"])


def test_discrete_values_get_fewer_bins() -> None:
    profile = build_profile("d", np.repeat([1.0, 2.0, 3.0], 100))
    assert isinstance(profile, NumericProfile)
    assert sum(profile.counts) == 300
    assert len(profile.counts) <= 4


@pytest.mark.parametrize(
    ("values", "problem"),
    [([], "no numeric values"), (["a", 1.0], "'a' at position 0 is not a number")],
)
def test_bad_numeric_samples_name_the_column(values: list[object], problem: str) -> None:
    with pytest.raises(ProfileError, match=problem) as info:
        NumericProfile.from_values("age", values)
    assert info.value.column == "age"


def test_round_trip_through_json(sample: dict[str, list[object]]) -> None:
    for profile in profiles_from_columns(sample).values():
        data = json.loads(json.dumps(profile.to_dict()))
        assert Profile.from_dict(data) == profile


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"kind": "weird"}, "'kind' must be"),
        ({"edges": [3.0, 2.0, *[5.0] * 9]}, "non-decreasing"),
        ({"count": 7}, "counts sum to"),
        ({"mean": "x"}, "'mean' must be a finite number"),
        ({"quantiles": [0.0]}, "'quantiles' must hold 101"),
    ],
)
def test_corrupt_profile_data_names_column_and_problem(
    change: dict[str, object], problem: str
) -> None:
    data = build_profile("age", np.arange(100.0)).to_dict()
    with pytest.raises(ProfileError, match=problem) as info:
        Profile.from_dict({**data, **change})
    assert info.value.column == "age"


def test_merge_with_same_edges_adds_counts() -> None:
    a = build_profile("x", np.arange(100.0))
    assert isinstance(a, NumericProfile)
    both = a.merge(a)
    assert both.counts == tuple(2 * c for c in a.counts)
    assert both.count == 200
    assert both.mean == pytest.approx(a.mean)
    assert both.variance == pytest.approx(np.var(np.tile(np.arange(100.0), 2), ddof=1))


def test_merge_with_different_edges_rebins_the_other() -> None:
    rng = np.random.default_rng(2)
    first, second = rng.normal(0, 1, 4000), rng.normal(0.5, 1.5, 6000)
    a, b = build_profile("x", first), build_profile("x", second)
    assert isinstance(a, NumericProfile)
    merged = a.merge(b)
    exact = build_profile("x", np.concatenate((first, second)))
    assert isinstance(exact, NumericProfile)
    assert merged.edges[1:-1] == a.edges[1:-1]
    assert sum(merged.counts) == pytest.approx(10_000)
    assert merged.mean == pytest.approx(exact.mean)
    assert merged.variance == pytest.approx(exact.variance)
    assert (merged.minimum, merged.maximum) == (exact.minimum, exact.maximum)
    # re-binned shares and mixture percentiles are close to the profile of the pooled sample
    pooled = np.histogram(np.concatenate((first, second)), bins=np.array(merged.edges))[0]
    np.testing.assert_allclose(merged.proportions, pooled / 10_000, atol=0.01)
    for level in (0.1, 0.5, 0.9):
        assert merged.quantile(level) == pytest.approx(exact.quantile(level), abs=0.05)


def test_categorical_merge_and_merge_errors() -> None:
    a = build_profile("plan", ["a", "b"])
    b = build_profile("plan", ["b", "c", None])
    merged = a.merge(b)
    assert isinstance(merged, CategoricalProfile)
    assert (merged.counts, merged.missing) == ({"a": 1, "b": 2, "c": 1}, 1)
    with pytest.raises(ProfileError, match="cannot merge with the profile of 'other'"):
        a.merge(build_profile("other", ["a"]))
    with pytest.raises(ProfileError, match="cannot merge a categorical and a numeric"):
        a.merge(build_profile("plan", [1.0, 2.0]))


def test_a_numeric_profile_keeps_its_numbers_packed_and_equal_to_tuples() -> None:
    """The grid, edges and counts are kept as 8 bytes per number, and a profile built from
    tuples, from lists or read back from JSON is equal to it and hashes the same."""
    profile = build_profile("x", np.random.default_rng(1).lognormal(0.0, 1.0, 2000))
    assert isinstance(profile, NumericProfile)
    as_tuples = NumericProfile(
        **{
            **{k: getattr(profile, k) for k in ("column", "count", "missing", "mean")},
            **{k: getattr(profile, k) for k in ("variance", "minimum", "maximum")},
            "edges": tuple(profile.edges),
            "counts": list(profile.counts),
            "quantiles": tuple(profile.quantiles),
        }
    )
    restored = Profile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert as_tuples == profile == restored
    assert hash(as_tuples) == hash(profile) == hash(restored)
    assert profile.quantiles == tuple(profile.quantiles)
    assert profile.quantiles[:2] == (profile.quantiles[0], profile.quantiles[1])
    assert np.asarray(profile.quantiles).nbytes == 8 * len(profile.quantiles)
    copied = np.array(profile.quantiles)  # numpy's promise: a new, writable array
    copied[0] = -1.0
    assert profile.quantiles[0] != -1.0
    assert pickle.loads(pickle.dumps(profile)) == profile
    assert copy.deepcopy(profile) == profile
    moved = build_profile("x", np.random.default_rng(2).lognormal(0.1, 1.0, 2000))
    assert moved != profile


def test_a_numeric_profile_takes_under_three_kib() -> None:
    """~2.3 KiB; its numbers as float objects in tuples took ~4.4 KiB."""
    values = np.random.default_rng(3).normal(0.0, 1.0, (50, 1000))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    profiles = [build_profile("x", row) for row in values]
    size = (tracemalloc.get_traced_memory()[0] - before) / len(profiles)
    tracemalloc.stop()
    assert size < 3072, f"{size:.0f} bytes per profile"
