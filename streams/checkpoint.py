"""Engine state and consumed offsets saved to Redis together, in one atomic step.

One Redis hash per input partition number, ``driftradar:{<group>}:p:<n>``, holds:

- ``offsets`` — JSON ``{topic: next offset}`` for *both* input topics of partition ``n``;
- ``state`` — the engine's state of the partition besides its models, plain data encoded
  with msgpack (never pickle);
- ``summary`` — JSON: what the partition counts besides its models (dead letters of no
  known model by kind of reason, events refused by the cap on models);
- ``alignment`` — JSON: how the two input topics of the partition are aligned (which one is
  paused or waited for, buffered records, lead), for ``driftradar status``;
- ``updated_at`` — epoch seconds of the write;
- ``version`` — how many checkpoints were written into the hash (see below);
- ``owner`` — the token of the member that owns the partition now (fencing).

Its models live in two hashes beside it, one field per model id, so that a checkpoint
writes only the models that changed since the previous one: ``…:p:<n>:m`` holds each
model's snapshot (msgpack), ``…:p:<n>:s`` its status (JSON), which ``driftradar status``
reads. A checkpoint marked ``complete`` holds every model of the partition and replaces
both hashes. Releases before these hashes kept every model inside ``state`` and a
``status`` field of JSON ``{model_id: status}``: they are read as they are (the engine
migrates such a state), and the first complete checkpoint removes ``status``. Such a field,
when present, was written after the hashes (by an earlier release, e.g. during a rolling
upgrade), so it is read instead of them.

A checkpoint that is not complete is a change to what is stored, so it is only valid on the
copy its writer knows: the store remembers the ``version`` it claimed or last wrote, and the
script refuses (:class:`StaleBaseError`, nothing written) a partial write onto another one
— a Redis that lost its data or its last writes; the writer then saves the partition whole.
Each write carries an id, stored with it. A write whose answer was lost (a call that timed
out while Redis ran a large checkpoint, a dropped connection) may or may not be stored: its
retry finds its id stored and returns without writing again, and the next partial write
accepts a copy holding one of those ids as the writer's own.

Pending predictions (:mod:`streams.engine.pending`) live beside it in small hashes
``driftradar:{<group>}:p:<n>:j:<model tag>:<bucket>``. The same script applies each
partition's write-back delta (new entries, joined entries deleted, a few buckets swept of
expired entries): the store changes with the checkpoint, all or nothing, and a checkpoint's
cost depends on what changed, not on how many predictions are pending.

:meth:`CheckpointStore.claim` is what a member does when a partition is assigned to it: in
one script it writes its own owner token and reads the stored checkpoint, so every later
write of a previous owner is refused. :meth:`CheckpointStore.save` writes any number of
partitions with one Lua script, so either every hash is replaced or none is, and it refuses
the whole write when a partition is owned by another token (a member that lost its
partitions without noticing, e.g. paused past the session timeout) or when an offset would
go backwards (a bug): state that is older than what is stored can never overwrite it. The
``{<group>}`` hash tag keeps a group's keys in one Redis Cluster slot, so the scripts stay
valid on a cluster.
"""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
import redis

from streams.core.errors import CheckpointError
from streams.engine.pending_codec import PendingLookup

__all__ = [
    "BULK_BYTES",
    "SLOW_WRITE_BYTES_PER_SECOND",
    "CheckpointError",
    "CheckpointStore",
    "CorruptCheckpointError",
    "OffsetRegressionError",
    "PartitionCheckpoint",
    "StaleBaseError",
    "StaleOwnerError",
    "StoredStatus",
    "models_key",
    "partition_key",
    "status_key",
]

KEY_PREFIX: Final = "driftradar"


class OffsetRegressionError(CheckpointError):
    """A save was refused because an offset would move backwards; nothing was written."""

    def __init__(self, key: str, topic: str, stored: int, proposed: int | None) -> None:
        what = "missing" if proposed is None else str(proposed)
        super().__init__(
            f"refused checkpoint of {key}: offset of topic {topic!r} would go backwards "
            f"(stored {stored}, proposed {what}); another process may own this partition"
        )
        self.key = key
        self.topic = topic
        self.stored = stored
        self.proposed = proposed


