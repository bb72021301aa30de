"""The runner's error tree: one root, one class per kind of failure the operator must fix."""

from __future__ import annotations

__all__ = ["ConsumeError", "OutageError", "RunnerError", "TopicLayoutError", "UnreachableError"]


class RunnerError(Exception):
    """Root of the errors raised by the Kafka + Redis runner."""


class TopicLayoutError(RunnerError):
    """A topic is missing, or the two input topics are not co-partitioned."""


class UnreachableError(RunnerError):
    """The broker or Redis does not answer; the message names which and where."""


class ConsumeError(RunnerError):
    """The consumer reported an error it cannot recover from."""


class OutageError(UnreachableError):
    """Redis or the broker stayed unavailable longer than the monitor rides out."""
