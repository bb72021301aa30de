"""Every detector by name, built in one place: ``create(kind, params)`` and ``restore(snapshot)``.

>>> detector = create("adwin", {"delta": 0.002})
>>> restore(detector.snapshot()).kind
'adwin'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from detectors.band import PredictionBand
from detectors.base import Detector, InvalidParameterError, Params, SnapshotError
from detectors.profile import Profile
from detectors.quality import AllowedCategories, MissingRate, TypeExpectation, ValueRange
from detectors.river_binary import DDM, EDDM, FHDDM, HDDMA, HDDMW
from detectors.river_numeric import ADWIN, KSWIN, PageHinkley
from detectors.window import ChiSquare, JensenShannon, KolmogorovSmirnov, PopulationStability

__all__ = ["DETECTORS", "available", "create", "restore"]

#: kind -> class, for every detector of the library.
DETECTORS: Final[Mapping[str, type[Detector]]] = {
    cls.kind: cls
    for cls in (
        ADWIN,
        PageHinkley,
        KSWIN,
        DDM,
        EDDM,
        HDDMA,
        HDDMW,
        FHDDM,
        PopulationStability,
        KolmogorovSmirnov,
        JensenShannon,
        ChiSquare,
        PredictionBand,
        TypeExpectation,
        MissingRate,
        ValueRange,
        AllowedCategories,
    )
}


def available() -> list[str]:
    """Names accepted by :func:`create`, sorted."""
    return sorted(DETECTORS)


def _lookup(kind: str) -> type[Detector]:
    try:
        return DETECTORS[kind]
    except KeyError:
        raise InvalidParameterError(
            "detector", "kind", f"{kind!r} is unknown (known: {', '.join(available())})"
        ) from None


def create(
    kind: str,
    params: Mapping[str, Any] | Params | None = None,
    *,
    reference: Profile | None = None,
) -> Detector:
    """Build a detector by name from config data (unknown keys are rejected by name).

    ``reference`` is used by the detectors that compare against a reference profile; the
    others refuse it.
    """
    cls = _lookup(kind)
    if params is not None and not isinstance(params, Params):
        params = cls.params_type.from_mapping(params)
    if reference is not None:
        return cls.with_reference(params, reference)
    return cls(params)


def restore(snapshot: Mapping[str, Any]) -> Detector:
    """Revive a detector from :meth:`Detector.snapshot` output; never executes stored code."""
    kind = snapshot.get("kind") if isinstance(snapshot, Mapping) else None
    if not isinstance(kind, str) or kind not in DETECTORS:
        raise SnapshotError(f"snapshot names an unknown detector kind {kind!r}")
    return DETECTORS[kind].from_snapshot(snapshot)