class StaleOwnerError(CheckpointError):
    """A save was refused because another member claimed a partition; nothing was written.

    ``partitions`` are the partitions this member no longer owns (its state for them is
    stale: drop it, the current owner continues from the stored checkpoint).
    """

    def __init__(self, partitions: list[int]) -> None:
        super().__init__(
            f"refused checkpoint: partition(s) {partitions} are owned by another member now "
            "(this member lost them, e.g. paused past the session timeout)"
        )
        self.partitions = partitions


class StaleBaseError(CheckpointError):
    """A partial save was refused because the stored models of ``partitions`` are not the
    copy this store claimed or last wrote (Redis lost data or writes); nothing was written.
    Save those partitions whole (``complete``)."""

    def __init__(self, partitions: list[int]) -> None:
        super().__init__(
            f"refused partial checkpoint: the stored models of partition(s) {partitions} are "
            "not the ones this member last read or wrote (Redis lost data?); save them whole"
        )
        self.partitions = partitions


class CorruptCheckpointError(CheckpointError):
    """A stored checkpoint cannot be decoded; the message names the key and field."""


def partition_key(group_id: str, partition: int) -> str:
    """The Redis key of one partition's checkpoint.

    >>> partition_key("driftradar", 3)
    'driftradar:{driftradar}:p:3'
    """
    return f"{KEY_PREFIX}:{{{group_id}}}:p:{partition}"


def models_key(group_id: str, partition: int) -> str:
    """The Redis hash of one partition's model snapshots (field: model id; msgpack).

    >>> models_key("driftradar", 3)
    'driftradar:{driftradar}:p:3:m'
    """
    return partition_key(group_id, partition) + ":m"


def status_key(group_id: str, partition: int) -> str:
    """The Redis hash of one partition's model status (field: model id; JSON)."""
    return partition_key(group_id, partition) + ":s"


def _index_key(group_id: str) -> str:
    return f"{KEY_PREFIX}:{{{group_id}}}:partitions"


@dataclass(frozen=True, slots=True)
class PartitionCheckpoint:
    """What is saved for one input partition number: offsets, engine state and status.

    Saved: ``models`` and ``status`` are the snapshot and status of the models that changed
    (every model if ``complete``); loaded: those of every stored model.
    """

    partition: int
    offsets: Mapping[str, int]
    state: Any
    status: Mapping[str, Any] = field(default_factory=dict)
    #: The writer's owner token (from :meth:`CheckpointStore.claim`); ``""``: no fencing.
    owner: str = ""
    summary: Mapping[str, Any] = field(default_factory=dict)
    alignment: Mapping[str, Any] = field(default_factory=dict)
    #: the engine's pending-prediction delta since the last checkpoint (pending_codec)
    pending: bytes = b""
    #: model id -> snapshot, stored one field per model as msgpack: plain data, or already
    #: msgpack as ``msgspec.Raw`` (the engine's), stored as it is
    models: Mapping[str, Any] = field(default_factory=dict)
    #: ``models`` and ``status`` hold every model of the partition: replace the stored ones
    complete: bool = False


@dataclass(frozen=True, slots=True)
class StoredStatus:
    """The light part of a checkpoint (no engine state), as ``driftradar status`` reads it."""

    partition: int
    offsets: Mapping[str, int]
    status: Mapping[str, Any]
    updated_at: float
    summary: Mapping[str, Any] = field(default_factory=dict)
    alignment: Mapping[str, Any] = field(default_factory=dict)


