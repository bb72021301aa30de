"""The local trainer's model: L2-regularised logistic regression fitted by IRLS, in numpy.

Why numpy and not scikit-learn or river: the churn model has a handful of features and at
most a few hundred thousand rows, for which Newton's method (IRLS) converges in ~10 exact
steps; scikit-learn would add scipy-heavy weight for one estimator, and river's
``LogisticRegression`` is an SGD learner whose answer depends on the row order.

Numeric features are standardised for the fit and the coefficients mapped back to raw
units, so the deployed :class:`~streams.core.events.LogisticParameters` apply to raw events.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> rows = [{"x": float(v), "plan": "a" if v > 0 else "b"} for v in rng.normal(size=400)]
>>> labels = np.array([1.0 if r["x"] + rng.normal() > 0 else 0.0 for r in rows])
>>> params = fit_logistic(rows, labels)
>>> sorted(params.numeric), sorted(params.categorical["plan"])
(['x'], ['a', 'b'])
>>> 0.5 < predict_proba(params, {"x": 2.0, "plan": "a"}) < 1.0
True
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from streams.core.events import FeatureValue, LogisticParameters, NumericTerm

__all__ = [
    "MAX_CATEGORIES",
    "Scores",
    "fit_logistic",
    "predict_many",
    "predict_proba",
    "score",
]

Rows = Sequence[Mapping[str, FeatureValue]]
FloatArray = npt.NDArray[np.float64]

#: Categories kept per categorical feature (most frequent first); the rest contribute 0.
MAX_CATEGORIES: Final = 50
_EPS: Final = 1e-15


def _is_number(value: FeatureValue) -> bool:
    return isinstance(value, bool | int | float) and not (
        isinstance(value, float) and math.isnan(value)
    )


def _is_nan(value: FeatureValue) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _number(value: FeatureValue, fill: float) -> float:
    return float(value) if _is_number(value) else fill  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Encoding:
    numeric: tuple[str, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(cats) for _, cats in self.categorical)

    def matrix(self, rows: Rows) -> FloatArray:
        """Standardised numeric columns, then one-hot columns (no intercept column)."""
        out = np.zeros((len(rows), self.width))
        for j, (name, mean, scale) in enumerate(
            zip(self.numeric, self.means, self.scales, strict=True)
        ):
            column = [_number(row.get(name), mean) for row in rows]
            out[:, j] = (np.asarray(column, dtype=float) - mean) / scale
        col = len(self.numeric)
        for name, categories in self.categorical:
            index = {category: col + k for k, category in enumerate(categories)}
            for i, row in enumerate(rows):
                value = row.get(name)
                if isinstance(value, str) and value in index:
                    out[i, index[value]] = 1.0
            col += len(categories)
        return out


def _encoding(rows: Rows) -> _Encoding:
    """Numeric if every non-null value is a number/bool; else categorical over its strings."""
    names = sorted({name for row in rows for name in row})
    numeric: list[str] = []
    means: list[float] = []
    scales: list[float] = []
    categorical: list[tuple[str, tuple[str, ...]]] = []
    for name in names:
        values = [row.get(name) for row in rows]
        present = [v for v in values if v is not None and not _is_nan(v)]
        if present and all(_is_number(v) for v in present):
            column = np.asarray([float(v) for v in present], dtype=float)
            std = float(column.std())
            numeric.append(name)
            means.append(float(column.mean()))
            scales.append(std if std > 1e-12 else 1.0)
        else:
            counts = Counter(v for v in present if isinstance(v, str))
            if counts:
                top = sorted(counts, key=lambda c: (-counts[c], c))[:MAX_CATEGORIES]
                categorical.append((name, tuple(sorted(top))))
    return _Encoding(tuple(numeric), tuple(means), tuple(scales), tuple(categorical))


def _sigmoid(z: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))
    return out


def _irls(x: FloatArray, y: FloatArray, l2: float, max_iter: int) -> FloatArray:
    """Newton-Raphson for the penalised log-likelihood; column 0 is the unpenalised intercept."""
    design = np.hstack([np.ones((x.shape[0], 1)), x])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 0.0
    w = np.zeros(design.shape[1])
    for _ in range(max_iter):
        p = _sigmoid(design @ w)
        gradient = design.T @ (p - y) + penalty * w
        weights = p * (1.0 - p)
        hessian = design.T @ (design * weights[:, None]) + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w = w - step
        if float(np.max(np.abs(step))) < 1e-8:
            break
    return w


def fit_logistic(
    rows: Rows, labels: Sequence[float] | FloatArray, *, l2: float = 1.0, max_iter: int = 50
) -> LogisticParameters:
    """Fit on ``rows`` (feature mappings) and 0/1 ``labels``; return raw-unit parameters."""
    y = np.asarray(labels, dtype=float)
    if len(rows) != len(y):
        raise ValueError(f"rows and labels differ in length: {len(rows)} != {len(y)}")
    if len(rows) == 0:
        raise ValueError("no rows to fit")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    encoding = _encoding(rows)
    w = _irls(encoding.matrix(rows), y, l2, max_iter)
    intercept = float(w[0])
    numeric: dict[str, NumericTerm] = {}
    for j, (name, mean, scale) in enumerate(
        zip(encoding.numeric, encoding.means, encoding.scales, strict=True), start=1
    ):
        coef = float(w[j]) / scale
        intercept -= coef * mean
        numeric[name] = NumericTerm(coef=coef, fill=mean)
    categorical: dict[str, dict[str, float]] = {}
    col = 1 + len(encoding.numeric)
    for name, categories in encoding.categorical:
        categorical[name] = {c: float(w[col + k]) for k, c in enumerate(categories)}
        col += len(categories)
    return LogisticParameters(intercept=intercept, numeric=numeric, categorical=categorical)


def predict_proba(params: LogisticParameters, features: Mapping[str, FeatureValue]) -> float:
    """The deployed model's probability for one event, exactly as the struct documents."""
    z = params.intercept
    for name, term in params.numeric.items():
        z += term.coef * _number(features.get(name), term.fill)
    for name, table in params.categorical.items():
        value = features.get(name)
        if isinstance(value, str):
            z += table.get(value, 0.0)
    return 1.0 / (1.0 + math.exp(-max(min(z, 500.0), -500.0)))


