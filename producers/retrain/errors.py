"""The retrain worker's errors, rooted in one exception."""

from __future__ import annotations

__all__ = ["ActionError", "ConfigError", "RetrainError"]


class RetrainError(Exception):
    """Root of the retrain worker's errors."""


class ConfigError(RetrainError, ValueError):
    """A bad setting; the message names the option, environment variable or config key."""


class ActionError(RetrainError):
    """An action attempt failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