# Applies one partition's pending delta (streams.engine.pending_codec for the layout).
# Keys are built from the partition key, so they share its {group} hash tag (one slot).
_APPLY_PENDING: Final = """
local function apply_pending(base, blob)
  local pos = 1
  local size = #blob
  while pos <= size do
    local prefix = base .. ':j:' .. string.sub(blob, pos, pos + 7) .. ':'
    pos = pos + 8
    local n
    n, pos = struct.unpack('<I4', blob, pos)
    local i = 0
    while i < n do
      local bucket = struct.unpack('<I4', blob, pos)
      local args = {}
      repeat
        args[#args + 1] = string.sub(blob, pos + 4, pos + 15)
        args[#args + 1] = string.sub(blob, pos + 16, pos + 36)
        pos = pos + 37
        i = i + 1
      until i >= n or #args >= 4000 or struct.unpack('<I4', blob, pos) ~= bucket
      redis.call('HSET', prefix .. bucket, unpack(args))
    end
    n, pos = struct.unpack('<I4', blob, pos)
    i = 0
    while i < n do
      local bucket = struct.unpack('<I4', blob, pos)
      local args = {}
      repeat
        args[#args + 1] = string.sub(blob, pos + 4, pos + 15)
        pos = pos + 16
        i = i + 1
      until i >= n or #args >= 4000 or struct.unpack('<I4', blob, pos) ~= bucket
      redis.call('HDEL', prefix .. bucket, unpack(args))
    end
    n, pos = struct.unpack('<I4', blob, pos)
    local sweep = {}
    for k = 1, n do
      sweep[k], pos = struct.unpack('<I4', blob, pos)
    end
    local cutoff
    cutoff, pos = struct.unpack('<d', blob, pos)
    for k = 1, n do
      local key = prefix .. sweep[k]
      local all = redis.call('HGETALL', key)
      local dead = {}
      for j = 1, #all, 2 do
        if struct.unpack('<d', all[j + 1], 6) < cutoff then
          dead[#dead + 1] = all[j]
        end
      end
      if #dead > 0 then
        redis.call('HDEL', key, unpack(dead))
      end
    end
  end
end
"""

# Writes the fields of a blob of (u32 length, name, u32 length, value) records into a hash,
# in HSETs of at most 2000 fields.
_PUT_FIELDS: Final = """
local function put_fields(key, blob)
  local pos = 1
  local size = #blob
  local args = {}
  while pos <= size do
    local n = struct.unpack('<I4', blob, pos)
    args[#args + 1] = string.sub(blob, pos + 4, pos + 3 + n)
    pos = pos + 4 + n
    n = struct.unpack('<I4', blob, pos)
    args[#args + 1] = string.sub(blob, pos + 4, pos + 3 + n)
    pos = pos + 4 + n
    if #args >= 4000 then
      redis.call('HSET', key, unpack(args))
      args = {}
    end
  end
  if #args > 0 then
    redis.call('HSET', key, unpack(args))
  end
end
"""

