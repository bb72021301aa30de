"""The simulator's scenarios: what the churn world looks like before and after the change point.

A :class:`Regime` fixes the customer population, the world's churn rule, the model's rule
and whether inputs are corrupted; a :class:`Scenario` switches from ``before`` to ``after``
at the change point (and, for ``outage``, stops the model for a while there).

>>> sorted(SCENARIOS)
['concept-drift', 'data-drift', 'label-noise', 'outage', 'prediction-drift', 'quality', 'stable']
>>> SCENARIOS["concept-drift"].after.population == SCENARIOS["concept-drift"].before.population
True
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from producers.churn import MODEL_COEFFICIENTS, REFERENCE_POPULATION, Coefficients, Population

__all__ = ["SCENARIOS", "Regime", "Scenario"]


@dataclass(frozen=True, slots=True)
class Regime:
    """One stretch of the stream: who the customers are, how they churn, what the model does."""

    population: Population = REFERENCE_POPULATION
    world: Coefficients = MODEL_COEFFICIENTS
    model: Coefficients = MODEL_COEFFICIENTS
    corrupt: bool = False


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named change: ``before`` the change point, then ``after`` it."""

    name: str
    changes: str
    before: Regime = Regime()
    after: Regime = Regime()
    outage: bool = False


_NORMAL: Final = Regime()

#: New, pricier, less committed customers; they churn by the same rule as before.
_DRIFTED_POPULATION: Final = Population(
    tenure_scale=12.0,
    charges_mean=80.0,
    support_calls_mean=2.0,
    contract_p=(0.65, 0.20, 0.15),
    payment_p=(0.50, 0.20, 0.18, 0.12),
)
#: Support calls now mean an engaged customer, long contracts no longer hold customers,
#: payment method and tenure hardly matter: the model's rule is wrong, its inputs are not.
_NEW_WORLD: Final = Coefficients(
    intercept=-0.5,
    tenure_months=-0.01,
    monthly_charges=0.0,
    support_calls=-0.3,
    age=0.0,
    contract=(0.0, 0.5, 0.8),
    payment_method=(-0.5, 0.3, 0.3, 0.3),
)
#: A broken labelling job: every outcome is a coin flip, whatever the customer. The model's
#: error rises like under concept drift, but no model can do better: retraining must decline.
_COIN_FLIP: Final = Coefficients(
    intercept=0.0,
    tenure_months=0.0,
    monthly_charges=0.0,
    support_calls=0.0,
    age=0.0,
    contract=(0.0, 0.0, 0.0),
    payment_method=(0.0, 0.0, 0.0, 0.0),
)
#: A feature-pipeline bug: the model receives tenure in years, not months.
_TENURE_IN_YEARS: Final = replace(
    MODEL_COEFFICIENTS, tenure_months=MODEL_COEFFICIENTS.tenure_months / 12
)

SCENARIOS: Final[dict[str, Scenario]] = {
    scenario.name: scenario
    for scenario in (
        Scenario("stable", "nothing: one regime throughout", _NORMAL, _NORMAL),
        Scenario(
            "data-drift",
            "inputs: newer, pricier, month-to-month customers; same churn rule",
            _NORMAL,
            Regime(population=_DRIFTED_POPULATION),
        ),
        Scenario(
            "concept-drift",
            "the world's churn rule; same inputs, same model, so its error rises",
            _NORMAL,
            Regime(world=_NEW_WORLD),
        ),
        Scenario(
            "label-noise",
            "the ground truth: labels become coin flips (a broken labelling job); no "
            "retrained model can do better",
            _NORMAL,
            Regime(world=_COIN_FLIP),
        ),
        Scenario(
            "prediction-drift",
            "the model's output: it reads tenure in years (scaling bug), churn risk jumps",
            _NORMAL,
            Regime(model=_TENURE_IN_YEARS),
        ),
        Scenario(
            "quality",
            "data quality: nulls, out-of-range values, unseen categories, malformed messages",
            _NORMAL,
            Regime(corrupt=True),
        ),
        Scenario(
            "outage",
            "nothing is published for --outage-seconds (the model server is down)",
            _NORMAL,
            _NORMAL,
            outage=True,
        ),
    )
}
