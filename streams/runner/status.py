"""The group-wide status: each partition's checkpointed model status, merged per model.

A model lives on one partition (its events are keyed by ``model_id``), so merging normally
just gathers models; if a model's events were spread over partitions anyway, its counts are
added and a detector is in drift if it is in drift anywhere.

>>> a = {"churn": {"predictions": 3, "ground_truth": 1, "joined": 1, "dead_letters": 0,
...      "signals": {"prediction": {"adwin": {"updates": 3, "drift": False}}}}}
>>> b = {"churn": {"predictions": 2, "ground_truth": 0, "joined": 0, "dead_letters": 1,
...      "signals": {"prediction": {"adwin": {"updates": 2, "drift": True}}}}}
>>> merged = merge_models([a, b])["churn"]
>>> merged["predictions"], merged["dead_letters"], merged["signals"]["prediction"]["adwin"]
(5, 1, {'updates': 5, 'drift': True})
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["merge_models", "merge_value"]


def merge_models(per_partition: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``{model_id: status}`` over all partitions, models sorted by id."""
    merged: dict[str, Any] = {}
    for models in per_partition:
        for model_id, status in models.items():
            if model_id in merged:
                merged[model_id] = merge_value(merged[model_id], status)
            else:
                merged[model_id] = copy.deepcopy(status)
    return {model_id: merged[model_id] for model_id in sorted(merged)}


def merge_value(left: Any, right: Any) -> Any:
    """Numbers add, booleans OR, mappings merge key by key, anything else keeps ``right``.

    >>> merge_value({"n": 1, "drift": False, "x": "a"}, {"n": 2, "drift": True, "x": "b"})
    {'n': 3, 'drift': True, 'x': 'b'}
    """
    if isinstance(left, bool) and isinstance(right, bool):
        return left or right
    if (
        isinstance(left, int | float)
        and isinstance(right, int | float)
        and not isinstance(left, bool)
        and not isinstance(right, bool)
    ):
        return left + right
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        out = dict(left)
        for key, value in right.items():
            out[key] = merge_value(out[key], value) if key in out else copy.deepcopy(value)
        return out
    return copy.deepcopy(right)
