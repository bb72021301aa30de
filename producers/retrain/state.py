"""Per-request status in Redis: the idempotency record of the retrain worker.

One hash per ``request_id`` holds ``status`` (received → running → succeeded | failed),
the number of ``attempts`` started, and a *lease* (owner + expiry) that says which worker
is acting on it. Every transition is one Lua script, so a check and its write are atomic:

- :meth:`RequestStore.claim` creates the record (``received``) or takes over one whose
  lease has expired (a worker that died mid-request); a final record answers ``done``, so
  a redelivered request is skipped; an unexpired lease of another worker answers ``busy``.
- :meth:`RequestStore.begin_attempt` moves to ``running`` and counts the attempt, so the
  retry budget survives a restart.
- :meth:`RequestStore.decide` stores the request's decision (its ``retrain-results``
  event) once, before it is published: a worker that dies after deciding and is replaced
  publishes the *same* decision, never a second, different one.
- :meth:`RequestStore.finish` writes the final status; only the lease owner may.

>>> ClaimKind.DONE.value, sorted(s.value for s in Status)
('done', ['failed', 'received', 'running', 'succeeded'])
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any, Final

import redis

from producers.retrain.errors import RetrainError

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "Claim",
    "ClaimKind",
    "LeaseLostError",
    "RequestState",
    "RequestStore",
    "Status",
]

#: How long a request's record is kept: the window in which a redelivery is recognised.
DEFAULT_TTL_SECONDS: Final = 30 * 24 * 3600


class Status(enum.StrEnum):
    RECEIVED = "received"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


FINAL_STATUSES: Final = frozenset({Status.SUCCEEDED, Status.FAILED})


class ClaimKind(enum.StrEnum):
    NEW = "new"  # first time seen; this worker holds the lease
    RESUME = "resume"  # seen before, not final, lease free or ours: this worker takes it
    BUSY = "busy"  # another worker holds an unexpired lease
    DONE = "done"  # succeeded or failed already: skip


class LeaseLostError(RetrainError):
    """This worker no longer owns the request's lease (it expired and another took it)."""


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    status: Status
    attempts: int
    lease_until: float


@dataclass(frozen=True)
class RequestState:
    """A snapshot of one request's record, as ``driftradar status`` or a test reads it."""

    request_id: str
    status: Status
    attempts: int
    model_id: str
    owner: str
    lease_until: float
    received_at: float
    updated_at: float
    error: str
    result: dict[str, Any]
    decision: bytes | None = None


_CLAIM: Final = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local owner = ARGV[2]
local lease = tonumber(ARGV[3])
local status = redis.call('HGET', key, 'status')
if not status then
  redis.call('HSET', key, 'status', 'received', 'attempts', 0, 'model_id', ARGV[4],
             'owner', owner, 'lease_until', now + lease, 'received_at', now, 'updated_at', now)
  redis.call('EXPIRE', key, ARGV[5])
  return {'new', 'received', '0', tostring(now + lease)}
end
local attempts = redis.call('HGET', key, 'attempts') or '0'
local lease_until = tonumber(redis.call('HGET', key, 'lease_until') or '0')
if status == 'succeeded' or status == 'failed' then
  return {'done', status, attempts, tostring(lease_until)}
end
if lease_until > now and redis.call('HGET', key, 'owner') ~= owner then
  return {'busy', status, attempts, tostring(lease_until)}
end
redis.call('HSET', key, 'owner', owner, 'lease_until', now + lease, 'updated_at', now)
return {'resume', status, attempts, tostring(now + lease)}
"""

_BEGIN_ATTEMPT: Final = """
local key = KEYS[1]
local status = redis.call('HGET', key, 'status')
if not status or status == 'succeeded' or status == 'failed'
   or redis.call('HGET', key, 'owner') ~= ARGV[2] then
  return -1
end
local now = tonumber(ARGV[1])
redis.call('HSET', key, 'status', 'running', 'lease_until', now + tonumber(ARGV[3]),
           'updated_at', now)
return redis.call('HINCRBY', key, 'attempts', 1)
"""

_FINISH: Final = """
local key = KEYS[1]
local status = redis.call('HGET', key, 'status')
if not status or status == 'succeeded' or status == 'failed'
   or redis.call('HGET', key, 'owner') ~= ARGV[2] then
  return 0
end
redis.call('HSET', key, 'status', ARGV[3], 'lease_until', 0, 'updated_at', ARGV[1],
           'error', ARGV[4], 'result', ARGV[5])
return 1
"""

_DECIDE: Final = """
local key = KEYS[1]
local stored = redis.call('HGET', key, 'decision')
if stored then
  return stored
