"""The event contract (DESIGN.md "Topics and events"): schemas, decoding and encoding.

Every message is one UTF-8 JSON object. Decoding uses msgspec, which validates while it
parses; a bad message raises :class:`EventDecodeError` whose ``field`` and ``problem`` name
what is wrong, so the stream can send it to the dead-letter topic with a useful reason.

>>> event = decode_prediction(
...     b'{"event_id": "e1", "model_id": "churn", "features": {"tenure_months": 14},'
...     b' "prediction": 0.72, "timestamp": "2026-11-27T10:00:00Z"}')
>>> event.model_version, event.event_time()
('unknown', 1795773600.0)
>>> decode_prediction(b'{"event_id": "e1", "model_id": "churn", "prediction": 0.7}')
Traceback (most recent call last):
...
streams.core.errors.EventDecodeError: $.features: required field is missing
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Final, TypeVar

import msgspec

from streams.core.errors import EventDecodeError

__all__ = [
    "ALERT_TYPES",
    "MAX_ID_LENGTH",
    "MODEL_ALERT_TYPES",
    "Alert",
    "AlertReason",
    "DeadLetter",
    "Deployment",
    "EventDecodeError",
    "FeatureValue",
    "GroundTruth",
    "Label",
    "LogisticParameters",
    "NumericTerm",
    "Prediction",
    "RetrainOutcome",
    "RetrainRequest",
    "RetrainResult",
    "TimeWindow",
    "Timestamp",
    "decode_alert",
    "decode_deployment",
    "decode_ground_truth",
    "decode_prediction",
    "decode_retrain_request",
    "decode_retrain_result",
    "describe_result",
    "encode",
    "epoch_seconds",
    "result_id",
    "rfc3339",
]

#: Longest accepted ``event_id`` / ``model_id`` / ``model_version``, in characters.
MAX_ID_LENGTH: Final = 256

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
#: Epoch seconds a timestamp may hold: the years 1 to 9999, what RFC 3339 text can express
#: (a larger number could not be printed in an alert, and would drag the join's watermark).
EPOCH_RANGE: Final = (-62_135_596_800.0, 253_402_300_799.0)
#: RFC 3339 with an explicit offset (``Z`` or ``+hh:mm``), or epoch seconds.
Timestamp = (
    Annotated[datetime, msgspec.Meta(tz=True)]
    | Annotated[float, msgspec.Meta(ge=EPOCH_RANGE[0], le=EPOCH_RANGE[1])]
)
FeatureValue = float | str | bool | None
Label = float | str | bool

ALERT_TYPES: Final = frozenset(
    {
        "data_drift",
        "prediction_drift",
        "concept_drift",
        "performance_degradation",
        "data_quality",
        "infrastructure",
    }
)
#: Alert types that describe the model (not the platform); only these may request retraining.
MODEL_ALERT_TYPES: Final = ALERT_TYPES - {"infrastructure"}

AlertType = Annotated[str, msgspec.Meta(pattern="^(" + "|".join(sorted(ALERT_TYPES)) + ")$")]
Severity = Annotated[str, msgspec.Meta(pattern="^(info|warning|critical)$")]


def epoch_seconds(value: datetime | float) -> float:
    """Epoch seconds of a contract timestamp."""
    return value.timestamp() if isinstance(value, datetime) else float(value)


def rfc3339(epoch: float) -> str:
    """RFC 3339 UTC text with millisecond precision, e.g. ``2026-11-27T10:00:00.000Z``."""
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class Prediction(msgspec.Struct, frozen=True):
    """One model prediction, keyed by ``model_id`` on the ``predictions`` topic."""

    event_id: Id
    model_id: Id
    features: dict[str, FeatureValue]
    prediction: float | str
    model_version: Id = "unknown"
    timestamp: Timestamp | None = None

    def event_time(self, fallback: float | None = None) -> float:
        """Event time in epoch seconds; ``fallback`` (the Kafka timestamp) when absent."""
        if self.timestamp is not None:
            return epoch_seconds(self.timestamp)
        return fallback if fallback is not None else time.time()


class GroundTruth(msgspec.Struct, frozen=True):
    """The true outcome of an earlier (or later) prediction with the same ``event_id``."""

    event_id: Id
    model_id: Id
    label: Label
    timestamp: Timestamp | None = None

    def event_time(self, fallback: float | None = None) -> float:
        if self.timestamp is not None:
            return epoch_seconds(self.timestamp)
        return fallback if fallback is not None else time.time()


class Alert(msgspec.Struct, frozen=True, omit_defaults=False):
    """A detected problem, published to ``drift-alerts``; ``alert_id`` is deterministic."""

    alert_id: Id
    type: AlertType
    severity: Severity
    model_id: Id
    signal: str
    detector: str
    detected_at: str
    model_version: str = "unknown"
    event_time: str | None = None
    details: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def is_model_problem(self) -> bool:
        return self.type in MODEL_ALERT_TYPES


class AlertReason(msgspec.Struct, frozen=True):
    alert_id: Id
    type: AlertType
    signal: str


class TimeWindow(msgspec.Struct, frozen=True):
    start: str
    end: str


class RetrainRequest(msgspec.Struct, frozen=True):
    """A request to retrain ``model_id``, with the alerts that justify it and the data window.

    ``window.start`` is where the evidence says the new regime starts (the triggering
    detector's change point, in event time) and ``window.end`` the event time of the
    request; ``detected_at`` is the event time of the triggering alert. ``labelled_pairs``
    counts the joined prediction/label pairs of the window when the request was made;
    ``complete`` is false when the policy stopped waiting for ``retrain.min_labelled`` of
    them (``retrain.max_wait_seconds`` elapsed) and requested with what there was.
    """

    request_id: Id
    model_id: Id
    requested_at: str
    reasons: list[AlertReason]
    window: TimeWindow
    model_version: str = "unknown"
    detected_at: str | None = None
    labelled_pairs: int | None = None
    complete: bool = True


#: What became of a retrain request (``retrain-results``).
RetrainOutcome = Annotated[str, msgspec.Meta(pattern="^(deployed|declined|failed)$")]


class RetrainResult(msgspec.Struct, frozen=True):
    """The one outcome of a retrain request, published to ``retrain-results`` (key =
    ``model_id``) by the retrain worker.

    ``outcome`` is ``deployed`` (``deployed_version`` went live), ``declined`` (no new
    version: ``reason`` says why, e.g. not better than the current model by the margin, too
    few rows, training failed) or ``failed`` (the action kept failing after its retries).
    ``evaluation`` holds the candidate's and the current model's metrics on the same
    held-out rows and the row counts, when there were any. ``result_id`` is derived from
    the request (:func:`result_id`): a request redelivered after a crash ends with the same
    id, so consumers dedupe.
    """

    result_id: Id
    request_id: Id
    model_id: Id
    outcome: RetrainOutcome
    reason: str
    decided_at: str
    model_version: str = "unknown"
    deployed_version: str | None = None
    evaluation: dict[str, Any] = msgspec.field(default_factory=dict)
    attempts: int = 1


def result_id(request_id: str) -> str:
    """The id of the outcome of request ``request_id`` (one outcome per request).

    >>> result_id("r-1f2e")
    'o-r-1f2e'
    """
    return f"o-{request_id}"


def describe_result(result: RetrainResult) -> str:
    """One line per decision, the same in the worker's and the monitor's logs, ``driftradar
    alerts`` and the demo.

    >>> result = RetrainResult(
    ...     result_id="o-r1", request_id="r1", model_id="churn", outcome="deployed",
    ...     reason="better than the current model by the margin", model_version="v1",
    ...     decided_at="2026-11-27T10:06:00Z", deployed_version="v2", evaluation={
    ...         "candidate": {"auc": 0.6612, "log_loss": 0.581},
    ...         "current": {"auc": 0.4271, "log_loss": 0.893}, "holdout_rows": 375})
    >>> describe_result(result)
    'retrain r1 for churn: deployed v2 (roc_auc 0.661 vs 0.427, log_loss 0.581 vs 0.893 on \
375 held-out post-change rows)'
    >>> import msgspec
    >>> failed = msgspec.structs.replace(result, outcome="failed", attempts=4, reason="HTTP 503")
    >>> describe_result(failed)
    'retrain r1 for churn: failed after 4 attempts: HTTP 503'
    """
    head = f"retrain {result.request_id} for {result.model_id}:"
    if result.outcome == "failed":
        plural = "" if result.attempts == 1 else "s"
        return f"{head} failed after {result.attempts} attempt{plural}: {result.reason}"
    if result.outcome == "declined":
        return f"{head} declined: {result.reason}"
    evaluation = result.evaluation
    candidate, current = evaluation.get("candidate"), evaluation.get("current")
    if isinstance(candidate, dict) and isinstance(current, dict):
        figures = (
            f"roc_auc {_figure(candidate.get('auc'))} vs {_figure(current.get('auc'))}, "
            f"log_loss {_figure(candidate.get('log_loss'))} vs "
            f"{_figure(current.get('log_loss'))} on {evaluation.get('holdout_rows', '?')} "
            "held-out post-change rows"
        )
    else:
        figures = result.reason
    return f"{head} deployed {result.deployed_version} ({figures})"


def _figure(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


class DeadLetter(msgspec.Struct, frozen=True):
    """A message that could not be used, kept with where it came from and why.

    ``value`` and ``key`` are the original bytes (base64 in JSON). A value too large to
    republish is cut to its first bytes (``truncated``); ``size`` and ``sha256`` describe
    the whole original, so the record found at ``topic``/``partition``/``offset`` can be
    recognised.
    """

    topic: str
    partition: int
    offset: int
    reason: str
    value: bytes | None
    key: bytes | None = None
    failed_at: str = ""
    size: int = 0
    sha256: str = ""
    truncated: bool = False


class NumericTerm(msgspec.Struct, frozen=True):
    """A numeric feature's coefficient, and the value used when the feature is missing."""

    coef: float
    fill: float


class LogisticParameters(msgspec.Struct, frozen=True):
    """A logistic-regression model over raw (unscaled) features, as deployed.

    ``p = 1 / (1 + exp(-z))`` with ``z = intercept + sum(numeric[f].coef * x_f) +
    sum(categorical[f].get(x_f, 0.0))`` where, for a numeric feature, ``x_f`` is the
    event's value (``true``/``false`` count as 1/0) or ``numeric[f].fill`` when it is
    missing, null or not a number; for a categorical feature, ``x_f`` is the event's string
    value and a category absent from the table (unseen, null) contributes 0 (one-hot
    encoding, one coefficient per category seen in training). Features not listed are
    ignored.
    """

    intercept: float
    numeric: dict[str, NumericTerm]
    categorical: dict[str, dict[str, float]]
    kind: str = "logistic_regression"


class Deployment(msgspec.Struct, frozen=True):
    """A new model version went live (``model-deployments`` topic), keyed by ``model_id``.

    Published by the retrain worker's local trainer when the candidate beat the current
    model on held-out recent data; ``evaluation`` holds both models' metrics on that data
    (``{"metric": "log_loss", "candidate": {...}, "current": {...}, "train_rows": n,
    "holdout_rows": m}``). ``request_id`` is the retrain request it answers (consumers
    dedupe on it or on ``model_version``).
    """

    model_id: Id
    model_version: Id
    parameters: LogisticParameters
    evaluation: dict[str, Any]
    deployed_at: str
    request_id: str = ""
    previous_version: str = "unknown"


_T = TypeVar("_T")

_ENCODER: Final = msgspec.json.Encoder()
_PREDICTION: Final = msgspec.json.Decoder(Prediction)
_GROUND_TRUTH: Final = msgspec.json.Decoder(GroundTruth)
_ALERT: Final = msgspec.json.Decoder(Alert)
_RETRAIN: Final = msgspec.json.Decoder(RetrainRequest)
_DEPLOYMENT: Final = msgspec.json.Decoder(Deployment)
_RESULT: Final = msgspec.json.Decoder(RetrainResult)


def _decode(decoder: msgspec.json.Decoder[_T], data: bytes | bytearray | memoryview | str) -> _T:
    """Decode with ``decoder``; whatever the bytes provoke becomes :class:`EventDecodeError`.

    Nothing else may escape: the runner dead-letters on this one exception, so a message
    that made msgspec recurse too deep or overflow a number must not crash the loop.

    >>> decode_prediction(b'{"event_id": "e", "model_id": "m", "features": {"x": 1e999},'
    ...                   b' "prediction": 0.5}')
    Traceback (most recent call last):
    ...
    streams.core.errors.EventDecodeError: $.features.x: number out of range
    >>> decode_ground_truth(b'{"extra": ' + b'[' * 5000 + b']' * 5000 + b'}')
    Traceback (most recent call last):
    ...
    streams.core.errors.EventDecodeError: $: JSON nested too deeply
    """
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        error = _as_decode_error(str(exc))
        if error.field == "$.features[...]":
            error = EventDecodeError(_bad_feature_path(data) or error.field, error.problem)
        raise error from None
    except msgspec.DecodeError as exc:
        raise EventDecodeError("$", f"invalid JSON ({exc})") from None
    except RecursionError:
        raise EventDecodeError("$", "JSON nested too deeply") from None
    except (ValueError, TypeError, OverflowError, MemoryError) as exc:  # defensive: msgspec
        raise EventDecodeError("$", f"cannot decode ({type(exc).__name__}: {exc})") from None


def _bad_feature_path(data: bytes | bytearray | memoryview | str) -> str | None:
    """msgspec reports a bad feature value as ``$.features[...]``; find which key it was.

    Only called on a message already known to be bad, so it may be slow; it never raises.

    >>> _bad_feature_path(b'{"features": {"age": 3, "plan": ["a"]}}')
    '$.features.plan'
    >>> _bad_feature_path(b'{"features": {"the plan": {"a": 1}}}')
    '$.features["the plan"]'
    >>> _bad_feature_path(b'{"features": {"age": 3, "income": 1e999}}')
    '$.features.income'
    >>> _bad_feature_path(b'{"features": ' + b'[' * 5000 + b']' * 5000 + b'}') is None
    True
    """
    try:  # the stdlib parser reads 1e999 as inf where msgspec refuses the whole document
        document = json.loads(bytes(data) if isinstance(data, memoryview) else data)
        features = document.get("features") if isinstance(document, dict) else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(features, dict):
        return None
    for key, value in features.items():
        bad_number = isinstance(value, float) and not math.isfinite(value)
        if bad_number or isinstance(value, list | dict):
            if key.isidentifier():
                return f"$.features.{key}"
            return f"$.features[{json.dumps(key)}]"
    return None


def _as_decode_error(message: str) -> EventDecodeError:
    """Turn msgspec's ``"<problem> - at `$.path`"`` into a field + problem pair."""
    problem, sep, where = message.rpartition(" - at `")
    field = where.rstrip("`") if sep else "$"
    problem = problem if sep else message
    if problem.startswith("Object missing required field `"):
        missing = problem.removeprefix("Object missing required field `").rstrip("`")
        return EventDecodeError(f"{field}.{missing}", "required field is missing")
    return EventDecodeError(field, _humanise(problem))


def _humanise(problem: str) -> str:
    return problem[:1].lower() + problem[1:]


def decode_prediction(data: bytes | bytearray | memoryview | str) -> Prediction:
    """Decode and validate one prediction message."""
    return _decode(_PREDICTION, data)


def decode_ground_truth(data: bytes | bytearray | memoryview | str) -> GroundTruth:
    """Decode and validate one ground-truth message."""
    return _decode(_GROUND_TRUTH, data)


def decode_alert(data: bytes | bytearray | memoryview | str) -> Alert:
    return _decode(_ALERT, data)


def decode_retrain_request(data: bytes | bytearray | memoryview | str) -> RetrainRequest:
    return _decode(_RETRAIN, data)


def decode_deployment(data: bytes | bytearray | memoryview | str) -> Deployment:
    return _decode(_DEPLOYMENT, data)


def decode_retrain_result(data: bytes | bytearray | memoryview | str) -> RetrainResult:
    return _decode(_RESULT, data)


def encode(event: msgspec.Struct) -> bytes:
    """Encode any contract struct to compact UTF-8 JSON (datetimes as RFC 3339)."""
    return _ENCODER.encode(event)
