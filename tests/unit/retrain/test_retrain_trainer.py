"""The local trainer's model: fit, score, and the deployed parameter format."""

from __future__ import annotations

import math

import numpy as np
import pytest

from producers.retrain.trainer import fit_logistic, predict_many, predict_proba, score
from streams.core.events import Deployment, decode_deployment, encode

PLANS = ("basic", "standard", "premium")
TRUE_EFFECT = {"basic": 0.8, "standard": 0.0, "premium": -0.9}


def churn_rows(n: int, seed: int) -> tuple[list[dict[str, float | str | bool | None]], np.ndarray]:
    """Churn-like events: churn falls with tenure, rises with charges, depends on plan."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, float | str | bool | None]] = []
    labels = np.empty(n)
    for i in range(n):
        tenure = float(rng.integers(1, 72))
        charges = float(rng.normal(70, 20))
        plan = PLANS[int(rng.integers(0, 3))]
        paperless = bool(rng.random() < 0.5)
        z = 1.0 - 0.06 * tenure + 0.03 * (charges - 70) + TRUE_EFFECT[plan] + 0.3 * paperless
        labels[i] = float(rng.random() < 1 / (1 + math.exp(-z)))
        row: dict[str, float | str | bool | None] = {
            "tenure_months": tenure,
            "monthly_charges": charges if rng.random() > 0.05 else None,  # some missing
            "plan": plan,
            "paperless": paperless,
        }
        rows.append(row)
    return rows, labels


def test_fit_beats_a_deliberately_wrong_model() -> None:
    rows, labels = churn_rows(3000, seed=1)
    params = fit_logistic(rows[:2000], labels[:2000])
    held_rows, held_y = rows[2000:], labels[2000:]
    candidate = score(held_y, predict_many(params, held_rows))
    # The "current" model got the tenure effect backwards.
    wrong = [1 / (1 + math.exp(-(-3.0 + 0.06 * float(r["tenure_months"])))) for r in held_rows]  # type: ignore[arg-type]
    current = score(held_y, wrong)
    assert candidate.log_loss < current.log_loss - 0.1
    assert candidate.auc is not None
    assert current.auc is not None
    assert candidate.auc > 0.75 > current.auc
    assert candidate.accuracy > current.accuracy


def test_recovers_the_direction_of_each_effect() -> None:
    rows, labels = churn_rows(4000, seed=2)
    params = fit_logistic(rows, labels, l2=0.1)
    assert params.numeric["tenure_months"].coef == pytest.approx(-0.06, abs=0.02)
    assert params.numeric["monthly_charges"].coef == pytest.approx(0.03, abs=0.015)
    assert params.numeric["paperless"].coef > 0  # booleans are 0/1 numbers
    plans = params.categorical["plan"]
    assert plans["basic"] > plans["standard"] > plans["premium"]
    # The fill of a numeric feature is its training mean.
    present = [r["monthly_charges"] for r in rows if r["monthly_charges"] is not None]
    assert params.numeric["monthly_charges"].fill == pytest.approx(float(np.mean(present)))  # type: ignore[arg-type]


def test_parameters_apply_to_raw_events_as_documented() -> None:
    rows, labels = churn_rows(500, seed=3)
    params = fit_logistic(rows, labels)
    event = {"tenure_months": 10, "monthly_charges": None, "plan": "premium", "extra": "x"}
    z = (
        params.intercept
        + params.numeric["tenure_months"].coef * 10
        + params.numeric["monthly_charges"].coef * params.numeric["monthly_charges"].fill
        + params.numeric["paperless"].coef * params.numeric["paperless"].fill
        + params.categorical["plan"]["premium"]
    )
    assert predict_proba(params, event) == pytest.approx(1 / (1 + math.exp(-z)))
    # An unseen category contributes nothing.
    unseen = dict(event, plan="enterprise")
    z_unseen = z - params.categorical["plan"]["premium"]
    assert predict_proba(params, unseen) == pytest.approx(1 / (1 + math.exp(-z_unseen)))


def test_deployment_round_trips_through_json() -> None:
    rows, labels = churn_rows(300, seed=4)
    params = fit_logistic(rows, labels)
    deployment = Deployment(
        model_id="churn",
        model_version="v4",
        parameters=params,
        evaluation={"metric": "log_loss", "candidate": {"log_loss": 0.4}},
        deployed_at="2026-11-27T10:06:00.000Z",
        request_id="r1",
        previous_version="v3",
    )
    again = decode_deployment(encode(deployment))
    assert again == deployment
    assert predict_proba(again.parameters, rows[0]) == predict_proba(params, rows[0])


def test_auc_matches_pairwise_counting_with_ties() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 200).astype(float)
    p = np.round(rng.random(200), 1)  # many ties
    pos, neg = p[y == 1], p[y == 0]
    pairs = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    assert score(y, p).auc == pytest.approx(pairs / (len(pos) * len(neg)))
    assert score([1, 1], [0.2, 0.9]).auc is None


@pytest.mark.parametrize(
    ("rows", "labels", "message"),
    [
        ([], [], "no rows to fit"),
        ([{"x": 1.0}], [1.0, 0.0], "differ in length"),
        ([{"x": 1.0}, {"x": 2.0}], [1.0, 0.5], "labels must be 0 or 1"),
    ],
)
def test_bad_training_input(
    rows: list[dict[str, float]], labels: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        fit_logistic(rows, labels)  # type: ignore[arg-type]