def predict_many(params: LogisticParameters, rows: Rows) -> FloatArray:
    return np.asarray([predict_proba(params, row) for row in rows], dtype=float)


@dataclass(frozen=True)
class Scores:
    """Binary-classification quality of probabilities against 0/1 labels."""

    log_loss: float
    accuracy: float
    auc: float | None  # None when the labels hold one class only
    rows: int

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "log_loss": self.log_loss,
            "accuracy": self.accuracy,
            "auc": self.auc,
            "rows": self.rows,
        }


def score(
    labels: Sequence[float] | FloatArray, probabilities: Sequence[float] | FloatArray
) -> Scores:
    """Log-loss, accuracy at 0.5 and ROC AUC (Mann-Whitney, ties averaged).

    >>> s = score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> round(s.log_loss, 4), s.accuracy, s.auc
    (0.4723, 0.75, 0.75)
    """
    y = np.asarray(labels, dtype=float)
    p = np.clip(np.asarray(probabilities, dtype=float), _EPS, 1 - _EPS)
    if len(y) == 0 or len(y) != len(p):
        raise ValueError(f"need equally many labels and probabilities, got {len(y)} and {len(p)}")
    log_loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    accuracy = float(np.mean((p >= 0.5) == (y == 1)))
    return Scores(log_loss, accuracy, _auc(y, p), len(y))


def _auc(y: FloatArray, p: FloatArray) -> float | None:
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    # Average the ranks of tied probabilities.
    values, inverse = np.unique(p, return_inverse=True)
    if len(values) < len(p):
        sums = np.bincount(inverse, weights=ranks)
        counts = np.bincount(inverse)
        ranks = (sums / counts)[inverse]
    u = float(ranks[y == 1].sum()) - positives * (positives + 1) / 2
    return u / (positives * negatives)