# KEYS[1] = the group's partition index (a set); KEYS[2..] = partition hashes.
# ARGV[1] = now; ARGV[2] = this write's id; then for each partition hash, ten values:
# offsets JSON, state, summary JSON, alignment JSON, pending delta, owner token, models
# (put_fields blob), statuses (put_fields blob), base ('' = a complete write; else the
# version the writer knows, '?' when it knows none), and the ids of the writer's writes
# since then that got no answer (space-separated; any of them may be stored); then, in the
# same order, the partition numbers. A write whose id every hash already holds was applied
# and its answer lost (a retried call): it returns the stored versions and writes nothing
# again. Every check happens before any write, so a refusal writes nothing. A stored owner
# that differs from the writer's token refuses the write (fencing); no stored owner (a Redis
# that lost its data, or a writer without a token) does not. A partial write onto another
# version than the writer's refuses the write (STALE_BASE), unless that version is one of
# the writer's unanswered writes. Returns each hash's new version.
_SAVE_SCRIPT: Final = (
    _APPLY_PENDING
    + _PUT_FIELDS
    + """
local n = #KEYS - 1
local stride = 10
local first = 3
local function partition(i)
  return tonumber(ARGV[first + stride * n + (i - 1)])
end
local written = {}
local replayed = true
for i = 1, n do
  written[i] = redis.call('HGET', KEYS[i + 1], 'written') or ''
  replayed = replayed and written[i] == ARGV[2]
end
if replayed then
  local stored = {}
  for i = 1, n do
    stored[i] = tonumber(redis.call('HGET', KEYS[i + 1], 'version'))
  end
  return stored
end
local stale = {}
for i = 1, n do
  local key = KEYS[i + 1]
  local base = first + stride * (i - 1)
  local owner = redis.call('HGET', key, 'owner')
  if owner and ARGV[base + 5] ~= '' and owner ~= ARGV[base + 5] then
    table.insert(stale, partition(i))
  end
end
if #stale > 0 then
  return redis.error_reply('STALE_OWNER ' .. cjson.encode(stale))
end
for i = 1, n do
  local key = KEYS[i + 1]
  local stored = redis.call('HGET', key, 'offsets')
  if stored then
    local old = cjson.decode(stored)
    local new = cjson.decode(ARGV[first + stride * (i - 1)])
    for topic, offset in pairs(old) do
      local proposed = new[topic]
      if proposed == nil or proposed < offset then
        return redis.error_reply('OFFSET_REGRESSION ' .. cjson.encode(
          {key = key, topic = topic, stored = offset, proposed = proposed}))
      end
    end
  end
end
local versions = {}
local behind = {}
for i = 1, n do
  local base = ARGV[first + stride * (i - 1) + 8]
  local unanswered = ' ' .. ARGV[first + stride * (i - 1) + 9] .. ' '
  local version = redis.call('HGET', KEYS[i + 1], 'version') or '0'
  local ours = written[i] ~= '' and string.find(unanswered, ' ' .. written[i] .. ' ', 1, true)
  if base ~= '' and base ~= '?' and base ~= version and not ours then
    table.insert(behind, partition(i))
  end
  versions[i] = tonumber(version) + 1
end
if #behind > 0 then
  return redis.error_reply('STALE_BASE ' .. cjson.encode(behind))
end
for i = 1, n do
  local key = KEYS[i + 1]
  local base = first + stride * (i - 1)
  if ARGV[base + 8] == '' then
    redis.call('DEL', key .. ':m', key .. ':s')
    redis.call('HDEL', key, 'status')
  end
  redis.call('HSET', key, 'offsets', ARGV[base], 'state', ARGV[base + 1],
             'summary', ARGV[base + 2], 'alignment', ARGV[base + 3],
             'updated_at', ARGV[1], 'version', versions[i], 'written', ARGV[2])
  put_fields(key .. ':m', ARGV[base + 6])
  put_fields(key .. ':s', ARGV[base + 7])
  apply_pending(key, ARGV[base + 4])
  if ARGV[base + 5] ~= '' then
    redis.call('HSET', key, 'owner', ARGV[base + 5])
  end
  redis.call('SADD', KEYS[1], ARGV[first + stride * n + (i - 1)])
end
return versions
"""
)

# KEYS[1] = a partition hash; ARGV[1] = lookup records (tag 8 | bucket u32 | field 12).
# Returns one value per record, '' where there is none.
_LOOKUP_SCRIPT: Final = """
local prefix = KEYS[1] .. ':j:'
local blob = ARGV[1]
local out = {}
local pos = 1
for i = 1, #blob / 24 do
  local key = prefix .. string.sub(blob, pos, pos + 7) .. ':' .. struct.unpack('<I4', blob, pos + 8)
  out[i] = redis.call('HGET', key, string.sub(blob, pos + 12, pos + 23)) or ''
  pos = pos + 24
end
return out
"""

# KEYS = partition hashes; ARGV[1] = the new owner token. Claims every partition and returns
# its stored {offsets, state, status, version}, model snapshots and model status in the same
# atomic step.
_CLAIM_SCRIPT: Final = """
local out = {}
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 'owner', ARGV[1])
  out[i] = {redis.call('HMGET', KEYS[i], 'offsets', 'state', 'status', 'version'),
            redis.call('HGETALL', KEYS[i] .. ':m'), redis.call('HGETALL', KEYS[i] .. ':s')}
end
return out
"""

#: A save of more bytes than this goes through the store's bulk client (Redis applies ~80 MiB
#: a second on a 2-core machine: this much takes well under the quick calls' 3 s timeout).
BULK_BYTES: Final = 32 * 1024 * 1024
#: The slowest rate a healthy Redis is expected to apply a checkpoint at (~80 MiB a second
#: measured on 2 cores; a quarter of it): a write is in flight, not stalled, for that long.
SLOW_WRITE_BYTES_PER_SECOND: Final = 20 * 1024 * 1024
#: Unanswered writes a store remembers per partition (older ones: a whole save if stored).
_MAX_UNANSWERED: Final = 8
_JSON_ENCODER: Final = msgspec.json.Encoder()
_MSGPACK_ENCODER: Final = msgspec.msgpack.Encoder()
_OFFSETS_DECODER: Final = msgspec.json.Decoder(dict[str, int])
_STATUS_DECODER: Final = msgspec.json.Decoder(dict[str, Any])


