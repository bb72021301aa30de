"""The monitor's configuration: one frozen, validated object read from YAML.

Every section is a frozen struct whose fields declare their defaults and constraints
(:mod:`streams.core.settings`); a problem raises :class:`ConfigError` naming the key path,
e.g. ``models.churn.retrain.cooldown_seconds: must be a number >= 0``. An empty file (or
no file at all) is a valid configuration: every model is then monitored with the defaults.
Adding a key is one line in its struct (checks that involve several keys go in the struct's
``__post_init__``).

``models.<id>`` is merged over ``defaults`` key by key, except that a detector group given
for a model replaces the defaults' group whole (``{}`` disables it); built-in detector
groups, quality parameters and severities fill in what neither gives (docs/engine.md).

>>> config = MonitorConfig.from_mapping({"models": {"churn": {"task": "binary"}}})
>>> config.model("churn").task, config.model("other").task
('binary', None)
>>> MonitorConfig.from_mapping({"models": {"churn": {"retrain": {"cooldown_seconds": -1}}}})
Traceback (most recent call last):
...
streams.core.errors.ConfigError: models.churn.retrain.cooldown_seconds: must be a number >= 0
>>> config = MonitorConfig.from_mapping({
...     "defaults": {"detectors": {"numeric": {"adwin": {}, "ks": {}}}},
...     "models": {"churn": {"detectors": {"numeric": {"psi": {}}}}}})
>>> list(config.model("churn").detectors["numeric"]), list(config.defaults.detectors["numeric"])
(['psi'], ['adwin', 'ks'])
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec
import yaml
from msgspec.structs import force_setattr

from detectors import registry
from detectors.policy import AlarmPolicy
from streams.core.convert import convert, one_of
from streams.core.errors import ConfigError
from streams.core.events import ALERT_TYPES, MODEL_ALERT_TYPES
from streams.core.kafka import partitioner_problem
from streams.core.settings import (
    DEFAULT_METRICS_PORT,
    BrokerConfig,
    Count,
    Fraction,
    KafkaProperties,
    NonNegative,
    Number,
    Port,
    Positive,
    PositiveInt,
    RedisConfig,
    Settings,
    Share,
    Text,
    TopicsConfig,
)
from streams.engine.signals import check_detector

__all__ = [
    "DEFAULT_DETECTORS",
    "DEFAULT_QUALITY",
    "DETECTOR_GROUPS",
    "METRICS",
    "BrokerConfig",
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
    "QualityConfig",
    "RedisConfig",
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
#: A window beyond its limit alerts only when the excess is significant (binomial tail
#: below ``alpha``, which the false-alarm budget sets), so a source slightly within its
#: limit does not flap.
DEFAULT_QUALITY: Final[Mapping[str, Mapping[str, Any]]] = {
    "type": {},
    "missing_rate": {},
    "value_range": {},
    "allowed_categories": {},
}

#: Rolling performance metrics per task, and whether higher is better.
METRICS: Final[Mapping[str, Mapping[str, bool]]] = {
    "binary": {"accuracy": True, "roc_auc": True, "log_loss": False},
    "multiclass": {"accuracy": True},
    "regression": {"mae": False, "rmse": False},
}

DEFAULT_SEVERITIES: Final[Mapping[str, Severity]] = {
    "data_drift": "warning",
    "prediction_drift": "warning",
    "concept_drift": "critical",
    "performance_degradation": "critical",
    "data_quality": "warning",
    "infrastructure": "critical",
}

Range = tuple[Number, Number]
Categories = Annotated[tuple[Text, ...], msgspec.Meta(min_length=1)]
Params = dict[str, Any]
GroupName = Annotated[str, one_of(DEFAULT_DETECTORS)]
QualityKind = Annotated[str, one_of(DEFAULT_QUALITY)]
MetricName = Annotated[str, one_of(dict.fromkeys(m for per in METRICS.values() for m in per))]
AlertTypeName = Annotated[str, one_of(sorted(ALERT_TYPES))]
Trigger = Annotated[
    str,
    one_of(
        sorted(MODEL_ALERT_TYPES),
        problem=f"must be one of {', '.join(sorted(MODEL_ALERT_TYPES))} "
        "(infrastructure alerts never request retraining)",
    ),
]


def _check_range(value: Range | None) -> None:
    if value is not None and value[0] > value[1]:
        raise ConfigError("range", "low must be <= high")


def _check_detector(kind: str, params: Mapping[str, Any], key: str) -> None:
    """Check a detector kind and its parameters against the detector library."""
    problem = check_detector(kind, params)
    if problem is not None:
        name, message = problem
        raise ConfigError(f"{key}.{name}" if name else key, message)


class FeatureConfig(Settings, frozen=True):
    """What a feature is expected to look like; ``None`` fields are inferred or unchecked."""

    type: FeatureType | None = None
    range: Range | None = None
    categories: Categories | None = None
    max_missing_rate: Fraction | None = None

    def __post_init__(self) -> None:
        _check_range(self.range)
        if self.type is None:  # declared by its range or categories
            kind = (
                "numeric" if self.range is not None else "categorical" if self.categories else None
            )
            force_setattr(self, "type", kind)
        if self.type == "numeric" and self.categories is not None:
            raise ConfigError("categories", "is only allowed for categorical features")
        if self.type == "categorical" and self.range is not None:
            raise ConfigError("range", "is only allowed for numeric features")


class PredictionConfig(Settings, frozen=True):
    """Expected range of numeric predictions or the allowed class labels."""

    range: Range | None = None
    categories: Categories | None = None

    def __post_init__(self) -> None:
        _check_range(self.range)


class JoinConfig(Settings, frozen=True):
    """Prediction/label join: pending entries expire ``ttl_seconds`` (event time) after their
    own event time. Pending predictions live in Redis, at most ``max_pending`` per model (the
    oldest time slot is evicted beyond); labels that come before their prediction wait in
    memory, at most ``max_early_labels`` per model. The ids of the last ``remember_joined``
    joined pairs are kept (as 64-bit keys, ~55 bytes each) to recognise duplicates.

    Alignment of the two input topics (per partition, so only under ``defaults.join``): a
    side is paused when its consumed event time leads the other's by more than
    ``max_lead_seconds`` (``None``: the observed median label delay, within 15 min..1 h) or it
    buffers more than ``max_buffered`` records; a side that is empty and caught up for
    ``max_idle_seconds`` no longer holds the other back.
    """

    ttl_seconds: Positive = 7 * 86400.0
    max_pending: PositiveInt = 10_000_000
    remember_joined: Count = 10_000
    max_early_labels: PositiveInt = 100_000
    max_lead_seconds: Positive | None = None
    max_idle_seconds: NonNegative = 2.0
    max_buffered: PositiveInt = 50_000


#: ``join`` keys that apply per input partition (all its models), so only under ``defaults``.
PARTITION_JOIN_KEYS: Final = frozenset({"max_lead_seconds", "max_idle_seconds", "max_buffered"})


class EstimateConfig(Settings, frozen=True):
    """Label-free performance estimate of binary models (``estimate:<metric>`` signals,
    ``streams.engine.estimate``): every ``every`` predictions, over the last
    ``performance.window`` of them, calibrated on the last ``calibration_pairs`` labelled
    pairs of the version, once it has ``min_pairs``; checked against the same limits as the
    realised metrics."""

    enabled: bool = True
    every: PositiveInt = 500
    calibration_pairs: Annotated[int, msgspec.Meta(ge=10)] = 2000
    min_pairs: Annotated[int, msgspec.Meta(ge=10)] = 500


class PerformanceConfig(Settings, frozen=True):
    """Rolling performance over the last ``window`` joined pairs, evaluated every ``every``.

    ``thresholds`` are the acceptable limits (a minimum for accuracy/roc_auc, a maximum for
    log_loss/mae/rmse); the ``baseline`` check alerts when a window's metric is worse than
    the version's first ``reference_pairs`` pairs by more than chance allows within the
    false-alarm budget (bootstrap, see :mod:`streams.engine.baseline`) and by at least
    ``relative_drop`` of the reference value (``None`` disables the baseline check).
    """

    window: Annotated[int, msgspec.Meta(ge=10)] = 1000
    every: PositiveInt = 100
    thresholds: dict[MetricName, Number] = {}
    relative_drop: Fraction | None = 0.05
    reference_pairs: Annotated[int, msgspec.Meta(ge=100)] = 1000


class VersionsConfig(Settings, frozen=True):
    """When an old ``model_version`` is retired: after this many predictions of other
    versions, or this many seconds (event time) without one of its own."""

    retire_after_events: PositiveInt = 100_000
    retire_after_seconds: Positive = 86400.0


class ThroughputConfig(Settings, frozen=True):
    """Throughput collapse: the event rate over ``window_seconds`` (processing time) falls
    below ``min_ratio`` of its moving average, once that average is >= ``min_rate``/s."""

    window_seconds: Positive = 60.0
    min_ratio: Fraction = 0.2
    min_rate: NonNegative = 1.0


class ConfirmConfig(Settings, frozen=True):
    """Retraining needs alerts from ``signals`` distinct signals within ``within_seconds``."""

    signals: PositiveInt = 1
    within_seconds: Positive = 3600.0


class RetrainConfig(Settings, frozen=True):
    """Which model alerts request retraining, over which data, when, how often (event time).

    A request's window starts where its trigger says the new regime starts (the detector's
    change point; at most ``window_seconds`` before the detection) and it is made once
    ``min_labelled`` joined pairs of that regime are in, or ``max_wait_seconds`` after the
    detection with what there is (streams.engine.retrain). A new version that replaces
    another is verified after ``verify_labelled_events`` joined labels (``0``: never).
    ``min_labelled`` 1000: on the churn simulator's concept drift, a candidate refitted on
    1000 post-change rows closes 95 % of the gap to the world's own rule and is deployed on
    20 of 20 seeds, each doubling buys under 0.01 AUC (``python -m benchmarks.retrain_rows``).
    """

    enabled: bool = True
    triggers: frozenset[Trigger] = frozenset({"concept_drift", "performance_degradation"})
    cooldown_seconds: NonNegative = 3600.0
    max_per_day: PositiveInt = 4
    confirm: ConfirmConfig = msgspec.field(default_factory=ConfirmConfig)
    require_degraded_performance: bool = False
    window_seconds: Positive = 7 * 86400.0
    min_labelled: Count = 1000
    max_wait_seconds: Positive = 6 * 3600.0
    verify_labelled_events: Count = 500


class QualityConfig(Settings, frozen=True):
    """``exclude``: what a failing value keeps out of the drift statistics (the whole
    ``event``, or only the ``value``); ``detectors``: each expectation's parameters over its
    defaults, ``false`` switching one off."""

    exclude: Literal["event", "value"] = "event"
    detectors: dict[QualityKind, Params | Literal[False]] = {}

    def __post_init__(self) -> None:
        given = self.detectors
        merged: dict[str, Params | Literal[False]] = {}
        for kind, defaults in DEFAULT_QUALITY.items():
            params = given.get(kind, {})
            merged[kind] = False if params is False else {**defaults, **params}
            if params:
                _check_detector(kind, merged[kind] or {}, f"detectors.{kind}")
        force_setattr(self, "detectors", merged)


class ModelConfig(Settings, frozen=True):
    """Everything the engine needs to monitor one model (``models.<id>`` over ``defaults``)."""

    task: Task | None = None
    threshold: Fraction = 0.5
    warmup: Annotated[int, msgspec.Meta(ge=10)] = 1000
    alarms: AlarmPolicy = msgspec.field(default_factory=AlarmPolicy)
    reference: Text | None = None
    max_features: PositiveInt = 100
    infer_features: bool = True
    features: dict[str, FeatureConfig] = {}
    prediction: PredictionConfig = msgspec.field(default_factory=PredictionConfig)
    #: ``{group: {kind: params}}``; a group given replaces the built-in one
    detectors: dict[GroupName, dict[str, Params]] = {}
    #: the ``quality:`` section; the engine reads :attr:`quality` and :attr:`quality_exclude`
    quality_section: QualityConfig = msgspec.field(default_factory=QualityConfig, name="quality")
    performance: PerformanceConfig = msgspec.field(default_factory=PerformanceConfig)
    severities: dict[AlertTypeName, Severity] = {}
    join: JoinConfig = msgspec.field(default_factory=JoinConfig)
    estimate: EstimateConfig = msgspec.field(default_factory=EstimateConfig)
    versions: VersionsConfig = msgspec.field(default_factory=VersionsConfig)
    silence_seconds: Positive | None = 300.0
    throughput: ThroughputConfig = msgspec.field(default_factory=ThroughputConfig)
    retrain: RetrainConfig = msgspec.field(default_factory=RetrainConfig)

    def __post_init__(self) -> None:
        for group, kinds in self.detectors.items():
            for kind, params in kinds.items():
                _check_detector(kind, params, f"detectors.{group}.{kind}")
        groups = {**DEFAULT_DETECTORS, **self.detectors}
        if self.task == "binary":
            # 0/1-only detectors (DDM, EDDM, HDDM-A, FHDDM) cannot watch a binary model's
            # error signal, which is real-valued (misclassified minus the model's probability)
            for kind in groups["error"]:
                if getattr(registry.DETECTORS[kind], "binary", False):
                    raise ConfigError(
                        f"detectors.error.{kind}",
                        "takes only 0/1 values, but a binary model's error stream is "
                        "real-valued (misclassified minus the model's probability of it); "
                        "use adwin, page_hinkley or kswin",
                    )
        force_setattr(self, "detectors", groups)
        force_setattr(self, "severities", {**DEFAULT_SEVERITIES, **self.severities})

    @property
    def quality(self) -> Mapping[str, Mapping[str, Any] | None]:
        """Parameters of each quality expectation; ``None``: switched off."""
        return {k: None if p is False else p for k, p in self.quality_section.detectors.items()}

    @property
    def quality_exclude(self) -> Literal["event", "value"]:
        return self.quality_section.exclude


class CheckpointConfig(Settings, frozen=True):
    """State and offsets are checkpointed every ``every_events`` events or ``every_seconds``.

    A crash replays at most that many events (or seconds of input) while the consumer is
    caught up; each checkpoint costs a snapshot of the models changed since the last one
    (every model, under a load that reaches them all), so at high rates ``every_events``
    bounds that cost per event (100 000: about 2 s of input at 50 000 events/s), at low
    rates ``every_seconds`` does.
    While the consumer is behind, checkpoints take at most ``max_share`` of the loop's time:
    after one that took ``d`` seconds the next waits at least ``d / max_share``, never more
    than ``max_pause_seconds`` (:mod:`streams.runner.cadence`), and a crash replays that much
    input. The default pause limit is half the ``CheckpointStale`` alert's 120 s.
    """

    every_events: PositiveInt = 100_000
    every_seconds: Positive = 5.0
    max_share: Share = 0.1
    max_pause_seconds: Positive = 60.0


class MonitorConfig(Settings, frozen=True):
    """The whole configuration. ``model(id)`` gives the settings of any model, configured or
    not (unconfigured models get ``defaults``)."""

    kafka: KafkaProperties = {}
    topics: TopicsConfig = msgspec.field(default_factory=TopicsConfig)
    checkpoint: CheckpointConfig = msgspec.field(default_factory=CheckpointConfig)
    redis: RedisConfig = msgspec.field(default_factory=RedisConfig)
    broker: BrokerConfig = msgspec.field(default_factory=BrokerConfig)
    metrics_port: Port = DEFAULT_METRICS_PORT
    max_consumer_lag: PositiveInt = 100_000
    #: most models per input partition; events of further models are dead-lettered
    max_models: PositiveInt = 1000
    defaults: ModelConfig = msgspec.field(default_factory=ModelConfig)
    models: dict[str, ModelConfig] = {}
    #: belongs to ``driftradar retrain-worker``, which validates it itself
    retrain_worker: dict[str, Any] = {}

    def __post_init__(self) -> None:
        problem = partitioner_problem(self.kafka)
        if problem is not None:  # every producer must agree with the contract's rule
            raise ConfigError("kafka.partitioner", problem)

    def model(self, model_id: str) -> ModelConfig:
        """Settings for ``model_id``: its own entry, else the defaults."""
        return self.models.get(model_id, self.defaults)

    @classmethod
    def from_mapping(cls, value: Any) -> MonitorConfig:
        """Validate a parsed YAML document; the empty document gives the defaults."""
        document = {} if value is None else value
        if isinstance(document, Mapping):
            defaults, models = document.get("defaults"), document.get("models")
            if isinstance(models, Mapping) and isinstance(defaults or {}, Mapping):
                for model_id, spec in models.items():
                    _partition_keys_only_in_defaults(spec, f"models.{model_id}")
                models = {
                    model_id: _merge(defaults or {}, spec)
                    if isinstance(spec, Mapping)
                    else _merge(defaults or {}, {})
                    if spec is None
                    else spec
                    for model_id, spec in models.items()
                }
            rest = {k: v for k, v in document.items() if k != "models"}
            document = rest if models is None else {**rest, "models": models}  # defaults first
        return convert(document, cls)


def _partition_keys_only_in_defaults(spec: Any, key: str) -> None:
    """The alignment settings are per input partition, shared by every model on it."""
    join = spec.get("join") if isinstance(spec, Mapping) else None
    if isinstance(join, Mapping):
        for name in sorted(PARTITION_JOIN_KEYS & set(join)):
            raise ConfigError(
                f"{key}.join.{name}",
                "applies to a whole input partition (all its models); set it under defaults.join",
            )


#: Mappings whose entries a model's settings replace instead of merging into (docs/engine.md).
_REPLACED_ENTRIES: Final = frozenset({("detectors",)})


def _merge(
    base: Mapping[str, Any], override: Mapping[str, Any], path: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``override`` over ``base``, mappings merged key by key (``null`` for a mapping: no
    change), except the entries of :data:`_REPLACED_ENTRIES`, which replace whole."""
    out = dict(base)
    for name, value in override.items():
        old = out.get(name)
        mergeable = value is None or isinstance(value, Mapping)
        if isinstance(old, Mapping) and mergeable and path not in _REPLACED_ENTRIES:
            value = _merge(old, value or {}, (*path, name))
        out[name] = value
    return out


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
