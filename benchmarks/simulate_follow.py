"""What following deployments costs the churn simulator, generation only (no publishing).

Run ``python -m benchmarks.simulate_follow [--events N] [--repeat R]``. Every row generates
the same seeded ``concept-drift`` stream; the table gives the best of R interleaved passes
in events/s and the ratio to the plain simulator (the baseline), measured in the same run:

- following, nothing deployed: the deployment source is asked every 256 predictions;
- following, a deployment from event 0: every prediction from the deployed
  ``LogisticParameters`` (:func:`producers.serving.served_probabilities`, vectorised);
- the plain stream, then each prediction re-scored from its decoded event by the
  trainer's per-event ``predict_proba`` (the non-vectorised way to the same numbers; a
  check then confirms that both give bit-identical predictions);
- with ``--kafka`` also the cost of one look at a real deployments topic
  (:class:`~producers.deployment_feed.KafkaDeploymentFeed`, nothing new), on the broker of
  ``$KAFKA_BOOTSTRAP_SERVERS`` or a local one started for the run.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from producers.retrain.trainer import predict_proba
from producers.serving import DeploymentSource
from producers.simulator import Kind, Outgoing, Simulation, SimulationConfig
from streams.core.events import (
    Deployment,
    EventDecodeError,
    LogisticParameters,
    NumericTerm,
    decode_prediction,
)

__all__ = ["main"]

_PARAMS: Final = LogisticParameters(
    intercept=-0.6,
    numeric={
        "tenure_months": NumericTerm(-0.02, 28.8),
        "monthly_charges": NumericTerm(0.004, 65.0),
        "total_charges": NumericTerm(-0.0001, 1900.0),
        "support_calls": NumericTerm(-0.28, 1.5),
        "age": NumericTerm(-0.001, 45.0),
    },
    categorical={
        "contract": {"month-to-month": 0.0, "one-year": 0.48, "two-year": 0.79},
        "payment_method": {"electronic-check": -0.49, "credit-card": 0.28, "bank-transfer": 0.3},
    },
)
_DEPLOYMENT: Final = Deployment("churn", "v2", _PARAMS, {}, "2026-01-01T00:00:00Z", "bench", "v1")


def _nothing(position: int) -> Iterable[Deployment]:
    return ()


def _deploy_at_start(position: int) -> Iterable[Deployment]:
    return (_DEPLOYMENT,) if position == 0 else ()


def _generate(
    config: SimulationConfig, deployments: DeploymentSource | None = None
) -> Callable[[], int]:
    def run() -> int:
        return sum(1 for _ in Simulation(config, deployments=deployments))

    return run


def _per_event_reference(config: SimulationConfig) -> Callable[[], int]:
    """The plain stream, then every prediction re-scored by ``predict_proba`` from its event."""

    def run() -> int:
        items = [i for i in Simulation(config) if isinstance(i, Outgoing)]
        for item in items:
            if item.kind is Kind.PREDICTION:
                predict_proba(_PARAMS, decode_prediction(item.value).features)
        return len(items)

    return run


def _best(runs: Sequence[Callable[[], int]], repeat: int) -> list[float]:
    """Best time of each run over ``repeat`` rounds; rounds interleave the runs, so that a
    busy moment of the machine hits them all alike."""
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for k, run in enumerate(runs):
            started = time.perf_counter()
            run()
            best[k] = min(best[k], time.perf_counter() - started)
    return best


def _check_identical(config: SimulationConfig) -> bool:
    simulation = Simulation(config, deployments=_deploy_at_start)
    for item in simulation:
        if isinstance(item, Outgoing) and item.kind is Kind.PREDICTION:
            try:
                event = decode_prediction(item.value)
            except EventDecodeError:  # the scenario's malformed messages
                continue
            if event.prediction != predict_proba(_PARAMS, event.features):
                return False
    return True


def _kafka_poll_us(samples: int) -> float:
    from producers.deployment_feed import KafkaDeploymentFeed
    from streams.core.topics import ensure_topics
    from streams.stack import LocalStack

    def measure(bootstrap: str) -> float:
        ensure_topics(bootstrap, ["bench-deployments"], 1)
        with KafkaDeploymentFeed(bootstrap, "bench-deployments") as feed:
            started = time.perf_counter()
            for _ in range(samples):
                feed(0)
            return (time.perf_counter() - started) / samples * 1e6

    explicit = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if explicit:
        return measure(explicit)
    with LocalStack(redis=False) as stack:
        return measure(stack.bootstrap)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kafka", action="store_true", help="also time a real topic poll")
    args = parser.parse_args(argv)
    config = SimulationConfig(scenario="concept-drift", events=args.events, seed=1)
    rows = [
        ("plain simulator (baseline)", _generate(config)),
        ("following, nothing deployed", _generate(config, deployments=_nothing)),
        ("following, deployed from event 0", _generate(config, deployments=_deploy_at_start)),
        ("plain, then decode + predict_proba", _per_event_reference(config)),
    ]
    print(f"concept-drift, {args.events} events, best of {args.repeat}")
    print(f"| {'generation':<34} | {'events/s':>10} | {'vs baseline':>11} |")
    print(f"|{'-' * 36}|{'-' * 12}|{'-' * 13}|")
    times = _best([run for _, run in rows], args.repeat)
    baseline = args.events / times[0]
    for (name, _), seconds in zip(rows, times, strict=True):
        rate = args.events / seconds
        print(f"| {name:<34} | {rate:>10,.0f} | {rate / baseline:>10.2f}x |")
    identical = _check_identical(SimulationConfig(scenario="quality", events=20_000, seed=2))
    print(f"deployed predictions == predict_proba, bit for bit (quality scenario): {identical}")
    if args.kafka:
        print(f"one look at the deployments topic (nothing new): {_kafka_poll_us(20_000):.2f} µs")


if __name__ == "__main__":
    main()
