"""A model's retrain policy: which alerts request retraining, over which data, when, and
what happens after the retrain worker decided.

All times are EVENT times carried by alerts and pairs, so replaying the same events after a
crash takes the same decisions and yields the same ``request_id`` values. (The worker's
decisions come back at processing time: where they fall in the stream is the one thing a
replay may change.) The bookkeeping is plain data checkpointed with the model.

A request's life:

1. A trigger alert passes the policy (``triggers``, ``confirm``,
   ``require_degraded_performance``, ``cooldown_seconds``, ``max_per_day``). The policy
   opens a :class:`Regime`: where the evidence says the new regime starts (the triggering
   detector's change point in event time, :class:`Trigger`) and the joined pairs of it so
   far (pairs of the alert's model version whose prediction is at or after the change).
2. The request goes out once ``min_labelled`` such pairs are in (at the very pair that
   completes them, :meth:`RetrainPolicy.pairs` / :meth:`RetrainPolicy.due`), or
   ``max_wait_seconds`` after the detection with what there is (``complete`` false). Until
   then the model is ``retrain_pending``. The drift alerts themselves never wait.
3. The worker's decision comes back (``retrain-results``, :meth:`RetrainPolicy.result`):
   ``deployed`` ends the regime's requests; ``declined`` or ``failed`` let the policy ask
   again once ``min_labelled`` more pairs of the regime are in, if the performance is still
   degraded and the cooldown and daily maximum allow.

>>> import numpy as np
>>> from streams.core.events import Alert
>>> from streams.engine.config import RetrainConfig
>>> policy = RetrainPolicy("churn", RetrainConfig(cooldown_seconds=600, min_labelled=100))
>>> alert = Alert("a1", "concept_drift", "critical", "churn", "error", "adwin", "-",
...               model_version="v1")
>>> policy.observe(alert, Trigger(event_time=1000.0, change_at=900.0, labelled=40)) is None
True
>>> policy.state_name(), policy.regime.labelled
('retrain_pending', 40)
>>> policy.pairs("v1", np.array([880.0, 950.0] + [990.0] * 80))  # the 60th new one is due
60
>>> request = policy.due(event_time=990.0)
>>> request.window.start, request.window.end, request.labelled_pairs, request.complete
('1970-01-01T00:15:00.000Z', '1970-01-01T00:16:30.000Z', 100, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from streams.core.events import (
    MODEL_ALERT_TYPES,
    Alert,
    AlertReason,
    RetrainRequest,
    RetrainResult,
    TimeWindow,
    rfc3339,
)
from streams.engine.config import RetrainConfig
from streams.engine.ids import request_id

__all__ = ["VERIFICATION", "Decision", "Regime", "RetrainPolicy", "Trigger"]

#: ``detector`` of the alerts that report a deployment's verification: never a trigger.
VERIFICATION: Final = "verification"

_DAY: Final = 86400.0
#: Outcomes of alerts that could have requested retraining but did not.
OUTCOMES: Final = (
    "requested",
    "not_a_trigger",
    "unconfirmed",
    "performance_ok",
    "cooldown",
    "daily_limit",
    "waiting",
)


class Trigger(msgspec.Struct, frozen=True):
    """What a trigger alert tells the policy: its event time, where its detector says the
    new regime started (event time) and how many labelled pairs of it are already in."""

    event_time: float
    change_at: float
    labelled: int = 0


class Reason(msgspec.Struct, array_like=True, frozen=True):
    alert_id: str
    type: str
    signal: str
    event_time: float


class Regime(msgspec.Struct):
    """The change a request is (or was) about, and the labelled pairs of it so far."""

    model_version: str
    trigger: str  # the alert id that opened it
    reasons: list[Reason]
    detected_at: float
    change_at: float
    labelled: int


class Decision(msgspec.Struct):
    """The worker's decision on the model's last request (``retrain-results``)."""

    request_id: str
    outcome: str
    reason: str
    decided_at: str
    deployed_version: str | None = None


class _State(msgspec.Struct):
    """The policy's plain data (its snapshot)."""

    pending: list[Reason] = msgspec.field(default_factory=list)  # awaiting confirmation
    requests: list[float] = msgspec.field(default_factory=list)  # event times, last day
    sequence: int = 0
    last: float | None = None  # event time of the last request
    #: per model version, the performance checks beyond their limit now
    degraded: dict[str, list[str]] = msgspec.field(default_factory=dict)
    counters: dict[str, int] = msgspec.field(default_factory=dict)
    regime: Regime | None = None
    #: labelled pairs of the regime at which the next request goes out (None: none due)
    due_at: int | None = None
    #: the next request is a retry after a declined or failed decision
    retry: bool = False
    last_request: str | None = None
    decision: Decision | None = None
    #: the regime (its trigger alert id) whose "nothing deployed" alert was raised
    stranded: str | None = None


