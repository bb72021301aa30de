"""Dead letters: a message that cannot be used is kept, with where it came from and why.

The record keeps the original bytes (key and value), the source topic, partition and offset,
and the reason, so nothing is dropped silently and the message can be replayed after a fix.

>>> letter = dead_letter("predictions", 2, 41, b"churn", b"{not json", "$: not a JSON object")
>>> letter.topic, letter.partition, letter.offset, letter.value
('predictions', 2, 41, b'{not json')
>>> model_hint(letter.key)
'churn'
"""

from __future__ import annotations

from streams.events import DeadLetter, rfc3339

__all__ = ["dead_letter", "model_hint"]


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
    """The dead-letter record of one unusable message."""
    return DeadLetter(
        topic=topic,
        partition=partition,
        offset=offset,
        reason=reason,
        value=value,
        key=key,
        failed_at="" if failed_at is None else rfc3339(failed_at),
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
