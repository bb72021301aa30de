"""driftradar's exceptions: one root, and one class per kind of failure an operator must fix.

The command line (:mod:`streams.cli`) turns any of them into one line on stderr and an exit
code: ``exit_code`` 2 for a bad configuration or argument, 1 for a service, topic,
checkpoint or publish that cannot be used. Each module raises the kind that fits, with a
message that says what and where (passwords hidden).

>>> error = ConfigError("retrain.cooldown_seconds", "must be a number >= 0")
>>> str(error), error.key, error.exit_code
('retrain.cooldown_seconds: must be a number >= 0', 'retrain.cooldown_seconds', 2)
>>> isinstance(error, ValueError), UnreachableError("cannot reach Redis").exit_code
(True, 1)
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "CheckpointError",
    "ConfigError",
    "ConsumeError",
    "DriftradarError",
    "EventDecodeError",
    "PublishError",
    "TopicLayoutError",
    "UnreachableError",
    "UsageError",
]


class DriftradarError(Exception):
    """Root of every error driftradar raises on purpose; ``exit_code`` is what the CLI returns."""

    exit_code: ClassVar[int] = 1


class ConfigError(DriftradarError, ValueError):
    """A bad setting. ``key`` names it — a dotted config path (``checkpoint.every_events``),
    an option (``--lease-seconds``) or an environment variable — and ``problem`` says what
    is wrong with it."""

    exit_code = 2

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class UsageError(DriftradarError, ValueError):
    """A command-line argument the command cannot work with; the message names the option."""

    exit_code = 2


class UnreachableError(DriftradarError):
    """A service (the broker, Redis, an HTTP endpoint) does not answer; says which and where."""


class ConsumeError(DriftradarError):
    """A Kafka consumer reported an error it cannot recover from."""


class TopicLayoutError(DriftradarError):
    """A topic is missing or cannot be created, or topics that must agree do not (partitions)."""


class CheckpointError(DriftradarError):
    """A checkpoint could not be saved or loaded (refused, corrupt, or Redis failed)."""


class PublishError(DriftradarError):
    """A message could not be delivered; progress must not be checkpointed past it."""


class EventDecodeError(DriftradarError, ValueError):
    """A message that breaks the contract; ``field`` is a JSON path such as ``$.features``."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem

    @property
    def reason(self) -> str:
        return str(self)
