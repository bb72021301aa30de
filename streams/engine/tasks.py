"""What joined (prediction, label) pairs mean for the model's task: the task itself,
inferred from the first usable pair, and each pair's score, label and error.

>>> from streams.engine.join import JoinedPair
>>> pair = JoinedPair("e1", "v1", 0.9, 0.0, event_time=10.0, lag=5.0, usable=True)
>>> ok, score, label, error = pair_arrays([pair], "binary", 0.5)
>>> ok.tolist(), error.round(2).tolist()
([True], [0.9])
"""

from __future__ import annotations

import math
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

from detectors.profile import category_key
from streams.engine.join import JoinedPair

__all__ = ["PairArrays", "excess_error", "infer_task", "pair_arrays", "pair_values"]

#: (valid, score, label, error): ``valid`` per pair, the others for the valid pairs only.
PairArrays: TypeAlias = tuple[
    npt.NDArray[np.bool_],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
]
_NUMERIC_TYPES: Final = frozenset({float, int, bool})


def excess_error(
    score: npt.NDArray[np.float64], label: npt.NDArray[np.float64], threshold: float
) -> npt.NDArray[np.float64]:
    """A binary model's error beyond what it expects of itself: 1 if misclassified at
    ``threshold``, minus the model's own probability of that misclassification (``1 - p``
    when it says class 1, ``p`` when it says class 0).

    Its mean stays put when only the inputs move (a calibrated model hit by data drift
    errs more on the harder cases, and expects to) and rises when the world's rule changes
    (concept drift), so the ``error`` signal separates the two.

    >>> excess_error(np.array([0.9, 0.9, 0.2]), np.array([1.0, 0.0, 0.0]), 0.5).round(2)
    array([-0.1,  0.9, -0.2])
    """
    says_one = score >= threshold
    wrong = (says_one != (label == 1.0)).astype(np.float64)
    result: npt.NDArray[np.float64] = wrong - np.where(says_one, 1.0 - score, score)
    return result


def infer_task(prediction: float | str, label: float | str | bool) -> str | None:
    """Binary for probabilities with 0/1 labels, regression for numbers, multiclass for
    class-label predictions; ``None`` when the pair says nothing usable.

    >>> infer_task(0.7, 1.0), infer_task(3.5, 2.0), infer_task("cat", "dog"), infer_task(1.0, "x")
    ('binary', 'regression', 'multiclass', None)
    """
    if isinstance(prediction, str):
        return "multiclass"
    if isinstance(label, str):
        return None
    if isinstance(label, bool) or (label in (0.0, 1.0) and 0.0 <= prediction <= 1.0):
        return "binary"
    return "regression"


def pair_arrays(pairs: list[JoinedPair], task: str, threshold: float) -> PairArrays:
    """(valid, score, label, error) of pairs for ``task``; vectorised when all predictions
    and labels are numbers. ``threshold``: a binary model's decision threshold."""
    predictions = [p.prediction for p in pairs]
    labels = [p.label for p in pairs]
    numeric = set(map(type, predictions)) | set(map(type, labels)) <= _NUMERIC_TYPES
    if task == "multiclass" or not numeric:
        rows = [pair_values(p, task, threshold) for p in pairs]
        ok = np.fromiter((r is not None for r in rows), np.bool_, count=len(rows))
        good = [r for r in rows if r is not None]
        arr = np.asarray(good, dtype=np.float64).reshape(len(good), 3)
        return ok, arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy()
    score = np.asarray(predictions, dtype=np.float64)
    label = np.asarray(labels, dtype=np.float64)
    if task == "binary":
        ok = ((label == 0.0) | (label == 1.0)) & (score >= 0.0) & (score <= 1.0)
        error = excess_error(score, label, threshold)
    else:
        ok = np.isfinite(score) & np.isfinite(label)
        if bool in set(map(type, labels)):
            ok &= np.fromiter((type(v) is not bool for v in labels), np.bool_, len(labels))
        error = np.abs(label - score)
    return ok, score[ok], label[ok], error[ok]


def pair_values(pair: JoinedPair, task: str, threshold: float) -> tuple[float, float, float] | None:
    """(score, label, error) of one pair for ``task``; ``None`` when the label is invalid.

    >>> pair = JoinedPair("e1", "v1", "cat", "cat", event_time=10.0, lag=5.0, usable=True)
    >>> pair_values(pair, "multiclass", 0.5)
    (1.0, 1.0, 0.0)
    """
    prediction, label = pair.prediction, pair.label
    if task == "multiclass":
        key = category_key(label)
        if key is None or not isinstance(prediction, str):
            return None
        correct = 1.0 if key == prediction else 0.0
        return correct, correct, 1.0 - correct
    if isinstance(prediction, str) or isinstance(label, str):
        return None
    y = float(label)
    if task == "binary":
        if y not in (0.0, 1.0) or not 0.0 <= prediction <= 1.0:
            return None
        excess = excess_error(np.array([prediction]), np.array([y]), threshold)
        return prediction, y, float(excess[0])
    if isinstance(label, bool) or not math.isfinite(y) or not math.isfinite(prediction):
        return None
    return prediction, y, abs(y - prediction)
