"""Everything the engine knows about one model: schema, join, versions, signals, policy.

:meth:`ModelState.process` takes the model's records of one batch, in stream order, and
returns the alerts and retrain requests they cause, ordered by the position of the record
that caused them. Every decision depends on the sequence of records only (never on batch
boundaries or wall-clock), so a restored snapshot continues exactly like the original.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from detectors.profile import CategoricalProfile, Profile, category_key
from streams.engine.columns import (
    Column,
    ValueKind,
    categorical_column,
    numeric_column,
    value_kind,
)
from streams.engine.config import ModelConfig
from streams.engine.ids import alert_id
from streams.engine.join import DUPLICATE, JoinBuffer, JoinedPair
from streams.engine.performance import RollingPerformance
from streams.engine.records import InputRecord
from streams.engine.retrain import VERIFICATION, RetrainPolicy
from streams.engine.signals import Signal
from streams.events import Alert, Prediction, RetrainRequest, epoch_seconds, rfc3339

__all__ = ["ModelState", "VersionState"]

#: Most category names remembered per feature for the unseen-category stream.
MAX_REFERENCE_CATEGORIES: Final = 10_000
#: Most versions of one model with live detectors (the stalest is retired beyond).
MAX_VERSIONS: Final = 8
#: Most ignored feature names remembered (beyond: only counted).
MAX_IGNORED_NAMES: Final = 1000
_INF: Final = math.inf
_NUMERIC_TYPES: Final = frozenset({float, int, bool})

# An entry of the batch timeline: (position, order, kind, payload)
_Entry = tuple[int, int, str, tuple[Any, ...]]


class VersionState:
    """The detectors and baseline of one ``model_version``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.signals: dict[str, Signal] = {}
        # categorical feature -> [reference categories | None, warm-up categories, warm count]
        self.unseen: dict[str, list[Any]] = {}
        self.performance: RollingPerformance | None = None
        self.predictions = 0
        self.last_position = 0
        self.first_position = 0
        self.last_time = -_INF
        self.first_time = _INF
        # deployment verification of a version that replaced another (plain data), or None:
        # {"previous", "request_id", "baseline": {metric: value}, "state", "results"}
        self.verify: dict[str, Any] | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "signals": [signal.snapshot() for signal in self.signals.values()],
            "unseen": {
                name: [None if ref is None else sorted(ref), sorted(warm), count]
                for name, (ref, warm, count) in self.unseen.items()
            },
            "performance": None if self.performance is None else self.performance.snapshot(),
            "predictions": self.predictions,
            "last_position": self.last_position,
            "last_time": self.last_time,
            "first_time": self.first_time,
            "first_position": self.first_position,
            "verify": self.verify,
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any], model: ModelState) -> VersionState:
        version = cls(str(data["name"]))
        for item in data["signals"]:
            signal = Signal.restore(item, model.config.alarms)
            version.signals[signal.name] = signal
        version.unseen = {
            name: [None if ref is None else set(ref), set(warm), int(count)]
            for name, (ref, warm, count) in data["unseen"].items()
        }
        if data["performance"] is not None and model.task is not None:
            version.performance = model.new_performance()
            version.performance.restore(data["performance"])
        version.predictions = int(data["predictions"])
        version.last_position = int(data["last_position"])
        version.last_time = float(data["last_time"])
        version.first_time = float(data["first_time"])
        version.first_position = int(data["first_position"])
        verify = data.get("verify")
        version.verify = None if verify is None else dict(verify)
        return version


