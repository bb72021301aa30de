"""The demo's story as numbers: the timeline, the topics and the configuration it runs with.

A :class:`DemoPlan` is pure data computed from ``--duration`` and ``--rate``: how many
predictions each phase publishes, the event time at which each phase starts, the monitor's
configuration (one YAML document that ``driftradar run`` and ``driftradar retrain-worker``
both read) and the ``driftradar simulate`` command line of each phase.

The world follows two simulator scenarios back to back, so that every change is real:

1. ``data-drift`` with its change point after the *stable* stretch: new, pricier customers
   arrive; they churn by the same rule, so the model stays calibrated (AUC ≈ 0.80) and the
   retrain policy, which requires the AUC to be below its minimum, does not retrain.
2. ``concept-drift`` from its first event: the world's churn rule changes (the customer mix
   is back to normal), the served model's AUC falls to ≈ 0.43, the monitor requests
   retraining, the local trainer fits the new world on the request's window (AUC ≈ 0.66)
   and the simulated model server, following deployments, serves the new version.

>>> plan = DemoPlan(duration=150.0, rate=400.0)
>>> plan.stable_events, plan.drift_events, plan.concept_events
(8100, 12150, 33750)
>>> plan.concept_start - plan.start_time, plan.phase_at(30.0)
(50.625, 'data drift')
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Final

from streams.core.errors import UsageError
from streams.core.settings import DEFAULT_METRICS_PORT, DEPLOYMENTS_TOPIC, TOPICS

__all__ = [
    "FIRST_VERSION",
    "MIN_DURATION",
    "MIN_ROC_AUC",
    "MODEL_ID",
    "OVERHEAD_SECONDS",
    "PARTITIONS",
    "DemoPlan",
    "DemoTopics",
    "PlanError",
]

#: The simulated churn model's id.
MODEL_ID: Final = "churn"
#: The version the simulator starts with.
FIRST_VERSION: Final = "v1"
#: Shortest ``--duration`` that leaves room for the whole story.
MIN_DURATION: Final = 60.0
#: Wall-clock seconds of ``--duration`` kept for start-up and the summary, not simulated.
OVERHEAD_SECONDS: Final = 15.0
#: Shares of the simulated time: stable, then data drift; concept drift takes the rest.
STABLE_SHARE: Final = 0.15
DRIFT_SHARE: Final = 0.225
#: The policy's minimum acceptable ROC AUC (the served model: 0.81 before, 0.43 after the
#: concept drift; a model refitted on the new world reaches ~0.66).
MIN_ROC_AUC: Final = 0.55
#: Rolling performance window (joined pairs). The retrain policy is the default one: the
#: request's window starts at the detector's change point and waits for 1000 labelled pairs
#: of the new world (docs/retrain-worker.md).
PERFORMANCE_WINDOW: Final = 2000
#: Mean label delay, in predictions (the simulator's default is 200).
LABEL_DELAY: Final = 50.0
#: Partitions of every demo topic (one model: one partition carries all of it).
PARTITIONS: Final = 1


class PlanError(UsageError):
    """An option the demo cannot tell its story with (names the option)."""


@dataclass(frozen=True, slots=True)
class DemoTopics:
    """The seven topics of one demo run (``prefix`` keeps runs on a shared broker apart)."""

    prefix: str = ""

    def name(self, base: str) -> str:
        return self.prefix + base

    @property
    def predictions(self) -> str:
        return self.name(TOPICS.predictions)

    @property
    def ground_truth(self) -> str:
        return self.name(TOPICS.ground_truth)

    @property
    def alerts(self) -> str:
        return self.name(TOPICS.alerts)

    @property
    def retrain_requests(self) -> str:
        return self.name(TOPICS.retrain_requests)

    @property
    def dead_letter(self) -> str:
        return self.name(TOPICS.dead_letter)

    @property
    def retrain_results(self) -> str:
        return self.name(TOPICS.retrain_results)

    @property
    def deployments(self) -> str:
        return self.name(DEPLOYMENTS_TOPIC)

    def all(self) -> list[str]:
        return [
            self.predictions,
            self.ground_truth,
            self.alerts,
            self.retrain_requests,
            self.dead_letter,
            self.retrain_results,
            self.deployments,
        ]


@dataclass(frozen=True, slots=True)
class DemoPlan:
    """Timeline, configuration and commands of one demo run.

    ``start_time`` is the event time of the first prediction (epoch seconds; the simulator
    paces events at ``rate`` per second, so event time follows the wall clock).
    """

    duration: float = 150.0
    rate: float = 400.0
    seed: int = 1
    start_time: float = 0.0
    topics: DemoTopics = field(default_factory=DemoTopics)
    group_id: str = "driftradar-demo"
    metrics_port: int = DEFAULT_METRICS_PORT

    def __post_init__(self) -> None:
        if not math.isfinite(self.duration) or self.duration < MIN_DURATION:
            raise PlanError(
                f"--duration must be at least {MIN_DURATION:g} seconds (the whole story "
                f"needs them), got {self.duration:g}"
            )
        if not math.isfinite(self.rate) or not 100 <= self.rate <= 5000:
            raise PlanError(f"--rate must be between 100 and 5000 events/s, got {self.rate:g}")
        if self.seed < 0:
            raise PlanError(f"--seed must be >= 0, got {self.seed}")

    def unique(self) -> DemoPlan:
        """This plan with topics and groups no other run uses (for a shared broker/Redis)."""
        tag = uuid.uuid4().hex[:8]
        return replace(self, topics=DemoTopics(f"demo-{tag}-"), group_id=f"driftradar-demo-{tag}")

    # -- timeline -------------------------------------------------------------------------

    @property
    def simulated_seconds(self) -> float:
        return self.duration - OVERHEAD_SECONDS

    @property
    def stable_events(self) -> int:
        return round(self.simulated_seconds * STABLE_SHARE * self.rate)

    @property
    def drift_events(self) -> int:
        return round(self.simulated_seconds * DRIFT_SHARE * self.rate)

    @property
    def concept_events(self) -> int:
        total = round(self.simulated_seconds * self.rate)
        return total - self.stable_events - self.drift_events

    @property
    def drift_start(self) -> float:
        """Event time of the first data-drifted prediction."""
        return self.start_time + self.stable_events / self.rate

    @property
    def concept_start(self) -> float:
        """Event time of the first prediction in the changed world."""
        return self.start_time + (self.stable_events + self.drift_events) / self.rate

    def phase_at(self, event_time: float) -> str:
        """``stable``, ``data drift`` or ``concept drift``: the world at ``event_time``."""
        if event_time < self.drift_start:
            return "stable"
        if event_time < self.concept_start:
            return "data drift"
        return "concept drift"

    # -- configuration --------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The YAML document for ``driftradar run`` and ``driftradar retrain-worker``."""
        topics = self.topics
        return {
            "topics": {
                "predictions": topics.predictions,
                "ground_truth": topics.ground_truth,
                "alerts": topics.alerts,
                "retrain_requests": topics.retrain_requests,
                "dead_letter": topics.dead_letter,
                "retrain_results": topics.retrain_results,
            },
            "checkpoint": {"every_seconds": 1},
            "metrics_port": self.metrics_port,
            "models": {
                MODEL_ID: {
                    "warmup": 1000,
                    # a lean numeric set keeps the story readable: ADWIN follows the
                    # mean, PSI compares the distribution with the warm-up
                    "detectors": {"numeric": {"adwin": {}, "psi": {"stride": 250}}},
                    "performance": {
                        "window": PERFORMANCE_WINDOW,
                        "every": 100,
                        "thresholds": {"roc_auc": MIN_ROC_AUC},
                        "relative_drop": None,
                    },
                }
            },
            "retrain_worker": {
                "action": "local",
                "group_id": f"{self.group_id}-retrain-worker",
                "deployments_topic": topics.deployments,
                "backoff_base": 1.0,
                "max_attempts": 5,
            },
        }

    # -- commands -------------------------------------------------------------------------

    def simulate_args(self, phase: int) -> list[str]:
        """``driftradar simulate`` arguments of phase 1 (stable, then data drift) or 2
        (concept drift, following deployments)."""
        common = [
            "--rate",
            f"{self.rate:g}",
            "--model-id",
            MODEL_ID,
            "--label-delay",
            f"{LABEL_DELAY:g}",
            "--predictions-topic",
            self.topics.predictions,
            "--ground-truth-topic",
            self.topics.ground_truth,
            "--partitions",
            str(PARTITIONS),
        ]
        if phase == 1:
            return [
                "--scenario",
                "data-drift",
                "--events",
                str(self.stable_events + self.drift_events),
                "--change-at",
                str(self.stable_events),
                "--seed",
                str(self.seed),
                "--start-time",
                f"{self.start_time:.3f}",
                "--model-version",
                FIRST_VERSION,
                *common,
            ]
        if phase == 2:
            return [
                "--scenario",
                "concept-drift",
                "--events",
                str(self.concept_events),
                "--change-at",
                "0",
                "--seed",
                str(self.seed + 1000),  # other customers and event ids than phase 1
                "--start-time",
                f"{self.concept_start:.3f}",
                "--model-version",
                FIRST_VERSION,
                "--follow-deployments",
                "--deployments-topic",
                self.topics.deployments,
                *common,
            ]
        raise ValueError(f"phase must be 1 or 2, got {phase}")
