"""The errors the runner raises, from driftradar's one error tree (:mod:`streams.core.errors`)."""

from __future__ import annotations

from streams.core.errors import ConsumeError, TopicLayoutError, UnreachableError

__all__ = ["ConsumeError", "TopicLayoutError", "UnreachableError"]
