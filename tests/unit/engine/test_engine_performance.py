"""Rolling performance metrics agree with river.metrics and alert against their limits."""

from __future__ import annotations

import math
import tracemalloc

import msgspec
import numpy as np
import pytest
from river import metrics
from scipy.stats import rankdata

from detectors.budget import evaluation_tail
from streams.engine import baseline, performance
from streams.engine.baseline import calibrate_baseline
from streams.engine.config import MonitorConfig
from streams.engine.performance import (
    RollingPerformance,
    average_ranks,
    compute_metric,
    resampled_metric,
)


@pytest.fixture
def sample() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    score = rng.random(400)
    label = (rng.random(400) < score).astype(float)
    return score, label


def _river(metric: metrics.base.Metric, score: np.ndarray, label: np.ndarray, proba: bool) -> float:
    for s, y in zip(score.tolist(), label.tolist(), strict=True):
        if proba:
            metric.update(bool(y), {True: s, False: 1 - s})
        else:
            metric.update(y, s)
    return float(metric.get())


def test_binary_metrics_match_river(sample: tuple[np.ndarray, np.ndarray]) -> None:
    score, label = sample
    assert compute_metric("log_loss", score, label, 0.5) == pytest.approx(
        _river(metrics.LogLoss(), score, label, proba=False), rel=1e-9
    )
    accuracy = metrics.Accuracy()
    for s, y in zip(score.tolist(), label.tolist(), strict=True):
        accuracy.update(bool(y), s >= 0.5)
    assert compute_metric("accuracy", score, label, 0.5) == pytest.approx(accuracy.get())
    # river's ROCAUC is approximate (fixed thresholds): compare with the exact pairwise AUC
    pos, neg = score[label == 1], score[label == 0]
    exact = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert compute_metric("roc_auc", score, label, 0.5) == pytest.approx(
        exact / (len(pos) * len(neg))
    )
    assert compute_metric("roc_auc", score, label, 0.5) == pytest.approx(
        _river(metrics.ROCAUC(n_thresholds=200), score, label, proba=True), abs=0.01
    )


def test_regression_metrics_match_river(sample: tuple[np.ndarray, np.ndarray]) -> None:
    score, label = sample
    assert compute_metric("mae", score, label, -1) == pytest.approx(
        _river(metrics.MAE(), score, label, proba=False)
    )
    assert compute_metric("rmse", score, label, -1) == pytest.approx(
        _river(metrics.RMSE(), score, label, proba=False)
    )


