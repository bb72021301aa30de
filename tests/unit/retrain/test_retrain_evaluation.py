"""Champion vs challenger: the local trainer's decision on the same held-out rows."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from producers.churn import (
    CONTRACTS,
    MODEL_COEFFICIENTS,
    PAYMENT_METHODS,
    REFERENCE_POPULATION,
    Coefficients,
    churn_probability,
    model_parameters,
    sample_customers,
)
from producers.retrain.dataset import LabelledEvent
from producers.retrain.errors import ConfigError
from producers.retrain.evaluation import (
    CurrentModel,
    DecisionRules,
    auc_interval,
    compare,
)
from producers.retrain.trainer import score
from producers.scenarios import SCENARIOS

NEW_WORLD = SCENARIOS["concept-drift"].after.world
V1 = model_parameters(MODEL_COEFFICIENTS)


def events(
    count: int, *, seed: int, world: Coefficients, served: Coefficients = MODEL_COEFFICIENTS
) -> list[LabelledEvent]:
    """Churn events one second apart: the model served ``served``, labels follow ``world``."""
    rng = np.random.default_rng(seed)
    customers = sample_customers(rng, count, REFERENCE_POPULATION)
    predictions = np.round(churn_probability(served, customers), 6)
    labels = rng.random(count) < churn_probability(world, customers)
    return [
        LabelledEvent(
            event_id=f"e{i}",
            event_time=1_800_000_000.0 + i,
            model_version="v1",
            features={
                "tenure_months": float(customers.tenure_months[i]),
                "monthly_charges": float(customers.monthly_charges[i]),
                "total_charges": float(customers.total_charges[i]),
                "support_calls": float(customers.support_calls[i]),
                "age": float(customers.age[i]),
                "contract": CONTRACTS[int(customers.contract[i])],
                "payment_method": PAYMENT_METHODS[int(customers.payment_method[i])],
            },
            prediction=float(predictions[i]),
            label=int(labels[i]),
        )
        for i in range(count)
    ]


def test_a_candidate_fitted_after_the_change_beats_the_old_model_on_the_same_rows() -> None:
    window = events(2000, seed=1, world=NEW_WORLD)
    result = compare(window, CurrentModel("v1", V1), DecisionRules())
    assert result.code == "deploy"
    assert result.deploy
    assert result.candidate is not None
    evaluation = result.evaluation
    assert (evaluation["train_rows"], evaluation["holdout_rows"]) == (1500, 500)
    candidate, current = evaluation["candidate"], evaluation["current"]
    assert candidate["rows"] == current["rows"] == 500  # the same held-out rows
    assert current["version"] == "v1"
    assert current["source"] == "parameters"
    assert candidate["auc"] > 0.6 > 0.5 > current["auc"]  # the old rule is now backwards
    assert candidate["log_loss"] < current["log_loss"]
    assert evaluation["gain_lower"] > 0
    assert evaluation["candidate_auc_lower"] > 0.5
    # the figures are those of the newest 25 %, recomputed independently
    held = window[1500:]
    labels = [float(e.label) for e in held]
    assert current["log_loss"] == pytest.approx(
        score(labels, [e.prediction for e in held]).log_loss, abs=1e-5
    )
    assert evaluation["holdout_start"] == "2027-01-15T08:25:00.000Z"
    assert result.reason.startswith("better than the current model by the margin (roc_auc ")


def test_served_predictions_and_deployed_parameters_score_the_first_version_alike() -> None:
    window = events(1200, seed=2, world=NEW_WORLD)
    by_parameters = compare(window, CurrentModel("v1", V1), DecisionRules()).evaluation
    by_served = compare(window, CurrentModel("v1"), DecisionRules()).evaluation
    assert by_served["current"]["source"] == "served"
    for metric in ("auc", "log_loss", "accuracy"):
        assert by_served["current"][metric] == pytest.approx(
            by_parameters["current"][metric], abs=1e-5
        )


@pytest.mark.parametrize("seed", range(5))
def test_labels_that_are_noise_are_declined_as_no_better_than_chance(seed: int) -> None:
    window = events(3000, seed=seed, world=Coefficients(0.0, 0, 0, 0, 0, (0, 0, 0), (0, 0, 0, 0)))
    result = compare(window, CurrentModel("v1", V1), DecisionRules())
    # a constant would beat the old model's log loss, but it ranks nobody: not deployed
    assert result.code == "no_signal"
    assert result.candidate is None
    assert result.reason.startswith("the candidate ranks the held-out rows no better than chance")
    assert "lower bound" in result.reason


def test_a_current_model_that_is_right_is_not_beaten() -> None:
    window = events(4000, seed=3, world=MODEL_COEFFICIENTS)
    result = compare(window, CurrentModel("v1", V1), DecisionRules())
    assert result.code == "not_better"
    assert result.reason.startswith("not better than the current model by the margin (")
    assert result.evaluation["better"] is False
    assert result.evaluation["gain_lower"] <= 0


def test_a_change_of_calibration_alone_is_worth_a_deployment() -> None:
    # The world churns more, by the same ranking: same AUC, much better log loss.
    window = events(3000, seed=4, world=replace(MODEL_COEFFICIENTS, intercept=0.2))
    result = compare(window, CurrentModel("v1", V1), DecisionRules())
    assert result.code == "deploy"
    evaluation = result.evaluation
    assert evaluation["candidate"]["auc"] == pytest.approx(evaluation["current"]["auc"], abs=0.02)
    assert evaluation["gain"] > 0.05


def test_the_margin_is_on_the_log_loss_gain() -> None:
    window = events(2000, seed=5, world=NEW_WORLD)
    gain = compare(window, CurrentModel("v1", V1), DecisionRules()).evaluation["gain"]
    strict = compare(window, CurrentModel("v1", V1), DecisionRules(min_improvement=gain))
    assert strict.code == "not_better"
    assert f"margin {gain:g}" in strict.reason


def test_too_few_rows_are_declined_with_the_counts() -> None:
    result = compare(events(150, seed=6, world=NEW_WORLD), CurrentModel("v1"), DecisionRules())
    assert result.code == "too_few_rows"
    assert result.reason == "too few rows (150 labelled events in the window, need 200)"
    assert result.evaluation["window_rows"] == 150
    assert result.evaluation["min_rows"] == 200


def test_rows_that_cannot_train_a_binary_model_are_declined() -> None:
    window = events(400, seed=7, world=NEW_WORLD)
    one_class = [replace(e, label=0) for e in window]
    result = compare(one_class, CurrentModel("v1"), DecisionRules())
    assert result.code == "training_failed"
    assert result.reason == "training failed (the 300 training rows hold one class only)"
    graded = [replace(e, label=0.3) if i == 7 else e for i, e in enumerate(window)]
    result = compare(graded, CurrentModel("v1"), DecisionRules())
    assert result.code == "training_failed"
    assert "label 0.3 is not binary" in result.reason


def test_served_labels_that_are_not_probabilities_need_the_parameters() -> None:
    window = [replace(e, prediction="churn") for e in events(400, seed=8, world=NEW_WORLD)]
    result = compare(window, CurrentModel("v1"), DecisionRules())
    assert result.code == "training_failed"
    assert "served prediction 'churn' is not a probability" in result.reason
    assert compare(window, CurrentModel("v1", V1), DecisionRules()).code != "training_failed"


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"holdout": 1.0}, "--holdout: must be between 0 and 1"),
        ({"min_rows": 3}, "--min-rows: must be >= 8"),
        ({"min_improvement": -0.1}, "--min-improvement: must be >= 0"),
        ({"confidence": 1.0}, "--confidence: must be >= 0.5 and < 1"),
    ],
)
def test_bad_rules_name_the_option(rules: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DecisionRules(**rules)  # type: ignore[arg-type]


def test_auc_interval_matches_the_pairwise_definition() -> None:
    rng = np.random.default_rng(9)
    labels = (rng.random(300) < 0.3).astype(float)
    scores = np.round(0.7 * rng.random(300) + 0.3 * labels, 2)  # ties on purpose
    auc, se = auc_interval(labels, scores)  # type: ignore[misc]
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)]
    assert auc == pytest.approx(np.mean(pairs))
    assert auc == pytest.approx(score(labels, scores).auc)
    # DeLong's standard error agrees with a bootstrap of the same rows
    boot = []
    for _ in range(400):
        pick = rng.integers(0, 300, 300)
        interval = auc_interval(labels[pick], scores[pick])
        if interval is not None:
            boot.append(interval[0])
    assert se == pytest.approx(float(np.std(boot)), rel=0.2)
    assert auc_interval([1, 1], [0.2, 0.4]) is None
