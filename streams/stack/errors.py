"""The local stack's exceptions, rooted in one class so callers can catch them all."""

from __future__ import annotations

from streams.core.errors import DriftradarError

__all__ = ["MissingBinaryError", "StackError", "StackStartupError", "StackStateError"]


class StackError(DriftradarError):
    """Any failure of the embedded local stack (broker or Redis)."""


class MissingBinaryError(StackError):
    """A server binary (``tansu`` or ``redis-server``) could not be found; says what to install."""


class StackStartupError(StackError):
    """A server process exited or did not answer in time; the message carries its log tail."""


class StackStateError(StackError):
    """The state directory (``.driftradar/``) holds a file that cannot be read or written."""