@pytest.mark.parametrize("decimals", [None, 2, 0], ids=["distinct", "ties", "two-values"])
def test_average_ranks_are_scipy_s_rankdata_exactly(decimals: int | None) -> None:
    """ROC AUC ranks the window's scores every 100 pairs: the hand-written ranks must be the
    very numbers of ``scipy.stats.rankdata`` (so no AUC changes by a bit)."""
    rng = np.random.default_rng(11)
    for n in (1, 2, 7, 1000, 2999):
        values = rng.random(n) if decimals is None else np.round(rng.random(n), decimals)
        values[: n // 3] *= -1.0  # -0.0 and 0.0 tie, as in scipy
        np.testing.assert_array_equal(average_ranks(values), rankdata(values))
    with_infinities = np.array([np.inf, 0.5, -np.inf, 0.5, np.inf])
    np.testing.assert_array_equal(average_ranks(with_infinities), rankdata(with_infinities))
    assert np.isnan(average_ranks(np.array([0.2, np.nan]))).all()  # as rankdata: all NaN


def test_auc_is_undefined_with_one_class() -> None:
    assert compute_metric("roc_auc", np.array([0.1, 0.9]), np.ones(2), 0.5) is None


def test_threshold_and_baseline_alerts_enter_and_clear() -> None:
    perf = RollingPerformance(
        "binary",
        window=100,
        every=50,
        thresholds={"accuracy": 0.8},
        relative_drop=0.5,
        reference_pairs=100,
    )
    good = np.tile([0.9, 0.1], 50), np.tile([1.0, 0.0], 50)
    assert perf.update(*good) == []  # accuracy 1.0: baseline
    bad = np.full(100, 0.9), np.zeros(100)
    changes = perf.update(*bad)
    entered = {(c.metric, c.detector) for c in changes if c.entered}
    assert ("accuracy", "threshold") in entered
    assert ("accuracy", "baseline") in entered
    assert perf.degraded()
    recovered = perf.update(*good)
    assert not perf.degraded()
    assert all(not c.entered for c in recovered)


def test_batches_give_the_same_evaluations_as_one_by_one() -> None:
    rng = np.random.default_rng(9)
    score, label = rng.random(1000), (rng.random(1000) < 0.5).astype(float)
    one = RollingPerformance(
        "binary", window=100, every=30, thresholds={"roc_auc": 0.52}, relative_drop=0.1
    )
    many = RollingPerformance(
        "binary", window=100, every=30, thresholds={"roc_auc": 0.52}, relative_drop=0.1
    )
    changes_one = [c for i in range(1000) for c in one.update(score[i : i + 1], label[i : i + 1])]
    changes_many = [
        c for i in range(0, 1000, 337) for c in many.update(score[i : i + 337], label[i : i + 337])
    ]
    assert changes_one == changes_many
    assert changes_one
    assert one.snapshot() == many.snapshot()
    assert not math.isnan(one.values["log_loss"] or 0.0)


def test_the_calibrated_baseline_stays_quiet_where_a_relative_drop_rule_did_not() -> None:
    """Rare positives (~5 %): a window's log-loss is small and noisy. "20 % worse than the
    first full window" alerted on 96 of 100 such stable streams of 20 000 pairs; the
    baseline calibrated from 2000 reference pairs at a default model's budget share stays
    quiet, and still catches a real degradation."""
    policy = MonitorConfig().model("m").alarms
    tail = evaluation_tail(policy.run_length("baseline", 40), 100)
    quiet = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        p = 1 / (1 + np.exp(-rng.normal(-3.4, 1.0, 20_000)))
        y = (rng.random(p.size) < p).astype(float)
        perf = RollingPerformance(
            "binary",
            window=1000,
            every=100,
            thresholds={},
            relative_drop=0.05,
            reference_pairs=2000,
            baseline_tail=tail,
            clear_after=5000,
        )
        changes = perf.update(p, y)
        quiet += not any(c.entered for c in changes)
        # the model goes wrong: it keeps predicting the old probabilities, labels flip more
        worse = (rng.random(p.size) < np.minimum(1.0, 3 * p)).astype(float)
        assert any(c.entered and c.metric == "log_loss" for c in perf.update(p, worse))
    assert quiet == 10


def _one_window_at_a_time(
    metric: str, score: np.ndarray, label: np.ndarray, threshold: float, picks: np.ndarray
) -> np.ndarray:
    values = [compute_metric(metric, score[p], label[p], threshold) for p in picks]
    return np.array([math.nan if v is None else v for v in values])


@pytest.mark.parametrize(
    ("metric", "threshold", "rounding"),
    [
        ("accuracy", 0.5, None),
        ("accuracy", -1.0, None),  # multiclass: the score is "right"
        ("log_loss", 0.5, None),
        ("roc_auc", 0.5, None),
        ("roc_auc", 0.5, 1),  # heavy ties: scores rounded to 0.1
        ("mae", 0.5, None),
        ("rmse", 0.5, None),
    ],
)
def test_resampled_metrics_equal_the_metric_of_each_resample(
    metric: str, threshold: float, rounding: int | None
) -> None:
    rng = np.random.default_rng(4)
    score = rng.random(300)
    if rounding is not None:
        score = np.round(score, rounding)
    label = (rng.random(300) < score).astype(np.float64)
    if threshold < 0:
        score = label.copy()
    picks = rng.integers(0, 300, (50, 120))
    picks[0] = np.flatnonzero(label >= 0.5)[:120]  # one class only: AUC undefined
    got = resampled_metric(metric, score, label, threshold, picks)
    expected = _one_window_at_a_time(metric, score, label, threshold, picks)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    assert np.isnan(got[0]) == (metric == "roc_auc")


@pytest.mark.parametrize(
    ("pairs", "rounding", "positive_rate"),
    [(300, None, None), (300, 2, None), (300, 1, 0.03), (20_000, 3, None)],
    ids=["distinct", "ties", "rare-positives-ties", "wide-ranks"],
)
@pytest.mark.parametrize("sort_16", [None, "stable"], ids=["introsort-or-simd", "radix"])
def test_resampled_auc_is_the_auc_of_each_resample_to_the_bit(
    pairs: int,
    rounding: int | None,
    positive_rate: float | None,
    sort_16: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bootstrap of a model's baseline (400 windows, once per version) counts wins
    with integer sums: each window's AUC is exactly the one :func:`compute_metric` gives
    it (rank sums of halves are exact too), ties and 16-bit-overflowing ranks included,
    whichever sort the CPU makes faster orders the 16-bit keys."""
    monkeypatch.setattr(performance, "_SORT_16", sort_16)
    rng = np.random.default_rng(12)
    score = rng.random(pairs)
    if rounding is not None:
        score = np.round(score, rounding)
    chance = score if positive_rate is None else np.full(pairs, positive_rate)
    label = (rng.random(pairs) < chance).astype(np.float64)
    picks = rng.integers(0, pairs, (40, 500))
    got = resampled_metric("roc_auc", score, label, 0.5, picks)
    expected = _one_window_at_a_time("roc_auc", score, label, 0.5, picks)
    np.testing.assert_array_equal(got, expected)


def test_the_bootstrap_in_blocks_gives_the_same_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    score = rng.random(1500)
    label = (rng.random(1500) < score).astype(np.float64)

    def limit() -> tuple[float, float]:
        found = calibrate_baseline(
            lambda s, y: compute_metric("roc_auc", s, y, 0.5),
            lambda c: resampled_metric("roc_auc", score, label, 0.5, c),
            "roc_auc",
            score,
            label,
            window=1000,
            higher_better=True,
            tail=1e-6,
            relative_drop=None,
        )
        assert found is not None
        return found.spread, found.limit

    whole = limit()
    monkeypatch.setattr(baseline, "_BLOCK_ENTRIES", 7 * 1000)  # 7 windows per pass
    assert limit() == pytest.approx(whole, rel=1e-12)


def test_the_reference_pairs_waiting_for_the_baseline_take_8_bytes_a_number() -> None:
    """Until a version's baseline is calibrated (its first 1 000 pairs by default) its pairs
    wait in packed arrays: a list of float objects took 32 bytes a number. A snapshot and
    its restore keep them, and the calibration then is the same."""
    rng = np.random.default_rng(4)
    score, label = rng.random(2000), (rng.random(2000) < 0.5).astype(float)

    def tracker() -> RollingPerformance:
        return RollingPerformance(
            "binary",
            window=1000,
            every=100,
            thresholds={},
            relative_drop=0.1,
            reference_pairs=2000,
        )

    perf = tracker()
    perf.update(score[:100], label[:100])
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    perf.update(score[100:1999], label[100:1999])  # one pair short of the calibration
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 24 * 1899, f"{grown / 1899:.1f} bytes per pair"  # (2 x 32 before: 64)
    restored = tracker()
    restored.restore(msgspec.json.decode(msgspec.json.encode(perf.snapshot())))
    assert restored.snapshot() == perf.snapshot()
    for each in (perf, restored):
        each.update(score[1999:], label[1999:])
    assert restored.snapshot() == perf.snapshot()
    assert perf.limits


class _FloatLabels(RollingPerformance):
    """Rolling performance keeping eight bytes a label, as every task did before."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._label_dtype = np.float64
        self._label = self._label.astype(np.float64)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_a_classifier_window_keeps_a_byte_per_label(task: str) -> None:
    """Its labels are 0 or 1 (issue 15: 8 → 1 KB per version): every change, value and
    snapshot is the float window's, through odd batches, a restore and ``recent``."""
    rng = np.random.default_rng(len(task))
    common = {"window": 200, "every": 50, "thresholds": {"accuracy": 0.7}}
    narrow = RollingPerformance(task, relative_drop=0.05, reference_pairs=300, **common)  # type: ignore[arg-type]
    wide = _FloatLabels(task, relative_drop=0.05, reference_pairs=300, **common)
    if task == "binary":
        score = rng.random(6000)
        label = np.where(rng.random(6000) < score, 1.0, -0.0)  # (-0.0: a zero all the same)
        label[3000:] = 1.0 - label[3000:]  # the model goes wrong: its metrics alert
    else:  # a multiclass pair's score and label are both 1.0 where the class was right
        score = (rng.random(6000) < np.repeat([0.9, 0.5], 3000)).astype(float)
        label = score.copy()
    changes, start = 0, 0
    for size in rng.integers(1, 500, 100).tolist():
        got = narrow.update(score[start : start + size], label[start : start + size])
        assert got == wide.update(score[start : start + size], label[start : start + size])
        changes += len(got)
        assert narrow.values == wide.values
        assert narrow.recent("accuracy") == wide.recent("accuracy")
        start += size
        if start // 2000 != (start - size) // 2000:
            snapshot = msgspec.msgpack.decode(msgspec.msgpack.encode(narrow.snapshot()))
            narrow = RollingPerformance(task, relative_drop=0.05, reference_pairs=300, **common)  # type: ignore[arg-type]
            narrow.restore(snapshot)
    assert changes
    encode = msgspec.msgpack.encode  # (as a checkpoint writes it: floats, not booleans)
    assert encode(narrow.snapshot()) == encode(wide.snapshot())
    assert narrow._label.nbytes == 200
