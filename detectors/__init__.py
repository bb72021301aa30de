"""driftradar's detector library: pure, I/O-free online detectors behind one interface.

Build detectors by name from config with :func:`create`, feed them with ``update`` /
``update_many``, read :meth:`~Detector.result`, and persist them with ``snapshot()`` and
:func:`restore` (plain data, never pickle).

>>> import detectors
>>> detector = detectors.create("adwin", {"delta": 0.002})
>>> detector.update(0.5)
<DriftState.NONE: 0>
>>> detectors.restore(detector.snapshot()).updates
1
"""

from detectors._windowing import WindowedDetector
from detectors.band import PredictionBand, PredictionBandParams
from detectors.base import (
    SNAPSHOT_FORMAT,
    DetectionResult,
    Detector,
    DetectorError,
    DriftState,
    InvalidParameterError,
    Params,
    SnapshotError,
    StateArray,
    Trace,
)
from detectors.policy import AlarmPolicy, SignalGate, Transition
from detectors.profile import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    ProfileError,
    build_profile,
    profiles_from_columns,
)
from detectors.quality import (
    AllowedCategories,
    AllowedCategoriesParams,
    MissingRate,
    MissingRateParams,
    TypeExpectation,
    TypeExpectationParams,
    ValueRange,
    ValueRangeParams,
)
from detectors.registry import DETECTORS, available, create, restore
from detectors.river_binary import (
    DDM,
    EDDM,
    FHDDM,
    HDDMA,
    HDDMW,
    DDMParams,
    EDDMParams,
    FHDDMParams,
    HDDMAParams,
    HDDMWParams,
)
from detectors.river_numeric import (
    ADWIN,
    KSWIN,
    ADWINParams,
    KSWINParams,
    PageHinkley,
    PageHinkleyParams,
)
from detectors.window import (
    ChiSquare,
    ChiSquareParams,
    JensenShannon,
    JensenShannonParams,
    KolmogorovSmirnov,
    KolmogorovSmirnovParams,
    PopulationStability,
    PopulationStabilityParams,
)

__all__ = [
    "ADWIN",
    "DDM",
    "DETECTORS",
    "EDDM",
    "FHDDM",
    "HDDMA",
    "HDDMW",
    "KSWIN",
    "SNAPSHOT_FORMAT",
    "ADWINParams",
    "AlarmPolicy",
    "AllowedCategories",
    "AllowedCategoriesParams",
    "CategoricalProfile",
    "ChiSquare",
    "ChiSquareParams",
    "DDMParams",
    "DetectionResult",
    "Detector",
    "DetectorError",
    "DriftState",
    "EDDMParams",
    "FHDDMParams",
    "HDDMAParams",
    "HDDMWParams",
    "InvalidParameterError",
    "JensenShannon",
    "JensenShannonParams",
    "KSWINParams",
    "KolmogorovSmirnov",
    "KolmogorovSmirnovParams",
    "MissingRate",
    "MissingRateParams",
    "NumericProfile",
    "PageHinkley",
    "PageHinkleyParams",
    "Params",
    "PopulationStability",
    "PopulationStabilityParams",
    "PredictionBand",
    "PredictionBandParams",
    "Profile",
    "ProfileError",
    "SignalGate",
    "SnapshotError",
    "StateArray",
    "Trace",
    "Transition",
    "TypeExpectation",
    "TypeExpectationParams",
    "ValueRange",
    "ValueRangeParams",
    "WindowedDetector",
    "available",
    "build_profile",
    "create",
    "profiles_from_columns",
    "restore",
]
