"""How many detectors share a model version's false-alarm budget.

``alarms.expected_run_time`` is split equally over every detector of the model (see
:mod:`detectors.policy`), so the count must not depend on how the stream was batched: it is
taken once, when a version starts, from what is known then — the configuration, the
features seen up to the version's first prediction and the kind of prediction — and kept
in the version's snapshot. The task is read from the configuration only (it is inferred
from the first joined pair, which may come before or after that point); when it is not
configured the count takes the task with the most checks (a binary classifier's three
metrics). A feature that appears after the version started gets the same share, so its
detectors come on top of the budget: declare features in the configuration, or expect
slightly more than ``1 / expected_run_time`` false alarms per event for such models.

>>> from streams.engine.config import MonitorConfig
>>> from streams.engine.schema import FeatureInfo
>>> config = MonitorConfig().model("churn")
>>> features = {"age": FeatureInfo("numeric", "number", 1),
...             "plan": FeatureInfo("categorical", "string", 1)}
>>> count_detectors(config, features, first_position=1, prediction_kind="numeric")
18
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.engine.config import METRICS, ModelConfig
from streams.engine.expectations import prediction_detectors, quality_detectors
from streams.engine.schema import FeatureInfo

__all__ = ["count_detectors", "metric_checks"]


def metric_checks(config: ModelConfig, metric: str) -> int:
    """Checks run on one rolling metric: the calibrated baseline (unless
    ``performance.relative_drop`` is null) and a configured limit."""
    perf = config.performance
    return int(perf.relative_drop is not None) + int(metric in perf.thresholds)


def count_detectors(
    config: ModelConfig,
    features: Mapping[str, FeatureInfo],
    first_position: int,
    prediction_kind: str | None,
) -> int:
    """Detectors of a version that starts at record ``first_position``."""
    groups = config.detectors
    count = 0
    for name, info in features.items():
        if info.since > first_position:
            continue
        if info.type == "numeric":
            count += len(groups["numeric"])
        else:
            count += len(groups["categorical"]) + len(groups["unseen"])
        count += len(quality_detectors(config, name, features, prediction_kind))
    if prediction_kind == "categorical":
        count += len(groups["prediction_categorical"])
    else:
        count += len(prediction_detectors(config, config.task))
    count += len(quality_detectors(config, "prediction", features, prediction_kind))
    tasks = [config.task] if config.task is not None else list(METRICS)
    count += max(
        len(groups["error_regression" if task == "regression" else "error"])
        + sum(metric_checks(config, metric) for metric in METRICS[task])
        for task in tasks
    )
    return max(1, count)
