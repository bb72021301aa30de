"""The simulator's model server: which model answers, and switching on a new deployment.

A :class:`ModelServer` starts with the scenario's own rule (``parameters`` is ``None``) and
:meth:`ModelServer.offer` switches it to a :class:`~streams.core.events.Deployment`'s
parameters and version. Deployments of other models, and versions this server has already
served (a redelivery, a retried request), are ignored, so offering is idempotent.

:func:`served_probabilities` is the deployed model over a batch of published feature
columns: vectorised with numpy, and equal, to the last bit, to
:func:`producers.retrain.trainer.predict_proba` applied to each event's features.

>>> from producers.retrain.trainer import predict_proba
>>> from streams.core.events import LogisticParameters, NumericTerm
>>> params = LogisticParameters(
...     intercept=-1.0,
...     numeric={"age": NumericTerm(coef=0.02, fill=40.0)},
...     categorical={"contract": {"two-year": -2.0}},
... )
>>> server = ModelServer("churn", "v1")
>>> deployment = Deployment("churn", "v2", params, {}, "2026-01-01T00:00:00Z", "r-1", "v1")
>>> server.offer(deployment, position=120)
Switch(position=120, model_version='v2', previous_version='v1', request_id='r-1')
>>> server.offer(deployment, position=130) is None  # the same version again: no switch
True
>>> columns = {"age": np.array([30.0, np.nan]), "contract": np.array(["two-year", "weekly"])}
>>> served_probabilities(params, columns) == [
...     predict_proba(params, {"age": 30, "contract": "two-year"}),
...     predict_proba(params, {"age": None, "contract": "weekly"}),
... ]
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt

from streams.core.events import Deployment, LogisticParameters

__all__ = [
    "DeploymentSource",
    "ModelServer",
    "Switch",
    "served_probabilities",
]

#: Called by the simulator with the position of the next prediction; returns the
#: deployments that arrived since the last call (any model: the server filters).
DeploymentSource: TypeAlias = Callable[[int], Iterable[Deployment]]


class Switch(NamedTuple):
    """The model server switched to ``model_version`` from prediction ``position`` on."""

    position: int
    model_version: str
    previous_version: str
    request_id: str


@dataclass(slots=True)
class ModelServer:
    """The model answering for ``model_id``: the scenario's rule until a deployment arrives."""

    model_id: str
    model_version: str
    parameters: LogisticParameters | None = None
    switches: list[Switch] = field(default_factory=list)
    _served: set[str] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self._served.add(self.model_version)

    def offer(self, deployment: Deployment, position: int) -> Switch | None:
        """Serve ``deployment`` from ``position`` on if it is a new version of this model."""
        if deployment.model_id != self.model_id or deployment.model_version in self._served:
            return None
        switch = Switch(
            position, deployment.model_version, self.model_version, deployment.request_id
        )
        self.parameters = deployment.parameters
        self.model_version = deployment.model_version
        self._served.add(deployment.model_version)
        self.switches.append(switch)
        return switch


def served_probabilities(
    params: LogisticParameters, columns: Mapping[str, npt.NDArray[np.generic]]
) -> list[float]:
    """``predict_proba(params, event)`` for every row of ``columns``, vectorised.

    ``columns`` holds the features as published, one array per feature, all of one length:
    float arrays for numeric features (``nan`` where the event has ``null``), string arrays
    for categorical ones. As in :class:`~streams.core.events.LogisticParameters`, a numeric term
    reads its ``fill`` where the value is missing or not a number, and a category absent
    from its table (or a non-string value) adds 0. The terms are added in the same order,
    with the same float operations, and the sigmoid uses :func:`math.exp`, so the results
    are identical to the trainer's per-event function, not merely close.
    """
    count = len(next(iter(columns.values()))) if columns else 0
    z = np.full(count, params.intercept, dtype=np.float64)
    for name, term in params.numeric.items():
        column = columns.get(name)
        if column is None or column.dtype.kind not in "fiub":
            z = z + term.coef * term.fill
            continue
        values = column.astype(np.float64)
        z = z + term.coef * np.where(np.isnan(values), term.fill, values)
    for name, table in params.categorical.items():
        column = columns.get(name)
        if column is None or column.dtype.kind != "U" or not table:
            continue
        categories, inverse = np.unique(column, return_inverse=True)
        effects = np.array([table.get(c, 0.0) for c in categories.tolist()], dtype=np.float64)
        z = z + effects[inverse.reshape(-1)]
    exp = math.exp
    return [1.0 / (1.0 + exp(-value)) for value in np.clip(z, -500.0, 500.0).tolist()]
