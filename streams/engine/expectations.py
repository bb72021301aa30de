"""Which detectors (and parameters) the config asks for on a column: the numeric
prediction detectors with the band's hard range, and the quality expectations of a feature
or of ``prediction``.

>>> from streams.engine.config import MonitorConfig
>>> config = MonitorConfig().model("churn")
>>> sorted(quality_detectors(config, "prediction", {}, "numeric"))
['type']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.engine.columns import ValueKind
from streams.engine.config import ModelConfig
from streams.engine.schema import FeatureInfo

__all__ = ["prediction_detectors", "quality_detectors"]


def prediction_detectors(config: ModelConfig, task: str | None) -> Mapping[str, Mapping[str, Any]]:
    """Numeric prediction detectors; the band's hard range comes from the config (or is
    ``[0, 1]`` for a binary model)."""
    detectors = dict(config.detectors["prediction"])
    band = detectors.get("prediction_band")
    value_range = config.prediction.range or ((0.0, 1.0) if task == "binary" else None)
    if band is not None and value_range is not None:
        detectors["prediction_band"] = {"low": value_range[0], "high": value_range[1], **band}
    return detectors


def quality_detectors(
    config: ModelConfig,
    name: str,
    features: Mapping[str, FeatureInfo],
    prediction_kind: str | None,
) -> dict[str, dict[str, Any]]:
    """The expectations that apply to feature ``name`` (its schema entry) or to
    ``prediction`` (of ``prediction_kind``)."""
    params = config.quality
    out: dict[str, dict[str, Any]] = {}
    if name == "prediction":
        ftype = prediction_kind or "numeric"
        kind: ValueKind | None = "string" if ftype == "categorical" else "number"
        value_range = config.prediction.range
        categories = config.prediction.categories
        max_missing = None
    else:
        info = features[name]
        ftype, kind = info.type, info.kind
        spec = config.features.get(name)
        value_range = spec.range if spec else None
        categories = spec.categories if spec else None
        max_missing = spec.max_missing_rate if spec else None
    expected = {"number": "numeric", "string": "string", "bool": "bool"}.get(kind or "")
    if expected is not None and not (ftype == "categorical" and kind == "number"):
        out["type"] = {"expected": expected}
    if name != "prediction":
        out["missing_rate"] = {} if max_missing is None else {"max_failing_fraction": max_missing}
    if value_range is not None:
        out["value_range"] = {"min_value": value_range[0], "max_value": value_range[1]}
    if categories is not None:
        out["allowed_categories"] = {"categories": list(categories)}
    return {  # feature settings win over `quality.detectors`; `false` there drops one
        kind: {**configured, **implied}
        for kind, implied in out.items()
        if (configured := params[kind]) is not None
    }