class CheckpointStore:
    """Saves and loads partition checkpoints of one consumer group in Redis.

    ``client`` must return bytes (the default ``decode_responses=False``). ``bulk``, if
    given, makes the calls that move many models: claims, loads and saves of more than
    :data:`BULK_BYTES` — a client with a longer socket timeout, since Redis takes seconds to
    apply a checkpoint of a thousand models. A smaller save (the live tail's) keeps
    ``client``'s short timeout, so a Redis that stalls is noticed as soon as before.
    """

    def __init__(
        self, client: redis.Redis, group_id: str, *, bulk: redis.Redis | None = None
    ) -> None:
        if not group_id:
            raise ValueError("group_id must not be empty")
        self._client = client
        self._bulk = client if bulk is None else bulk
        self._group_id = group_id
        self._save = client.register_script(_SAVE_SCRIPT)
        self._bulk_save = self._bulk.register_script(_SAVE_SCRIPT)
        self._claim = self._bulk.register_script(_CLAIM_SCRIPT)
        self._lookup = client.register_script(_LOOKUP_SCRIPT)
        #: per partition, the stored version this store claimed or last wrote
        self._versions: dict[int, int] = {}
        #: per partition, the ids of this store's writes since then that got no answer
        #: (a timeout, a dropped connection): Redis may hold any of them
        self._unanswered: dict[int, list[str]] = {}

    @property
    def group_id(self) -> str:
        return self._group_id

    def save(
        self,
        checkpoints: Iterable[PartitionCheckpoint],
        *,
        now: float | None = None,
        writing: Callable[[float], None] | None = None,
    ) -> int:
        """Write all ``checkpoints`` atomically; return how many partitions were written.
        ``writing``, if given, is told just before the write how many seconds Redis may
        take to apply it (its size at :data:`SLOW_WRITE_BYTES_PER_SECOND`).

        Raises :class:`StaleOwnerError` (and writes nothing) if another member claimed one
        of the partitions since the writer did, :class:`OffsetRegressionError` if any
        offset is lower than the one stored for the same topic and partition, and
        :class:`StaleBaseError` if a partial checkpoint would update another stored copy
        than the one this store claimed or last wrote.
        """
        items = list(checkpoints)
        if not items:
            return 0
        write_id = uuid.uuid4().hex
        keys = [_index_key(self._group_id)]
        args: list[bytes | str | float] = [time.time() if now is None else now, write_id]
        for cp in items:
            keys.append(partition_key(self._group_id, cp.partition))
            args.extend(self._arguments(cp))
        args.extend(str(cp.partition) for cp in items)
        size = sum(len(arg) for arg in args if isinstance(arg, bytes))
        save = self._bulk_save if size > BULK_BYTES else self._save
        if writing is not None:
            writing(size / SLOW_WRITE_BYTES_PER_SECOND)
        try:
            versions = save(keys=keys, args=args)
        except redis.RedisError as exc:
            # Without an answer the script may have run (Redis finishes a call whose client
            # gave up; a retry of it may then be refused): the next partial write may find
            # this one stored, which is not a lost write. redis-py's own retries of this
            # call find it stored and return.
            for cp in items:
                unanswered = self._unanswered.setdefault(cp.partition, [])
                unanswered[:] = [*unanswered[1 - _MAX_UNANSWERED :], write_id]
            if isinstance(exc, redis.ResponseError):
                raise _refusal_from(exc) from None
            raise
        for cp, version in zip(items, versions, strict=True):
            self._versions[cp.partition] = int(version)
            self._unanswered.pop(cp.partition, None)
        return len(items)

    def _arguments(self, cp: PartitionCheckpoint) -> list[bytes | str]:
        """The ten script arguments of one partition (see ``_SAVE_SCRIPT``)."""
        known = self._versions.get(cp.partition)
        return [
            _JSON_ENCODER.encode(dict(cp.offsets)),
            _MSGPACK_ENCODER.encode(cp.state),
            _JSON_ENCODER.encode(dict(cp.summary)),
            _JSON_ENCODER.encode(dict(cp.alignment)),
            cp.pending,
            cp.owner,
            _fields((k, _msgpack(v)) for k, v in cp.models.items()),
            _fields((k, _JSON_ENCODER.encode(v)) for k, v in cp.status.items()),
            "" if cp.complete else "?" if known is None else str(known),
            " ".join(self._unanswered.get(cp.partition, ())),
        ]

    def lookup_pending(self, lookups: Sequence[PendingLookup]) -> list[list[bytes]]:
        """The stored values each lookup asks for (``b""`` where none), in one round trip."""
        pipe = self._client.pipeline(transaction=False)
        for lookup in lookups:
            self._lookup(
                keys=[partition_key(self._group_id, lookup.partition)],
                args=[lookup.blob],
                client=pipe,
            )
        return [list(values) for values in pipe.execute()]

    def load(self, partitions: Iterable[int]) -> dict[int, PartitionCheckpoint]:
        """The stored checkpoints of ``partitions`` (absent ones are left out)."""
        wanted = sorted(set(partitions))
        pipe = self._bulk.pipeline(transaction=False)
        for p in wanted:
            key = partition_key(self._group_id, p)
            pipe.hmget(key, "offsets", "state", "status", "version")
            pipe.hgetall(key + ":m")
            pipe.hgetall(key + ":s")
        replies = pipe.execute()
        rows = [replies[k : k + 3] for k in range(0, len(replies), 3)]
        return self._found(wanted, rows, "")

    def claim(self, partitions: Iterable[int], owner: str) -> dict[int, PartitionCheckpoint]:
        """Become the owner of ``partitions`` and return their stored checkpoints, atomically.

        From now on :meth:`save` refuses writes to them by any other owner token.
        """
        if not owner:
            raise ValueError("owner token must not be empty")
        wanted = sorted(set(partitions))
        if not wanted:
            return {}
        keys = [partition_key(self._group_id, p) for p in wanted]
        rows = [
            (fields, _pairs(models), _pairs(statuses))
            for fields, models, statuses in self._claim(keys=keys, args=[owner])
        ]
        for p, (fields, _, _) in zip(wanted, rows, strict=True):
            self._versions[p] = int(fields[3] or 0)
            self._unanswered.pop(p, None)
        return self._found(wanted, rows, owner)

    def _found(
        self, wanted: list[int], rows: list[Any], owner: str
    ) -> dict[int, PartitionCheckpoint]:
        found: dict[int, PartitionCheckpoint] = {}
        for p, (fields, models, statuses) in zip(wanted, rows, strict=True):
            offsets, state, status = fields[:3]
            if offsets is None:
                continue
            key = partition_key(self._group_id, p)
            found[p] = PartitionCheckpoint(
                partition=p,
                offsets=_decode(_OFFSETS_DECODER, offsets, key, "offsets"),
                state=_decode_state(state, key),
                status=_stored_status(status, statuses, key),
                owner=owner,
                models=_decoded_models(models, key),
            )
        return found

    def statuses(self) -> list[StoredStatus]:
        """Offsets and status of every partition the group ever checkpointed, by partition."""
        members = self._client.smembers(_index_key(self._group_id))
        partitions = sorted(int(m) for m in members)
        pipe = self._client.pipeline(transaction=False)
        for p in partitions:
            key = partition_key(self._group_id, p)
            pipe.hmget(key, "offsets", "status", "updated_at", "summary", "alignment")
            pipe.hgetall(key + ":s")
        result = []
        replies = pipe.execute()
        for p, k in zip(partitions, range(0, len(replies), 2), strict=True):
            offsets, status, updated_at, summary, alignment = replies[k]
            if offsets is None:
                continue
            key = partition_key(self._group_id, p)
            result.append(
                StoredStatus(
                    partition=p,
                    offsets=_decode(_OFFSETS_DECODER, offsets, key, "offsets"),
                    status=_stored_status(status, replies[k + 1], key),
                    updated_at=float(updated_at or 0.0),
                    summary=_decode(_STATUS_DECODER, summary or b"{}", key, "summary"),
                    alignment=_decode(_STATUS_DECODER, alignment or b"{}", key, "alignment"),
                )
            )
        return result

    def delete_group(self) -> int:
        """Remove every checkpoint of the group and its pending predictions (a reset: the
        group restarts from scratch); returns how many keys were deleted."""
        members = self._client.smembers(_index_key(self._group_id))
        keys = [
            key + suffix
            for key in (partition_key(self._group_id, int(m)) for m in members)
            for suffix in ("", ":m", ":s")
        ]
        deleted = int(self._client.delete(_index_key(self._group_id), *keys))
        pattern = f"{KEY_PREFIX}:{{{self._group_id}}}:p:*:j:*"
        batch: list[bytes] = []
        for key in self._client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(self._client.delete(*batch))
                batch = []
        if batch:
            deleted += int(self._client.delete(*batch))
        self._versions.clear()
        return deleted


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    """A hash as a script returns it (field, value, field, value, …) as a mapping."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _msgpack(value: Any) -> bytes | msgspec.Raw:
    """``value`` as msgpack: an encoded snapshot (``msgspec.Raw``) as it is, without a copy."""
    return value if isinstance(value, msgspec.Raw) else _MSGPACK_ENCODER.encode(value)


def _fields(pairs: Iterable[tuple[str, bytes | msgspec.Raw]]) -> bytes:
    """A ``put_fields`` blob: (u32 length, name, u32 length, value) per field."""
    parts: list[bytes] = []
    for name, value in pairs:
        raw = name.encode()
        parts += [struct.pack("<I", len(raw)), raw, struct.pack("<I", len(value)), value]
    return b"".join(parts)


def _stored_status(legacy: bytes | None, stored: Mapping[bytes, bytes], key: str) -> dict[str, Any]:
    """``{model_id: status}`` by id: an earlier release's ``status`` field when there is one
    (it was written last: this release's complete checkpoint removes it), else the hash."""
    if legacy is not None:
        found: dict[str, Any] = _decode(_STATUS_DECODER, legacy, key, "status")
    else:
        found = {
            model_id.decode(): _decode(_STATUS_DECODER, raw, key + ":s", model_id.decode())
            for model_id, raw in stored.items()
        }
    return dict(sorted(found.items()))


def _decoded_models(stored: Mapping[bytes, bytes], key: str) -> dict[str, Any]:
    """``{model_id: snapshot}`` by id, from the hash of model snapshots."""
    models: dict[str, Any] = {}
    for model_id, raw in sorted(stored.items()):
        try:
            models[model_id.decode()] = msgspec.msgpack.decode(raw)
        except msgspec.DecodeError as exc:
            raise CorruptCheckpointError(
                f"{key}:m: field {model_id.decode()!r} cannot be decoded: {exc}"
            ) from None
    return models


def _decode(decoder: msgspec.json.Decoder[Any], raw: bytes, key: str, name: str) -> Any:
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise CorruptCheckpointError(f"{key}: field {name!r} cannot be decoded: {exc}") from None


def _decode_state(raw: bytes | None, key: str) -> Any:
    if raw is None:
        raise CorruptCheckpointError(f"{key}: field 'state' is missing")
    try:
        return msgspec.msgpack.decode(raw)
    except msgspec.DecodeError as exc:
        raise CorruptCheckpointError(f"{key}: field 'state' cannot be decoded: {exc}") from None


def _refusal_from(exc: redis.ResponseError) -> Exception:
    message = str(exc)
    for marker, error in (("STALE_OWNER ", StaleOwnerError), ("STALE_BASE ", StaleBaseError)):
        stale = message.find(marker)
        if stale >= 0:
            try:
                payload = message[stale + len(marker) :].split("\n")[0].rstrip(" .")
                partitions = msgspec.json.decode(payload)
            except msgspec.DecodeError:
                return CheckpointError(f"checkpoint refused: {message}")
            return error(sorted(int(p) for p in partitions))
    marker = "OFFSET_REGRESSION "
    start = message.find(marker)
    if start < 0:
        return CheckpointError(f"checkpoint script failed: {message}")
    payload = message[start + len(marker) :]
    try:
        info = msgspec.json.decode(payload.split("\n")[0].rstrip(" ."))
    except msgspec.DecodeError:
        return CheckpointError(f"checkpoint refused: {message}")
    proposed = info.get("proposed")
    return OffsetRegressionError(
        str(info["key"]),
        str(info["topic"]),
        int(info["stored"]),
        None if proposed is None else int(proposed),
    )
