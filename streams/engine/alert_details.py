"""Alert details a person can read: the same leading keys for every detector.

Every drift and performance alert's ``details`` start with ``statistic`` and ``threshold``
(in the same units: the alert fired because the first passed the second), ``p_value`` (the
statistic's tail probability under "no change", or for ADWIN the confidence at which its
cut would just pass; absent where none exists, e.g. Page-Hinkley), ``effect`` and
``effect_size`` (how big the change is: a mean shift in reference standard deviations, PSI,
the Jensen-Shannon distance, the share of categories' mass that moved, a metric's change)
and ``budget_share`` (the fraction of the model's false-alarm budget this detector may
use). The detector's own numbers follow; the engine adds ``position`` (the model's
prediction index, the version's pair index for ``error`` and ``metric:*``).

>>> result = {"state": "drift", "updates": 3000, "statistic": 0.21, "threshold": 0.12,
...           "p_value": 1e-9, "window_size": 500, "details": {"mean_shift_sd": 1.02}}
>>> details = drift_details("ks", result, {"budget_share": 0.025})
>>> list(details)[:6]
['statistic', 'threshold', 'p_value', 'effect', 'effect_size', 'budget_share']
>>> details["effect"], details["effect_size"]
('mean shift (reference sd)', 1.02)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from streams.engine.performance import MetricChange

__all__ = ["drift_details", "metric_details"]

_ROOT12: Final = math.sqrt(12.0)


def _adwin(details: Mapping[str, Any], quantile: bool) -> dict[str, Any]:
    """ADWIN's effect: the mean difference across its strongest cut (its ``statistic``,
    ``threshold`` and ``p_value`` are that cut's, see :func:`detectors.river_numeric.
    adwin_bound`)."""
    before, after = details.get("mean_before"), details.get("mean_after")
    if before is None or after is None:
        return {}
    if quantile:
        return {
            "effect": "mean shift (reference sd)",
            "effect_size": (after - before) * _ROOT12,
            "reference_percentile_after": 100.0 * after,
        }
    return {"effect": "mean change", "effect_size": after - before}


def _effect(label: str, result: Mapping[str, Any], details: Mapping[str, Any]) -> dict[str, Any]:
    statistic = result.get("statistic")
    if label in ("ks", "psi") and details.get("mean_shift_sd") is not None:
        out = {"effect": "mean shift (reference sd)", "effect_size": details["mean_shift_sd"]}
        if label == "psi":
            out = {"effect": "PSI", "effect_size": statistic}
        return out
    if label == "jensen_shannon":
        return {"effect": "Jensen-Shannon distance", "effect_size": statistic}
    if label == "chi_square":
        return {"effect": "share of mass moved", "effect_size": details.get("moved_share")}
    if label == "prediction_band" and details.get("mean_after") is not None:
        return {
            "effect": "mean change",
            "effect_size": details["mean_after"] - details["mean_before"],
        }
    if label in ("type", "missing_rate", "value_range", "allowed_categories"):
        return {"effect": "failing fraction", "effect_size": statistic}
    return {}


def drift_details(
    label: str, result: Mapping[str, Any], slot_info: Mapping[str, Any]
) -> dict[str, Any]:
    """Readable details of a drift alert from a detector's ``result().to_dict()``."""
    details = dict(result.get("details", {}))
    lead: dict[str, Any] = {
        "statistic": result.get("statistic"),
        "threshold": result.get("threshold"),
        "p_value": result.get("p_value"),
    }
    quantile = str(slot_info.get("input", "")).startswith("reference quantile")
    if label == "adwin":
        lead.update(_adwin(details, quantile))
    else:
        lead.update(_effect(label, result, details))
    lead.update(slot_info)
    rest = {
        key: value
        for key, value in result.items()
        if key not in ("details", "statistic", "threshold", "p_value") and value is not None
    }
    out = {key: value for key, value in lead.items() if value is not None}
    out.update(rest)
    for key, value in details.items():
        out.setdefault(key, value)
    return out


def metric_details(change: MetricChange, window: int, share: float) -> dict[str, Any]:
    """Readable details of a ``performance_degradation`` alert."""
    out: dict[str, Any] = {"statistic": change.value, "threshold": change.limit}
    limit = change.baseline
    if limit is not None:
        out["p_value"] = limit.tail_probability(change.value)
        out["effect"] = "metric change"
        out["effect_size"] = change.value - limit.reference
        out["budget_share"] = share
        out["reference"] = limit.reference
        out["z_score"] = limit.z_score(change.value)
    out.update(value=change.value, limit=change.limit, window=window)
    return out
