"""Everything the engine knows about one model: schema, join, versions, signals, policy.

:meth:`ModelState.process` takes the model's records of one batch, in stream order, and
returns the alerts and retrain requests they cause, ordered by the position of the record
that caused them. Every decision depends on the sequence of records only (never on batch
boundaries or wall-clock), so a restored snapshot continues exactly like the original.

The parts with one job each live beside it: :mod:`~streams.engine.schema` (features and
columns), :mod:`~streams.engine.versions`, :mod:`~streams.engine.tasks` (pairs and errors),
:mod:`~streams.engine.expectations` (detectors per column),
:mod:`~streams.engine.verification` and :mod:`~streams.engine.views` (status, metrics).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from detectors.budget import evaluation_tail
from detectors.profile import CategoricalProfile, Profile
from streams.core.events import (
    Alert,
    Prediction,
    RetrainRequest,
    RetrainResult,
    epoch_seconds,
    rfc3339,
)
from streams.engine.alert_details import drift_details, metric_details
from streams.engine.budget import count_detectors
from streams.engine.clock import EventClock
from streams.engine.columns import Column, ValueKind
from streams.engine.config import ModelConfig
from streams.engine.estimate import PerformanceEstimate
from streams.engine.expectations import prediction_detectors, quality_detectors
from streams.engine.ids import alert_id
from streams.engine.join import DUPLICATE, JoinedPair
from streams.engine.pending import PendingJoin
from streams.engine.performance import RollingPerformance
from streams.engine.records import InputRecord
from streams.engine.retrain import VERIFICATION, RetrainPolicy, Trigger
from streams.engine.schema import (
    FeatureInfo,
    feature_columns,
    prediction_column,
    register_features,
)
from streams.engine.signals import Signal, SignalEntry
from streams.engine.tasks import PairArrays, infer_task, pair_arrays
from streams.engine.throughput import Throughput
from streams.engine.timeline import (
    DriftEntered,
    Entry,
    EstimateChanged,
    MetricChanged,
    RequestDue,
    SchemaOverflow,
    Timeline,
    VersionVerified,
)
from streams.engine.verification import verification_outcome, verification_plan, verify
from streams.engine.versions import UnseenCategories, VersionState

__all__ = ["ModelState"]

#: Most category names remembered per feature for the unseen-category stream.
MAX_REFERENCE_CATEGORIES: Final = 10_000
#: Most versions of one model with live detectors (the stalest is retired beyond).
MAX_VERSIONS: Final = 8
_INF: Final = math.inf
_NO_NUMBERS: Final = np.zeros(0, dtype=np.int64)
_NO_NUMBERS.flags.writeable = False


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
        self.features: dict[str, FeatureInfo] = {}  # the schema (see streams.engine.schema)
        for name, spec in config.features.items():
            if spec.type is not None:  # configured numbers are numbers; categories any key
                kind: ValueKind | None = "number" if spec.type == "numeric" else None
                self.features[name] = FeatureInfo(spec.type, kind, 0)
        self.ignored: list[str] = []
        self._numbers = _NO_NUMBERS  # the batch's prediction indexes: see process()
        self._batch_start = 0  # self.seq before the batch being processed
        # event time of past prediction indexes (where a change started: retrain windows)
        self.prediction_clock = EventClock()
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
        self.join = PendingJoin(
            model_id,
            config.join.ttl_seconds,
            config.join.max_pending,
            config.join.remember_joined,
            config.join.max_early_labels,
        )
        self.policy = RetrainPolicy(model_id, config.retrain)
        self.versions: dict[str, VersionState] = {}
        # label-free performance estimate of binary models, per version (estimate:* signals)
        self.estimates: dict[str, PerformanceEstimate] = {}
        self.current: str | None = None
        self.seq = 0  # records of this model processed (both topics)
        self.schema_alerted = False
        self.alerts = 0
        self.last_event_time: float | None = None
        # processing-time (ops) state
        self.last_seen: float | None = None
        self.silent = False
        self.throughput = Throughput()

    # -- helpers -------------------------------------------------------------------------

    def new_performance(self, n_detectors: int) -> RollingPerformance:
        """Rolling performance of a version whose budget is shared by ``n_detectors``."""
        assert self.task is not None
        perf = self.config.performance
        run_length = self.config.alarms.run_length("baseline", n_detectors)
        return RollingPerformance(
            self.task,
            window=perf.window,
            every=perf.every,
            thresholds=perf.thresholds,
            relative_drop=perf.relative_drop,
            threshold=self.config.threshold,
            clear_after=self.config.alarms.clear_after,
            reference_pairs=perf.reference_pairs,
            baseline_tail=evaluation_tail(run_length, perf.every),
        )

    def _estimate(self, version: VersionState) -> PerformanceEstimate | None:
        """The version's performance estimate (binary models, or not yet known ones)."""
        if not self.config.estimate.enabled or self.task not in (None, "binary"):
            return None
        estimate = self.estimates.get(version.name)
        if estimate is None:
            perf, conf = self.config.performance, self.config.estimate
            estimate = self.estimates[version.name] = PerformanceEstimate(
                window=perf.window,
                every=conf.every,
                calibration_pairs=conf.calibration_pairs,
                min_pairs=conf.min_pairs,
                threshold=self.config.threshold,
                thresholds=perf.thresholds,
                clear_after=self.config.alarms.clear_after,
            )
        return estimate

    def _link_estimate(self, version: VersionState) -> None:
        """An estimate is checked against the baseline its version's realised metric
        calibrated (same metric, same window: the same chance spread)."""
        estimate = self.estimates.get(version.name)
        if estimate is not None and version.performance is not None:
            estimate.limits.calibrated = version.performance.limits

    def _evaluate_estimates(self, timeline: Timeline) -> None:
        if self.task not in (None, "binary"):
            self.estimates.clear()
            return
        for name in [n for n in self.estimates if n not in self.versions]:
            del self.estimates[name]  # retired with its version
        for name, estimate in self.estimates.items():
            version = self.versions[name]
            self._link_estimate(version)
            for position, t, change in estimate.evaluate():
                timeline.add(EstimateChanged(position, version, change, t))

    # -- the hot path --------------------------------------------------------------------

    def process(
        self, records: Sequence[InputRecord], now: float
    ) -> tuple[list[Alert], list[RetrainRequest]]:
        """Process this model's records of one batch, in order."""
        self.last_seen = now
        self.silent = False
        self.throughput.count += len(records)
        self.partition = records[-1].partition
        seq0 = self.seq
        preds: list[Prediction] = []
        pred_at: list[int] = []
        for k, record in enumerate(records):
            if type(record.event) is Prediction:
                preds.append(record.event)
                pred_at.append(k)
        timeline = Timeline()
        feats = [p.features for p in preds]
        pred_seqs = np.asarray(pred_at, dtype=np.int64) + (seq0 + 1)
        self._register_features(feats, pred_seqs, timeline)
        columns = feature_columns(self.features, self.config.features, feats, pred_seqs)
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
        join.begin_batch([record.event.event_id for record in records])
        add_prediction, add_label = join.add_prediction, join.add_label
        versions = self.versions
        usable_list = usable.tolist()
        current = versions.get(self.current) if self.current is not None else None
        seq = self._batch_start = self.seq
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
        join.end_batch()
        self.seq = seq
        self.counters["ground_truth"] += labels
        if n:
            self.counters["predictions"] += n
        # the model's prediction index of each prediction of the batch: alerts' `position`
        self._numbers = np.arange(n, dtype=np.int64) + (self.counters["predictions"] - n + 1)
        self.prediction_clock.add(int(self._numbers[0]) if n else 0, times)
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
        # 4. performance estimated from the scores (before their labels come)
        if self.estimates:
            self._evaluate_estimates(timeline)
        alerts, requests = self._settle(timeline, now)
        self._numbers = _NO_NUMBERS  # (a model holds nothing of a batch it processed)
        expired = self.policy.expire(self.last_event_time)
        if expired is not None:
            requests.append(expired)
        return alerts, requests

    def _link_deployments(self, request_id: str, position: int) -> None:
        """A version first seen in this batch after ``position`` (where the request went
        out) was deployed for it, as if the batch had ended at the request."""
        for version in self.versions.values():
            plan = version.verify
            if (
                plan is not None
                and plan.request_id is None
                and version.first_position > max(position, self._batch_start)
            ):
                plan.request_id = request_id

    # -- schema ---------------------------------------------------------------------------

    def _register_features(
        self, feats: list[dict[str, Any]], pred_seqs: npt.NDArray[np.int64], timeline: Timeline
    ) -> None:
        """Give new features a type from their first value; beyond the cap, ignore them
        (and put the model's one ``schema`` alert on the timeline)."""
        ignored_values, overflow = register_features(
            self.features, self.ignored, feats, pred_seqs, self.config
        )
        if ignored_values:
            self.counters["ignored_feature_values"] += ignored_values
        if overflow is not None and not self.schema_alerted:
            self.schema_alerted = True
            timeline.add(SchemaOverflow(overflow[0], overflow[1]))

    def _prediction_column(self, preds: list[Prediction]) -> Column:
        raw = [p.prediction for p in preds]
        if self.prediction_kind is None and raw:
            self.prediction_kind = "categorical" if isinstance(raw[0], str) else "numeric"
        return prediction_column(raw, self.prediction_kind, self.config.prediction, self.task)

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
                self.policy.forget(stalest.name)
                self.counters["retired_versions"] += 1
            version = self.versions[name] = VersionState(name)
            version.first_position = self.seq
            version.n_detectors = count_detectors(
                self.config, self.features, self.seq, self.prediction_kind
            )
            if self.current is not None and self.current != name:
                version.verify = verification_plan(
                    self.current,
                    self.versions.get(self.current),
                    self.policy.last_request,
                    needed=self.config.retrain.verify_labelled_events,
                )
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
                    self.policy.forget(other.name)
                    self.counters["retired_versions"] += 1
        return version

    def _signal(
        self,
        version: VersionState,
        name: str,
        alert_type: str,
        group: str,
        reference: Profile | None = None,
        detectors: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        transform: bool = False,
    ) -> Signal:
        signal = version.signals.get(name)
        if signal is None:
            if not version.n_detectors:  # a version restored from before the budget
                version.n_detectors = count_detectors(
                    self.config, self.features, version.first_position, self.prediction_kind
                )
            signal = Signal.create(
                name,
                alert_type,
                detectors if detectors is not None else self.config.detectors[group],
                warmup=self.config.warmup,
                policy=self.config.alarms,
                n_detectors=version.n_detectors,
                reference=reference,
                transform=transform,
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
        timeline: Timeline,
    ) -> None:
        event_mode = self.config.quality_exclude == "event"
        event_ok = usable[idx]
        for name, column in columns.items():
            ftype = self.features[name].type
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
            signal = self._signal(
                version, signal_name, "data_drift", group, reference, transform=ftype == "numeric"
            )
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
                detectors=prediction_detectors(self.config, self.task),
                transform=True,
            )
            values = prediction.values[sel]
            estimate = self._estimate(version)
            if estimate is not None:
                estimate.add_scores(values, seqs[sel], times[sel])
        self._record(signal, signal.feed(values), version, sel, seqs, times, timeline)
        self._feed_quality(version, "prediction", prediction, idx, seqs, times, timeline)

    def _reference(self, column: str, kind: str) -> Profile | None:
        """The reference profile of ``column`` if the file has one of the right kind (else
        the signal warms up on its first values)."""
        reference = self.references.get(column)
        return reference if reference is not None and reference.kind == kind else None

    def _feed_quality(
        self,
        version: VersionState,
        name: str,
        column: Column,
        idx: npt.NDArray[np.int64],
        seqs: npt.NDArray[np.int64],
        times: npt.NDArray[np.float64],
        timeline: Timeline,
    ) -> None:
        if column.applies is not None:
            idx = idx[column.applies[idx]]
        signal_name = f"quality:{name}"
        signal = version.signals.get(signal_name)
        if signal is None:
            detectors = quality_detectors(self.config, name, self.features, self.prediction_kind)
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
        timeline: Timeline,
    ) -> None:
        state = version.unseen.get(name)
        if state is None:
            reference = self.references.get(name)
            known = set(reference.counts) if isinstance(reference, CategoricalProfile) else None
            state = version.unseen[name] = UnseenCategories(known)
        start = 0
        if state.known is None:
            start = min(len(keys), self.config.warmup - state.count)
            warm = state.warm
            for key in keys[:start]:
                if len(warm) < MAX_REFERENCE_CATEGORIES:
                    warm.add(key)
            state.count += start
            if state.count < self.config.warmup:
                return
            state.known, state.warm = warm, set()
        known = state.known
        flags = np.fromiter(
            (k not in known for k in keys[start:]), np.float64, count=len(keys) - start
        )
        signal = self._signal(version, f"unseen:{name}", "data_drift", "unseen")
        self._record(signal, signal.feed(flags), version, sel[start:], seqs, times, timeline)

    def _record(
        self,
        signal: Signal,
        entries: list[SignalEntry],
        version: VersionState,
        sel: npt.NDArray[np.int64],
        seqs: npt.NDArray[np.int64],
        times: npt.NDArray[np.float64],
        timeline: Timeline,
        numbers: npt.NDArray[np.int64] | None = None,
    ) -> None:
        """Put the drift entries of a signal on the batch timeline, each with its detector's
        statistics as they were at the entry.
        ``numbers[j]`` is the alert's ``position``: the model's prediction index (default)
        or, for the error stream, the version's pair index."""
        if not entries:
            return
        numbers = self._numbers if numbers is None else numbers
        for entry in entries:
            j = int(sel[entry.batch_index])
            timeline.add(
                DriftEntered(
                    int(seqs[j]),
                    version,
                    signal,
                    entry.label,
                    entry.update,
                    float(times[j]),
                    entry.result,
                    int(numbers[j]),
                )
            )

    def _feed_pairs(
        self,
        pairs: list[tuple[int, float, JoinedPair, VersionState | None]],
        timeline: Timeline,
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
            version.pair_clock.add(version.pairs + 1, times)
            version.pairs += sel.size
            due = self.policy.pairs(version.name, times)
            if due is not None:  # a waiting retrain request has its evidence at this pair
                timeline.add(RequestDue(int(seqs[due]), version, float(times[due])))
            estimate = self.estimates.get(version.name)
            if estimate is not None and self.task == "binary":
                estimate.add_pairs(scores, labels, seqs)
            group_name = "error_regression" if self.task == "regression" else "error"
            signal = self._signal(
                version,
                "error",
                "concept_drift",
                group_name,
                transform=self.task == "regression",
            )
            numbers = order + (signal.inputs + 1)  # the version's pair index
            self._record(
                signal, signal.feed(errors), version, order, seqs, times, timeline, numbers
            )
            if version.performance is None:
                version.performance = self.new_performance(version.n_detectors)
                self._link_estimate(version)
            perf = version.performance
            before = perf.updates
            plan = version.verify
            due = None  # pairs until the verification point, when it falls in this batch
            if plan is not None and plan.state == "pending":
                need = max(1, self.config.retrain.verify_labelled_events - before)
                if need <= scores.size:
                    due = need
            if due is None:
                changes = perf.update(scores, labels)
            else:
                changes = perf.update(scores[:due], labels[:due])
                assert plan is not None
                results = verify(plan, perf)
                timeline.add(
                    VersionVerified(
                        int(seqs[due - 1]), version, results, perf.updates, float(times[due - 1])
                    )
                )
                changes += perf.update(scores[due:], labels[due:])
            for change in changes:
                j = change.position - before - 1
                timeline.add(MetricChanged(int(seqs[j]), version, change, float(times[j])))

    def _pair_arrays(self, pairs: list[JoinedPair]) -> PairArrays | None:
        """(valid, score, label, error) of pairs for the model's task (inferred at the first
        pair that shows it), counting invalid labels. ``None`` while the task is unknown."""
        if self.task is None:
            for pair in pairs:
                self.task = infer_task(pair.prediction, pair.label)
                if self.task is not None:
                    break
            if self.task is None:
                self.counters["invalid_labels"] += len(pairs)
                return None
        arrays = pair_arrays(pairs, self.task, self.config.threshold)
        self.counters["invalid_labels"] += int((~arrays[0]).sum())
        return arrays

    # -- alerts and retraining ------------------------------------------------------------

    def _settle(self, timeline: Timeline, now: float) -> tuple[list[Alert], list[RetrainRequest]]:
        """Turn the batch timeline, in record order, into alerts and retrain requests."""
        alerts: list[Alert] = []
        requests: list[RetrainRequest] = []
        if not timeline:
            return alerts, requests
        detected_at = rfc3339(now)
        for entry in timeline.in_order():
            match entry:
                case DriftEntered(version=version, signal=signal, label=label, update=update):
                    details = drift_details(label, entry.result.to_dict(), signal.slot_info(label))
                    details["detector_updates"] = update
                    alert = self._alert(
                        signal.alert_type,
                        version.name,
                        signal.name,
                        label,
                        update,
                        entry.time,
                        detected_at,
                        details,
                        position=entry.number,
                    )
                case MetricChanged(version=version, change=change):
                    signal_name = f"metric:{change.metric}"
                    self.policy.performance(
                        version.name, f"{signal_name}/{change.detector}", change.entered
                    )
                    if not change.entered:
                        continue
                    details = metric_details(
                        change,
                        self.config.performance.window,
                        self.config.alarms.budget_share("baseline", version.n_detectors),
                    )
                    alert = self._alert(
                        "performance_degradation",
                        version.name,
                        signal_name,
                        change.detector,
                        change.position,
                        entry.time,
                        detected_at,
                        details,
                    )
                case EstimateChanged(version=version, change=change):
                    if change.entered:
                        alerts.append(
                            self._estimate_alert(version, change, entry.time, detected_at)
                        )
                    continue  # estimates never request retraining
                case VersionVerified(version=version, results=results, pairs=pairs):
                    if results:
                        assert version.verify is not None
                        signal_name, details, severity = verification_outcome(
                            version.verify, results, pairs
                        )
                        alerts.append(
                            self._alert(
                                "performance_degradation",
                                version.name,
                                signal_name,
                                VERIFICATION,
                                pairs,
                                entry.time,
                                detected_at,
                                details,
                                severity=severity,
                            )
                        )
                    continue  # verification alerts never request retraining
                case RequestDue():
                    request = self.policy.due(entry.time)
                    if request is not None:
                        self._link_deployments(request.request_id, entry.position)
                        requests.append(request)
                    continue
                case SchemaOverflow(first_ignored=first_ignored):
                    alert = self._alert(
                        "data_quality",
                        self.current or "unknown",
                        "quality:schema",
                        "max_features",
                        entry.position,
                        self.last_event_time or 0.0,
                        detected_at,
                        {"max_features": self.config.max_features, "first_ignored": first_ignored},
                    )
            alerts.append(alert)
            request = self.policy.observe(alert, self._trigger(entry, alert))
            if request is not None:
                self._link_deployments(request.request_id, entry.position)
                requests.append(request)
            if isinstance(entry, MetricChanged):  # the model may just have become stranded
                stranded = self._stranded(entry.time, detected_at)
                if stranded is not None:
                    alerts.append(stranded)
        return alerts, requests

    # -- the retrain worker's decisions ---------------------------------------------------

    def retrain_result(self, result: RetrainResult, now: float) -> list[Alert]:
        """The worker's decision on a request (``retrain-results``): the policy takes it,
        and a decision that deployed nothing while the model stays degraded raises the
        critical "nothing deployed" alert (once per regime)."""
        if self.policy.result(result) is None:
            return []  # about an older request, or seen already
        stranded = self._stranded(self.last_event_time or 0.0, rfc3339(now))
        return [] if stranded is None else [stranded]

    def _stranded(self, event_time: float, detected_at: str) -> Alert | None:
        """The "below its limits, nothing deployed" alert, if it is due now."""
        decision = self.policy.stranded(self.current)
        regime = self.policy.regime
        if decision is None or regime is None or self.current is None:
            return None
        return self._alert(
            "performance_degradation",
            self.current,
            "retrain",
            "no_deployment",
            0,
            event_time,
            detected_at,
            {
                "last_decision": msgspec.to_builtins(decision),
                "degraded": self.policy.degraded(self.current),
                "requests": self.policy.counters["requested"],
                "regime": {
                    "trigger": regime.trigger,
                    "change_at": rfc3339(regime.change_at),
                    "detected_at": rfc3339(regime.detected_at),
                    "labelled_pairs": regime.labelled,
                },
                "message": f"{self.model_id} {self.current} is below its performance limits "
                f"and nothing was deployed: the last retrain request was {decision.outcome} "
                f"({decision.reason or 'no reason given'})",
            },
            severity="critical",
            position=int(self.counters["predictions"]),
            key=regime.trigger,
        )

    def _trigger(self, entry: Entry, alert: Alert) -> Trigger:
        """Where the alert's evidence says the new regime started (event time), and the
        joined pairs of it already in: ADWIN's cut (the values after it), the first value of
        a bad performance window, else the detector's window (see docs/engine.md)."""
        t = _entry_time(entry, self)
        version = self.versions.get(alert.model_version)
        if version is None:
            return Trigger(t, t)
        window = self.config.performance.window
        match entry:
            case MetricChanged(change=change):
                start, clock = change.position - window, version.pair_clock
            case DriftEntered(result=result, number=number):
                recent = result.details.get("recent_values")
                back = int(recent) if recent else result.window_size or window
                pairs = entry.signal.name == "error"
                clock = version.pair_clock if pairs else self.prediction_clock
                start = number - back
            case _:
                return Trigger(t, t)
        change_at = clock.time_at(max(1, start))
        change_at = t if change_at is None else min(change_at, t)
        return Trigger(t, change_at, version.pair_clock.count_since(change_at, version.pairs))

    def _estimate_alert(
        self, version: VersionState, change: Any, t: float, detected_at: str
    ) -> Alert:
        estimate = self.estimates[version.name]
        error = version.signals.get("error")
        reliable = not (error is not None and error.active)
        details = {
            "value": change.value,
            "limit": change.limit,
            "estimated": True,
            "window": estimate.window,
            "calibration_pairs": estimate.calibrated_on,
            "reliable": reliable,
            "assumption": "P(label | score) learned from the labelled pairs still holds; "
            "concept drift (see signal error) makes the estimate wrong"
            + ("" if reliable else ": the error signal is in drift now"),
        }
        return self._alert(
            "performance_degradation",
            version.name,
            f"estimate:{change.metric}",
            change.detector,
            change.position,
            t,
            detected_at,
            details,
        )

    def _alert(
        self,
        alert_type: str,
        version: str,
        signal: str,
        detector: str,
        at: int,
        event_time: float,
        detected_at: str,
        details: dict[str, Any],
        *,
        severity: str | None = None,
        position: int | None = None,
        key: str | None = None,
    ) -> Alert:
        """An alert; ``at`` (the detector's update count, the pair count of a metric…)
        makes its id unless a ``key`` does, ``position`` (default ``at``) is the model's
        event index."""
        self.alerts += 1
        return Alert(
            alert_id=alert_id(self.model_id, version, signal, detector, at if key is None else key),
            type=alert_type,
            severity=severity or self.config.severities[alert_type],
            model_id=self.model_id,
            model_version=version,
            signal=signal,
            detector=detector,
            detected_at=detected_at,
            event_time=rfc3339(event_time),
            details={"position": at if position is None else position, **details},
        )

    # -- checkpointing --------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The model's state as plain data: its :class:`ModelFacts`, then its parts'."""
        facts = ModelFacts(**{name: getattr(self, name) for name in ModelFacts.__struct_fields__})
        return {
            **msgspec.to_builtins(facts),
            "join": self.join.snapshot(),
            "policy": self.policy.snapshot(),
            "versions": [version.snapshot() for version in self.versions.values()],
            "estimates": {name: e.snapshot() for name, e in self.estimates.items()},
            "prediction_clock": self.prediction_clock.snapshot(),
        }

    @classmethod
    def restore(
        cls,
        data: Mapping[str, Any],
        config: ModelConfig,
        references: Mapping[str, Profile] | None = None,
    ) -> ModelState:
        facts = msgspec.convert(_upgraded(data), ModelFacts)
        model = cls(facts.model_id, facts.partition, config, references)
        counters = model.counters
        for name in ModelFacts.__struct_fields__:
            setattr(model, name, getattr(facts, name))
        model.counters = {**counters, **facts.counters}  # counters added since: zero
        model.join = PendingJoin.restore(
            model.model_id,
            data["join"],
            config.join.ttl_seconds,
            config.join.max_pending,
            config.join.remember_joined,
            config.join.max_early_labels,
        )
        model.policy.restore(data["policy"])
        if "prediction_clock" in data:
            model.prediction_clock.restore(data["prediction_clock"])
        for item in data["versions"]:
            version = VersionState.restore(
                item, config.alarms, model.new_performance if model.task is not None else None
            )
            model.versions[version.name] = version
        for name, item in data.get("estimates", {}).items():
            estimate = model._estimate(model.versions[name]) if name in model.versions else None
            if estimate is not None:
                estimate.restore(item)
                model._link_estimate(model.versions[name])
        return model


class ModelFacts(msgspec.Struct):
    """The plain part of a model's state, field for field as :class:`ModelState` holds it
    (its snapshot is this struct's ``to_builtins``, its restore a ``convert``)."""

    model_id: str
    partition: int
    task: str | None
    prediction_kind: str | None
    features: dict[str, FeatureInfo]
    ignored: list[str]
    counters: dict[str, int]
    quality: dict[str, list[int]]  # signal -> [missing, invalid]
    current: str | None
    seq: int
    schema_alerted: bool
    alerts: int
    last_event_time: float | None
    last_seen: float | None
    silent: bool
    throughput: Throughput


def _upgraded(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """A model snapshot in today's layout (earlier ones kept features as ``[name, type,
    kind, since]`` rows)."""
    features = data["features"]
    if isinstance(features, list):
        data = {**data, "features": {str(row[0]): row[1:] for row in features}}
    return data


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


def _entry_time(entry: Entry, model: ModelState) -> float:
    """The event time an entry's alert carries (a schema overflow: the latest one seen)."""
    if isinstance(entry, SchemaOverflow):
        return model.last_event_time or 0.0
    return entry.time
