"""Deployment verification: a version that replaces another must, over its first
``retrain.verify_labelled_events`` labelled events, meet the performance limits:
``performance.thresholds`` when configured; else, less ``performance.relative_drop``, the
previous version's performance in today's world (its last window before the switch) when
the deployment answers a retrain request — the world changed, so its first window is out
of reach for any model — and its first window otherwise. The plan is plain data kept on the
new version.

>>> plan = verification_plan("v1", None, "req-1", needed=100)
>>> plan.state, plan.previous, verification_plan("v1", None, None, needed=0)
('pending', 'v1', None)
"""

from __future__ import annotations

from typing import Any

from streams.engine.performance import RollingPerformance
from streams.engine.versions import VerificationPlan, VersionState

__all__ = ["verification_outcome", "verification_plan", "verification_status", "verify"]


def verification_plan(
    previous: str, old: VersionState | None, request_id: str | None, *, needed: int
) -> VerificationPlan | None:
    """What a version replacing ``previous`` (whose state is ``old``, if still kept) must
    show once it has ``needed`` labelled events (``None``: not verified)."""
    if needed <= 0:
        return None
    perf = None if old is None else old.performance
    if perf is None:
        return VerificationPlan(previous, request_id, {})
    recent = {metric: value for metric, value in perf.values.items() if value is not None}
    return VerificationPlan(previous, request_id, dict(perf.baseline), recent=recent)


def verify(plan: VerificationPlan, perf: RollingPerformance) -> list[dict[str, Any]]:
    """Compare the version's performance over its first labelled events with the
    acceptable limits (module doc). Marks the verification done."""
    results: list[dict[str, Any]] = []
    limits = {m: (v, "threshold") for m, v in perf.thresholds.items()}
    if not limits and perf.relative_drop is not None:
        retrained = plan.request_id is not None and plan.recent
        reference = plan.recent if retrained else plan.baseline
        source = "previous_version_recent" if retrained else "previous_version"
        for metric, base in reference.items():
            if metric in perf.metrics:
                drop = abs(base) * perf.relative_drop
                limit = base - drop if perf.metrics[metric] else base + drop
                limits[metric] = (limit, source)
    for metric, (limit, source) in limits.items():
        value, pairs = perf.recent(metric)
        if value is None:
            continue
        higher = perf.metrics[metric]
        ok = value >= limit if higher else value <= limit
        results.append(
            {
                "metric": metric,
                "value": value,
                "minimum" if higher else "maximum": limit,
                "limit_source": source,
                "verified": ok,
                "pairs": pairs,
            }
        )
    plan.results = results
    if not results:
        plan.state = "unverifiable"
    else:
        plan.state = "verified" if all(r["verified"] for r in results) else "failed"
    return results


def verification_outcome(
    plan: VerificationPlan, results: list[dict[str, Any]], pairs: int
) -> tuple[str, dict[str, Any], str]:
    """(signal, details, severity) of the one ``performance_degradation`` alert reporting
    a deployment's verification: severity ``info`` when the new version meets every limit,
    else ``critical``; its signal is the first metric that failed (or the first checked)."""
    verified = all(r["verified"] for r in results)
    result = next(r for r in results if r["verified"] == verified)
    details = {
        **result,
        "labelled_events": pairs,
        "previous_version": plan.previous,
        "request_id": plan.request_id,
        "results": [dict(r) for r in results],
    }
    return f"metric:{result['metric']}", details, "info" if verified else "critical"


def verification_status(
    plan: VerificationPlan, perf: RollingPerformance | None, *, needed: int
) -> dict[str, Any]:
    """A version's deployment verification as ``status``/``view`` show it: state,
    progress towards ``needed`` labelled events, results."""
    return {
        "state": plan.state,
        "previous_version": plan.previous,
        "request_id": plan.request_id,
        "labelled_events": 0 if perf is None else perf.updates,
        "needed": needed,
        "results": [dict(r) for r in plan.results],
    }
