"""A model's feature schema: new features get a type from their first value (or the
config), beyond ``max_features`` they are ignored; each batch becomes typed columns.

A schema entry is a :class:`FeatureInfo`: ``type`` is ``"numeric"`` or ``"categorical"``,
``kind`` the kind of its first value, ``since`` the record that introduced the feature
(predictions before it do not miss it). As plain data it is ``[type, kind, since]``.

>>> import numpy as np
>>> from streams.engine.config import MonitorConfig
>>> config, known, ignored = MonitorConfig().model("churn"), {}, []
>>> feats = [{"tenure": 3.0, "plan": "pro"}]
>>> register_features(known, ignored, feats, np.array([1]), config)
(0, None)
>>> known["tenure"], known["plan"].type
(FeatureInfo(type='numeric', kind='number', since=1), 'categorical')
>>> feature_columns(known, config.features, feats, np.array([1]))["plan"].values
['pro']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from streams.engine.columns import (
    Column,
    ValueKind,
    categorical_column,
    numeric_column,
    value_kind,
)
from streams.engine.config import FeatureConfig, ModelConfig, PredictionConfig

__all__ = [
    "MAX_IGNORED_NAMES",
    "FeatureInfo",
    "feature_columns",
    "prediction_column",
    "register_features",
]

#: Most ignored feature names remembered (beyond: only counted).
MAX_IGNORED_NAMES: Final = 1000


class FeatureInfo(msgspec.Struct, array_like=True, frozen=True):
    """What the schema knows of a feature (plain data: ``[type, kind, since]``)."""

    type: Literal["numeric", "categorical"]
    kind: ValueKind | None  # kind of the first value (None: any category key)
    since: int  # position of the prediction that introduced it


def register_features(
    known: dict[str, FeatureInfo],
    ignored: list[str],
    feats: list[dict[str, Any]],
    pred_seqs: npt.NDArray[np.int64],
    config: ModelConfig,
) -> tuple[int, tuple[int, str] | None]:
    """Add the new features of a batch to ``known`` (in first-appearance order) and the
    ones beyond ``config.max_features`` to ``ignored``. Returns the number of ignored
    feature values and (position, name) of the batch's first feature beyond the cap."""
    ignored_values = 0
    overflow: tuple[int, str] | None = None
    names = set().union(*feats) if feats else set()
    new = names.difference(known)
    if ignored:
        ignored_set = set(ignored)
        new -= ignored_set
        hits = names & ignored_set
        if hits:
            ignored_values += sum(1 for f in feats for k in f if k in hits)
    configured = config.features
    if not new:
        return ignored_values, overflow
    for j, f in enumerate(feats):  # first-appearance order (deterministic)
        for name, value in f.items():
            if name not in new or name in known:
                continue
            kind = value_kind(value)
            if kind is None:
                continue
            spec = configured.get(name)
            if spec is None and not config.infer_features:
                new.discard(name)
                continue
            if len(known) >= config.max_features:
                new.discard(name)
                if len(ignored) < MAX_IGNORED_NAMES:
                    ignored.append(name)
                ignored_values += sum(1 for g in feats[j:] if name in g)
                if overflow is None:
                    overflow = (int(pred_seqs[j]), name)
                continue
            ftype: Literal["numeric", "categorical"] = (
                spec.type
                if spec is not None and spec.type
                else ("numeric" if kind == "number" else "categorical")
            )
            if spec is not None and spec.type == "categorical":
                kind = None  # configured categorical: any category key
            known[name] = FeatureInfo(ftype, kind, int(pred_seqs[j]))
    return ignored_values, overflow


def feature_columns(
    known: Mapping[str, FeatureInfo],
    configured: Mapping[str, FeatureConfig],
    feats: list[dict[str, Any]],
    pred_seqs: npt.NDArray[np.int64],
) -> dict[str, Column]:
    """One column per known feature; a feature introduced in this batch applies only from
    the prediction that introduced it (earlier ones do not miss it)."""
    out: dict[str, Column] = {}
    for name, info in known.items():
        raw = [f.get(name) for f in feats]
        spec = configured.get(name)
        kind, since = info.kind, info.since
        if info.type == "numeric":
            column = numeric_column(raw, spec.range if spec is not None else None)
        else:
            allowed = frozenset(spec.categories) if spec and spec.categories else None
            column = categorical_column(raw, kind, allowed)
        if feats and since > pred_seqs[0]:  # introduced in this batch: not missing before
            column.applies = pred_seqs >= since
            column.missing &= column.applies
            column.invalid &= column.applies
        out[name] = column
    return out


def prediction_column(
    raw: list[Any], kind: str | None, spec: PredictionConfig, task: str | None
) -> Column:
    """The column of predictions of ``kind`` (``"categorical"``: class labels, else
    numbers, in ``[0, 1]`` for a binary model unless the config gives a range)."""
    if kind == "categorical":
        allowed = frozenset(spec.categories) if spec.categories else None
        return categorical_column(raw, "string", allowed)
    value_range = spec.range
    if value_range is None and task == "binary":
        value_range = (0.0, 1.0)
    return numeric_column(raw, value_range)
