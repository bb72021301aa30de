"""Bounded label values: caps per label family, and dead-letter reasons folded to a few kinds.

Prometheus keeps one time series per label combination, so a label fed by user data (model
ids, feature names, a free-text reason) must have a ceiling (dead-letter reasons fold to
:data:`~streams.core.dead_letter.REASON_KINDS`). :class:`LabelCap` admits the
first ``limit`` distinct values it sees and refuses later ones; the caller then folds the
refused value into ``_other`` (counters) or drops the sample and counts the drop (gauges).

>>> cap = LabelCap("model_id", limit=2)
>>> [cap.admit(v) for v in ("churn", "fraud", "churn", "ltv")]
[True, True, True, False]
>>> cap.fold("ltv")
'_other'
>>> reason_kind("$: invalid JSON (JSON is malformed: invalid character (byte 4))")
'invalid_json'
>>> reason_kind("$.features: required field is missing")
'schema'
"""

from __future__ import annotations

import threading
from typing import Final

from streams.core.dead_letter import REASON_KINDS, reason_kind

__all__ = ["MAX_LABEL_LENGTH", "OTHER", "REASON_KINDS", "LabelCap", "clip", "reason_kind"]

#: Label value that collects everything beyond a cap.
OTHER: Final = "_other"
#: Longest label value kept; longer ones are cut (ids are at most 256 characters anyway).
MAX_LABEL_LENGTH: Final = 128


def clip(value: str) -> str:
    """Cut a label value to :data:`MAX_LABEL_LENGTH` characters.

    >>> len(clip("x" * 500))
    128
    """
    return value if len(value) <= MAX_LABEL_LENGTH else value[:MAX_LABEL_LENGTH]


class LabelCap:
    """Admit at most ``limit`` distinct values of one label; thread-safe, never forgets."""

    def __init__(self, label: str, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"label cap for {label!r}: limit must be >= 1, got {limit}")
        self.label = label
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def admit(self, value: str) -> bool:
        """Whether ``value`` may be a label value (already seen, or room is left)."""
        if value in self._seen:
            return True
        with self._lock:
            if len(self._seen) >= self.limit:
                return False
            self._seen.add(value)
            return True

    def fold(self, value: str) -> str:
        """``value`` if admitted, else :data:`OTHER`."""
        return value if self.admit(value) else OTHER

    def __len__(self) -> int:
        return len(self._seen)
