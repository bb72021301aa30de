"""Synthetic churn-like event streams for the engine tests (numpy, seeded)."""

from __future__ import annotations

import numpy as np

from streams.core.events import GroundTruth, Prediction
from streams.engine import InputRecord

T0 = 1_800_000_000.0
PLANS = ("basic", "premium", "pro")


def churn_stream(
    n: int,
    *,
    seed: int = 1,
    model: str = "churn",
    version: str = "v1",
    partition: int = 0,
    first: int = 0,
    t0: float = T0,
    rate: float = 10.0,
    label_delay: float = 30.0,
    labelled: float = 1.0,
    data_drift_at: int | None = None,
    concept_drift_at: int | None = None,
) -> list[InputRecord]:
    """Predictions of a logistic churn model with three numeric and one categorical feature,
    and their labels ``label_delay`` seconds later, merged in event-time order.

    ``data_drift_at``: from that index the unused feature ``x_unused`` shifts by +3 (the
    model and labels are unaffected). ``concept_drift_at``: from that index labels follow the
    opposite relation (features and predictions unchanged).
    """
    rng = np.random.default_rng(seed)
    idx = np.arange(first, first + n)
    tenure = rng.normal(24.0, 8.0, n)
    charges = rng.normal(70.0, 15.0, n)
    unused = rng.normal(0.0, 1.0, n)
    if data_drift_at is not None:
        unused = np.where(idx >= data_drift_at, unused + 3.0, unused)
    plan = rng.choice(len(PLANS), n, p=[0.5, 0.3, 0.2])
    logit = -0.12 * (tenure - 24.0) + 0.06 * (charges - 70.0) + 0.8 * (plan == 0) - 0.4
    p = 1.0 / (1.0 + np.exp(-logit))
    truth = rng.random(n) < p
    if concept_drift_at is not None:
        truth = np.where(idx >= concept_drift_at, ~truth, truth)
    keep_label = rng.random(n) < labelled
    times = t0 + idx / rate
    items: list[tuple[float, int, Prediction | GroundTruth]] = []
    for k in range(n):
        i = int(idx[k])
        event_id = f"{model}-{version}-{i}"
        features = {
            "tenure_months": float(round(tenure[k], 1)),
            "monthly_charges": float(round(charges[k], 2)),
            "x_unused": float(unused[k]),
            "plan": PLANS[int(plan[k])],
        }
        t = float(times[k])
        items.append((t, 0, Prediction(event_id, model, features, float(p[k]), version, t)))
        if keep_label[k]:
            lt = t + label_delay
            items.append((lt, 1, GroundTruth(event_id, model, float(truth[k]), lt)))
    items.sort(key=lambda item: (item[0], item[1]))
    return [InputRecord(event, partition, offset, t) for offset, (t, _, event) in enumerate(items)]


def batches(records: list[InputRecord], size: int) -> list[list[InputRecord]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


def run(engine: object, records: list[InputRecord], size: int = 500) -> tuple[list, list]:
    """Feed ``records`` in batches; all alerts and retrain requests, in order."""
    alerts: list = []
    requests: list = []
    for batch in batches(records, size):
        out = engine.process(batch)  # type: ignore[attr-defined]
        alerts.extend(out.alerts)
        requests.extend(out.retrain_requests)
    return alerts, requests