class ModelState:
    """State and processing of one model (all its versions)."""

    def __init__(
        self,
        model_id: str,
        partition: int,
        config: ModelConfig,
        references: Mapping[str, Profile] | None = None,
    ) -> None:
        self.model_id = model_id
        self.partition = partition
        self.config = config
        self.references: Mapping[str, Profile] = references or {}
        self.task: str | None = config.task
        self.prediction_kind: str | None = None  # "numeric" | "categorical"
        # feature -> [type ("numeric"/"categorical"), first value kind, position of the
        # prediction that introduced it (events before it do not miss it)]
        self.features: dict[str, list[Any]] = {}
        for name, spec in config.features.items():
            if spec.type is not None:  # configured numbers are numbers; categories any key
                self.features[name] = [spec.type, "number" if spec.type == "numeric" else None, 0]
        self.ignored: list[str] = []
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "predictions",
                "ground_truth",
                "dead_letters",
                "excluded_events",
                "ignored_feature_values",
                "invalid_labels",
                "excluded_pairs",
                "untracked_pairs",
                "retired_versions",
            ),
            0,
        )
        self.quality: dict[str, list[int]] = {}  # signal -> [missing, invalid]
        self.join = JoinBuffer(
            config.join.ttl_seconds, config.join.max_pending, config.join.remember_joined
        )
        self.policy = RetrainPolicy(model_id, config.retrain)
        self.versions: dict[str, VersionState] = {}
        self.current: str | None = None
        self.seq = 0  # records of this model processed (both topics)
        self.schema_alerted = False
        self.alerts = 0
        self.last_request_id: str | None = None  # the model's latest retrain request
        self.last_event_time: float | None = None
        # processing-time (ops) state
        self.last_seen: float | None = None
        self.silent = False
        self.throughput: dict[str, Any] = {
            "start": None,
            "count": 0,
            "average": None,
            "collapsed": False,
            "rate": None,
        }

    # -- helpers used by VersionState ----------------------------------------------------

    def new_performance(self) -> RollingPerformance:
        assert self.task is not None
        perf = self.config.performance
        return RollingPerformance(
            self.task,
            window=perf.window,
            every=perf.every,
            thresholds=perf.thresholds,
            relative_drop=perf.relative_drop,
            threshold=self.config.threshold,
            clear_after=self.config.alarms.clear_after,
        )

    # -- the hot path --------------------------------------------------------------------

    def process(
        self, records: Sequence[InputRecord], now: float
    ) -> tuple[list[Alert], list[RetrainRequest]]:
        """Process this model's records of one batch, in order."""
        self.last_seen = now
        self.silent = False
        self.throughput["count"] += len(records)
        self.partition = records[-1].partition
        seq0 = self.seq
        preds: list[Prediction] = []
        pred_at: list[int] = []
        for k, record in enumerate(records):
            if type(record.event) is Prediction:
                preds.append(record.event)
                pred_at.append(k)
        timeline: list[_Entry] = []
        feats = [p.features for p in preds]
        pred_seqs = np.asarray(pred_at, dtype=np.int64) + (seq0 + 1)
        self._register_features(feats, pred_seqs, timeline)
        columns = self._columns(feats, pred_seqs)
        prediction_column = self._prediction_column(preds)
        usable = prediction_column.ok
        if self.config.quality_exclude == "event":
            for column in columns.values():
                usable = usable & column.ok

        # 1. the record loop: join, duplicates, versions (per record: order matters)
        n = len(preds)
        keep = np.ones(n, dtype=np.bool_)
        times = np.empty(n, dtype=np.float64)
        owners: list[VersionState] = []
        pairs: list[tuple[int, float, JoinedPair, VersionState | None]] = []
        join = self.join
        add_prediction, add_label = join.add_prediction, join.add_label
        versions = self.versions
        usable_list = usable.tolist()
        current = versions.get(self.current) if self.current is not None else None
        seq = self.seq
        labels = 0
        j = 0
        for record in records:
            seq += 1
            event = record.event
            ts = event.timestamp
            t = record.timestamp if ts is None else ts if type(ts) is float else epoch_seconds(ts)
            if t > join.watermark:
                join.advance(t)
            if isinstance(event, Prediction):
                times[j] = t
                if current is None or event.model_version != current.name or len(versions) > 1:
                    self.seq = seq
                    current = self._version_for(event.model_version, t)
                current.predictions += 1
                current.last_position = seq
                if t > current.last_time:
                    current.last_time = t
                if t < current.first_time:
                    current.first_time = t
                owners.append(current)
                result = add_prediction(
                    event.event_id, event.model_version, event.prediction, t, usable_list[j]
                )
                if result is DUPLICATE:
                    keep[j] = False
                elif result is not None:
                    pairs.append((seq, t, result, versions.get(result.version)))
                j += 1
            else:
                labels += 1
                result = add_label(event.event_id, event.label, t)
                if result is not None and result is not DUPLICATE:
                    pairs.append((seq, t, result, versions.get(result.version)))
        self.seq = seq
        self.counters["ground_truth"] += labels
        if n:
            self.counters["predictions"] += n
        self.last_event_time = max(self.last_event_time or -_INF, join.watermark)

        # 2. features, predictions and quality, per version
        self._count_quality(columns, prediction_column, usable, keep)
        for version, idx in _groups(owners, keep):
            self._feed_version(
                version, idx, columns, prediction_column, usable, pred_seqs, times, timeline
            )
        # 3. the error stream and rolling performance
        if pairs:
            self._feed_pairs(pairs, timeline)
        return self._settle(timeline, now)

    # -- schema ---------------------------------------------------------------------------

    def _register_features(
        self, feats: list[dict[str, Any]], pred_seqs: npt.NDArray[np.int64], timeline: list[_Entry]
    ) -> None:
        """Give new features a type from their first value; beyond the cap, ignore them."""
        known = self.features
        names = set().union(*feats) if feats else set()
        new = names.difference(known)
        if self.ignored:
            ignored = set(self.ignored)
            new -= ignored
            hits = names & ignored
            if hits:
                self.counters["ignored_feature_values"] += sum(
                    1 for f in feats for k in f if k in hits
                )
        configured = self.config.features
        if not new:
            return
        for j, f in enumerate(feats):  # first-appearance order (deterministic)
            for name, value in f.items():
                if name not in new or name in known:
                    continue
                kind = value_kind(value)
                if kind is None:
                    continue
                spec = configured.get(name)
                if spec is None and not self.config.infer_features:
                    new.discard(name)
                    continue
                if len(known) >= self.config.max_features:
                    new.discard(name)
                    if len(self.ignored) < MAX_IGNORED_NAMES:
                        self.ignored.append(name)
                    self.counters["ignored_feature_values"] += sum(
                        1 for g in feats[j:] if name in g
                    )
                    if not self.schema_alerted:
                        self.schema_alerted = True
                        timeline.append((int(pred_seqs[j]), 0, "schema", (name,)))
                    continue
                ftype = (
                    spec.type
                    if spec is not None and spec.type
                    else ("numeric" if kind == "number" else "categorical")
                )
                if spec is not None and spec.type == "categorical":
                    kind = None  # configured categorical: any category key
                known[name] = [ftype, kind, int(pred_seqs[j])]

    def _columns(
        self, feats: list[dict[str, Any]], pred_seqs: npt.NDArray[np.int64]
    ) -> dict[str, Column]:
        out: dict[str, Column] = {}
        configured = self.config.features
        for name, (ftype, kind, since) in self.features.items():
            raw = [f.get(name) for f in feats]
            spec = configured.get(name)
            if ftype == "numeric":
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

    def _prediction_column(self, preds: list[Prediction]) -> Column:
        raw = [p.prediction for p in preds]
        if self.prediction_kind is None and raw:
            self.prediction_kind = "categorical" if isinstance(raw[0], str) else "numeric"
        spec = self.config.prediction
        if self.prediction_kind == "categorical":
            allowed = frozenset(spec.categories) if spec.categories else None
            return categorical_column(raw, "string", allowed)
        value_range = spec.range
        if value_range is None and self.task == "binary":
            value_range = (0.0, 1.0)
        return numeric_column(raw, value_range)

    def _count_quality(
        self,
        columns: Mapping[str, Column],
        prediction: Column,
        usable: npt.NDArray[np.bool_],
        keep: npt.NDArray[np.bool_],
    ) -> None:
        if not keep.size:
            return
        self.counters["excluded_events"] += int((~usable & keep).sum())
        for name, column in chain(columns.items(), (("prediction", prediction),)):
            counts = self.quality.setdefault(name, [0, 0])
            counts[0] += int((column.missing & keep).sum())
            counts[1] += int((column.invalid & keep).sum())

    # -- versions -------------------------------------------------------------------------

    def _version_for(self, name: str, t: float) -> VersionState:
        """The state of version ``name`` (new: fresh detectors); retires versions that have
        not been seen for too long (``self.seq`` is the current record's position)."""
        version = self.versions.get(name)
        if version is None:
            if len(self.versions) >= MAX_VERSIONS:  # bounded memory: drop the stalest one
                stalest = min(self.versions.values(), key=lambda v: v.last_position)
                del self.versions[stalest.name]
                self.counters["retired_versions"] += 1
            version = self.versions[name] = VersionState(name)
            version.first_position = self.seq
            if self.current is not None and self.current != name:
                version.verify = self._verification_plan(self.current)
        self.current = name
        if len(self.versions) > 1:
            rules = self.config.versions
            for other in list(self.versions.values()):
                if other is version:
                    continue
                if (
                    self.seq - other.last_position > rules.retire_after_events
                    or t - other.last_time > rules.retire_after_seconds
                ):
                    del self.versions[other.name]
                    self.counters["retired_versions"] += 1
        return version

    def _verification_plan(self, previous: str) -> dict[str, Any] | None:
        """What a version replacing ``previous`` must show once it has
        ``retrain.verify_labelled_events`` labelled events (``None``: not verified)."""
        if self.config.retrain.verify_labelled_events <= 0:
            return None
        old = self.versions.get(previous)
        perf = None if old is None else old.performance
        return {
            "previous": previous,
            "request_id": self.last_request_id,
            "baseline": {} if perf is None else dict(perf.baseline),
            "state": "pending",
            "results": [],
        }

    def _verify(self, version: VersionState, perf: RollingPerformance) -> list[dict[str, Any]]:
        """Compare the version's performance over its first labelled events with the
        acceptable limits: ``performance.thresholds``, else the previous version's first
        full window less ``performance.relative_drop``. Marks the verification done."""
        plan = version.verify
        assert plan is not None
        results: list[dict[str, Any]] = []
        limits = {m: (v, "threshold") for m, v in perf.thresholds.items()}
        if not limits and perf.relative_drop is not None:
            for metric, base in plan["baseline"].items():
                if metric in perf.metrics:
                    drop = abs(base) * perf.relative_drop
                    limit = base - drop if perf.metrics[metric] else base + drop
                    limits[metric] = (limit, "previous_version")
        for metric, (limit, source) in limits.items():
            value, pairs = perf.recent(metric)
            if value is None:
                continue
            higher = perf.metrics[metric]
            ok = value >= limit if higher else value <= limit
            results.append(
                {
                    "metric": metric,
                    "value": value,
                    "minimum" if higher else "maximum": limit,
                    "limit_source": source,
                    "verified": ok,
                    "pairs": pairs,
                }
            )
        plan["results"] = results
        if not results:
            plan["state"] = "unverifiable"
        else:
            plan["state"] = "verified" if all(r["verified"] for r in results) else "failed"
        return results

    def _signal(
        self,
        version: VersionState,
        name: str,
        alert_type: str,
        group: str,
        reference: Profile | None = None,
        detectors: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Signal:
        signal = version.signals.get(name)
        if signal is None:
            signal = Signal.create(
                name,
                alert_type,
                detectors if detectors is not None else self.config.detectors[group],
                warmup=self.config.warmup,
                policy=self.config.alarms,
                # the false-alarm budget is split over the features, predictions and errors
                # known when the version started (deterministic, whatever the batching)
                n_signals=sum(1 for f in self.features.values() if f[2] <= version.first_position)
                + 2,
                reference=reference,
            )
            version.signals[name] = signal
        return signal

    # -- feeding detectors ----------------------------------------------------------------

    def _feed_version(
        self,
        version: VersionState,
        idx: npt.NDArray[np.int64],
        columns: Mapping[str, Column],
        prediction: Column,
        usable: npt.NDArray[np.bool_],
        seqs: npt.NDArray[np.int64],
        times: npt.NDArray[np.float64],
        timeline: list[_Entry],
    ) -> None:
        event_mode = self.config.quality_exclude == "event"
        event_ok = usable[idx]
        for name, column in columns.items():
            ftype = self.features[name][0]
            ok = event_ok if event_mode else column.ok[idx]
            if column.applies is not None:
                ok = ok & column.applies[idx]
            sel = idx[ok]
            reference = self._reference(name, ftype)
            signal_name = f"feature:{name}"
            if ftype == "numeric":
                values: Any = column.values[sel]
                group = "numeric"
            else:
                keys = column.values
                values = [keys[i] for i in sel.tolist()]
                group = "categorical"
            signal = self._signal(version, signal_name, "data_drift", group, reference)
            self._record(signal, signal.feed(values), version, sel, seqs, times, timeline)
            if ftype == "categorical" and self.config.detectors["unseen"]:
                self._feed_unseen(version, name, values, sel, seqs, times, timeline)
            self._feed_quality(version, name, column, idx, seqs, times, timeline)
        ok = event_ok if event_mode else prediction.ok[idx]
        sel = idx[ok]
        if self.prediction_kind == "categorical":
            keys = prediction.values
            signal = self._signal(
                version,
                "prediction",
                "prediction_drift",
                "prediction_categorical",
                self._reference("prediction", "categorical"),
            )
            values = [keys[i] for i in sel.tolist()]
        else:
            signal = self._signal(
                version,
                "prediction",
                "prediction_drift",
                "prediction",
                self._reference("prediction", "numeric"),
                detectors=self._prediction_detectors(),
            )
            values = prediction.values[sel]
        self._record(signal, signal.feed(values), version, sel, seqs, times, timeline)
        self._feed_quality(version, "prediction", prediction, idx, seqs, times, timeline)

    def _reference(self, column: str, kind: str) -> Profile | None:
        """The reference profile of ``column`` if the file has one of the right kind (else
        the signal warms up on its first values)."""
        reference = self.references.get(column)
        return reference if reference is not None and reference.kind == kind else None

    def _prediction_detectors(self) -> Mapping[str, Mapping[str, Any]]:
        """Numeric prediction detectors; the band's hard range comes from the config."""
        detectors = dict(self.config.detectors["prediction"])
        band = detectors.get("prediction_band")
        value_range = self.config.prediction.range or (
            (0.0, 1.0) if self.task == "binary" else None
        )
        if band is not None and value_range is not None:
            detectors["prediction_band"] = {"low": value_range[0], "high": value_range[1], **band}
        return detectors

    def _quality_detectors(self, name: str) -> dict[str, dict[str, Any]]:
        """The expectations that apply to a feature (or to ``prediction``)."""
        params = self.config.quality
        out: dict[str, dict[str, Any]] = {}
        if name == "prediction":
            ftype = self.prediction_kind or "numeric"
            kind: ValueKind | None = "string" if ftype == "categorical" else "number"
            value_range = self.config.prediction.range
            categories = self.config.prediction.categories
            max_missing = None
        else:
            ftype, kind, _ = self.features[name]
            spec = self.config.features.get(name)
            value_range = spec.range if spec else None
            categories = spec.categories if spec else None
            max_missing = spec.max_missing_rate if spec else None
        expected = {"number": "numeric", "string": "string", "bool": "bool"}.get(kind or "")
        if expected is not None and not (ftype == "categorical" and kind == "number"):
            out["type"] = {"expected": expected}
        if name != "prediction":
            out["missing_rate"] = (
                {} if max_missing is None else {"max_failing_fraction": max_missing}
            )
        if value_range is not None:
            out["value_range"] = {"min_value": value_range[0], "max_value": value_range[1]}
        if categories is not None:
            out["allowed_categories"] = {"categories": list(categories)}
        return {  # feature settings win over `quality.detectors`; `false` there drops one
            kind: {**configured, **implied}
            for kind, implied in out.items()
            if (configured := params[kind]) is not None
        }

    def _feed_quality(
        self,
        version: VersionState,
        name: str,
        column: Column,
        idx: npt.NDArray[np.int64],
        seqs: npt.NDArray[np.int64],
        times: npt.NDArray[np.float64],
        timeline: list[_Entry],
    ) -> None:
        if column.applies is not None:
            idx = idx[column.applies[idx]]
        signal_name = f"quality:{name}"
        signal = version.signals.get(signal_name)
        if signal is None:
            detectors = self._quality_detectors(name)
            if not detectors:
                return
            signal = self._signal(version, signal_name, "data_quality", "", detectors=detectors)
        if isinstance(column.values, np.ndarray) and not column.invalid[idx].any():
            values: Any = column.values[idx]  # clean numbers: NaN is exactly "missing"
        else:
            raw = column.raw
            values = [raw[i] for i in idx.tolist()]
        self._record(signal, signal.feed(values), version, idx, seqs, times, timeline)

    def _feed_unseen(
        self,
        version: VersionState,
        name: str,
        keys: list[Any],
        sel: npt.NDArray[np.int64],
        seqs: npt.NDArray[np.int64],
        times: npt.NDArray[np.float64],
        timeline: list[_Entry],
    ) -> None:
        state = version.unseen.get(name)
        if state is None:
            reference = self.references.get(name)
            known = set(reference.counts) if isinstance(reference, CategoricalProfile) else None
            state = version.unseen[name] = [known, set(), 0]
        start = 0
        if state[0] is None:
            start = min(len(keys), self.config.warmup - state[2])
            warm: set[str] = state[1]
            for key in keys[:start]:
                if len(warm) < MAX_REFERENCE_CATEGORIES:
                    warm.add(key)
            state[2] += start
            if state[2] >= self.config.warmup:
                state[0], state[1] = warm, set()
            else:
                return
        known = state[0]
        flags = np.fromiter(
            (k not in known for k in keys[start:]), np.float64, count=len(keys) - start
        )
        signal = self._signal(version, f"unseen:{name}", "data_drift", "unseen")
        self._record(signal, signal.feed(flags), version, sel[start:], seqs, times, timeline)

    def _record(
        self,
        signal: Signal,
        entries: list[tuple[int, str, int]],
        version: VersionState,
        sel: npt.NDArray[np.int64],
        seqs: npt.NDArray[np.int64],
        times: npt.NDArray[np.float64],
        timeline: list[_Entry],
    ) -> None:
        """Put the drift entries of a signal on the batch timeline, each with its detector's
        statistics as they were at the entry (read now: the next batch replaces them)."""
        if not entries:
            return
        for i, label, update in entries:
            j = int(sel[i])
            result = signal.detector(label).result_at(update)
            timeline.append(
                (
                    int(seqs[j]),
                    len(timeline),
                    "drift",
                    (version, signal, label, update, float(times[j]), result),
                )
            )

    def _feed_pairs(
        self,
        pairs: list[tuple[int, float, JoinedPair, VersionState | None]],
        timeline: list[_Entry],
    ) -> None:
        groups: dict[int, tuple[VersionState, list[int]]] = {}
        for k, (_, _, pair, version) in enumerate(pairs):
            if not pair.usable:
                self.counters["excluded_pairs"] += 1
            elif version is None:
                self.counters["untracked_pairs"] += 1
            else:
                groups.setdefault(id(version), (version, []))[1].append(k)
        for version, members in groups.values():
            chosen = [pairs[k] for k in members]
            values = self._pair_arrays([item[2] for item in chosen])
            if values is None:
                continue
            ok, scores, labels, errors = values
            sel = np.flatnonzero(ok)
            seqs = np.asarray([item[0] for item in chosen], dtype=np.int64)[sel]
            times = np.asarray([item[1] for item in chosen], dtype=np.float64)[sel]
            order = np.arange(sel.size, dtype=np.int64)
            group_name = "error_regression" if self.task == "regression" else "error"
            signal = self._signal(version, "error", "concept_drift", group_name)
            self._record(signal, signal.feed(errors), version, order, seqs, times, timeline)
            if version.performance is None:
                version.performance = self.new_performance()
            perf = version.performance
            before = perf.updates
            plan = version.verify
            due = None  # pairs until the verification point, when it falls in this batch
            if plan is not None and plan["state"] == "pending":
                need = max(1, self.config.retrain.verify_labelled_events - before)
                if need <= scores.size:
                    due = need
            if due is None:
                changes = perf.update(scores, labels)
            else:
                changes = perf.update(scores[:due], labels[:due])
                results = self._verify(version, perf)
                timeline.append(
                    (
                        int(seqs[due - 1]),
                        len(timeline),
                        "verify",
                        (version, results, perf.updates, float(times[due - 1])),
                    )
                )
                changes += perf.update(scores[due:], labels[due:])
            for change in changes:
                j = change.position - before - 1
                timeline.append(
                    (int(seqs[j]), len(timeline), "metric", (version, change, float(times[j])))
                )

    def _pair_arrays(
        self, pairs: list[JoinedPair]
    ) -> (
        tuple[
            npt.NDArray[np.bool_],
            npt.NDArray[np.float64],
            npt.NDArray[np.float64],
            npt.NDArray[np.float64],
        ]
        | None
    ):
        """(valid, score, label, error) of pairs for the model's task; vectorised when all
        predictions and labels are numbers. ``None`` while the task cannot be inferred."""
        if self.task is None:
            for pair in pairs:
                self.task = _infer_task(pair.prediction, pair.label)
                if self.task is not None:
                    break
            if self.task is None:
                self.counters["invalid_labels"] += len(pairs)
                return None
        predictions = [p.prediction for p in pairs]
        labels = [p.label for p in pairs]
        numeric = set(map(type, predictions)) | set(map(type, labels)) <= _NUMERIC_TYPES
        if self.task == "multiclass" or not numeric:
            rows = [self._pair_values(p) for p in pairs]
            ok = np.fromiter((r is not None for r in rows), np.bool_, count=len(rows))
            good = [r for r in rows if r is not None]
            arr = np.asarray(good, dtype=np.float64).reshape(len(good), 3)
            return ok, arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy()
        score = np.asarray(predictions, dtype=np.float64)
        label = np.asarray(labels, dtype=np.float64)
        if self.task == "binary":
            ok = ((label == 0.0) | (label == 1.0)) & (score >= 0.0) & (score <= 1.0)
            error = _excess_error(score, label, self.config.threshold)
        else:
            ok = np.isfinite(score) & np.isfinite(label)
            if bool in set(map(type, labels)):
                ok &= np.fromiter((type(v) is not bool for v in labels), np.bool_, len(labels))
            error = np.abs(label - score)
        self.counters["invalid_labels"] += int((~ok).sum())
        return ok, score[ok], label[ok], error[ok]

    def _pair_values(self, pair: JoinedPair) -> tuple[float, float, float] | None:
        """(score, label, error) of a pair for the model's task (inferred at the first pair)."""
        prediction, label = pair.prediction, pair.label
        if self.task is None:
            self.task = _infer_task(prediction, label)
            if self.task is None:
                self.counters["invalid_labels"] += 1
                return None
        task = self.task
        if task == "multiclass":
            key = category_key(label)
            if key is None or not isinstance(prediction, str):
                self.counters["invalid_labels"] += 1
                return None
            correct = 1.0 if key == prediction else 0.0
            return correct, correct, 1.0 - correct
        if isinstance(prediction, str) or isinstance(label, str):
            self.counters["invalid_labels"] += 1
            return None
        y = float(label)
        if task == "binary":
            if y not in (0.0, 1.0) or not 0.0 <= prediction <= 1.0:
                self.counters["invalid_labels"] += 1
                return None
            excess = _excess_error(np.array([prediction]), np.array([y]), self.config.threshold)
            return prediction, y, float(excess[0])
        if isinstance(label, bool) or not math.isfinite(y) or not math.isfinite(prediction):
            self.counters["invalid_labels"] += 1
            return None
        return prediction, y, abs(y - prediction)

    # -- alerts and retraining ------------------------------------------------------------

    def _settle(
        self, timeline: list[_Entry], now: float
    ) -> tuple[list[Alert], list[RetrainRequest]]:
        """Turn the batch timeline, in record order, into alerts and retrain requests."""
        alerts: list[Alert] = []
        requests: list[RetrainRequest] = []
        if not timeline:
            return alerts, requests
        timeline.sort(key=lambda entry: (entry[0], entry[1]))
        detected_at = rfc3339(now)
        for position, _, kind, payload in timeline:
            if kind == "drift":
                version, signal, label, at, t, entry = payload
                result = entry.to_dict()
                details = {k: v for k, v in result.items() if k != "details" and v is not None}
                details.update(result["details"])
                alert = self._alert(
                    signal.alert_type, version.name, signal.name, label, at, t, detected_at, details
                )
            elif kind == "metric":
                version, change, t = payload
                signal_name = f"metric:{change.metric}"
                self.policy.performance(f"{signal_name}/{change.detector}", change.entered)
                if not change.entered:
                    continue
                details = {
                    "value": change.value,
                    "limit": change.limit,
                    "window": self.config.performance.window,
                }
                alert = self._alert(
                    "performance_degradation",
                    version.name,
                    signal_name,
                    change.detector,
                    change.position,
                    t,
                    detected_at,
                    details,
                )
            elif kind == "verify":
                version, results, pairs, t = payload
                if results:
                    alerts.append(self._verification_alert(version, results, pairs, t, detected_at))
                continue  # verification alerts never request retraining
            else:  # schema: too many features
                t = self.last_event_time or 0.0
                alert = self._alert(
                    "data_quality",
                    self.current or "unknown",
                    "quality:schema",
                    "max_features",
                    position,
                    t,
                    detected_at,
                    {"max_features": self.config.max_features, "first_ignored": payload[0]},
                )
            alerts.append(alert)
            owner = self.versions.get(alert.model_version)
            request = self.policy.observe(alert, t, None if owner is None else owner.first_time)
            if request is not None:
                self.last_request_id = request.request_id
                requests.append(request)
        return alerts, requests

    def _verification_alert(
        self,
        version: VersionState,
        results: list[dict[str, Any]],
        pairs: int,
        event_time: float,
        detected_at: str,
    ) -> Alert:
        """The one ``performance_degradation`` alert reporting a deployment's verification:
        severity ``info`` when the new version meets every limit, else ``critical``; its
        signal is the first metric that failed (or the first one checked)."""
        plan = version.verify
        assert plan is not None
        verified = all(r["verified"] for r in results)
        result = next(r for r in results if r["verified"] == verified)
        details = {
            **result,
            "labelled_events": pairs,
            "previous_version": plan["previous"],
            "request_id": plan["request_id"],
            "results": [dict(r) for r in results],
        }
        return self._alert(
            "performance_degradation",
            version.name,
            f"metric:{result['metric']}",
            VERIFICATION,
            pairs,
            event_time,
            detected_at,
            details,
            severity="info" if verified else "critical",
        )

    def _alert(
        self,
        alert_type: str,
        version: str,
        signal: str,
        detector: str,
        position: int,
        event_time: float,
        detected_at: str,
        details: dict[str, Any],
        *,
        severity: str | None = None,
    ) -> Alert:
        self.alerts += 1
        return Alert(
            alert_id=alert_id(self.model_id, version, signal, detector, position),
            type=alert_type,
            severity=severity or self.config.severities[alert_type],
            model_id=self.model_id,
            model_version=version,
            signal=signal,
            detector=detector,
            detected_at=detected_at,
            event_time=rfc3339(event_time),
            details={"position": position, **details},
        )

    # -- reading ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The ``status --json`` entry: counters and the current version's detectors."""
        version = self.versions.get(self.current) if self.current is not None else None
        signals: dict[str, dict[str, Any]] = {}
        if version is not None:
            for name, signal in version.signals.items():
                signals[name] = signal.status()
            perf = version.performance
            if perf is not None:
                for metric in perf.metrics:
                    signals[f"metric:{metric}"] = {
                        detector: {
                            "updates": perf.updates,
                            "drift": perf.active.get(f"{metric}/{detector}", False),
                        }
                        for detector in perf.detectors(metric)
                    }
        out = {
            "predictions": self.counters["predictions"],
            "ground_truth": self.counters["ground_truth"],
            "joined": self.join.counts()["joined"],
            "dead_letters": self.counters["dead_letters"],
            "model_version": self.current,
            "versions": list(self.versions),
            "task": self.task,
            "partition": self.partition,
            "signals": signals,
        }
        if version is not None and version.verify is not None:
            out["verification"] = self._verification_status(version)
        return out

    def _verification_status(self, version: VersionState) -> dict[str, Any]:
        """The current version's deployment verification: state, progress, results."""
        plan = version.verify
        assert plan is not None
        perf = version.performance
        return {
            "state": plan["state"],
            "previous_version": plan["previous"],
            "request_id": plan["request_id"],
            "labelled_events": 0 if perf is None else perf.updates,
            "needed": self.config.retrain.verify_labelled_events,
            "results": [dict(r) for r in plan["results"]],
        }

    def view(self) -> dict[str, Any]:
        """The model's entry of :meth:`Engine.metrics_view` (``streams.metrics.ModelView``
        keys, plus engine counters), computed on demand from the current version."""
        version = self.versions.get(self.current) if self.current is not None else None
        stats = self.join.stats()
        out: dict[str, Any] = {
            "model_version": self.current or "unknown",
            "task": self.task,
            "signals": {},
            "performance": {},
            "join_buffer_entries": self.join.pending,
            "join_buffer_capacity": self.join.max_pending,
            "join": stats,
            "counters": dict(self.counters),
            "quality": {n: {"missing": c[0], "invalid": c[1]} for n, c in self.quality.items()},
            "retrain": self.policy.stats(),
            "features": {name: entry[0] for name, entry in self.features.items()},
            "ignored_features": list(self.ignored),
            "versions": list(self.versions),
            "throughput": dict(self.throughput),
        }
        if version is not None and version.verify is not None:
            out["verification"] = self._verification_status(version)
        if stats["label_coverage"] is not None:
            out["label_coverage"] = stats["label_coverage"]
        if stats["label_lag_mean"] is not None:
            out["label_lag_seconds"] = stats["label_lag_mean"]
        if self.last_event_time is not None:
            out["last_event_timestamp_seconds"] = self.last_event_time
        if version is None:
            return out
        for name, signal in version.signals.items():
            out["signals"][name] = signal.results()
        band = out["signals"].get("prediction", {}).get("prediction_band", {}).get("details", {})
        if band.get("band_low") is not None:
            out["prediction_band"] = (band["band_low"], band["band_high"])
        if band.get("mean_after") is not None:
            out["prediction_mean"] = band["mean_after"]
        error = out["signals"].get("error", {}).get("adwin", {}).get("details", {})
        if error.get("mean") is not None and self.task != "regression":
            out["error_rate"] = error["mean"]
        perf = version.performance
        if perf is not None:
            for metric, higher in perf.metrics.items():
                value = perf.values.get(metric)
                if value is None:
                    continue
                limit = perf.thresholds.get(metric)
                if limit is None and metric in perf.baseline and perf.relative_drop is not None:
                    drop = abs(perf.baseline[metric]) * perf.relative_drop
                    limit = perf.baseline[metric] - drop if higher else perf.baseline[metric] + drop
                out["performance"][metric] = {
                    "value": value,
                    "threshold": limit,
                    "higher_is_better": higher,
                }
        return out

    # -- checkpointing --------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "partition": self.partition,
            "task": self.task,
            "prediction_kind": self.prediction_kind,
            "features": [[name, *entry] for name, entry in self.features.items()],
            "ignored": list(self.ignored),
            "counters": dict(self.counters),
            "quality": {name: list(c) for name, c in self.quality.items()},
            "join": self.join.snapshot(),
            "policy": self.policy.snapshot(),
            "versions": [version.snapshot() for version in self.versions.values()],
            "current": self.current,
            "seq": self.seq,
            "schema_alerted": self.schema_alerted,
            "alerts": self.alerts,
            "last_request": self.last_request_id,
            "last_event_time": self.last_event_time,
            "last_seen": self.last_seen,
            "silent": self.silent,
            "throughput": dict(self.throughput),
        }

    @classmethod
    def restore(
        cls,
        data: Mapping[str, Any],
        config: ModelConfig,
        references: Mapping[str, Profile] | None = None,
    ) -> ModelState:
        model = cls(str(data["model_id"]), int(data["partition"]), config, references)
        model.task = data["task"]
        model.prediction_kind = data["prediction_kind"]
        model.features = {str(row[0]): [row[1], row[2], int(row[3])] for row in data["features"]}
        model.ignored = [str(name) for name in data["ignored"]]
        model.counters.update({k: int(v) for k, v in data["counters"].items()})
        model.quality = {k: [int(c[0]), int(c[1])] for k, c in data["quality"].items()}
        model.join = JoinBuffer.restore(
            data["join"],
            config.join.ttl_seconds,
            config.join.max_pending,
            config.join.remember_joined,
        )
        model.policy.restore(data["policy"])
        for item in data["versions"]:
            version = VersionState.restore(item, model)
            model.versions[version.name] = version
        model.current = data["current"]
        model.seq = int(data["seq"])
        model.schema_alerted = bool(data["schema_alerted"])
        model.alerts = int(data["alerts"])
        model.last_request_id = data.get("last_request")
        model.last_event_time = data["last_event_time"]
        model.last_seen = data["last_seen"]
        model.silent = bool(data["silent"])
        model.throughput = dict(data["throughput"])
        return model


