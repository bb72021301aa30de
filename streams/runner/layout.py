"""Startup check of the topic layout: every topic exists and the inputs are co-partitioned.

A model's predictions, ground truth and retrain decisions must land on the same partition
number of their topics, so that one monitor instance owns the model; that needs equal
partition counts.

>>> check_layout({"predictions": 4, "ground-truth": 4, "drift-alerts": 1},
...              ("predictions", "ground-truth"), ("drift-alerts",))
4
>>> check_layout({"predictions": 6, "ground-truth": 4}, ("predictions", "ground-truth"), ())
... # doctest: +ELLIPSIS
Traceback (most recent call last):
...
streams.core.errors.TopicLayoutError: ... 'predictions' has 6 partitions and 'ground-truth'...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from streams.runner.errors import TopicLayoutError

__all__ = ["check_layout"]


def check_layout(
    counts: Mapping[str, int | None],
    inputs: Sequence[str],
    outputs: Sequence[str],
) -> int:
    """The shared partition count of the consumed ``inputs``; raise if the layout is unusable.

    ``counts`` maps topic name to partition count, ``None`` (or absent) for a missing topic.
    """
    missing = [name for name in (*inputs, *outputs) if counts.get(name) is None]
    if missing:
        names = ", ".join(repr(name) for name in missing)
        raise TopicLayoutError(
            f"topic(s) {names} do not exist on the broker; create them first "
            "(`driftradar stack up` creates the default topics locally)"
        )
    first = inputs[0]
    first_count = counts.get(first)
    for other in inputs[1:]:
        if counts.get(other) != first_count:
            raise TopicLayoutError(
                f"input topics are not co-partitioned: {first!r} has {first_count} partitions "
                f"and {other!r} has {counts.get(other)}; recreate them with the same "
                "partition count"
            )
    assert first_count is not None
    return first_count
