"""The contract's partitioning rule: every producer of ours hashes keys like Java and aiokafka.

Offline checks: aiokafka's murmur2 (what Faust uses) against Kafka's published test vectors
and a small reference implementation; the one place producers are configured sets
``partitioner=murmur2_random`` and refuses any other; every confluent-kafka ``Producer`` in
the project is built from that place; a ``kafka:`` section, the SDK and a Faust app with
another partitioner are refused naming the key. The broker-side check (produce, read back,
compare partitions) is tests/integration/producers/test_partitioner_broker.py.
"""

from __future__ import annotations

import ast
import random
import subprocess
import sys
from pathlib import Path

import faust
import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2

from producers import MonitorClient
from producers.faust_client import FaustMonitorClient
from streams.core.kafka import PARTITIONER, partitioner_problem, producer_config
from streams.engine.config import ConfigError, MonitorConfig

ROOT = Path(__file__).resolve().parents[3]

#: Kafka's own vectors for its murmur2 (clients/.../utils/UtilsTest.java, testMurmur2).
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def reference_murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` (32-bit, seed 0x9747b28c), as a signed int."""
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    h = (0x9747B28C ^ len(data)) & mask
    body = len(data) - len(data) % 4
    for i in range(0, body, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    tail = data[body:]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def reference_partition(key: bytes, partitions: int) -> int:
    """The Java client's rule: ``toPositive(murmur2(key)) % partitions``."""
    return (reference_murmur2(key) & 0x7FFFFFFF) % partitions


def _keys(count: int, seed: int = 13) -> list[bytes]:
    rng = random.Random(seed)
    keys = [b"", b"churn", "modèle-é".encode(), b"x" * 300]
    while len(keys) < count:
        size = rng.randrange(1, 40)
        keys.append(bytes(rng.randrange(256) for _ in range(size)))
    return keys


def test_reference_matches_kafkas_published_vectors() -> None:
    for key, expected in KAFKA_VECTORS.items():
        assert reference_murmur2(key) == expected, key


def test_aiokafka_hashes_and_partitions_like_the_java_client() -> None:
    partitioner = DefaultPartitioner()
    for key, expected in KAFKA_VECTORS.items():
        assert murmur2(key) & 0x7FFFFFFF == expected & 0x7FFFFFFF
    for key in _keys(500):
        for partitions in range(1, 13):
            every = list(range(partitions))
            assert partitioner(key, every, every) == reference_partition(key, partitions)


def test_every_producer_is_configured_with_murmur2_random() -> None:
    assert PARTITIONER == "murmur2_random"
    assert producer_config("b:9092")["partitioner"] == PARTITIONER
    assert (
        producer_config("b:9092", {"partitioner": "murmur2_random"})["partitioner"] == PARTITIONER
    )
    assert producer_config("b:9092", {"linger.ms": 50})["partitioner"] == PARTITIONER
    with pytest.raises(ValueError, match=r"^partitioner: must be 'murmur2_random'"):
        producer_config("b:9092", {"partitioner": "consistent_random"})
    assert partitioner_problem({}) is None
    assert "got 'murmur2'" in (partitioner_problem({"partitioner": "murmur2"}) or "")


def _producer_calls(tree: ast.AST) -> list[tuple[ast.Call, ast.FunctionDef | None]]:
    calls: list[tuple[ast.Call, ast.FunctionDef | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for inner in ast.walk(node):
                if (
                    isinstance(inner, ast.Call)
                    and isinstance(inner.func, ast.Name)
                    and inner.func.id == "Producer"
                ):
                    calls.append((inner, node))
    return calls


def _from_producer_config(argument: ast.expr, function: ast.FunctionDef | None) -> bool:
    """``producer_config(...)`` itself, or a name assigned from it in the same function."""

    def is_config_call(node: ast.expr) -> bool:
        return (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "producer_config"
        )

    if is_config_call(argument):
        return True
    if isinstance(argument, ast.Name) and function is not None:
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and is_config_call(node.value):
                targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
                if argument.id in targets:
                    return True
    return False


def test_no_producer_bypasses_producer_config() -> None:
    """Every ``confluent_kafka.Producer(...)`` in streams/ and producers/ takes its settings
    from ``producer_config`` (which fixes the partitioner)."""
    seen = 0
    for path in sorted(
        [*ROOT.joinpath("streams").rglob("*.py"), *ROOT.joinpath("producers").rglob("*.py")]
    ):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call, function in _producer_calls(tree):
            seen += 1
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            assert call.args, f"{where}: Producer() without a positional config"
            assert _from_producer_config(call.args[0], function), (
                f"{where}: Producer(...) not built from streams.core.kafka.producer_config"
            )
    assert seen >= 3  # the SDK/simulator's TrackedProducer, the Publisher, the local trainer


def test_a_kafka_section_with_another_partitioner_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        MonitorConfig.from_mapping({"kafka": {"partitioner": "consistent_random"}})
    assert caught.value.key == "kafka.partitioner"
    assert "murmur2_random" in caught.value.problem
    config = MonitorConfig.from_mapping({"kafka": {"partitioner": "murmur2_random"}})
    assert config.kafka == {"partitioner": "murmur2_random"}


@pytest.mark.parametrize("command", ["run", "retrain-worker"])
def test_the_monitor_and_the_retrain_worker_refuse_another_partitioner_at_start(
    tmp_path: Path, command: str
) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text("kafka:\n  partitioner: consistent_random\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", command],
        env={"DRIFTRADAR_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "kafka.partitioner: must be 'murmur2_random'" in done.stderr


def test_the_sdk_and_a_faust_app_with_another_partitioner_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^partitioner: "):
        MonitorClient("127.0.0.1:1", config={"partitioner": "random"})

    def round_robin(key: bytes | None, every: list[int], available: list[int]) -> int:
        return every[0]

    app = faust.App(
        "test-partitioner", broker="kafka://127.0.0.1:1", producer_partitioner=round_robin
    )
    with pytest.raises(ValueError, match=r"^producer_partitioner: "):
        FaustMonitorClient(app)
