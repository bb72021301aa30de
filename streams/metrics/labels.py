"""Bounded label values: caps per label family, and dead-letter reasons folded to a few kinds.

Prometheus keeps one time series per label combination, so a label fed by user data (model
ids, feature names, a free-text reason) must have a ceiling. :class:`LabelCap` admits the
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

__all__ = ["MAX_LABEL_LENGTH", "OTHER", "REASON_KINDS", "LabelCap", "clip", "reason_kind"]

#: Label value that collects everything beyond a cap.
OTHER: Final = "_other"
#: Longest label value kept; longer ones are cut (ids are at most 256 characters anyway).
MAX_LABEL_LENGTH: Final = 128
#: The ``reason_kind`` values of ``driftradar_dead_letters_total``.
REASON_KINDS: Final = ("invalid_json", "schema", "too_large", "unknown_model", "other")


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


def reason_kind(reason: str | BaseException) -> str:
    """Fold a dead-letter reason (free text or exception) into one of :data:`REASON_KINDS`.

    A reason that already is a kind is kept. Decoder messages (``streams.events``) name the
    JSON path first: ``$`` problems are about the document, ``$.field`` ones about the schema.
    """
    text = str(reason)
    if text in REASON_KINDS:
        return text
    lowered = text.lower()
    if "invalid json" in lowered or "malformed" in lowered or "utf-8" in lowered:
        return "invalid_json"
    if "too large" in lowered or "too long" in lowered or "exceeds" in lowered:
        return "too_large"
    if "unknown model" in lowered:
        return "unknown_model"
    if lowered.startswith("$") or "expected `" in lowered or "required field" in lowered:
        return "schema"
    return "other"
