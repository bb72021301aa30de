"""The local stack against real processes: LocalStack, topics, a Kafka round trip, the CLI."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import redis
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from streams.core.kafka import DEFAULT_TOPICS, TEST_GROUP, consumer_config, producer_config
from streams.core.topics import TopicError, ensure_topics, partition_counts
from streams.stack import LocalStack, StackStartupError, kafka_answers, redis_answers
from streams.stack.process import ProcessRef
from streams.stack.services import KAFKA, REDIS, ServiceKind, start_service

pytestmark = pytest.mark.integration

_EXPORTS = re.compile(
    r"\Aexport KAFKA_BOOTSTRAP_SERVERS=127\.0\.0\.1:(\d+)\n"
    r"export REDIS_URL=redis://127\.0\.0\.1:(\d+)/0\n\Z"
)


# --- LocalStack, in process ----------------------------------------------------------------


def test_local_stack_starts_answers_and_stops() -> None:
    with LocalStack() as stack:
        refs = [service.ref for service in stack.services]
        state_dir = stack.state_dir
        assert kafka_answers(stack.bootstrap)
        assert redis_answers(stack.redis_url)
        assert stack.startup_seconds is not None
        assert (state_dir / "kafka.log").exists()
    assert [_describe(ref) for ref in refs] == ["exited and reaped"] * 2
    assert not state_dir.exists()  # the temporary directory is removed


def _describe(ref: ProcessRef) -> str:
    """Our child's fate; pid + start time, so a reused pid is not mistaken for it."""
    try:
        process = psutil.Process(ref.pid)
        if abs(process.create_time() - ref.create_time) > 0.05:
            return "exited and reaped"  # the pid now names another process
        return f"still there: {process.status()} {process.cmdline()}"
    except psutil.NoSuchProcess:
        return "exited and reaped"


