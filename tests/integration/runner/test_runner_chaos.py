"""Chaos: nothing a fault can do stops the monitor or costs an event.

Each test runs on a private broker + Redis (``drill_stack``), so freezing or killing them
does not touch the session's services. Monitors run as subprocesses under load; at the end
every test checks that the monitor never exited on its own and that what it applied equals
an uninterrupted run over the same topics: with the counting engine, an oracle computed from
what was produced (the exact (offset, event_id) sequence per model and topic); with the
real engine, a second, undisturbed run (predictions, labels, joined pairs and the updates of
every detector).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
import yaml
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from runner_harness import (
    TOPICS,
    BackgroundStream,
    Monitor,
    monitor_env,
    redis_busy,
    run_to_end,
    start_monitor,
    status_json,
    wait_for_offsets,
    wait_for_progress,
    write_config,
)

from streams.core.kafka import consumer_config, producer_config
from streams.core.topics import ensure_topics
from streams.stack import LocalStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 4


@pytest.fixture
def drill_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """A broker and a Redis of this test's own, to pause, kill and restart."""
    with LocalStack(tmp_path / "stack") as stack:
        yield stack


@pytest.fixture
def drill(drill_stack: LocalStack, tmp_path: Path) -> Iterator[Drill]:
    ensure_topics(drill_stack.bootstrap, TOPICS, PARTITIONS)
    client = redis.Redis.from_url(drill_stack.redis_url, socket_timeout=2)
    config = write_config(tmp_path / "c.yaml", {t: t for t in TOPICS}, every_seconds=1.0)
    yield Drill(
        drill_stack, client, monitor_env(drill_stack.bootstrap, drill_stack.redis_url, config)
    )
    client.close()


class Drill:
    """The private stack, a Redis client on it and the monitors' environment."""

    def __init__(self, stack: LocalStack, client: redis.Redis, env: dict[str, str]) -> None:
        self.stack = stack
        self.client = client
        self.env = env
        self.stream_result: Any = None

    def stream(self, **kw: Any) -> BackgroundStream:
        return BackgroundStream(self.stack.bootstrap, {t: t for t in TOPICS}, **kw)

    def finish(
        self,
        monitors: list[Monitor],
        group: str,
        background: BackgroundStream,
        also: dict[tuple[str, int], int] | None = None,
    ) -> dict[str, Any]:
        """Wait for the whole stream (and the end offsets ``also`` of other messages) to be
        checkpointed; the monitors must still be running (none exited on its own); stop
        them cleanly; return ``status --json``."""
        stream = background.join()
        expected = stream.expected_offsets(PARTITIONS)
        for (topic, partition), end in (also or {}).items():
            expected[partition][topic] = max(expected[partition].get(topic, 0), end)
        wait_for_offsets(self.client, group, expected, monitors=monitors, timeout=90)
        for monitor in monitors:
            assert monitor.process.poll() is None, f"the monitor exited:\n{monitor.log()}"
            assert monitor.stop() == 0, monitor.log()
        self.stream_result = stream
        return status_json(self.env, group)

    def expected(self) -> dict[str, Any]:
        return self.stream_result.counting_models("predictions")

    @staticmethod
    def per_topic(models: dict[str, Any]) -> dict[str, Any]:
        """The models without the digest of the merged two-topic sequence: under a fault a
        quiet, caught-up side may let the other run on (live tail), so only each topic's own
        sequence is exact; the merged one is checked on the streams of the alignment tests."""
        return {
            m: {**s, "digest": {k: v for k, v in s["digest"].items() if k != "m"}}
            for m, s in models.items()
        }


def _when_progressing(drill: Drill, group: str) -> None:
    wait_for_progress(drill.client, group, beyond=2000, timeout=60)


