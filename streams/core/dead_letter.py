"""Dead letters: a message that cannot be used is kept, with where it came from and why.

The record keeps the original bytes (key and value), the source topic, partition and offset,
and the reason, so nothing is dropped silently and the message can be replayed after a fix.
It must itself be publishable whatever the original was: a value larger than
:data:`MAX_VALUE_BYTES` is cut (``truncated``; ``size`` and ``sha256`` describe the whole
original), and key and reason are bounded too, so a dead letter never exceeds the producer's
message size.

>>> letter = dead_letter("predictions", 2, 41, b"churn", b"{not json", "$: not a JSON object")
>>> letter.topic, letter.partition, letter.offset, letter.value, letter.size, letter.truncated
('predictions', 2, 41, b'{not json', 9, False)
>>> model_hint(letter.key)
'churn'
>>> big = dead_letter("predictions", 0, 7, b"m", b"x" * 900_000, "$: invalid JSON")
>>> len(big.value), big.size, big.truncated, big.sha256[:12]
(262144, 900000, True, '5f76430825cb')
"""

from __future__ import annotations

import hashlib
from typing import Final

from streams.core.events import DeadLetter, rfc3339

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_REASON_CHARS",
    "MAX_VALUE_BYTES",
    "REASON_KINDS",
    "dead_letter",
    "model_hint",
    "reason_kind",
]

#: What dead-letter reasons are folded into (``driftradar_dead_letters_total{reason_kind}``
#: and the per-partition counts of ``driftradar status``): a bounded set, whatever the input.
REASON_KINDS: Final = (
    "invalid_json",
    "schema",
    "too_large",
    "unknown_model",
    "split_model",
    "other",
)

#: Most bytes of the original value a dead letter carries (base64 makes it 4/3 larger in
#: the record: ~350 KB, a third of the producer's default ``message.max.bytes``).
MAX_VALUE_BYTES: Final = 256 * 1024
#: Most bytes of the original key kept (it is also the dead letter's own Kafka key).
MAX_KEY_BYTES: Final = 1024
#: Most characters of the reason (messages quote parts of the input).
MAX_REASON_CHARS: Final = 2000


def dead_letter(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    *,
    failed_at: float | None = None,
) -> DeadLetter:
    """The dead-letter record of one unusable message, bounded in size."""
    size = 0 if value is None else len(value)
    truncated = size > MAX_VALUE_BYTES
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 1] + "…"
    return DeadLetter(
        topic=topic,
        partition=partition,
        offset=offset,
        reason=reason,
        value=value[:MAX_VALUE_BYTES] if value is not None and truncated else value,
        key=key[:MAX_KEY_BYTES] if key is not None else None,
        failed_at="" if failed_at is None else rfc3339(failed_at),
        size=size,
        sha256="" if value is None else hashlib.sha256(value).hexdigest(),
        truncated=truncated,
    )


def model_hint(key: bytes | None) -> str | None:
    """The model a bad message was probably about: its key (the contract keys by model_id).

    >>> model_hint(None), model_hint(b""), model_hint(b"\\xff")
    (None, None, None)
    """
    if not key:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return None


def reason_kind(reason: str | BaseException) -> str:
    """Fold a dead-letter reason (free text or exception) into one of :data:`REASON_KINDS`.

    A reason that already is a kind is kept. Decoder messages (``streams.core.events``) name the
    JSON path first: ``$`` problems are about the document, ``$.field`` ones about the schema.

    >>> reason_kind("$: invalid JSON (JSON is malformed: invalid character (byte 4))")
    'invalid_json'
    >>> reason_kind("$.features: required field is missing")
    'schema'
    >>> reason_kind("unknown model 'x9': partition 0 already monitors max_models=1000 models")
    'unknown_model'
    >>> reason_kind("model 'churn' is split across partitions: its events are on partition 0")
    'split_model'
    """
    text = str(reason)
    if text in REASON_KINDS:
        return text
    lowered = text.lower()
    if "invalid json" in lowered or "malformed" in lowered or "utf-8" in lowered:
        return "invalid_json"
    if "nested too deeply" in lowered:
        return "invalid_json"
    if "too large" in lowered or "too long" in lowered or "exceeds" in lowered:
        return "too_large"
    if "unknown model" in lowered:
        return "unknown_model"
    if "split across partitions" in lowered:
        return "split_model"
    if lowered.startswith("$") or "expected `" in lowered or "required field" in lowered:
        return "schema"
    return "other"
