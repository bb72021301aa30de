"""The monitor's configuration: one frozen, validated object read from YAML.

Every problem raises :class:`ConfigError` naming the key path, e.g.
``models.churn.retrain.cooldown_seconds: must be a number >= 0``. An empty file (or no
file at all) is a valid configuration: every model is then monitored with the defaults.

>>> config = MonitorConfig.from_mapping({"models": {"churn": {"task": "binary"}}})
>>> config.model("churn").task, config.model("other").task
('binary', None)
>>> MonitorConfig.from_mapping({"models": {"churn": {"retrain": {"cooldown_seconds": -1}}}})
Traceback (most recent call last):
...
streams.engine.config.ConfigError: models.churn.retrain.cooldown_seconds: must be a number >= 0
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, Literal

import yaml

from detectors.base import DetectorError
from detectors.policy import AlarmPolicy
from streams.events import ALERT_TYPES, MODEL_ALERT_TYPES

__all__ = [
    "DEFAULT_DETECTORS",
    "DETECTOR_GROUPS",
    "CheckpointConfig",
    "ConfigError",
    "ConfirmConfig",
    "EstimateConfig",
    "FeatureConfig",
    "JoinConfig",
    "ModelConfig",
    "MonitorConfig",
    "PerformanceConfig",
    "PredictionConfig",
    "RetrainConfig",
    "ThroughputConfig",
    "TopicsConfig",
    "VersionsConfig",
    "load_config",
]

Task = Literal["binary", "multiclass", "regression"]
FeatureType = Literal["numeric", "categorical"]
Severity = Literal["info", "warning", "critical"]

#: Feature window tests are judged every 250 values (not the library's 100): with many
#: features the evaluations dominate the engine's cost; detection granularity is 250 events.
_FEATURE_WINDOW: Final[Mapping[str, Any]] = {"stride": 250}

#: Detector kinds run per signal group when the config does not say otherwise.
#: ``numeric``/``categorical``: features; ``unseen``: the 0/1 stream "category not in the
#: reference" of categorical features; ``prediction``/``prediction_categorical``: number
#: or class-label predictions; ``error``: a classifier's error stream (binary: misclassified
#: minus the model's own probability of it, see ``tasks.excess_error``; multiclass: 0/1),
#: watched by ADWIN, which takes real values so that both tasks share it (Page-Hinkley on
#: it fires ~1000 pairs after ADWIN, re-alerting the same change); ``error_regression``:
#: absolute error of a regression model.
DEFAULT_DETECTORS: Final[Mapping[str, Mapping[str, Mapping[str, Any]]]] = {
    "numeric": {"adwin": {}, "page_hinkley": {}, "psi": _FEATURE_WINDOW, "ks": _FEATURE_WINDOW},
    "categorical": {"jensen_shannon": _FEATURE_WINDOW, "chi_square": _FEATURE_WINDOW},
    "unseen": {"adwin": {}},
    "prediction": {"adwin": {}, "prediction_band": {}},
    "prediction_categorical": {"jensen_shannon": {}, "chi_square": {}},
    "error": {"adwin": {}},
    "error_regression": {"adwin": {}, "page_hinkley": {}},
}
DETECTOR_GROUPS: Final = frozenset(DEFAULT_DETECTORS)

#: Quality expectations and their parameters; which ones apply depends on the feature.
#: ``alpha``: a window beyond its limit alerts only when the excess is significant
#: (binomial tail < 0.001), so a source slightly within its limit does not flap.
_QUALITY_SIGNIFICANCE: Final[Mapping[str, Any]] = {"alpha": 0.001}
DEFAULT_QUALITY: Final[Mapping[str, Mapping[str, Any]]] = {
    "type": _QUALITY_SIGNIFICANCE,
    "missing_rate": _QUALITY_SIGNIFICANCE,
    "value_range": _QUALITY_SIGNIFICANCE,
    "allowed_categories": _QUALITY_SIGNIFICANCE,
}

#: Rolling performance metrics per task, and whether higher is better.
METRICS: Final[Mapping[str, Mapping[str, bool]]] = {
    "binary": {"accuracy": True, "roc_auc": True, "log_loss": False},
    "multiclass": {"accuracy": True},
    "regression": {"mae": False, "rmse": False},
}
_ALL_METRICS: Final = frozenset(m for per_task in METRICS.values() for m in per_task)

DEFAULT_SEVERITIES: Final[Mapping[str, Severity]] = {
    "data_drift": "warning",
    "prediction_drift": "warning",
    "concept_drift": "critical",
    "performance_degradation": "critical",
    "data_quality": "warning",
    "infrastructure": "critical",
}


class ConfigError(ValueError):
    """A configuration problem; ``key`` is the dotted path of the offending key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


