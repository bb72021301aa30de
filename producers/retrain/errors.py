"""The retrain worker's errors, in driftradar's one error tree (:mod:`streams.core.errors`).

A bad setting is the project's :class:`ConfigError` (re-exported here); what goes wrong
while acting on a request is an :class:`ActionError`.
"""

from __future__ import annotations

from streams.core.errors import ConfigError, DriftradarError

__all__ = ["ActionError", "ConfigError", "RetrainError"]


class RetrainError(DriftradarError):
    """Root of the retrain worker's own errors."""


class ActionError(RetrainError):
    """An action attempt failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
