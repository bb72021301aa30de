"""The runner's errors: the kinds of :mod:`streams.core.errors` it raises, and its own."""

from __future__ import annotations

from streams.core.errors import ConsumeError, TopicLayoutError, UnreachableError

__all__ = ["ConsumeError", "OutageError", "TopicLayoutError", "UnreachableError"]


class OutageError(UnreachableError):
    """Redis or the broker stayed unavailable longer than the monitor rides out."""