def test_broker_frozen_for_30_s_under_load(drill: Drill) -> None:
    monitor = start_monitor(drill.env, "g", counting=True)
    background = drill.stream(models=4, per_model=2500, bad_every=101, rate=700.0)
    _when_progressing(drill, "g")
    drill.stack.pause("kafka")
    time.sleep(30)
    drill.stack.resume("kafka")
    status = drill.finish([monitor], "g", background)
    assert drill.per_topic(status["models"]) == drill.expected()
    log = monitor.log()
    assert "lost partitions" in log or "unavailable" in log, log  # it noticed


def test_redis_killed_and_restarted_under_load_with_the_real_engine(drill: Drill) -> None:
    monitor = start_monitor(drill.env, "g")
    background = drill.stream(models=3, per_model=2500, bad_every=97, rate=800.0)
    _when_progressing(drill, "g")
    drill.stack.kill("redis")
    time.sleep(5)
    drill.stack.restart("redis")  # reloads its append-only file
    status = drill.finish([monitor], "g", background)
    log = monitor.log()
    assert "Redis unavailable" in log, log
    assert "answers again" in log, log
    reference = run_to_end(drill.env, drill.client, "reference", drill.stream_result, PARTITIONS)
    assert status["models"] == reference["models"]
    assert sum(m["joined"] for m in status["models"].values()) == 3 * 2500


def test_redis_frozen_for_20_s_under_load(drill: Drill) -> None:
    monitor = start_monitor(drill.env, "g", counting=True)
    background = drill.stream(models=4, per_model=2000, bad_every=89, rate=700.0)
    _when_progressing(drill, "g")
    drill.stack.pause("redis")
    time.sleep(20)
    drill.stack.resume("redis")
    status = drill.finish([monitor], "g", background)
    assert drill.per_topic(status["models"]) == drill.expected()
    assert "Redis unavailable" in monitor.log()


def test_redis_busy_running_another_client_s_script_under_load(drill: Drill) -> None:
    """Past ``busy-reply-threshold`` Redis answers every other command ``BUSY`` (redis-py:
    a plain ResponseError, which stopped the monitor): it is an outage to ride out."""
    monitor = start_monitor(drill.env, "g", counting=True)
    background = drill.stream(models=4, per_model=2000, bad_every=89, rate=700.0)
    _when_progressing(drill, "g")
    drill.client.config_set("lua-time-limit", 200)  # BUSY after 0.2 s, not 5 (Redis 6.2+)
    with redis_busy(drill.stack.redis_url, 8.0):
        pass
    status = drill.finish([monitor], "g", background)
    assert drill.per_topic(status["models"]) == drill.expected()
    log = monitor.log()
    assert "Redis unavailable (RedisBusyError: BUSY" in log, log
    assert "answers again" in log, log


def test_one_of_three_members_killed_in_a_loop(drill: Drill) -> None:
    members = [start_monitor(drill.env, "g", counting=True) for _ in range(3)]
    background = drill.stream(models=8, per_model=1500, bad_every=113, rate=900.0)
    _when_progressing(drill, "g")
    kills = 0
    while background.is_alive() and kills < 6:
        victim = kills % 3
        members[victim].stop(kill=True)
        time.sleep(1.5)
        members[victim] = start_monitor(drill.env, "g", counting=True)
        kills += 1
        time.sleep(2.0)
    assert kills >= 4, "the stream ended before the members could be killed 4 times"
    status = drill.finish(members, "g", background)
    assert drill.per_topic(status["models"]) == drill.expected()