class RetrainPolicy:
    """Decides, alert by alert and pair by pair (in event order), when to request."""

    def __init__(self, model_id: str, config: RetrainConfig) -> None:
        self.model_id = model_id
        self.config = config
        self._s = _State(counters=dict.fromkeys(OUTCOMES, 0))

    # -- reading ----------------------------------------------------------------------------

    @property
    def counters(self) -> dict[str, int]:
        return self._s.counters

    @property
    def regime(self) -> Regime | None:
        return self._s.regime

    @property
    def decision(self) -> Decision | None:
        return self._s.decision

    @property
    def last_request(self) -> str | None:
        return self._s.last_request

    def degraded(self, version: str) -> list[str]:
        """The performance checks of ``version`` beyond their limit now (e.g.
        ``metric:accuracy/threshold``)."""
        return self._s.degraded.get(version, [])

    def state_name(self) -> str:
        """``retrain_pending`` while a request waits for evidence, ``requested`` until the
        worker's decision, then its outcome (``deployed``, ``declined``, ``failed``);
        ``idle`` before any request."""
        state = self._s
        if state.due_at is not None and not state.retry:
            return "retrain_pending"
        if state.last_request is None:
            return "idle"
        return "requested" if state.decision is None else state.decision.outcome

    # -- alerts -----------------------------------------------------------------------------

    def performance(self, version: str, key: str, degraded: bool) -> None:
        """Record that a performance check of ``version`` (e.g. ``metric:accuracy/threshold``)
        is beyond its limit or not; ``require_degraded_performance``, retries and the
        "nothing deployed" alert consult this."""
        keys = set(self._s.degraded.get(version, ()))
        if degraded:
            keys.add(key)
        else:
            keys.discard(key)
        if keys:
            self._s.degraded[version] = sorted(keys)
        else:
            self._s.degraded.pop(version, None)

    def forget(self, version: str) -> None:
        """``version`` was retired: its checks no longer count."""
        self._s.degraded.pop(version, None)

    def observe(self, alert: Alert, trigger: Trigger) -> RetrainRequest | None:
        """Take one alert (in event order). A trigger the policy allows opens a regime whose
        request waits for evidence; it is returned at once if the evidence is already in."""
        config, state = self.config, self._s
        t = trigger.event_time
        if (
            not config.enabled
            or alert.detector == VERIFICATION
            or alert.type not in MODEL_ALERT_TYPES
            or alert.type not in config.triggers
        ):
            self.counters["not_a_trigger"] += 1
            return None
        reason = Reason(alert.alert_id, alert.type, alert.signal, t)
        regime = state.regime
        waiting = state.due_at is not None and not state.retry
        if waiting and regime is not None and regime.model_version == alert.model_version:
            regime.reasons.append(reason)  # more evidence of the same change
            self.counters["waiting"] += 1
            return None
        horizon = t - config.confirm.within_seconds
        pending = [p for p in state.pending if p.event_time >= horizon and p.signal != alert.signal]
        pending.append(reason)
        state.pending = pending
        if len({p.signal for p in pending}) < config.confirm.signals:
            self.counters["unconfirmed"] += 1
            return None
        if config.require_degraded_performance and not self.degraded(alert.model_version):
            self.counters["performance_ok"] += 1
            return None
        if not self._allowed(t):
            return None
        state.pending = []
        state.regime = Regime(
            model_version=alert.model_version,
            trigger=alert.alert_id,
            reasons=sorted(pending, key=lambda p: (p.event_time, p.alert_id)),
            detected_at=t,
            change_at=min(trigger.change_at, t),
            labelled=trigger.labelled,
        )
        state.due_at = max(config.min_labelled, trigger.labelled)
        state.retry = False
        return self.due(t) if trigger.labelled >= config.min_labelled else None

    def _allowed(self, t: float) -> bool:
        state, config = self._s, self.config
        if state.last is not None and t - state.last < config.cooldown_seconds:
            self.counters["cooldown"] += 1
            return False
        state.requests = [r for r in state.requests if r > t - _DAY]
        if len(state.requests) >= config.max_per_day:
            self.counters["daily_limit"] += 1
            return False
        return True

    # -- pairs and deadlines ----------------------------------------------------------------

    def pairs(self, version: str, times: npt.NDArray[np.float64]) -> int | None:
        """Count the joined pairs of ``version`` (their predictions' event times, in join
        order) that belong to the regime; the index of the pair at which a request falls
        due, if one does in these (then call :meth:`due` at that pair)."""
        state, regime = self._s, self._s.regime
        if regime is None or regime.model_version != version or not times.size:
            return None
        new = times >= regime.change_at
        before = regime.labelled
        regime.labelled += int(new.sum())
        due_at = state.due_at
        if due_at is None or not before < due_at <= regime.labelled:
            return None
        return int(np.flatnonzero(new)[due_at - before - 1])

    def due(self, event_time: float) -> RetrainRequest | None:
        """The request whose evidence is complete at ``event_time`` (a retry only if the
        performance is still degraded; blocked by the cooldown or the daily maximum, it asks
        again after ``min_labelled`` more pairs)."""
        state, regime = self._s, self._s.regime
        if regime is None or state.due_at is None:
            return None
        if state.retry:
            if not self.degraded(regime.model_version):
                state.due_at, state.retry = None, False
                return None
            if not self._allowed(event_time):
                state.due_at += self.config.min_labelled
                return None
        return self._request(event_time, state.due_at, complete=True)

    def expire(self, watermark: float) -> RetrainRequest | None:
        """The waiting request, with what it has, once ``max_wait_seconds`` passed since the
        detection; its time is the deadline itself, whatever the batching."""
        state, regime = self._s, self._s.regime
        if regime is None or state.due_at is None or state.retry:
            return None
        deadline = regime.detected_at + self.config.max_wait_seconds
        if watermark < deadline:
            return None
        return self._request(deadline, regime.labelled, complete=False)

    def _request(self, event_time: float, labelled: int, *, complete: bool) -> RetrainRequest:
        state, regime = self._s, self._s.regime
        assert regime is not None
        state.sequence += 1
        state.last = event_time
        state.requests.append(event_time)
        state.due_at, state.retry = None, False
        self.counters["requested"] += 1
        start = max(regime.change_at, regime.detected_at - self.config.window_seconds)
        request = RetrainRequest(
            request_id=request_id(
                self.model_id, regime.model_version, state.sequence, regime.trigger
            ),
            model_id=self.model_id,
            model_version=regime.model_version,
            requested_at=rfc3339(event_time),
            reasons=[AlertReason(r.alert_id, r.type, r.signal) for r in regime.reasons],
            window=TimeWindow(start=rfc3339(min(start, event_time)), end=rfc3339(event_time)),
            detected_at=rfc3339(regime.detected_at),
            labelled_pairs=labelled,
            complete=complete,
        )
        state.last_request = request.request_id
        state.decision = None
        return request

    # -- the worker's decisions -------------------------------------------------------------

    def result(self, result: RetrainResult) -> Decision | None:
        """The worker decided on a request: the decision, if it is about the last request
        and new (older requests, and a result seen twice, change nothing). A declined or
        failed one lets the policy ask again after ``min_labelled`` more pairs."""
        state = self._s
        if result.request_id != state.last_request:
            return None
        if state.decision is not None:
            return None
        decision = Decision(
            result.request_id,
            result.outcome,
            result.reason,
            result.decided_at,
            result.deployed_version,
        )
        state.decision = decision
        if result.outcome in ("declined", "failed") and state.regime is not None:
            state.due_at = state.regime.labelled + self.config.min_labelled
            state.retry = True
        return decision

    def stranded(self, version: str | None) -> Decision | None:
        """The last decision, once per regime, when it deployed nothing while the regime's
        version is still the current one (``version``) and beyond a performance limit: the
        model is left degraded, and someone must look (the "nothing deployed" alert)."""
        state, regime, decision = self._s, self._s.regime, self._s.decision
        if (
            decision is None
            or decision.outcome == "deployed"
            or regime is None
            or version != regime.model_version
            or not self.degraded(version)
            or state.stranded == regime.trigger
        ):
            return None
        state.stranded = regime.trigger
        return decision

    # -- status and checkpointing -----------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        state, regime = self._s, self._s.regime
        waiting = state.due_at is not None and not state.retry and regime is not None
        return {
            **state.counters,
            "pending": len(state.pending),
            "last_request_event_time": state.last,
            "sequence": state.sequence,
            "state": self.state_name(),
            "retrain_pending": waiting,
            "waiting": None
            if not waiting or regime is None
            else {
                "model_version": regime.model_version,
                "change_at": rfc3339(regime.change_at),
                "detected_at": rfc3339(regime.detected_at),
                "labelled_pairs": regime.labelled,
                "min_labelled": state.due_at,
                "deadline": rfc3339(regime.detected_at + self.config.max_wait_seconds),
            },
            "last_request": state.last_request,
            "last_decision": None
            if state.decision is None
            else msgspec.to_builtins(state.decision),
        }

    def snapshot(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self._s)
        return data

    def restore(self, data: Mapping[str, Any]) -> None:
        data = dict(data)
        if isinstance(data.get("degraded"), list):
            # before checks were kept per version: which version they were about is unknown,
            # so they are dropped (the next crossing of a limit records it again)
            data["degraded"] = {}
        state = msgspec.convert(data, _State)
        state.counters = {**dict.fromkeys(OUTCOMES, 0), **state.counters}
        self._s = state
