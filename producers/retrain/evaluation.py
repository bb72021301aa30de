"""Champion vs challenger on the same rows: the local trainer's decision, free of I/O.

:func:`compare` takes the labelled events of a request's window (sorted by event time),
fits a candidate on the oldest ``1 - holdout`` of them, scores it and the *current* model
on the same most recent ``holdout`` rows, and decides:

- ``too_few_rows``: fewer than ``min_rows`` labelled events — nothing is fitted;
- ``training_failed``: the rows cannot train or score a binary model (one class only,
  labels that are not 0/1, served predictions that are not probabilities);
- ``no_signal``: the candidate ranks the held-out rows no better than chance (the lower
  confidence bound of its ROC AUC is at most 0.5) — labels that are noise end here, even
  when a constant would beat a badly calibrated current model on log loss;
- ``not_better``: the candidate's log loss is not lower than the current model's by more
  than ``min_improvement`` with the given confidence (paired over the held-out rows);
- ``deploy``: otherwise.

The current model is scored from its deployed parameters when they are known, else from
the predictions it actually served for those rows. Both bounds are one-sided at
``confidence``: the AUC's from DeLong's variance, the log-loss gain's from the standard
error of the per-row differences.

>>> import numpy as np
>>> from producers.retrain.dataset import LabelledEvent
>>> rng = np.random.default_rng(3)
>>> def event(i, x, label):
...     return LabelledEvent(f"e{i}", float(i), "v1", {"x": x}, 0.5, label)
>>> xs = rng.normal(size=2000)
>>> events = [event(i, float(x), int(rng.random() < 1 / (1 + np.exp(-2 * x))))
...           for i, x in enumerate(xs)]
>>> result = compare(events, CurrentModel("v1"), DecisionRules())
>>> result.code, result.evaluation["holdout_rows"], result.evaluation["current"]["source"]
('deploy', 500, 'served')
>>> noise = [event(i, float(x), int(rng.random() < 0.5)) for i, x in enumerate(xs)]
>>> compare(noise, CurrentModel("v1"), DecisionRules()).code
'no_signal'
>>> compare(events[:50], CurrentModel("v1"), DecisionRules()).reason
'too few rows (50 labelled events in the window, need 200)'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

from producers.retrain.dataset import LabelledEvent
from producers.retrain.errors import ActionError, ConfigError
from producers.retrain.trainer import fit_logistic, predict_many, score
from streams.core.events import Label, LogisticParameters, rfc3339

__all__ = [
    "DEFAULT_MIN_ROWS",
    "Comparison",
    "CurrentModel",
    "DecisionRules",
    "auc_interval",
    "binary_label",
    "compare",
]

#: Labelled events a window needs before the local trainer fits anything. Below ~200 the
#: 25 % held out (50 rows) cannot tell a useful candidate from chance (benchmarks.retrain_rows).
DEFAULT_MIN_ROWS: Final = 200
_EPS: Final = 1e-15
FloatArray = npt.NDArray[np.float64]


def binary_label(value: Label) -> float:
    """0/1 from a contract label: 0/1 numbers, booleans, or the strings "0"/"1"/"true"/"false".

    >>> [binary_label(v) for v in (1, 0.0, True, "false")]
    [1.0, 0.0, 1.0, 0.0]
    >>> binary_label(0.3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    producers.retrain.errors.ActionError: label 0.3 is not binary (0/1, true/false): ...
    """
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and value in (0, 1):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in {"0", "1", "true", "false"}:
        return 1.0 if value.strip().lower() in {"1", "true"} else 0.0
    raise ActionError(
        f"label {value!r} is not binary (0/1, true/false): the local trainer fits binary "
        "classifiers only",
        retryable=False,
    )


@dataclass(frozen=True)
class DecisionRules:
    """How much data, which split and what evidence a deployment needs (the local trainer's
    ``--min-rows``, ``--holdout``, ``--min-improvement``, ``--confidence``)."""

    min_rows: int = DEFAULT_MIN_ROWS
    holdout: float = 0.25
    min_improvement: float = 0.0
    confidence: float = 0.99
    l2: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.holdout < 1.0:
            raise ConfigError("--holdout", f"must be between 0 and 1, got {self.holdout}")
        if self.min_rows < 8:
            raise ConfigError("--min-rows", f"must be >= 8, got {self.min_rows}")
        if not self.min_improvement >= 0:
            raise ConfigError("--min-improvement", f"must be >= 0, got {self.min_improvement}")
        if not 0.5 <= self.confidence < 1.0:
            raise ConfigError("--confidence", f"must be >= 0.5 and < 1, got {self.confidence}")

    @property
    def z(self) -> float:
        """The one-sided normal quantile of ``confidence`` (2.33 for 0.99)."""
        return NormalDist().inv_cdf(self.confidence)


@dataclass(frozen=True)
class CurrentModel:
    """The model a candidate must beat: its version and, when known, its parameters
    (``None``: score the predictions it served for the held-out events)."""

    version: str
    parameters: LogisticParameters | None = None


@dataclass(frozen=True)
class Comparison:
    """The decision (``code``), a one-line ``reason``, the figures, and the candidate."""

    code: str
    reason: str
    evaluation: dict[str, Any] = field(default_factory=dict)
    candidate: LogisticParameters | None = None

    @property
    def deploy(self) -> bool:
        return self.code == "deploy"


def auc_interval(
    labels: Sequence[float] | FloatArray, scores: Sequence[float] | FloatArray
) -> tuple[float, float] | None:
    """ROC AUC and its standard error (DeLong), or None when one class is missing.

    >>> auc, se = auc_interval([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    >>> round(auc, 4), round(se, 4)
    (0.8889, 0.1571)
    """
    y = np.asarray(labels, dtype=float)
    p = np.asarray(scores, dtype=float)
    positives, negatives = p[y == 1], p[y == 0]
    m, n = len(positives), len(negatives)
    if m == 0 or n == 0:
        return None
    ranks = rankdata(np.concatenate([positives, negatives]))
    v10 = (ranks[:m] - rankdata(positives)) / n  # per positive: share of negatives below
    v01 = 1.0 - (ranks[m:] - rankdata(negatives)) / m  # per negative: share of positives above
    variance = (float(v10.var(ddof=1)) / m if m > 1 else 0.0) + (
        float(v01.var(ddof=1)) / n if n > 1 else 0.0
    )
    return float(v10.mean()), math.sqrt(max(variance, 0.0))


def _row_log_loss(y: FloatArray, p: FloatArray) -> FloatArray:
    q = np.clip(p, _EPS, 1 - _EPS)
    losses: FloatArray = -(y * np.log(q) + (1 - y) * np.log(1 - q))
    return losses


def _served(events: Sequence[LabelledEvent]) -> FloatArray:
    values = []
    for event in events:
        value = event.prediction
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ActionError(
                f"event {event.event_id!r}: served prediction {value!r} is not a probability, "
                "and the current model's parameters are unknown",
                retryable=False,
            )
        values.append(float(value))
    return np.asarray(values, dtype=float)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def compare(
    events: Sequence[LabelledEvent], current: CurrentModel, rules: DecisionRules
) -> Comparison:
    """Fit on the older rows, score candidate and ``current`` on the newer ones, decide."""
    count = len(events)
    base: dict[str, Any] = {
        "window_rows": count,
        "min_rows": rules.min_rows,
        "metric": "log_loss",
        "min_improvement": rules.min_improvement,
        "confidence": rules.confidence,
        "better": False,
    }
    if count < rules.min_rows:
        return Comparison(
            "too_few_rows",
            f"too few rows ({count} labelled events in the window, need {rules.min_rows})",
            {**base, "decision": "too_few_rows"},
        )
    split = count - max(1, round(count * rules.holdout))
    train, held = events[:split], events[split:]
    base |= {
        "train_rows": split,
        "holdout_rows": count - split,
        "holdout_start": rfc3339(held[0].event_time),
        "holdout_end": rfc3339(held[-1].event_time),
    }
    try:
        y = np.asarray([binary_label(e.label) for e in events], dtype=float)
        train_y, held_y = y[:split], y[split:]
        for part, name in ((train_y, "training"), (held_y, "held-out")):
            if len(set(part.tolist())) < 2:
                raise ActionError(f"the {len(part)} {name} rows hold one class only")
        if current.parameters is not None:
            incumbent = predict_many(current.parameters, [e.features for e in held])
            source = "parameters"
        else:
            incumbent = _served(held)
            source = "served"
        params = fit_logistic([e.features for e in train], train_y, l2=rules.l2)
    except (ActionError, ValueError, np.linalg.LinAlgError) as exc:
        return Comparison(
            "training_failed", f"training failed ({exc})", {**base, "decision": "training_failed"}
        )
    challenger = predict_many(params, [e.features for e in held])
    z = rules.z
    figures: dict[str, dict[str, Any]] = {}
    intervals: dict[str, tuple[float, float]] = {}
    for name, predicted in (("candidate", challenger), ("current", incumbent)):
        interval = auc_interval(held_y, predicted)
        assert interval is not None  # both classes are in the held-out rows
        intervals[name] = interval
        figures[name] = score(held_y, predicted).as_dict() | {"auc_se": interval[1]}
    figures["current"] |= {"version": current.version, "source": source}
    differences = _row_log_loss(held_y, incumbent) - _row_log_loss(held_y, challenger)
    gain = float(differences.mean())
    gain_se = float(differences.std(ddof=1)) / math.sqrt(len(differences))
    gain_lower = gain - z * gain_se
    auc, auc_se = intervals["candidate"]
    auc_lower = auc - z * auc_se
    evaluation = {
        **base,
        **figures,
        "gain": gain,
        "gain_lower": gain_lower,
        "candidate_auc_lower": auc_lower,
    }
    cand, curr = figures["candidate"], figures["current"]
    held_rows = count - split
    versus = (
        f"roc_auc {_f(cand['auc'])} vs {_f(curr['auc'])}, log_loss {_f(cand['log_loss'])} vs "
        f"{_f(curr['log_loss'])} on {held_rows} held-out rows"
    )
    pct = f"{rules.confidence:.0%}"
    if auc_lower <= 0.5:
        code = "no_signal"
        reason = (
            f"the candidate ranks the held-out rows no better than chance ({versus}; "
            f"candidate roc_auc {pct} lower bound {auc_lower:.3f} <= 0.5)"
        )
    elif gain_lower <= rules.min_improvement:
        code = "not_better"
        reason = (
            f"not better than the current model by the margin ({versus}; log-loss gain "
            f"{gain:.3f}, {pct} lower bound {gain_lower:.3f} <= margin {rules.min_improvement:g})"
        )
    else:
        code = "deploy"
        reason = f"better than the current model by the margin ({versus})"
    evaluation |= {"decision": code, "better": code == "deploy"}
    return Comparison(code, reason, evaluation, params if code == "deploy" else None)