def test_a_member_frozen_past_its_session_cannot_overwrite_the_new_owner(drill: Drill) -> None:
    """SIGSTOP one of two members until the group moves its partitions, then SIGCONT: it
    drops them (librdkafka reports them lost, or its stale checkpoint is refused by the owner
    token, whichever comes first — the refusal itself is tested on the store) and nothing
    is lost or doubled."""
    first = start_monitor(drill.env, "g", counting=True)
    background = drill.stream(models=6, per_model=2000, rate=800.0)
    _when_progressing(drill, "g")
    second = start_monitor(drill.env, "g", counting=True)
    second.wait_for_log("assigned partitions", timeout=30)
    time.sleep(2)
    first.process.send_signal(19)  # SIGSTOP: its session (2 s in tests) expires
    second.wait_for_log("assigned partitions", count=2, timeout=30)
    time.sleep(3)  # the new owner checkpoints the partitions it took
    first.process.send_signal(18)  # SIGCONT: it wakes up believing it owns them
    status = drill.finish([first, second], "g", background)
    assert drill.per_topic(status["models"]) == drill.expected()
    log = first.log()
    assert "claimed by another member" in log or "lost partitions" in log, log


POISON: dict[str, bytes] = {
    "overflowing number": b'{"event_id": "p1", "model_id": "m0", "features": {"f0": 1e999}, '
    b'"prediction": 0.5}',
    "nested 10,000 deep": b'{"event_id": "p2", "model_id": "m0", "features": {"f0": '
    + b"[" * 10_000
    + b"]" * 10_000
    + b'}, "prediction": 0.5}',
    "unknown field nested deep": b'{"event_id": "p3", "model_id": "m0", "x": '
    + b'{"a":' * 10_000
    + b"1"
    + b"}" * 10_000
    + b', "features": {}, "prediction": 0.5}',
    "900 KB that is not JSON": b"{" + b"x" * 900_000,
    "timestamp beyond year 9999": b'{"event_id": "p4", "model_id": "m0", "features": {}, '
    b'"prediction": 0.5, "timestamp": 1e300}',
    "lone surrogate": b'{"event_id": "p5", "model_id": "\\ud800", "features": {}, "prediction": 1}',
    "not UTF-8": b"\xff\xfe\xfd",
}


def test_poison_messages_interleaved_with_valid_ones(drill: Drill) -> None:
    """The messages that crashed the monitor before, plus 2,000 junk keys, between valid
    events: all dead-lettered with a reason (the 900 KB one truncated), no model created for
    a junk key, every valid event processed."""
    producer = Producer(producer_config(drill.stack.bootstrap, {"message.max.bytes": 2_000_000}))
    ends: dict[tuple[str, int], int] = {}

    def delivered(err: Any, msg: Any) -> None:
        assert err is None, err
        key = (msg.topic(), msg.partition())
        ends[key] = max(ends.get(key, 0), msg.offset() + 1)

    background = drill.stream(models=2, per_model=1500, rate=1500.0)
    monitor = start_monitor(drill.env, "g")
    for round_ in range(3):  # interleaved with the valid stream
        for value in POISON.values():
            producer.produce("predictions", value, b"m0", on_delivery=delivered)
        for i in range(2000 if round_ == 0 else 0):
            producer.produce("predictions", b"{junk", f"junk-{i}".encode(), on_delivery=delivered)
        producer.flush(30)
        time.sleep(0.5)
    assert producer.flush(30) == 0
    status = drill.finish([monitor], "g", background, also=ends)
    assert set(status["models"]) == {"m0", "m1"}  # no junk key became a model
    assert status["models"]["m1"]["predictions"] == 1500
    assert status["models"]["m0"]["predictions"] == 1500
    on_models = sum(m["dead_letters"] for m in status["models"].values())
    on_partitions = sum(
        sum(info["dead_letters"].values()) for info in status["partitions"].values()
    )
    assert on_models + on_partitions == 3 * len(POISON) + 2000
    letters = _read_all(drill.stack.bootstrap, "dead-letter")
    assert len(letters) == 3 * len(POISON) + 2000
    big = [d for d in letters if d["size"] > 800_000]
    assert len(big) == 3
    assert all(d["truncated"] and d["sha256"] and d["reason"] for d in big)
    assert all(d["reason"] for d in letters)