@pytest.mark.parametrize("kind", [KAFKA, REDIS], ids=["kafka", "redis"])
def test_a_taken_port_fails_with_the_server_log(kind: ServiceKind, tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(StackStartupError) as info:
            start_service(kind, tmp_path, port=port, timeout=10)
    message = str(info.value)
    assert f"on port {port} exited with code" in message
    assert "in use" in message  # the server's own words, from the log tail


def test_session_fixtures_point_at_answering_services(
    kafka_bootstrap: str, redis_client: redis.Redis
) -> None:
    assert kafka_answers(kafka_bootstrap)
    assert redis_client.ping()
    redis_client.set("driftradar:test", "1")  # flushed on teardown


# --- Topics --------------------------------------------------------------------------------


def test_ensure_topics_creates_co_partitioned_topics_idempotently(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    names = [topic_prefix + "predictions", topic_prefix + "ground-truth"]
    assert ensure_topics(kafka_bootstrap, names, 3) == dict.fromkeys(names, 3)
    assert ensure_topics(kafka_bootstrap, names, 3) == dict.fromkeys(names, 3)  # again: fine
    assert partition_counts(kafka_bootstrap, [*names, topic_prefix + "absent"]) == {
        names[0]: 3,
        names[1]: 3,
        topic_prefix + "absent": None,
    }


def test_ensure_topics_refuses_a_different_partition_count(
    make_topics: Callable[..., dict[str, str]], kafka_bootstrap: str
) -> None:
    topics = make_topics("predictions", partitions=2)
    with pytest.raises(TopicError, match=r"has 2"):
        ensure_topics(kafka_bootstrap, topics.values(), 4)


# --- A round trip with the project's client settings ---------------------------------------


def test_idempotent_lz4_producer_round_trip(
    kafka_bootstrap: str,
    make_topics: Callable[..., dict[str, str]],
    read_topic: Callable[..., list[Message]],
    topic_prefix: str,
) -> None:
    topic = make_topics("predictions", partitions=3)["predictions"]
    config = producer_config(kafka_bootstrap)
    assert config["compression.type"] == "lz4"
    assert config["enable.idempotence"] is True
    producer = Producer(config)
    sent = {f"e{i}": f'{{"event_id": "e{i}", "pad": "{"x" * 200}"}}' for i in range(500)}
    for event_id, body in sent.items():
        producer.produce(topic, key=f"model-{int(event_id[1:]) % 5}", value=body)
    assert producer.flush(15) == 0

    # A group member with the project's consumer settings, committing explicit offsets.
    group = topic_prefix + "group"
    consumer = Consumer(consumer_config(kafka_bootstrap, group, group_timings=TEST_GROUP))
    received: list[str] = []
    keys_by_partition: dict[int, set[bytes]] = {}
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while len(received) < len(sent) and time.monotonic() < deadline:
            next_offsets: dict[int, int] = {}
            for message in consumer.consume(500, 0.2):
                assert message.error() is None, message.error()
                value, key = message.value(), message.key()
                partition, offset = message.partition(), message.offset()
                assert value is not None
                assert key is not None
                assert partition is not None
                assert offset is not None
                received.append(value.decode())
                keys_by_partition.setdefault(partition, set()).add(key)
                next_offsets[partition] = offset + 1
            if next_offsets:  # explicit offsets, once per batch
                commit = [TopicPartition(topic, p, o) for p, o in next_offsets.items()]
                consumer.commit(offsets=commit, asynchronous=False)
    finally:
        consumer.close()
    assert sorted(received) == sorted(sent.values())  # each once, intact
    # One key, one partition: what co-partitioning relies on.
    all_keys = [key for keys in keys_by_partition.values() for key in keys]
    assert len(all_keys) == len(set(all_keys)) == 5

    # The committed offsets cover everything: a restarted member reads nothing more.
    again = Consumer(consumer_config(kafka_bootstrap, group, group_timings=TEST_GROUP))
    try:
        committed = again.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    finally:
        again.close()
    # (a partition no key hashes to has nothing committed: OFFSET_INVALID, negative)
    assert sum(tp.offset for tp in committed if tp.offset >= 0) == len(sent)
    assert len(read_topic(topic)) == len(sent)


def test_read_topic_stops_at_the_end_of_an_empty_topic(
    make_topics: Callable[..., dict[str, str]], read_topic: Callable[..., list[Message]]
) -> None:
    assert read_topic(make_topics("dead-letter", partitions=2)["dead-letter"]) == []


# --- The CLI, as a user runs it ------------------------------------------------------------


# `driftradar stack ...` in its own process, without importing every other sub-command
# (streams.cli builds the whole parser: ~2 s of imports). The eval test uses the real entry.
_STACK_COMMAND = """
import argparse, sys
from streams.commands import stack
parser = argparse.ArgumentParser(prog="driftradar stack")
stack.add_arguments(parser)
sys.exit(stack.run(parser.parse_args(sys.argv[1:])))
"""


def _cli(*args: str, state_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"}}
    env["DRIFTRADAR_STATE_DIR"] = str(state_dir)
    result = subprocess.run(
        [sys.executable, "-c", _STACK_COMMAND, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state directory whose stack is always brought down, even when a test fails."""
    directory = tmp_path / "state"
    yield directory
    _cli("down", state_dir=directory, check=False)


def _pids(state_dir: Path) -> dict[str, int]:
    return {name: int((state_dir / f"{name}.pid").read_text()) for name in ("kafka", "redis")}


def test_cli_up_reuse_status_down(state_dir: Path) -> None:
    first = _cli("up", "--partitions", "2", state_dir=state_dir)
    match = _EXPORTS.match(first.stdout)
    assert match, first.stdout
    bootstrap, url = f"127.0.0.1:{match[1]}", f"redis://127.0.0.1:{match[2]}/0"
    assert kafka_answers(bootstrap)
    assert redis_answers(url)
    assert partition_counts(bootstrap, DEFAULT_TOPICS) == dict.fromkeys(DEFAULT_TOPICS, 2)
    pids = _pids(state_dir)
    assert "stack up in" in first.stderr

    second = _cli("up", "--partitions", "2", state_dir=state_dir)
    assert second.stdout == first.stdout  # same ports
    assert _pids(state_dir) == pids  # same processes
    assert "reusing the running stack" in second.stderr

    assert "answering" in _cli("status", state_dir=state_dir).stdout

    _cli("down", state_dir=state_dir)
    assert all(_gone(pid) for pid in pids.values())
    assert not (state_dir / "stack.json").exists()
    assert (state_dir / "kafka.log").exists()  # logs are kept for inspection
    assert _cli("status", state_dir=state_dir, check=False).returncode == 1


def test_cli_up_with_another_partition_count_is_refused(state_dir: Path) -> None:
    _cli("up", "--partitions", "2", state_dir=state_dir)
    clash = _cli("up", "--partitions", "3", state_dir=state_dir, check=False)
    assert clash.returncode == 1
    assert clash.stdout == ""
    assert "another partition count than 3" in clash.stderr


def test_cli_output_can_be_evaluated_by_a_shell(state_dir: Path) -> None:
    script = (
        f'eval "$({sys.executable} -m streams.cli stack up --state-dir {state_dir})" '
        '&& echo "$KAFKA_BOOTSTRAP_SERVERS $REDIS_URL"'
    )
    shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert shell.returncode == 0, shell.stderr
    bootstrap, url = shell.stdout.split()
    assert kafka_answers(bootstrap)
    assert redis_answers(url)


@pytest.mark.slow
def test_cli_down_after_a_crash_cleans_up_and_up_starts_afresh(state_dir: Path) -> None:
    _cli("up", state_dir=state_dir)
    pids = _pids(state_dir)
    for pid in pids.values():  # processes this test started: kill -9, as a crash would
        os.kill(pid, signal.SIGKILL)
    for pid in pids.values():
        assert _gone(pid)

    status = _cli("status", state_dir=state_dir, check=False)
    assert status.returncode == 1
    assert "not running" in status.stdout

    restarted = _cli("up", state_dir=state_dir)  # stale state: a fresh stack
    assert "stale" in restarted.stderr
    assert _EXPORTS.match(restarted.stdout)
    assert set(_pids(state_dir).values()).isdisjoint(pids.values())

    new_pids = _pids(state_dir)
    for pid in new_pids.values():
        os.kill(pid, signal.SIGKILL)
    down = _cli("down", state_dir=state_dir)
    assert "was not running" in down.stderr
    assert sorted(p.name for p in state_dir.iterdir()) == [".lock", "kafka.log", "redis.log"]


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False
