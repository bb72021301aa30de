"""What an action decided for a request, and the ``retrain-results`` event made of it.

An action returns a :class:`Decision`: ``deployed`` (a new version went live),
``declined`` (no new version, and why), or ``handed_over`` (an external pipeline took the
request and reports the outcome itself; the worker publishes no result for it). ``failed``
is never an action's answer: the worker decides it when the attempts run out.

The one log line of a result is :func:`streams.core.events.describe_result`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from streams.core.events import RetrainRequest, RetrainResult, result_id, rfc3339

__all__ = [
    "DECLINED",
    "DEPLOYED",
    "FAILED",
    "HANDED_OVER",
    "Decision",
    "failed_result",
    "result_of",
]

DEPLOYED: Final = "deployed"
DECLINED: Final = "declined"
FAILED: Final = "failed"
#: An external pipeline took the request and reports its outcome to ``retrain-results``.
HANDED_OVER: Final = "handed_over"


@dataclass(frozen=True)
class Decision:
    """An action's answer. ``details`` are action-specific (HTTP status, pipeline id)."""

    outcome: str
    reason: str
    deployed_version: str | None = None
    evaluation: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.outcome not in (DEPLOYED, DECLINED, HANDED_OVER):
            raise ValueError(f"an action decides deployed, declined or handed_over, not {self!r}")
        if (self.outcome == DEPLOYED) != (self.deployed_version is not None):
            raise ValueError("deployed_version is given exactly when the outcome is deployed")

    @classmethod
    def deployed(
        cls,
        version: str,
        reason: str,
        evaluation: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> Decision:
        return cls(DEPLOYED, reason, version, dict(evaluation or {}), dict(details or {}))

    @classmethod
    def declined(
        cls,
        reason: str,
        evaluation: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
    ) -> Decision:
        return cls(DECLINED, reason, None, dict(evaluation or {}), dict(details or {}))

    @classmethod
    def handed_over(cls, reason: str, details: dict[str, Any] | None = None) -> Decision:
        return cls(HANDED_OVER, reason, None, {}, dict(details or {}))


def result_of(
    request: RetrainRequest, decision: Decision, attempts: int, now: float
) -> RetrainResult:
    """The ``retrain-results`` event of a deployed or declined decision."""
    if decision.outcome == HANDED_OVER:
        raise ValueError("a handed-over request is reported by the pipeline that took it")
    return RetrainResult(
        result_id=result_id(request.request_id),
        request_id=request.request_id,
        model_id=request.model_id,
        outcome=decision.outcome,
        reason=decision.reason,
        decided_at=rfc3339(now),
        model_version=request.model_version,
        deployed_version=decision.deployed_version,
        evaluation=decision.evaluation,
        attempts=attempts,
    )


def failed_result(request: RetrainRequest, error: str, attempts: int, now: float) -> RetrainResult:
    """The ``retrain-results`` event of a request whose attempts ran out."""
    return RetrainResult(
        result_id=result_id(request.request_id),
        request_id=request.request_id,
        model_id=request.model_id,
        outcome=FAILED,
        reason=error,
        decided_at=rfc3339(now),
        model_version=request.model_version,
        attempts=attempts,
    )
