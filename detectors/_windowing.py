"""Shared machinery of the window detectors: warm-up, ring buffer, evaluation schedule.

A window detector keeps the last ``window_size`` values (encoded as numbers) in a ring
buffer and evaluates that window every ``stride`` values (``mode="sliding"``) or every
``window_size`` values (``mode="tumbling"``). Detectors that compare with a reference first
collect ``warmup`` values and profile them, unless built with a reference. The state
between evaluations is the verdict of the last evaluated window (a level, not a pulse).

``update_many`` appends a whole numpy chunk and evaluates each window boundary inside it;
evaluations depend only on the window's multiset of values (they sort or count), so a batch
gives exactly the states of one-by-one updates.
"""

from __future__ import annotations

import abc
import math
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, MutableSequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from detectors._checks import require_choice, require_int
from detectors.base import (
    STATE_OF,
    DetectionResult,
    Detector,
    DriftState,
    InvalidParameterError,
    Params,
    StateArray,
    Trace,
)
from detectors.profile import Profile

__all__ = ["Verdict", "WindowParams", "WindowedDetector"]

MODES = ("sliding", "tumbling")


def _is_real(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _stored_int(data: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{key!r} must be an integer in [{low}, {high}], got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class WindowParams(Params):
    """Window shape shared by every window detector.

    ``window_size`` values per window; ``mode`` ``"sliding"`` evaluates every ``stride``
    values, ``"tumbling"`` every ``window_size`` values (``stride`` is then ignored);
    ``warmup`` values build the reference when none is given; ``confirmations`` consecutive
    evaluated windows beyond the drift threshold are needed to report drift.
    """

    window_size: int = 1000
    mode: str = "sliding"
    stride: int = 100
    warmup: int = 2000
    confirmations: int = 1

    def validate(self) -> None:
        require_int(self, "window_size", minimum=10, maximum=10_000_000)
        require_choice(self, "mode", MODES)
        top = self.window_size if self.mode == "sliding" else 10_000_000
        require_int(self, "stride", minimum=1, maximum=top)
        require_int(self, "warmup", minimum=10, maximum=10_000_000)
        require_int(self, "confirmations", minimum=1, maximum=1000)

    @property
    def step(self) -> int:
        """Values between two evaluations."""
        return self.stride if self.mode == "sliding" else self.window_size


class Verdict:
    """One evaluated window: its level and the numbers behind it (plain data only).

    ``details`` may be given as a function that builds them: most windows are evaluated and
    replaced without anyone reading their details, so they are built only when read
    (:meth:`WindowedDetector.result`, a snapshot), once, from values the evaluation kept.
    """

    __slots__ = ("_details", "_make_details", "level", "p_value", "statistic", "threshold")

    def __init__(
        self,
        level: DriftState,
        statistic: float,
        threshold: float,
        p_value: float | None = None,
        details: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.level = level
        self.statistic = statistic
        self.threshold = threshold
        self.p_value = p_value
        self._make_details: Callable[[], dict[str, Any]] | None = None
        self._details: dict[str, Any] | None = None
        if callable(details):
            self._make_details = details
        else:
            self._details = {} if details is None else details

    @property
    def details(self) -> dict[str, Any]:
        """The statistics behind the verdict (built on first access when deferred)."""
        if self._details is None:
            assert self._make_details is not None
            self._details = self._make_details()
            self._make_details = None
        return self._details

    def to_data(self) -> dict[str, Any]:
        return {
            "level": int(self.level),
            "statistic": self.statistic,
            "threshold": self.threshold,
            "p_value": self.p_value,
            "details": self.details,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Verdict:
        p_value = data["p_value"]
        if not isinstance(data["details"], Mapping):
            raise TypeError(f"verdict details must be a mapping, got {data['details']!r}")
        return cls(
            DriftState(int(data["level"])),
            float(data["statistic"]),
            float(data["threshold"]),
            None if p_value is None else float(p_value),
            dict(data["details"]),
        )


class WindowTrace(Trace):
    """A window test's trace: its verdict at the batch start and after each window it
    evaluated, so every position after the first evaluated window is known."""

    __slots__ = ("_windowed", "marks")

    def __init__(self, detector: WindowedDetector, count: int) -> None:
        super().__init__(detector, count)
        self._windowed = detector
        #: (accepted values done, last verdict, evaluations, state), in batch order
        self.marks: list[tuple[int, Verdict | None, int, DriftState]] = []

    def _after(self, accepted: int) -> DetectionResult | None:
        marks = self.marks
        _, last, evaluations, state = marks[bisect_right(marks, accepted, key=itemgetter(0)) - 1]
        if last is None:  # no window evaluated yet: the warm-up counters are not kept
            return None
        return self._windowed.verdict_result(last, state, self.before + accepted, evaluations)


class _SharedRing:
    """A ring buffer held once for window detectors fed the same values (the PSI and KS tests
    of one signal): the leader writes it, each follower's window is its newest values (a
    follower's window is no longer than the leader's). A follower needs the window as it was
    before the leader's last chunk (the leader overwrote it): the leader leaves it here,
    followed by the chunk, until every follower took it. Their warm-up values are held once
    too: a follower's warm-up buffer is the leader's (:meth:`WindowedDetector.share_window`)."""

    __slots__ = ("ext", "followers", "leader", "pending", "seen_before")

    def __init__(self, leader: WindowedDetector) -> None:
        self.leader = leader
        self.followers = 0
        self.seen_before = -1  # the leader's count of encoded values before its last chunk
        self.ext: npt.NDArray[Any] | None = None  # window before that chunk + the chunk
        self.pending = 0  # followers yet to take ``ext``


class WindowedDetector(Detector):
    """Base of the window detectors; subclasses define encoding, reference and evaluation."""

    #: Whether the detector compares with a reference profile (built from the warm-up).
    uses_reference: ClassVar[bool] = True
    #: Detectors with the same (non-None) key encode equal inputs to equal ring values, so
    #: those with equal window parameters fed the same values can share one ring
    #: (:meth:`share_window`); ``None``: the encoding depends on the detector's own state.
    ring_key: ClassVar[str | None] = None
    #: dtype of the encoded values kept in the ring buffer (a test may narrow it for its
    #: reference before the ring is made, in ``_set_reference``).
    code_dtype: type[np.generic] = np.float64
    #: Numbers a stored calibration must hold (checked on restore).
    calibration_keys: ClassVar[tuple[str, ...]] = ()
    #: ``array`` type code of the warm-up buffer (``None``: a list, for non-numbers); numbers
    #: take 8 bytes each there instead of a float object and a pointer (32 bytes) in a list.
    warm_typecode: ClassVar[str | None] = None

    _params: WindowParams

    # -- what subclasses implement -------------------------------------------------------

    @abc.abstractmethod
    def _prepare(
        self, values: list[Any] | npt.NDArray[Any]
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_] | None]:
        """Accepted values in raw usable form (floats, category keys…) and the accepted mask
        (``None`` when all are accepted)."""

    def _build_reference(self, warm: npt.NDArray[Any]) -> Profile | None:
        """The reference profile of the warm-up values."""
        return None

    def _check_reference(self, reference: Profile) -> None:
        """Raise :class:`InvalidParameterError` if ``reference`` is the wrong kind of profile."""

    @abc.abstractmethod
    def _encode(self, prepared: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Prepared values as ring-buffer numbers (may use the reference)."""

    @abc.abstractmethod
    def _evaluate(self, window: npt.NDArray[Any]) -> Verdict:
        """Judge one full window; must depend only on the window's multiset of values."""

    def _calibrate(self) -> dict[str, Any] | None:
        """Thresholds for this reference from the detector's false-alarm budget (plain
        data), or ``None`` when the detector uses its configured thresholds."""
        return None

    _calibration: dict[str, Any] | None

    @property
    def calibration(self) -> dict[str, Any] | None:
        """The calibrated thresholds (computed once, at the first evaluated window, seeded,
        and kept in the snapshot: a restored detector never recalibrates)."""
        if self._calibration is None and self._reference is not None:
            self._calibration = self._calibrate()
        return self._calibration

    def _valid_code(self, code: Any) -> bool:
        """Whether a stored ring-buffer value can come out of :meth:`_encode`."""
        return _is_real(code)

    def _valid_warm(self, value: Any) -> bool:
        """Whether a stored warm-up value can come out of :meth:`_prepare`."""
        return _is_real(value)

    # -- state ---------------------------------------------------------------------------

    def _init_state(self) -> None:
        params = self._params
        self._reference: Profile | None = None
        self._warm: MutableSequence[Any] = self._new_warm()
        # a test that warms up gets its ring with its reference (a warming model keeps none)
        size = 0 if self.uses_reference else params.window_size
        self._ring = np.zeros(size, dtype=self.code_dtype)
        self._pos = 0
        self._seen = 0
        self._streak = 0
        self._last: Verdict | None = None
        self._evaluations = 0
        self._calibration = None
        self._leads: _SharedRing | None = None  # this detector writes a shared ring
        self._follows: _SharedRing | None = None  # this detector reads another's ring

    def _set_reference(self, reference: Profile) -> None:
        self._check_reference(reference)
        self._reference = reference
        self._warm = self._new_warm()
        self._calibration = None
        size = self._params.window_size
        if self._follows is None and len(self._ring) != size:  # a follower reads the leader's
            self._ring = np.zeros(size, dtype=self.code_dtype)

    @classmethod
    def with_reference(cls, params: Params | None, reference: Any) -> Self:
        if not cls.uses_reference:
            return super().with_reference(params, reference)
        detector = cls(params)
        if not isinstance(reference, Profile):
            detector._fail_reference(f"must be a Profile, got {type(reference).__name__}")
        detector._set_reference(reference)
        return detector

    def _new_warm(self) -> MutableSequence[Any]:
        return [] if self.warm_typecode is None else array(self.warm_typecode)

    def _warm_kept(self, values: list[Any]) -> list[Any]:
        """Warm-up values as the buffer keeps them (categorical tests: one shared object per
        category name, not each event's own copy)."""
        return values

    def _fail_reference(self, problem: str) -> None:
        raise InvalidParameterError(self.kind, "reference", problem)

    @property
    def reference(self) -> Profile | None:
        """The reference profile (``None`` while warming up or if none is used)."""
        return self._reference

    @property
    def ready(self) -> bool:
        """Whether the detector has its reference and can evaluate windows."""
        return self._reference is not None or not self.uses_reference

    @property
    def warm_count(self) -> int:
        """Accepted values in the warm-up so far (0 once the reference is built)."""
        return len(self._warm)

    def warm_values(self) -> npt.NDArray[Any]:
        """A copy of the warm-up values so far, oldest first."""
        return np.array(self._warm)

    # -- a ring shared with detectors fed the same values ---------------------------------

    def share_window(self, follower: WindowedDetector) -> bool:
        """Let ``follower`` read this detector's ring and warm-up values instead of keeping
        its own, when both encode alike, warm up alike and are as far in it, its window is no
        longer than this one's and holds the newest values of this one now; True if so.

        Both must then get every chunk, this one first (as :class:`streams.engine.signals.
        Signal` feeds its detectors); anything else fed to one of them alone
        (:meth:`update`, :meth:`reset`) gives each its own ring again first.
        """
        params, other = self._params, follower._params
        if (
            follower is self
            or self.ring_key is None
            or follower.ring_key != self.ring_key
            or self._follows is not None
            or follower._leads is not None
            or follower._follows is not None
            or other.window_size > params.window_size
            or other.warmup != params.warmup
            or self._seen != follower._seen
            or self._updates != follower._updates
            or self.ready != follower.ready
            or self._warm != follower._warm
        ):
            return False
        ours, theirs = self._ordered_window(), follower._ordered_window()
        if not np.array_equal(ours[len(ours) - len(theirs) :], theirs):
            return False
        share = self._leads if self._leads is not None else _SharedRing(self)
        share.followers += 1
        self._leads = follower._follows = share
        follower._ring = np.empty(0, dtype=follower.code_dtype)  # its window is the leader's
        follower._warm = self._warm  # the leader extends it; the follower only reads it
        return True

    def _unshare(self) -> None:
        """Give this detector its own copy of the ring (the others keep sharing)."""
        if self._follows is not None:
            window = self._ordered_window()
            self._follows.followers -= 1
            self._follows = None
            warm, self._warm = self._warm, self._new_warm()
            self._warm.extend(warm)
            self._ring = np.zeros(self._params.window_size, dtype=self.code_dtype)
            self._ring[: len(window)] = window
            self._pos = len(window) % self._params.window_size
        elif self._leads is not None:  # its followers would miss what it is fed alone
            raise RuntimeError(
                f"{self.kind}: a detector whose ring others read cannot be fed alone"
            )

    def reset(self) -> None:
        self._unshare()
        super().reset()

    # -- updates -------------------------------------------------------------------------

    def _apply(self, verdict: Verdict) -> DriftState:
        """Fold one evaluation into the reported state (confirmations across windows)."""
        self._last = verdict
        self._evaluations += 1
        self._streak = self._streak + 1 if verdict.level is DriftState.DRIFT else 0
        if self._streak >= self._params.confirmations:
            return DriftState.DRIFT
        return DriftState.WARNING if verdict.level is not DriftState.NONE else DriftState.NONE

    def _update_one(self, value: Any) -> DriftState:
        self._unshare()
        prepared, _ = self._prepare([value])
        if not self.ready:
            self._warm.extend(self._warm_kept(prepared.tolist()))
            if len(self._warm) >= self._params.warmup:
                reference = self._build_reference(np.asarray(self._warm, dtype=prepared.dtype))
                assert reference is not None
                self._set_reference(reference)
            return self._state
        size = self._params.window_size
        self._store(self._encode(prepared).astype(self.code_dtype, copy=False))
        self._seen += 1
        if self._seen >= size and (self._seen - size) % self._params.step == 0:
            return self._apply(self._evaluate(self._ordered_window()))
        return self._state

    def _ordered_window(self) -> npt.NDArray[Any]:
        """Ring contents, oldest first."""
        if self._follows is not None:  # the newest values of the leader's window
            window = self._follows.leader._ordered_window()  # noqa: SLF001 - same class
            return window[len(window) - min(self._seen, self._params.window_size) :]
        if self._seen < self._params.window_size:
            return self._ring[: self._seen]
        return np.concatenate((self._ring[self._pos :], self._ring[: self._pos]))

    def _keep(self, window: npt.NDArray[Any], seen: int) -> None:
        """Make ``window`` (oldest first, ``min(seen, window_size)`` codes, the last one value
        number ``seen``) the ring's contents."""
        self._ring[: len(window)] = window
        self._pos = len(window) % self._params.window_size

    def _store(self, codes: npt.NDArray[Any]) -> None:
        """Write ``codes`` into the ring after the newest value (wrapping around); nothing
        for a follower (the leader wrote them, its window is the leader's newest values)."""
        ring, size = self._ring, self._params.window_size
        if self._follows is not None:
            return
        if len(codes) >= size:
            ring[:] = codes[-size:]
            self._pos = 0
            return
        pos = self._pos
        end = pos + len(codes)
        if end <= size:
            ring[pos:end] = codes
        else:
            split = size - pos
            ring[pos:] = codes[:split]
            ring[: end - size] = codes[split:]
        self._pos = end % size

    def _shared_chunk(self, codes: npt.NDArray[Any], needed: bool) -> npt.NDArray[Any]:
        """The window before this chunk followed by its ``codes`` (empty unless ``needed``:
        a window ends in the chunk); a leader always leaves it for its followers (their
        windows may end where its own does not), a follower takes the leader's."""
        follows, leads = self._follows, self._leads
        if follows is not None:
            ext = follows.ext
            if follows.seen_before != self._seen or ext is None:
                raise RuntimeError(
                    f"{self.kind}: its shared ring is at value {follows.seen_before}, it is at "
                    f"{self._seen}: a follower must get every chunk, after the leader"
                )
            follows.pending -= 1
            if follows.pending <= 0:
                follows.ext = None  # every follower took it
            return ext
        if not needed and leads is None:
            return codes[:0]
        ext = np.concatenate((self._ordered_window(), codes))
        if leads is not None:
            leads.seen_before, leads.ext, leads.pending = self._seen, ext, leads.followers
        return ext

    def _ingest(self, prepared: npt.NDArray[Any], trace: WindowTrace | None) -> StateArray:
        """Use accepted prepared values; one state per value."""
        params = self._params
        size, step = params.window_size, params.step
        out = np.empty(len(prepared), dtype=np.int8)  # (np.full's wrapper: ~0.5 µs more)
        out.fill(self._state)
        start = 0
        if not self.ready:
            if self._follows is None:
                start = min(len(prepared), params.warmup - len(self._warm))
                self._warm.extend(self._warm_kept(prepared[:start].tolist()))
            else:
                start = self._followed_warm_up(len(prepared))
            if len(self._warm) >= params.warmup:
                reference = self._build_reference(np.asarray(self._warm, dtype=prepared.dtype))
                assert reference is not None
                self._set_reference(reference)
            if start == len(prepared):
                return out
        codes = self._encode(prepared[start:]).astype(self.code_dtype, copy=False)
        seen_end = self._seen + len(codes)
        # Window ends s (counts of encoded values) in (seen, seen_end] with s >= size and
        # (s - size) % step == 0.
        first = size if self._seen < size else self._seen + (-(self._seen - size)) % step
        if first == self._seen:
            first += step
        ext = self._shared_chunk(codes, needed=first <= seen_end)
        if first > seen_end:  # no window ends in this chunk (the usual case): just store it
            self._store(codes)
            self._seen = seen_end
            return out
        base = self._seen + len(codes) - len(ext)  # ext[0] is value number base + 1
        state = self._state
        last_pos = start
        for end in range(first, seen_end + 1, step):
            pos = start + (end - self._seen) - 1  # index in prepared of the value ending it
            out[last_pos:pos] = int(state)
            state = self._apply(self._evaluate(ext[end - base - size : end - base]))
            if trace is not None:
                trace.marks.append((pos + 1, self._last, self._evaluations, state))
            last_pos = pos
        out[last_pos:] = int(state)
        self._store(codes)  # (the window is now ext's newest values)
        self._seen = seen_end
        self._state = state
        return out

    def _followed_warm_up(self, count: int) -> int:
        """How many of a chunk's ``count`` accepted values a warming follower's warm-up
        took: those the leader, fed the chunk first, put into the warm-up they share (the
        buffer this follower holds is full if the leader's warm-up ended in the chunk)."""
        assert self._follows is not None
        leader = self._follows.leader
        if leader.updates - count != self._updates:
            raise RuntimeError(
                f"{self.kind}: its shared warm-up is at value {leader.updates}, it is at "
                f"{self._updates + count}: a follower must get every chunk, after the leader"
            )
        if not leader.ready:
            return count
        return count - leader._seen  # noqa: SLF001 - the values after its warm-up

    def update_many(self, values: Iterable[Any] | npt.NDArray[Any]) -> StateArray:
        """Use a batch; exactly the states of one-by-one :meth:`update` calls, vectorised."""
        return self._batch(values, None)

    def trace_many(self, values: Iterable[Any] | npt.NDArray[Any]) -> tuple[StateArray, Trace]:
        trace = WindowTrace(self, 0)
        states = self._batch(values, trace)
        trace.count = len(states)
        return states, trace

    def _batch(
        self, values: Iterable[Any] | npt.NDArray[Any], trace: WindowTrace | None
    ) -> StateArray:
        if not isinstance(values, np.ndarray | list):
            values = list(values)
        prepared, mask = self._prepare(values)
        if trace is not None:
            trace.mask = mask
            trace.marks.append((0, self._last, self._evaluations, self._state))
        states = self._ingest(prepared, trace) if len(prepared) else np.zeros(0, dtype=np.int8)
        self._updates += len(prepared)
        if len(prepared):
            self._state = STATE_OF[states[-1]]
        if mask is None:
            return states
        self._rejected += len(values) - len(prepared)
        out = np.zeros(len(values), dtype=np.int8)
        out[mask] = states
        return out

    # -- results and snapshots -----------------------------------------------------------

    def verdict_result(
        self, last: Verdict, state: DriftState, updates: int, evaluations: int
    ) -> DetectionResult:
        """The result reporting evaluated window ``last``."""
        return DetectionResult(
            state,
            updates,
            statistic=last.statistic,
            threshold=last.threshold,
            p_value=last.p_value,
            window_size=self._params.window_size,
            details={**last.details, "evaluations": evaluations},
        )

    def _result(self) -> DetectionResult:
        last = self._last
        if last is None:
            details: dict[str, Any] = {"evaluations": 0, "values_in_window": self._seen}
            if not self.ready:
                details["warmup_seen"] = len(self._warm)
            return DetectionResult(
                self._state, self._updates, window_size=self._params.window_size, details=details
            )
        return self.verdict_result(last, self._state, self._updates, self._evaluations)

    def _state_to_data(self) -> dict[str, Any]:
        return {
            "reference": None if self._reference is None else self._reference.to_dict(),
            "warm": list(self._warm),
            "window": self._ordered_window().tolist(),
            "seen": self._seen,
            "streak": self._streak,
            "evaluations": self._evaluations,
            "last": None if self._last is None else self._last.to_data(),
            "calibration": self._calibration,
        }

    def _state_from_data(self, data: Mapping[str, Any]) -> None:
        reference = data["reference"]
        if reference is not None:
            self._set_reference(Profile.from_dict(reference))
        elif self.uses_reference:
            warm = data["warm"]
            if not isinstance(warm, list) or not all(self._valid_warm(v) for v in warm):
                raise ValueError("'warm' must be a list of values the detector accepts")
            if len(warm) >= self._params.warmup:
                raise ValueError("warm-up buffer is full but no reference was built")
            self._warm = self._new_warm()
            self._warm.extend(self._warm_kept(warm))
        size = self._params.window_size
        seen = _stored_int(data, "seen", 0, self._updates if self.ready else 0)
        window = data["window"]
        if not isinstance(window, list) or len(window) != min(seen, size):
            raise ValueError(f"'window' must be a list of {min(seen, size)} values")
        if not all(self._valid_code(code) for code in window):
            raise ValueError("'window' holds values the detector cannot have stored")
        self._keep(np.asarray(window, dtype=self.code_dtype), seen)
        self._seen = seen
        self._evaluations = _stored_int(data, "evaluations", 0, seen)
        self._streak = _stored_int(data, "streak", 0, self._evaluations)
        last = data["last"]
        self._last = None if last is None else Verdict.from_data(last)
        calibration = data.get("calibration")
        if calibration is not None and not isinstance(calibration, Mapping):
            raise ValueError(f"'calibration' must be a mapping or null, got {calibration!r}")
        if calibration is not None and self._reference is None:
            raise ValueError("'calibration' needs a reference")
        if calibration is not None and not all(
            _is_real(calibration.get(key)) for key in self.calibration_keys
        ):
            raise ValueError(f"'calibration' must hold the numbers {self.calibration_keys}")
        self._calibration = None if calibration is None else dict(calibration)
        if (self._last is None) != (self._evaluations == 0):
            raise ValueError("'last' must be present exactly when windows were evaluated")
