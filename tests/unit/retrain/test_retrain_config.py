"""Settings: command line over the config file, secrets only from the environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from producers.retrain.build import build_action
from producers.retrain.config import resolve_options
from producers.retrain.errors import ConfigError
from producers.retrain.secrets import MissingSecretError
from producers.retrain.worker import WorkerSettings
from streams.cli import main
from streams.engine.config import load_config


def test_command_line_wins_over_the_file() -> None:
    section = {"action": "webhook", "url": "https://a.example/hook", "max_attempts": 3}
    options = resolve_options({"url": "https://b.example/hook", "max_attempts": None}, section)
    assert (options.url, options.max_attempts) == ("https://b.example/hook", 3)


@pytest.mark.parametrize(
    ("cli", "section", "message"),
    [
        ({}, {}, "--action: is required"),
        ({"action": "svn"}, {}, "--action: must be one of webhook, gitlab, jenkins, local"),
        ({"action": "gitlab", "gitlab_url": "https://g"}, {}, "--project-id: is required"),
        ({"action": "jenkins"}, {"jenkins_url": "https://j"}, "--job: is required for the jenkins"),
        (
            {"action": "local"},
            {"max_attempts": "3"},
            "retrain_worker.max_attempts: must be an integer",
        ),
        ({"action": "local", "holdout": -1.0}, {}, "--holdout: must be a number >= 0"),
        ({"action": "local"}, {"token": "x"}, "retrain_worker.token: unknown key"),
    ],
)
def test_bad_settings_name_the_key(
    cli: dict[str, object], section: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_options(cli, section)


def test_the_config_file_gives_topics_kafka_and_section(tmp_path: Path) -> None:
    path = tmp_path / "driftradar.yaml"
    path.write_text(
        "kafka: {security.protocol: SASL_SSL}\n"
        "topics: {retrain_requests: rr, alerts: al}\n"
        "retrain_worker: {action: local, min_rows: 10}\n"
    )
    config = load_config(path)  # what `driftradar retrain-worker` reads
    assert config.kafka == {"security.protocol": "SASL_SSL"}
    assert config.topics.retrain_requests == "rr"
    assert config.topics.alerts == "al"
    assert config.topics.dead_letter == "dead-letter"
    assert resolve_options({}, config.retrain_worker).min_rows == 10


def test_config_file_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("topics: {nope: x}\n")
    with pytest.raises(ConfigError, match=r"topics\.nope"):
        load_config(path)
    path.write_text("retrain_worker: [1]\n")
    with pytest.raises(ConfigError, match="retrain_worker: must be a mapping"):
        resolve_options({}, load_config(path).retrain_worker)


def test_secrets_come_only_from_the_environment() -> None:
    options = resolve_options(
        {"action": "jenkins", "jenkins_url": "https://ci.example", "job": "retrain"}, {}
    )
    with pytest.raises(MissingSecretError, match="DRIFTRADAR_JENKINS_TOKEN: is not set"):
        build_action(options, {})
    action = build_action(
        options,
        {
            "DRIFTRADAR_JENKINS_TOKEN": "jt-1",
            "DRIFTRADAR_JENKINS_USER": "bot",
            "DRIFTRADAR_JENKINS_API_TOKEN": "api-2",
        },
    )
    assert "jt-1" not in repr(action)
    assert "api-2" not in repr(action)


def test_cli_missing_secret_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DRIFTRADAR_GITLAB_TRIGGER_TOKEN", raising=False)
    monkeypatch.delenv("DRIFTRADAR_CONFIG", raising=False)
    code = main(
        [
            "retrain-worker",
            "--action",
            "gitlab",
            "--gitlab-url",
            "https://gitlab.example.com",
            "--project-id",
            "7",
            "--ref",
            "main",
        ]
    )
    assert code == 2
    assert "DRIFTRADAR_GITLAB_TRIGGER_TOKEN: is not set" in capsys.readouterr().err


def test_worker_settings_derive_from_the_config_file_and_options(tmp_path: Path) -> None:
    path = tmp_path / "driftradar.yaml"
    path.write_text(
        "kafka: {security.protocol: SASL_SSL}\n"
        "topics: {retrain_requests: rr, alerts: al}\n"
        "retrain_worker: {action: local, lease_seconds: 120, group_id: workers}\n"
    )
    config = load_config(path)
    options = resolve_options({"group_id": "cli-group"}, config.retrain_worker)
    settings = WorkerSettings.derive("broker:9092", options, config.topics, config.kafka)
    assert settings.topics == config.topics
    assert (settings.topics.retrain_requests, settings.topics.dead_letter) == ("rr", "dead-letter")
    assert (settings.group_id, settings.lease_seconds) == ("cli-group", 120.0)
    assert settings.kafka_extra == {"security.protocol": "SASL_SSL"}
    assert (
        WorkerSettings("b").lease_seconds == resolve_options({"action": "local"}, {}).lease_seconds
    )


def test_the_worker_never_imports_the_engine_or_the_runner() -> None:
    code = (
        "import sys, producers.retrain.worker, producers.retrain.build\n"
        "layers = ('streams.engine', 'streams.runner')\n"
        "print(sorted(m for m in sys.modules if m.startswith(layers)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