end
local status = redis.call('HGET', key, 'status')
if not status or status == 'succeeded' or status == 'failed'
   or redis.call('HGET', key, 'owner') ~= ARGV[1] then
  return false
end
redis.call('HSET', key, 'decision', ARGV[2])
return ARGV[2]
"""

_RELEASE: Final = """
local key = KEYS[1]
local status = redis.call('HGET', key, 'status')
if status and status ~= 'succeeded' and status ~= 'failed'
   and redis.call('HGET', key, 'owner') == ARGV[1] then
  redis.call('HSET', key, 'lease_until', 0)
  return 1
end
return 0
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RequestStore:
    """The request records of one deployment of the worker, under ``prefix`` in Redis."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "driftradar:retrain",
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
    ) -> None:
        if ttl_seconds < 1:
            raise ValueError(f"ttl_seconds must be >= 1, got {ttl_seconds}")
        self._client = client
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._claim = client.register_script(_CLAIM)
        self._begin = client.register_script(_BEGIN_ATTEMPT)
        self._finish = client.register_script(_FINISH)
        self._decide = client.register_script(_DECIDE)
        self._release = client.register_script(_RELEASE)

    def key(self, request_id: str) -> str:
        return f"{self._prefix}:request:{request_id}"

    def claim(
        self, request_id: str, model_id: str, owner: str, lease_seconds: float, now: float
    ) -> Claim:
        """Create or take over the record of ``request_id``; see :class:`ClaimKind`."""
        kind, status, attempts, lease_until = (
            _text(part)
            for part in self._claim(
                keys=[self.key(request_id)],
                args=[repr(now), owner, repr(lease_seconds), model_id, self._ttl],
            )
        )
        return Claim(ClaimKind(kind), Status(status), int(attempts), float(lease_until))

    def begin_attempt(self, request_id: str, owner: str, lease_seconds: float, now: float) -> int:
        """Mark ``running``, renew the lease, and return this attempt's number (1-based)."""
        attempt = int(
            self._begin(keys=[self.key(request_id)], args=[repr(now), owner, repr(lease_seconds)])
        )
        if attempt < 0:
            raise LeaseLostError(f"request {request_id!r}: lease not held by {owner!r}")
        return attempt

    def finish(
        self,
        request_id: str,
        owner: str,
        status: Status,
        now: float,
        *,
        error: str = "",
        result: dict[str, Any] | None = None,
    ) -> None:
        """Write the final ``status`` (succeeded or failed) with its error or result."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"finish() takes a final status, not {status.value!r}")
        done = self._finish(
            keys=[self.key(request_id)],
            args=[repr(now), owner, status.value, error, json.dumps(result or {})],
        )
        if not int(done):
            raise LeaseLostError(f"request {request_id!r}: lease not held by {owner!r}")

    def decide(self, request_id: str, owner: str, decision: bytes) -> bytes:
        """Store ``decision`` unless one is stored already; return the stored one.

        Only the lease owner of an unfinished request may store the first one.
        """
        stored = self._decide(keys=[self.key(request_id)], args=[owner, decision])
        if stored is None:
            raise LeaseLostError(f"request {request_id!r}: lease not held by {owner!r}")
        return stored if isinstance(stored, bytes) else str(stored).encode()

    def decision(self, request_id: str) -> bytes | None:
        """The stored decision of ``request_id``, if one was made."""
        stored = self._client.hget(self.key(request_id), "decision")
        if stored is None:
            return None
        return stored if isinstance(stored, bytes) else str(stored).encode()

    def release(self, request_id: str, owner: str) -> bool:
        """Give the lease up (clean stop mid-request) so a restart resumes it at once."""
        return bool(int(self._release(keys=[self.key(request_id)], args=[owner])))

    def ping(self) -> None:
        """One round trip to Redis (raises the client's error when it does not answer)."""
        self._client.ping()

    def get(self, request_id: str) -> RequestState | None:
        raw = self._client.hgetall(self.key(request_id))
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return RequestState(
            request_id=request_id,
            status=Status(fields["status"]),
            attempts=int(fields.get("attempts", "0")),
            model_id=fields.get("model_id", ""),
            owner=fields.get("owner", ""),
            lease_until=float(fields.get("lease_until", "0")),
            received_at=float(fields.get("received_at", "0")),
            updated_at=float(fields.get("updated_at", "0")),
            error=fields.get("error", ""),
            result=json.loads(fields.get("result") or "{}"),
            decision=fields["decision"].encode() if "decision" in fields else None,
        )
