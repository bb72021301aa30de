"""One error root, and the command line's exit codes and one-line messages for it
(docs/running.md "Exit codes": 2 for a bad configuration or argument, 1 for a service that
cannot be used; no traceback for an expected failure)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
import redis
from confluent_kafka import KafkaError, KafkaException

import producers
import streams
from producers.delivery import DeliveryError
from producers.retrain.errors import ActionError
from producers.retrain.secrets import MissingSecretError
from streams.checkpoint import CorruptCheckpointError, OffsetRegressionError
from streams.cli import failure, main
from streams.core.errors import (
    CheckpointError,
    ConfigError,
    DriftradarError,
    EventDecodeError,
    PublishError,
    TopicLayoutError,
    UnreachableError,
    UsageError,
)
from streams.core.topics import TopicError
from streams.demo.plan import PlanError
from streams.stack import MissingBinaryError


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("checkpoint.every_events", "must be an integer >= 1"), 2),
        (MissingSecretError("DRIFTRADAR_WEBHOOK_SECRET", "is not set"), 2),
        (UsageError("--max must be >= 1"), 2),
        (PlanError("--duration must be >= 60"), 2),
        (UnreachableError("cannot reach Redis at redis://127.0.0.1:1/0"), 1),
        (TopicLayoutError("input topics are not co-partitioned"), 1),
        (TopicError("could not create topic 'x'"), 1),
        (CheckpointError("checkpoint of p:0 is corrupt"), 1),
        (OffsetRegressionError("k", "predictions", 5, 3), 1),
        (CorruptCheckpointError("bad"), 1),
        (PublishError("delivery to topic 'drift-alerts' failed"), 1),
        (DeliveryError([], 1, 0), 1),
        (MissingBinaryError("tansu not found"), 1),
        (ActionError("HTTP 503"), 1),
        (EventDecodeError("$.features", "required field is missing"), 1),
        (KafkaException(KafkaError(KafkaError._ALL_BROKERS_DOWN)), 1),
        (redis.ConnectionError("Connection refused"), 1),
    ],
)
def test_expected_failures_map_to_an_exit_code_and_one_line(
    error: BaseException, code: int
) -> None:
    failed = failure(error)
    assert failed is not None
    assert failed[0] == code
    assert "\n" not in failed[1]
    if isinstance(error, ConfigError):
        assert failed[1] == f"bad configuration: {error}"


def test_anything_else_is_a_bug_and_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    assert failure(KeyError("x")) is None
    assert failure(ValueError("x")) is None

    def broken(args: object) -> int:
        raise KeyError("a bug")

    monkeypatch.setattr("streams.commands.status.run", broken)
    with pytest.raises(KeyError, match="a bug"):
        main(["status"])


def test_compatible_bases_are_kept() -> None:
    """What callers caught before one root existed still catches the same errors."""
    assert issubclass(ConfigError, ValueError)
    assert issubclass(EventDecodeError, ValueError)
    assert issubclass(PlanError, ValueError)
    assert issubclass(DeliveryError, RuntimeError)  # the SDK's documented error
    assert issubclass(TopicError, TopicLayoutError)
    assert issubclass(OffsetRegressionError, CheckpointError)


def _own_exceptions() -> list[type[BaseException]]:
    found = []
    root = Path(__file__).resolve().parents[2]
    for package in (streams, producers):
        # the package's own folder: a tests/ folder of the same name is not part of it
        where = [str(root / package.__name__)]
        for module in pkgutil.walk_packages(where, package.__name__ + "."):
            imported = importlib.import_module(module.name)
            for _, value in inspect.getmembers(imported, inspect.isclass):
                if issubclass(value, Exception) and value.__module__ == module.name:
                    found.append(value)
    return found


def test_every_exception_of_ours_has_the_one_root() -> None:
    own = _own_exceptions()
    assert len(own) >= 20
    assert [cls.__qualname__ for cls in own if not issubclass(cls, DriftradarError)] == []


# -- through `driftradar ...` -------------------------------------------------------------


@pytest.fixture
def no_services(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "DRIFTRADAR_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--checkpoint-events", "0"], "argument --checkpoint-events: must be an integer >= 1"),
        (["--checkpoint-events", "-5"], "argument --checkpoint-events: must be an integer >= 1"),
        (["--checkpoint-seconds", "0"], "argument --checkpoint-seconds: must be a number > 0"),
        (["--batch-size", "0"], "argument --batch-size: must be an integer >= 1"),
    ],
)
def test_run_refuses_zero_cadences_instead_of_falling_back(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], no_services: None
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["run", *argv])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_run_cli_cadence_replaces_the_configs(tmp_path: Path) -> None:
    import argparse

    from streams.commands.run import add_arguments, settings_from
    from streams.engine import load_config

    path = tmp_path / "c.yaml"
    path.write_text("checkpoint: {every_events: 500, every_seconds: 9}\ntopics: {alerts: al}\n")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "REDIS_URL": "redis://127.0.0.1:1"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        config = load_config(path)
        given = settings_from(config, parser.parse_args(["--checkpoint-events", "7"]))
        default = settings_from(config, parser.parse_args([]))
    assert (given.checkpoint.every_events, given.checkpoint.every_seconds) == (7, 9.0)
    assert (default.checkpoint.every_events, default.checkpoint.every_seconds) == (500, 9.0)
    assert default.topics == config.topics
    assert default.topics.alerts == "al"


def test_bad_configuration_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_services: None
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("checkpoint: {every_events: 0}\n")
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "driftradar run: error: bad configuration: checkpoint.every_events: "
        "must be an integer >= 1\n"
    )


def test_errors_hide_secret_variables_but_not_paths(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_services: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # CI checks out under /check/...: PWD's pieces once turned "checkpoint" into "***point".
    monkeypatch.setenv("PWD", "/check/work/main")
    monkeypatch.setenv("OLDPWD", "/check/work")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/check/agent.1")
    monkeypatch.setenv("DRIFTRADAR_WEBHOOK_SECRET", "every_events")
    path = tmp_path / "bad.yaml"
    path.write_text("checkpoint: {every_events: 0}\n")
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "driftradar run: error: bad configuration: checkpoint.***: must be an integer >= 1\n"
    )


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["run"], 2, "KAFKA_BOOTSTRAP_SERVERS: no Kafka broker configured"),
        (["alerts"], 2, "KAFKA_BOOTSTRAP_SERVERS: no Kafka broker configured"),
        (["status"], 2, "REDIS_URL: no Redis configured"),
        (["status", "--redis-url", "redis://127.0.0.1:1/0"], 1, "cannot reach Redis at"),
    ],
)
def test_missing_and_unreachable_services(
    argv: list[str],
    code: int,
    message: str,
    capsys: pytest.CaptureFixture[str],
    no_services: None,
) -> None:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert err.count("\n") == 1


def test_an_error_message_never_shows_a_secret_of_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever a library quotes in its error, the CLI's one line scrubs the password of
    REDIS_URL (even one holding an unencoded '/') and token variables."""
    monkeypatch.setenv("REDIS_URL", "redis://:hunter/2pw@127.0.0.1:1/0")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    assert main(["status"]) in (1, 2)
    err = capsys.readouterr().err
    assert "hunter" not in err
    assert "2pw" not in err