def _excess_error(
    score: npt.NDArray[np.float64], label: npt.NDArray[np.float64], threshold: float
) -> npt.NDArray[np.float64]:
    """A binary model's error beyond what it expects of itself: 1 if misclassified at
    ``threshold``, minus the model's own probability of that misclassification (``1 - p``
    when it says class 1, ``p`` when it says class 0).

    Its mean stays put when only the inputs move (a calibrated model hit by data drift
    errs more on the harder cases, and expects to) and rises when the world's rule changes
    (concept drift), so the ``error`` signal separates the two.

    >>> _excess_error(np.array([0.9, 0.9, 0.2]), np.array([1.0, 0.0, 0.0]), 0.5).round(2)
    array([-0.1,  0.9, -0.2])
    """
    says_one = score >= threshold
    wrong = (says_one != (label == 1.0)).astype(np.float64)
    result: npt.NDArray[np.float64] = wrong - np.where(says_one, 1.0 - score, score)
    return result


def _infer_task(prediction: float | str, label: float | str | bool) -> str | None:
    """Binary for probabilities with 0/1 labels, regression for numbers, multiclass for
    class-label predictions; ``None`` when the pair says nothing usable."""
    if isinstance(prediction, str):
        return "multiclass"
    if isinstance(label, str):
        return None
    if isinstance(label, bool) or (label in (0.0, 1.0) and 0.0 <= prediction <= 1.0):
        return "binary"
    return "regression"


def _groups(
    owners: list[VersionState], keep: npt.NDArray[np.bool_]
) -> list[tuple[VersionState, npt.NDArray[np.int64]]]:
    """Indices of kept predictions per version object, versions in first-seen order."""
    if not owners:
        return []
    first = owners[0]
    if all(o is first for o in owners):
        return [(first, np.flatnonzero(keep))]
    order: dict[int, tuple[VersionState, list[int]]] = {}
    for j, owner in enumerate(owners):
        if keep[j]:
            order.setdefault(id(owner), (owner, []))[1].append(j)
    return [(owner, np.asarray(idx, dtype=np.int64)) for owner, idx in order.values()]