# -- small validators: each takes the value and its key path ------------------------------


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(key, "must be a mapping")
    for name in value:
        if not isinstance(name, str):
            raise ConfigError(f"{key}.{name}", "keys must be strings")
    return value


def _only(value: Mapping[str, Any], key: str, allowed: set[str] | frozenset[str]) -> None:
    for name in value:
        if name not in allowed:
            raise ConfigError(
                _join(key, name), f"unknown key (known: {', '.join(sorted(allowed))})"
            )


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _number(value: Any, key: str, *, minimum: float = 0.0, above: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= minimum if above else value < minimum):
        raise ConfigError(key, f"must be a number {'>' if above else '>='} {minimum:g}")
    return float(value)


def _integer(value: Any, key: str, *, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(key, f"must be an integer >= {minimum}")
    return value


def _fraction(value: Any, key: str) -> float:
    number = _number(value, key)
    if number > 1.0:
        raise ConfigError(key, "must be a number between 0 and 1")
    return number


def _boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, "must be true or false")
    return value


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(key, "must be a non-empty string")
    return value


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(key, f"must be one of {', '.join(choices)}")
    return str(value)


def _range(value: Any, key: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ConfigError(key, "must be a list [low, high]")
    low = _number(value[0], f"{key}[0]", minimum=-math.inf)
    high = _number(value[1], f"{key}[1]", minimum=-math.inf)
    if low > high:
        raise ConfigError(key, "low must be <= high")
    return (low, high)


def _categories(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(key, "must be a non-empty list of strings")
    return tuple(_text(item, f"{key}[{i}]") for i, item in enumerate(value))


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge of plain mappings; ``detectors.<group>`` and ``features`` entries replace."""
    out = dict(base)
    for name, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(name), Mapping):
            out[name] = _merge(out[name], value)
        else:
            out[name] = value
    return out


# -- the configuration objects ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """What a feature is expected to look like; ``None`` fields are inferred or unchecked."""

    type: FeatureType | None = None
    range: tuple[float, float] | None = None
    categories: tuple[str, ...] | None = None
    max_missing_rate: float | None = None

    @classmethod
    def parse(cls, value: Any, key: str) -> FeatureConfig:
        data = _mapping(value, key)
        _only(data, key, {"type", "range", "categories", "max_missing_rate"})
        kind = data.get("type")
        if kind is not None:
            kind = _choice(kind, f"{key}.type", ("numeric", "categorical"))
        rng = _range(data["range"], f"{key}.range") if data.get("range") is not None else None
        cats = data.get("categories")
        categories = _categories(cats, f"{key}.categories") if cats is not None else None
        if kind is None:
            kind = "numeric" if rng is not None else "categorical" if categories else None
        if kind == "numeric" and categories is not None:
            raise ConfigError(f"{key}.categories", "is only allowed for categorical features")
        if kind == "categorical" and rng is not None:
            raise ConfigError(f"{key}.range", "is only allowed for numeric features")
        missing = data.get("max_missing_rate")
        max_missing = _fraction(missing, f"{key}.max_missing_rate") if missing is not None else None
        return cls(kind, rng, categories, max_missing)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class PredictionConfig:
    """Expected range of numeric predictions or the allowed class labels."""

    range: tuple[float, float] | None = None
    categories: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, value: Any, key: str) -> PredictionConfig:
        data = _mapping(value, key)
        _only(data, key, {"range", "categories"})
        rng = _range(data["range"], f"{key}.range") if data.get("range") is not None else None
        cats = data.get("categories")
        return cls(rng, _categories(cats, f"{key}.categories") if cats is not None else None)


@dataclass(frozen=True, slots=True)
class JoinConfig:
    """Prediction/label join: pending entries expire ``ttl_seconds`` (event time) after their
    own event time. Pending predictions live in Redis, at most ``max_pending`` per model (the
    oldest time slot is evicted beyond); labels that come before their prediction wait in
    memory, at most ``max_early_labels`` per model. The ids of the last ``remember_joined``
    joined pairs are kept to recognise duplicates.

    Alignment of the two input topics (per partition, so only under ``defaults.join``): a
    side is paused when its consumed event time leads the other's by more than
    ``max_lead_seconds`` (``None``: the observed median label delay, within 15 min..1 h) or it
    buffers more than ``max_buffered`` records; a side that is empty and caught up for
    ``max_idle_seconds`` no longer holds the other back.
    """

    ttl_seconds: float = 7 * 86400.0
    max_pending: int = 10_000_000
    remember_joined: int = 10_000
    max_early_labels: int = 100_000
    max_lead_seconds: float | None = None
    max_idle_seconds: float = 2.0
    max_buffered: int = 50_000

    @classmethod
    def parse(cls, value: Any, key: str) -> JoinConfig:
        data = _mapping(value, key)
        _only(data, key, set(JOIN_KEYS))
        d = cls()
        lead = data.get("max_lead_seconds", d.max_lead_seconds)
        return cls(
            _number(data.get("ttl_seconds", d.ttl_seconds), f"{key}.ttl_seconds", above=True),
            _integer(data.get("max_pending", d.max_pending), f"{key}.max_pending", minimum=1),
            _integer(data.get("remember_joined", d.remember_joined), f"{key}.remember_joined"),
            _integer(
                data.get("max_early_labels", d.max_early_labels),
                f"{key}.max_early_labels",
                minimum=1,
            ),
            _number(lead, f"{key}.max_lead_seconds", above=True) if lead is not None else None,
            _number(data.get("max_idle_seconds", d.max_idle_seconds), f"{key}.max_idle_seconds"),
            _integer(data.get("max_buffered", d.max_buffered), f"{key}.max_buffered", minimum=1),
        )


#: Keys of ``join``; the alignment ones apply per partition, so only under ``defaults``.
JOIN_KEYS: Final = (
    "ttl_seconds",
    "max_pending",
    "remember_joined",
    "max_early_labels",
    "max_lead_seconds",
    "max_idle_seconds",
    "max_buffered",
)
PARTITION_JOIN_KEYS: Final = frozenset({"max_lead_seconds", "max_idle_seconds", "max_buffered"})


@dataclass(frozen=True, slots=True)
class PerformanceConfig:
    """Rolling performance over the last ``window`` joined pairs, evaluated every ``every``.

    ``thresholds`` are the acceptable limits (a minimum for accuracy/roc_auc, a maximum for
    log_loss/mae/rmse); ``relative_drop`` alerts when a metric is that fraction worse than
    the version's first full window (``None`` disables).
    """

    window: int = 1000
    every: int = 100
    thresholds: Mapping[str, float] = field(default_factory=dict)
    relative_drop: float | None = 0.2

    @classmethod
    def parse(cls, value: Any, key: str) -> PerformanceConfig:
        data = _mapping(value, key)
        _only(data, key, {"window", "every", "thresholds", "relative_drop"})
        d = cls()
        thresholds = _mapping(data.get("thresholds"), f"{key}.thresholds")
        _only(thresholds, f"{key}.thresholds", _ALL_METRICS)
        drop = data.get("relative_drop", d.relative_drop)
        return cls(
            _integer(data.get("window", d.window), f"{key}.window", minimum=10),
            _integer(data.get("every", d.every), f"{key}.every", minimum=1),
            {
                name: _number(limit, f"{key}.thresholds.{name}", minimum=-math.inf)
                for name, limit in thresholds.items()
            },
            _fraction(drop, f"{key}.relative_drop") if drop is not None else None,
        )


@dataclass(frozen=True, slots=True)
class EstimateConfig:
    """Label-free performance estimate of binary models (``estimate:<metric>`` signals,
    ``streams.engine.estimate``): every ``every`` predictions, over the last
    ``performance.window`` of them, calibrated on the last ``calibration_pairs`` labelled
    pairs of the version, once it has ``min_pairs``; checked against the same limits as the
    realised metrics."""

    enabled: bool = True
    every: int = 500
    calibration_pairs: int = 2000
    min_pairs: int = 500

    @classmethod
    def parse(cls, value: Any, key: str) -> EstimateConfig:
        data = _mapping(value, key)
        _only(data, key, {"enabled", "every", "calibration_pairs", "min_pairs"})
        d = cls()
        return cls(
            _boolean(data.get("enabled", d.enabled), f"{key}.enabled"),
            _integer(data.get("every", d.every), f"{key}.every", minimum=1),
            _integer(
                data.get("calibration_pairs", d.calibration_pairs),
                f"{key}.calibration_pairs",
                minimum=10,
            ),
            _integer(data.get("min_pairs", d.min_pairs), f"{key}.min_pairs", minimum=10),
        )


@dataclass(frozen=True, slots=True)
class VersionsConfig:
    """When an old ``model_version`` is retired: after this many predictions of other
    versions, or this many seconds (event time) without one of its own."""

    retire_after_events: int = 100_000
    retire_after_seconds: float = 86400.0

    @classmethod
    def parse(cls, value: Any, key: str) -> VersionsConfig:
        data = _mapping(value, key)
        _only(data, key, {"retire_after_events", "retire_after_seconds"})
        d = cls()
        return cls(
            _integer(
                data.get("retire_after_events", d.retire_after_events),
                f"{key}.retire_after_events",
                minimum=1,
            ),
            _number(
                data.get("retire_after_seconds", d.retire_after_seconds),
                f"{key}.retire_after_seconds",
                above=True,
            ),
        )


@dataclass(frozen=True, slots=True)
class ThroughputConfig:
    """Throughput collapse: the event rate over ``window_seconds`` (processing time) falls
    below ``min_ratio`` of its moving average, once that average is >= ``min_rate``/s."""

    window_seconds: float = 60.0
    min_ratio: float = 0.2
    min_rate: float = 1.0

    @classmethod
    def parse(cls, value: Any, key: str) -> ThroughputConfig:
        data = _mapping(value, key)
        _only(data, key, {"window_seconds", "min_ratio", "min_rate"})
        d = cls()
        return cls(
            _number(
                data.get("window_seconds", d.window_seconds), f"{key}.window_seconds", above=True
            ),
            _fraction(data.get("min_ratio", d.min_ratio), f"{key}.min_ratio"),
            _number(data.get("min_rate", d.min_rate), f"{key}.min_rate"),
        )


@dataclass(frozen=True, slots=True)
class ConfirmConfig:
    """Retraining needs alerts from ``signals`` distinct signals within ``within_seconds``."""

    signals: int = 1
    within_seconds: float = 3600.0

    @classmethod
    def parse(cls, value: Any, key: str) -> ConfirmConfig:
        data = _mapping(value, key)
        _only(data, key, {"signals", "within_seconds"})
        d = cls()
        return cls(
            _integer(data.get("signals", d.signals), f"{key}.signals", minimum=1),
            _number(
                data.get("within_seconds", d.within_seconds), f"{key}.within_seconds", above=True
            ),
        )


@dataclass(frozen=True, slots=True)
class RetrainConfig:
    """Which model alerts request retraining, and how often at most (event time).

    A request's data window ends at the triggering alert's event time and starts
    ``window_seconds`` earlier, but not before the model version's first event. A new
    version that replaces another is verified after ``verify_labelled_events`` joined
    labels (``0``: never).
    """

    enabled: bool = True
    triggers: frozenset[str] = frozenset({"concept_drift", "performance_degradation"})
    cooldown_seconds: float = 3600.0
    max_per_day: int = 4
    confirm: ConfirmConfig = ConfirmConfig()
    require_degraded_performance: bool = False
    window_seconds: float = 7 * 86400.0
    verify_labelled_events: int = 500

    @classmethod
    def parse(cls, value: Any, key: str) -> RetrainConfig:
        data = _mapping(value, key)
        allowed = {
            "enabled",
            "triggers",
            "cooldown_seconds",
            "max_per_day",
            "confirm",
            "require_degraded_performance",
            "window_seconds",
            "verify_labelled_events",
        }
        _only(data, key, allowed)
        d = cls()
        triggers = data.get("triggers", sorted(d.triggers))
        if not isinstance(triggers, list | tuple):
            raise ConfigError(f"{key}.triggers", "must be a list of alert types")
        for i, name in enumerate(triggers):
            if name == "infrastructure":
                raise ConfigError(
                    f"{key}.triggers[{i}]", "infrastructure alerts never request retraining"
                )
            _choice(name, f"{key}.triggers[{i}]", tuple(sorted(MODEL_ALERT_TYPES)))
        window = data.get("window_seconds", d.window_seconds)
        return cls(
            _boolean(data.get("enabled", d.enabled), f"{key}.enabled"),
            frozenset(triggers),
            _number(data.get("cooldown_seconds", d.cooldown_seconds), f"{key}.cooldown_seconds"),
            _integer(data.get("max_per_day", d.max_per_day), f"{key}.max_per_day", minimum=1),
            ConfirmConfig.parse(data.get("confirm"), f"{key}.confirm"),
            _boolean(
                data.get("require_degraded_performance", d.require_degraded_performance),
                f"{key}.require_degraded_performance",
            ),
            _number(window, f"{key}.window_seconds", above=True),
            _integer(
                data.get("verify_labelled_events", d.verify_labelled_events),
                f"{key}.verify_labelled_events",
            ),
        )


_MODEL_KEYS: Final = frozenset(
    {
        "task",
        "threshold",
        "warmup",
        "alarms",
        "reference",
        "max_features",
        "infer_features",
        "features",
        "prediction",
        "detectors",
        "quality",
        "performance",
        "estimate",
        "severities",
        "join",
        "versions",
        "silence_seconds",
        "throughput",
        "retrain",
    }
)


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Everything the engine needs to monitor one model (``models.<id>`` over ``defaults``)."""

    task: Task | None = None
    threshold: float = 0.5
    warmup: int = 1000
    alarms: AlarmPolicy = field(default_factory=AlarmPolicy)
    reference: str | None = None
    max_features: int = 100
    infer_features: bool = True
    features: Mapping[str, FeatureConfig] = field(default_factory=dict)
    prediction: PredictionConfig = PredictionConfig()
    detectors: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(
        default_factory=lambda: dict(DEFAULT_DETECTORS)
    )
    quality: Mapping[str, Mapping[str, Any] | None] = field(
        default_factory=lambda: dict(DEFAULT_QUALITY)
    )
    quality_exclude: Literal["event", "value"] = "event"
    performance: PerformanceConfig = PerformanceConfig()
    estimate: EstimateConfig = EstimateConfig()
    severities: Mapping[str, Severity] = field(default_factory=lambda: dict(DEFAULT_SEVERITIES))
    join: JoinConfig = JoinConfig()
    versions: VersionsConfig = VersionsConfig()
    silence_seconds: float | None = 300.0
    throughput: ThroughputConfig = ThroughputConfig()
    retrain: RetrainConfig = RetrainConfig()

    @classmethod
    def parse(cls, value: Any, key: str) -> ModelConfig:
        data = _mapping(value, key)
        _only(data, key, _MODEL_KEYS)
        d = cls()
        task = data.get("task")
        features = _mapping(data.get("features"), f"{key}.features")
        quality = _mapping(data.get("quality"), f"{key}.quality")
        _only(quality, f"{key}.quality", {"exclude", "detectors"})
        silence = data.get("silence_seconds", d.silence_seconds)
        reference = data.get("reference")
        return cls(
            task=_choice(task, f"{key}.task", ("binary", "multiclass", "regression"))  # type: ignore[arg-type]
            if task is not None
            else None,
            threshold=_fraction(data.get("threshold", d.threshold), f"{key}.threshold"),
            warmup=_integer(data.get("warmup", d.warmup), f"{key}.warmup", minimum=10),
            alarms=_parse_alarms(data.get("alarms"), f"{key}.alarms"),
            reference=_text(reference, f"{key}.reference") if reference is not None else None,
            max_features=_integer(
                data.get("max_features", d.max_features), f"{key}.max_features", minimum=1
            ),
            infer_features=_boolean(
                data.get("infer_features", d.infer_features), f"{key}.infer_features"
            ),
            features={
                name: FeatureConfig.parse(spec, f"{key}.features.{name}")
                for name, spec in features.items()
            },
            prediction=PredictionConfig.parse(data.get("prediction"), f"{key}.prediction"),
            detectors=_error_group_fits(
                task, _parse_detectors(data.get("detectors"), f"{key}.detectors"), key
            ),
            quality=_parse_quality(quality.get("detectors"), f"{key}.quality.detectors"),
            quality_exclude=_choice(  # type: ignore[arg-type]
                quality.get("exclude", d.quality_exclude),
                f"{key}.quality.exclude",
                ("event", "value"),
            ),
            performance=PerformanceConfig.parse(data.get("performance"), f"{key}.performance"),
            estimate=EstimateConfig.parse(data.get("estimate"), f"{key}.estimate"),
            severities=_parse_severities(data.get("severities"), f"{key}.severities"),
            join=JoinConfig.parse(data.get("join"), f"{key}.join"),
            versions=VersionsConfig.parse(data.get("versions"), f"{key}.versions"),
            silence_seconds=_number(silence, f"{key}.silence_seconds", above=True)
            if silence is not None
            else None,
            throughput=ThroughputConfig.parse(data.get("throughput"), f"{key}.throughput"),
            retrain=RetrainConfig.parse(data.get("retrain"), f"{key}.retrain"),
        )


def _parse_detectors(value: Any, key: str) -> dict[str, Mapping[str, Mapping[str, Any]]]:
    """``{group: {kind: params}}``; a group given in the config replaces the default one."""
    data = _mapping(value, key)
    _only(data, key, DETECTOR_GROUPS)
    out: dict[str, Mapping[str, Mapping[str, Any]]] = dict(DEFAULT_DETECTORS)
    for group, kinds in data.items():
        out[group] = {
            kind: _detector_params(kind, params, f"{key}.{group}.{kind}")
            for kind, params in _mapping(kinds, f"{key}.{group}").items()
        }
    return out


def _error_group_fits(
    task: Any, groups: dict[str, Mapping[str, Mapping[str, Any]]], key: str
) -> dict[str, Mapping[str, Mapping[str, Any]]]:
    """Refuse 0/1-only detectors (DDM, EDDM, HDDM-A, FHDDM) on a binary model's ``error``
    signal, which is real-valued (misclassified minus the model's own probability of it)."""
    if task == "binary":
        from detectors import registry

        for kind in groups["error"]:
            if getattr(registry.DETECTORS[kind], "binary", False):
                raise ConfigError(
                    f"{key}.detectors.error.{kind}",
                    "takes only 0/1 values, but a binary model's error stream is real-valued "
                    "(misclassified minus the model's probability of it); use adwin, "
                    "page_hinkley or kswin",
                )
    return groups


def _parse_quality(value: Any, key: str) -> dict[str, Mapping[str, Any] | None]:
    """Parameters of each expectation; ``false`` switches one off."""
    data = _mapping(value, key)
    _only(data, key, frozenset(DEFAULT_QUALITY))
    out: dict[str, Mapping[str, Any] | None] = dict(DEFAULT_QUALITY)
    for kind, params in data.items():
        out[kind] = (
            None
            if params is False
            else _detector_params(
                kind,
                {**DEFAULT_QUALITY[kind], **_mapping(params, f"{key}.{kind}")},
                f"{key}.{kind}",
            )
        )
    return out


def _detector_params(kind: str, params: Any, key: str) -> Mapping[str, Any]:
    """Check a detector kind and its parameters against the detector library."""
    from streams.engine import signals  # late: the detector library is imported only here

    data = dict(_mapping(params, key))
    problem = signals.check_detector(kind, data)
    if problem is not None:
        name, message = problem
        raise ConfigError(_join(key, name) if name else key, message)
    return data


def _parse_alarms(value: Any, key: str) -> AlarmPolicy:
    """The model's :class:`AlarmPolicy` (budget split, minimum evidence, hysteresis)."""
    data = _mapping(value, key)
    try:
        return AlarmPolicy.from_mapping(data)
    except DetectorError as exc:
        raise ConfigError(
            f"{key}.{getattr(exc, 'parameter', '')}".rstrip("."), getattr(exc, "problem", str(exc))
        ) from None
    except TypeError as exc:
        raise ConfigError(key, str(exc)) from None


def _parse_severities(value: Any, key: str) -> dict[str, Severity]:
    data = _mapping(value, key)
    _only(data, key, ALERT_TYPES)
    out: dict[str, Severity] = dict(DEFAULT_SEVERITIES)
    for name, level in data.items():
        out[name] = _choice(level, f"{key}.{name}", ("info", "warning", "critical"))  # type: ignore[assignment]
    return out


@dataclass(frozen=True, slots=True)
class TopicsConfig:
    """Topic names (contract defaults)."""

    predictions: str = "predictions"
    ground_truth: str = "ground-truth"
    alerts: str = "drift-alerts"
    retrain_requests: str = "retrain-requests"
    dead_letter: str = "dead-letter"

    @classmethod
    def parse(cls, value: Any, key: str) -> TopicsConfig:
        data = _mapping(value, key)
        d = cls()
        names = {f.name for f in fields(cls)}
        _only(data, key, names)
        return cls(
            **{name: _text(data.get(name, getattr(d, name)), f"{key}.{name}") for name in names}
        )


@dataclass(frozen=True, slots=True)
class CheckpointConfig:
    """State and offsets are checkpointed every ``every_events`` events or ``every_seconds``.

    A crash replays at most that many events (or seconds of input); each checkpoint costs
    a full state snapshot, so at high rates ``every_events`` bounds that cost per event
    (100 000: about 2 s of input at 50 000 events/s), at low rates ``every_seconds`` does.
    """

    every_events: int = 100_000
    every_seconds: float = 5.0

    @classmethod
    def parse(cls, value: Any, key: str) -> CheckpointConfig:
        data = _mapping(value, key)
        _only(data, key, {"every_events", "every_seconds"})
        d = cls()
        return cls(
            _integer(data.get("every_events", d.every_events), f"{key}.every_events", minimum=1),
            _number(data.get("every_seconds", d.every_seconds), f"{key}.every_seconds", above=True),
        )


#: ``retrain_worker`` belongs to ``driftradar retrain-worker``, which validates it itself.
_TOP_KEYS: Final = frozenset(
    {
        "kafka",
        "topics",
        "checkpoint",
        "metrics_port",
        "max_consumer_lag",
        "defaults",
        "models",
        "retrain_worker",
    }
)


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """The whole configuration. ``model(id)`` gives the settings of any model, configured or
    not (unconfigured models get ``defaults``)."""

    kafka: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    topics: TopicsConfig = TopicsConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    metrics_port: int = 9108
    max_consumer_lag: int = 100_000
    defaults: ModelConfig = ModelConfig()
    models: Mapping[str, ModelConfig] = field(default_factory=dict)

    def model(self, model_id: str) -> ModelConfig:
        """Settings for ``model_id``: its own entry, else the defaults."""
        return self.models.get(model_id, self.defaults)

    @classmethod
    def from_mapping(cls, value: Any) -> MonitorConfig:
        """Validate a parsed YAML document; the empty document gives the defaults."""
        data = _mapping(value, "")
        _only(data, "", _TOP_KEYS)
        kafka = _mapping(data.get("kafka"), "kafka")
        for name, prop in kafka.items():
            if not isinstance(prop, str | int | float | bool):
                raise ConfigError(f"kafka.{name}", "must be a string, number or boolean")
        default_data = _mapping(data.get("defaults"), "defaults")
        defaults = ModelConfig.parse(default_data, "defaults")
        models = {}
        for model_id, spec in _mapping(data.get("models"), "models").items():
            _partition_keys_only_in_defaults(spec, f"models.{model_id}")
            merged = _merge(default_data, _mapping(spec, f"models.{model_id}"))
            models[model_id] = ModelConfig.parse(merged, f"models.{model_id}")
        port = _integer(data.get("metrics_port", 9108), "metrics_port", minimum=0)
        if port > 65535:
            raise ConfigError("metrics_port", "must be an integer between 0 and 65535")
        return cls(
            kafka=dict(kafka),
            topics=TopicsConfig.parse(data.get("topics"), "topics"),
            checkpoint=CheckpointConfig.parse(data.get("checkpoint"), "checkpoint"),
            metrics_port=port,
            max_consumer_lag=_integer(
                data.get("max_consumer_lag", 100_000), "max_consumer_lag", minimum=1
            ),
            defaults=defaults,
            models=models,
        )


def _partition_keys_only_in_defaults(spec: Any, key: str) -> None:
    """The alignment settings are per input partition, shared by every model on it."""
    join = _mapping(spec, key).get("join")
    if isinstance(join, Mapping):
        for name in sorted(PARTITION_JOIN_KEYS & set(join)):
            raise ConfigError(
                f"{key}.join.{name}",
                "applies to a whole input partition (all its models); set it under defaults.join",
            )


def load_config(path: str | os.PathLike[str] | None = None) -> MonitorConfig:
    """Read ``path`` (else ``$DRIFTRADAR_CONFIG``, else nothing) into a validated config."""
    if path is None:
        path = os.environ.get("DRIFTRADAR_CONFIG") or None
    if path is None:
        return MonitorConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            "DRIFTRADAR_CONFIG", f"cannot read {str(path)!r}: {exc.strerror}"
        ) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("DRIFTRADAR_CONFIG", f"{str(path)!r} is not valid YAML: {exc}") from None
    return MonitorConfig.from_mapping(document)