def _read_all(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    consumer = Consumer(consumer_config(bootstrap, "reader", {"enable.partition.eof": True}))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    out: list[dict[str, Any]] = []
    ended: set[int] = set()
    deadline = time.monotonic() + 30
    try:
        while len(ended) < PARTITIONS and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.2):
                error = message.error()
                if error is None:
                    out.append(msgspec.json.decode(message.value() or b"{}"))
                elif error.code() == KafkaError._PARTITION_EOF:
                    ended.add(message.partition() or 0)
    finally:
        consumer.close()
    return out


def test_a_redis_that_never_returns_ends_the_monitor_with_one_line(
    drill_stack: LocalStack, tmp_path: Path
) -> None:
    ensure_topics(drill_stack.bootstrap, TOPICS, PARTITIONS)
    config = write_config(tmp_path / "c.yaml", {t: t for t in TOPICS}, every_seconds=0.5)
    document = yaml.safe_load(config.read_text())
    document["redis"] = {"give_up_seconds": 3}
    config.write_text(yaml.safe_dump(document))
    env = monitor_env(drill_stack.bootstrap, drill_stack.redis_url, config)
    monitor = start_monitor(env, "g")
    monitor.wait_for_log("assigned partitions", timeout=30)
    background = BackgroundStream(drill_stack.bootstrap, {t: t for t in TOPICS}, per_model=300)
    background.join()
    drill_stack.kill("redis")
    assert monitor.process.wait(timeout=60) == 1
    log = monitor.log()
    assert "Traceback" not in log, log
    (last,) = [line for line in log.splitlines() if line.startswith("driftradar run:")][-1:]
    assert "unavailable for" in last, log
    assert "giving up" in last, log
    assert "will be replayed" in last


def test_a_member_without_partitions_says_so(
    kafka_bootstrap: str, redis_url: str, make_topics: Any, topic_prefix: str, tmp_path: Path
) -> None:
    topics = make_topics(*TOPICS, partitions=1)
    config = write_config(tmp_path / "c.yaml", topics)
    document = yaml.safe_load(config.read_text())
    document["broker"] = {"no_assignment_seconds": 2}
    config.write_text(yaml.safe_dump(document))
    env = monitor_env(kafka_bootstrap, redis_url, config)
    group = topic_prefix + "g"
    first = start_monitor(env, group, counting=True)
    first.wait_for_log("assigned partitions", timeout=30)
    # one partition of each topic: one of the two members is left without any (the range
    # assignor orders members by their broker-made ids, so either may be that one)
    second = start_monitor(env, group, counting=True)
    idle = "no partitions assigned to this member"
    try:
        deadline = time.monotonic() + 30
        while idle not in first.log() + second.log():
            assert time.monotonic() < deadline, first.log() + second.log()
            assert first.process.poll() is None, first.log()
            assert second.process.poll() is None, second.log()
            time.sleep(0.1)
        (waiting,) = [m for m in (first, second) if idle in m.log()]
        assert "kafka-consumer-groups --describe" in waiting.log()
    finally:
        second.stop()
        first.stop()


def test_redis_killed_while_idle_is_one_outage_until_it_answers(drill: Drill) -> None:
    """Caught up, the member only PINGs Redis; with Redis dead it must stay in one outage
    (never "answers again" without having asked Redis) until Redis is back."""
    monitor = start_monitor(drill.env, "g", counting=True)
    background = drill.stream(models=2, per_model=300)
    stream = background.join()
    wait_for_offsets(
        drill.client, "g", stream.expected_offsets(PARTITIONS), monitors=[monitor], timeout=60
    )
    drill.stack.kill("redis")
    monitor.wait_for_log("Redis unavailable", timeout=30)
    time.sleep(12)  # several retries while Redis is dead
    assert "answers again" not in monitor.log(), monitor.log()
    drill.stack.restart("redis")
    monitor.wait_for_log("answers again", timeout=60)
    assert monitor.log().count("Redis unavailable (") == 1, monitor.log()
    assert monitor.stop() == 0, monitor.log()
