"""``driftradar backtest --tune``: weights that make a stable span meet a budget.

Each round replays the stable span (the events before the first change point, or all of
them) and counts each model's false alarms per detector kind. While a model has more than
its budget allows there (``stable predictions / expected_run_time``, at least zero), every
kind that alarmed gets a tenth of its weight: a ten times longer run length, i.e. a
stricter threshold (:meth:`detectors.policy.AlarmPolicy.run_length`). Kinds that stayed
quiet keep their weight: a stable span cannot show how much more sensitive they could be.
The result is written as ``models.<id>.alarms`` over the configuration document.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from streams.backtest.replay import replay
from streams.core.events import Prediction
from streams.engine import InputRecord, MonitorConfig

__all__ = ["stable_span", "tune"]

#: Alert detectors that are not false alarms of the budget (ops, deployment checks).
_NOT_BUDGETED = frozenset({"verification", "timeout", "collapse", "lag", "max_features"})


def stable_span(records: Sequence[InputRecord], change_points: Sequence[int]) -> list[InputRecord]:
    """The records of each model before its ``min(change_points)``-th prediction."""
    if not change_points:
        return list(records)
    first = min(change_points)
    seen: Counter[str] = Counter()
    out = []
    for record in records:
        model = record.event.model_id
        if isinstance(record.event, Prediction):
            seen[model] += 1
        if seen[model] <= first:
            out.append(record)
    return out


def tune(
    records: Sequence[InputRecord],
    document: Mapping[str, Any],
    change_points: Sequence[int],
    expected_run_time: float,
    *,
    rounds: int = 4,
) -> tuple[dict[str, Any], list[str]]:
    """The tuned configuration document and a log of the rounds."""
    span = stable_span(records, change_points)
    tuned: dict[str, Any] = {**document, "models": dict(document.get("models") or {})}
    log: list[str] = []
    weights: dict[str, dict[str, float]] = {}
    for round_number in range(1, rounds + 1):
        for model_id, kinds in weights.items():
            entry = dict(tuned["models"].get(model_id) or {})
            alarms = dict(entry.get("alarms") or {})
            alarms.update(expected_run_time=expected_run_time, weights=dict(kinds))
            entry["alarms"] = alarms
            tuned["models"][model_id] = entry
        if not weights:
            defaults = dict(tuned.get("defaults") or {})
            defaults["alarms"] = {
                **dict(defaults.get("alarms") or {}),
                "expected_run_time": expected_run_time,
            }
            tuned["defaults"] = defaults
        result = replay(span, MonitorConfig.from_mapping(tuned))
        done = True
        for model_id, predictions in sorted(result.predictions.items()):
            counts = Counter(
                a.detector
                for a in result.alerts
                if a.model_id == model_id
                and a.type != "infrastructure"
                and a.detector not in _NOT_BUDGETED
            )
            allowed = int(predictions / expected_run_time)
            total = sum(counts.values())
            log.append(
                f"round {round_number}: {model_id}: {total} false alarms in {predictions:,} "
                f"stable predictions (budget allows {allowed})"
                + (f": {dict(counts)}" if counts else "")
            )
            if total > allowed:
                done = False
                kinds = weights.setdefault(model_id, {})
                for kind in counts:
                    kinds[kind] = kinds.get(kind, 1.0) / 10.0
        if done:
            break
    return tuned, log
