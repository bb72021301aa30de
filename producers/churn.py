"""A synthetic customer-churn world: who the customers are, why they leave, what the model says.

Customers are drawn from a :class:`Population` (vectorised with numpy); whether one churns is
a Bernoulli draw of the *world's* logistic rule, while the deployed model applies its own
logistic rule (:class:`Coefficients`) to the same inputs. While the two rules agree the model
is well calibrated; scenarios (:mod:`producers.scenarios`) change one of them, or the inputs.

>>> rng = np.random.default_rng(0)
>>> customers = sample_customers(rng, 10_000, REFERENCE_POPULATION)
>>> risk = churn_probability(MODEL_COEFFICIENTS, customers)
>>> round(float(risk.mean()), 2)
0.26

The simulator's model server starts with :data:`MODEL_COEFFICIENTS` as version ``v1`` (the
``--model-version`` of ``driftradar simulate``); :func:`model_parameters` is the same rule
as deployable :class:`~streams.core.events.LogisticParameters`, which the retrain worker and the
benchmarks use to score that first version like any deployed one:

>>> from producers.serving import served_probabilities
>>> columns = {name: getattr(customers, name) for name in NUMERIC}
>>> columns["contract"] = np.asarray(CONTRACTS)[customers.contract]
>>> columns["payment_method"] = np.asarray(PAYMENT_METHODS)[customers.payment_method]
>>> served = served_probabilities(model_parameters(MODEL_COEFFICIENTS), columns)
>>> bool(np.allclose(served, risk, rtol=0, atol=1e-12))
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from streams.core.events import LogisticParameters, NumericTerm

__all__ = [
    "CATEGORICAL",
    "CONTRACTS",
    "MODEL_COEFFICIENTS",
    "NUMERIC",
    "PAYMENT_METHODS",
    "RANGES",
    "REFERENCE_POPULATION",
    "Coefficients",
    "Customers",
    "Population",
    "churn_probability",
    "model_parameters",
    "sample_customers",
]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

CONTRACTS: Final = ("month-to-month", "one-year", "two-year")
PAYMENT_METHODS: Final = ("electronic-check", "credit-card", "bank-transfer", "mailed-check")
NUMERIC: Final = ("tenure_months", "monthly_charges", "total_charges", "support_calls", "age")
CATEGORICAL: Final = ("contract", "payment_method")
#: The valid range of each numeric feature (values outside are data-quality problems).
RANGES: Final[dict[str, tuple[float, float]]] = {
    "tenure_months": (0, 72),
    "monthly_charges": (18, 120),
    "total_charges": (0, 72 * 120 * 1.05),
    "support_calls": (0, 30),
    "age": (18, 90),
}


@dataclass(frozen=True, slots=True)
class Population:
    """The distribution customers are drawn from."""

    tenure_scale: float = 18.0  # gamma(shape 1.6, scale): mean ~29 months
    charges_mean: float = 65.0
    charges_sd: float = 22.0
    support_calls_mean: float = 1.5
    age_mean: float = 45.0
    age_sd: float = 14.0
    contract_p: tuple[float, float, float] = (0.55, 0.25, 0.20)
    payment_p: tuple[float, float, float, float] = (0.35, 0.25, 0.22, 0.18)


@dataclass(frozen=True, slots=True)
class Coefficients:
    """A logistic churn rule: ``P(churn) = sigmoid(intercept + w · features)``."""

    intercept: float = -1.4
    tenure_months: float = -0.045
    monthly_charges: float = 0.025
    support_calls: float = 0.45
    age: float = -0.012
    contract: tuple[float, float, float] = (0.0, -1.2, -2.2)
    payment_method: tuple[float, float, float, float] = (0.5, 0.0, -0.1, 0.1)


@dataclass(slots=True)
class Customers:
    """Column arrays, one row per customer; categoricals are indices into the value tuples.

    ``nan`` in a numeric column is a missing value; ``-1`` in a categorical column is a value
    the model never saw, named in ``unseen`` (same length, ``""`` elsewhere).
    """

    tenure_months: Floats
    monthly_charges: Floats
    total_charges: Floats
    support_calls: Floats
    age: Floats
    contract: Ints
    payment_method: Ints
    unseen: dict[str, npt.NDArray[np.str_]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tenure_months)


REFERENCE_POPULATION: Final = Population()
MODEL_COEFFICIENTS: Final = Coefficients()


def sample_customers(rng: np.random.Generator, count: int, population: Population) -> Customers:
    """Draw ``count`` customers (all values valid and present)."""
    low, high = RANGES["tenure_months"]
    tenure = np.clip(np.round(rng.gamma(1.6, population.tenure_scale, count)), low, high)
    low, high = RANGES["monthly_charges"]
    charges = np.clip(rng.normal(population.charges_mean, population.charges_sd, count), low, high)
    charges = np.round(charges, 2)
    total = np.round(tenure * charges * rng.uniform(0.95, 1.05, count), 2)
    calls = rng.poisson(population.support_calls_mean, count).astype(np.float64)
    low, high = RANGES["age"]
    age = np.clip(np.round(rng.normal(population.age_mean, population.age_sd, count)), low, high)
    return Customers(
        tenure_months=tenure,
        monthly_charges=charges,
        total_charges=total,
        support_calls=np.minimum(calls, RANGES["support_calls"][1]),
        age=age,
        contract=rng.choice(len(CONTRACTS), count, p=population.contract_p),
        payment_method=rng.choice(len(PAYMENT_METHODS), count, p=population.payment_p),
    )


def _typical(imputation: Population) -> dict[str, float]:
    """The value a missing numeric feature counts as (the population's typical one)."""
    return {
        "tenure_months": 1.6 * imputation.tenure_scale,
        "monthly_charges": imputation.charges_mean,
        "support_calls": imputation.support_calls_mean,
        "age": imputation.age_mean,
    }


def model_parameters(
    rule: Coefficients, imputation: Population = REFERENCE_POPULATION
) -> LogisticParameters:
    """``rule`` as deployable parameters: the same probabilities as :func:`churn_probability`
    for every event the simulator publishes (a missing value takes the typical one, an
    unseen category adds 0, ``total_charges`` is not used)."""
    return LogisticParameters(
        intercept=rule.intercept,
        numeric={
            name: NumericTerm(coef=getattr(rule, name), fill=fill)
            for name, fill in _typical(imputation).items()
        },
        categorical={
            "contract": dict(zip(CONTRACTS, rule.contract, strict=True)),
            "payment_method": dict(zip(PAYMENT_METHODS, rule.payment_method, strict=True)),
        },
    )


def churn_probability(
    rule: Coefficients, customers: Customers, imputation: Population = REFERENCE_POPULATION
) -> Floats:
    """``P(churn)`` under ``rule``; a missing value counts as the population's typical value,
    an unseen category as the baseline one (as a deployed model would treat them)."""
    typical = _typical(imputation)
    logit = np.full(len(customers), rule.intercept)
    for name, value in typical.items():
        column = getattr(customers, name)
        logit += getattr(rule, name) * np.where(np.isnan(column), value, column)
    for name in CATEGORICAL:
        effects = np.append(np.asarray(getattr(rule, name), dtype=np.float64), 0.0)
        logit += effects[getattr(customers, name)]  # index -1 (unseen) -> the appended 0
    result: Floats = 1.0 / (1.0 + np.exp(-logit))
    return result
