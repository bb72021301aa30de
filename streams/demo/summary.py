"""The demo's closing summary: alerts by type, retrain requests, deployments, verification,
and the served model's performance before drift, during drift and after the retrain.

Performance is measured from the data itself, not from the monitor: every labelled
prediction is read back from the topics (:func:`producers.retrain.dataset.read_window`)
and grouped by the world it was made in and the version that served it.

>>> rows = [Segment("stable", 0.8123, 0.7861, 7120), Segment("after retrain", None, None, 0)]
>>> print(performance_table(rows))
segment                     labelled   ROC AUC   accuracy
stable                          7120     0.812      0.786
after retrain                      0         -          -
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from producers.retrain.dataset import LabelledEvent, read_window
from producers.retrain.local import binary_label
from streams.core.events import describe_result
from streams.demo.plan import FIRST_VERSION, MIN_ROC_AUC, MODEL_ID, DemoPlan
from streams.demo.state import DemoState
from streams.engine.performance import compute_metric

__all__ = ["Segment", "Summary", "measure", "performance_table", "summarise"]

SEGMENTS = ("stable", "data drift", "concept drift", "after retrain")


@dataclass(frozen=True, slots=True)
class Segment:
    """The served predictions' performance over one stretch of the story."""

    name: str
    roc_auc: float | None
    accuracy: float | None
    labelled: int


@dataclass(frozen=True, slots=True)
class Summary:
    """Everything the demo reports at the end; ``missing`` empty means the story happened."""

    text: str
    missing: list[str]
    segments: list[Segment]

    @property
    def complete(self) -> bool:
        return not self.missing


def segment_of(event: LabelledEvent, plan: DemoPlan) -> str:
    """Which stretch of the story a served prediction belongs to."""
    if event.model_version != FIRST_VERSION:
        return "after retrain"
    return plan.phase_at(event.event_time)


def measure(events: Sequence[LabelledEvent], plan: DemoPlan) -> list[Segment]:
    """ROC AUC and accuracy (at 0.5) of the served predictions, per segment."""
    groups: dict[str, list[tuple[float, float]]] = {name: [] for name in SEGMENTS}
    for event in events:
        if isinstance(event.prediction, str):
            continue
        groups[segment_of(event, plan)].append((float(event.prediction), binary_label(event.label)))
    out = []
    for name, pairs in groups.items():
        if not pairs:
            out.append(Segment(name, None, None, 0))
            continue
        array = np.asarray(pairs, dtype=np.float64)
        score, label = array[:, 0], array[:, 1]
        auc = compute_metric("roc_auc", score, label, 0.5)
        accuracy = compute_metric("accuracy", score, label, 0.5)
        out.append(Segment(name, auc, accuracy, len(pairs)))
    return out


def read_back(bootstrap: str, plan: DemoPlan) -> list[LabelledEvent]:
    """Every labelled prediction of the demo's model, from its topics."""
    return read_window(
        bootstrap,
        predictions_topic=plan.topics.predictions,
        ground_truth_topic=plan.topics.ground_truth,
        model_id=MODEL_ID,
        start=0.0,
        end=math.inf,
        timeout=60.0,
    )


def performance_table(segments: Sequence[Segment]) -> str:
    lines = [f"{'segment':<24}{'labelled':>12}{'ROC AUC':>10}{'accuracy':>11}"]
    for s in segments:
        lines.append(f"{s.name:<24}{s.labelled:>12}{_fmt(s.roc_auc):>10}{_fmt(s.accuracy):>11}")
    return "\n".join(lines)


def summarise(state: DemoState, segments: Sequence[Segment], seconds: float) -> Summary:
    """The summary text and what is missing from the story (the exit code follows it)."""
    missing = state.missing()
    after = next((s for s in segments if s.name == "after retrain"), None)
    if after is None or after.roc_auc is None:
        missing.append("predictions served by the new version")
    elif after.roc_auc < MIN_ROC_AUC:
        missing.append(
            f"recovery: the new version's ROC AUC {after.roc_auc:.3f} is below the "
            f"minimum {MIN_ROC_AUC}"
        )
    counts = state.alert_counts()
    by_type = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())) or "none"
    lines = [
        f"driftradar demo summary ({seconds:.0f} s)",
        f"alerts by type: {by_type}",
        f"retrain requests: {len(state.requests)}"
        + "".join(
            f"\n  {r.request_id} {r.model_id}@{r.model_version} at {r.requested_at} "
            f"because {', '.join(f'{x.type} {x.signal}' for x in r.reasons)}"
            for r in state.requests
        ),
        f"retrain results: {len(state.results)}"
        + "".join(f"\n  {describe_result(r)}" for r in state.results),
        f"deployments: {len(state.deployments)}"
        + "".join(
            f"\n  {d.model_id}@{d.model_version} (was {d.previous_version}) at {d.deployed_at}"
            for d in state.deployments
        ),
        "verification: "
        + (
            "; ".join(
                f"{a.model_id}@{a.model_version} {a.severity} ({a.details.get('metric')} "
                f"{_fmt(a.details.get('value'))} vs minimum "
                f"{_fmt(a.details.get('minimum', a.details.get('maximum')))})"
                for a in state.verifications()
            )
            or "none"
        ),
        "performance of the served model (from the labelled predictions):",
        performance_table(segments),
        "story: complete"
        if not missing
        else "story: INCOMPLETE, did not happen: " + "; ".join(missing),
    ]
    return Summary("\n".join(lines), missing, list(segments))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "-" if value is None else str(value)
