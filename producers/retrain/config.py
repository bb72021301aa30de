"""The retrain worker's settings: command line over the config file over defaults.

The config file is the project's one YAML (``--config`` or ``$DRIFTRADAR_CONFIG``). The
worker reads its ``kafka:`` and ``topics:`` sections like the monitor does, and its own
``retrain_worker:`` section, whose keys are the long options without dashes::

    retrain_worker:
      action: gitlab
      gitlab_url: https://gitlab.example.com
      project_id: mlops/churn
      ref: main
      max_attempts: 5

Secrets are never read from the file or the command line: only from the environment
(:data:`SECRET_ENV`). Unknown keys and bad values fail with a message naming the key.

>>> opts = resolve_options({}, {"action": "webhook", "url": "https://hooks.example/retrain"})
>>> opts.action, opts.max_attempts, opts.group_id
('webhook', 5, 'driftradar-retrain-worker')
>>> resolve_options({}, {"action": "webhook", "retries": 3})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
producers.retrain.errors.ConfigError: retrain_worker.retries: unknown key (known: action, ...)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

import yaml

from producers.retrain.errors import ConfigError
from streams.kafka_config import TopicNames

__all__ = [
    "ACTIONS",
    "SECRET_ENV",
    "SECTION",
    "FileConfig",
    "WorkerOptions",
    "load_file_config",
    "resolve_options",
]

ACTIONS: Final = ("webhook", "gitlab", "jenkins", "local")
SECTION: Final = "retrain_worker"

#: Environment variables holding secrets, per action.
SECRET_ENV: Final = {
    "webhook": ("DRIFTRADAR_WEBHOOK_SECRET",),
    "gitlab": ("DRIFTRADAR_GITLAB_TRIGGER_TOKEN",),
    "jenkins": (
        "DRIFTRADAR_JENKINS_TOKEN",
        "DRIFTRADAR_JENKINS_USER",
        "DRIFTRADAR_JENKINS_API_TOKEN",
    ),
    "local": (),
}


@dataclass(frozen=True)
class WorkerOptions:
    """Every non-secret setting, resolved and validated."""

    action: str
    url: str | None = None
    gitlab_url: str | None = None
    project_id: str | None = None
    ref: str | None = None
    jenkins_url: str | None = None
    job: str | None = None
    jenkins_crumb: bool = False
    group_id: str = "driftradar-retrain-worker"
    max_attempts: int = 5
    backoff_base: float = 2.0
    backoff_factor: float = 2.0
    backoff_max_delay: float = 300.0
    lease_seconds: float = 900.0
    timeout: float = 30.0
    metrics_port: int | None = None
    deployments_topic: str = TopicNames.DEPLOYMENTS
    holdout: float = 0.25
    min_rows: int = 100
    min_improvement: float = 0.0
    max_rows: int = 500_000


_KEYS: Final = {f.name: f for f in fields(WorkerOptions)}
_INTS: Final = {"max_attempts", "min_rows", "metrics_port", "max_rows"}
_FLOATS: Final = {
    "backoff_base",
    "backoff_factor",
    "backoff_max_delay",
    "lease_seconds",
    "timeout",
    "holdout",
    "min_improvement",
}
_REQUIRED: Final = {
    "webhook": ("url",),
    "gitlab": ("gitlab_url", "project_id", "ref"),
    "jenkins": ("jenkins_url", "job"),
    "local": (),
}


def _check(name: str, value: Any, where: str) -> Any:
    key = f"--{name.replace('_', '-')}" if where == "--" else f"{where}{name}"
    if name in _INTS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: must be an integer, got {value!r}")
        if value < (0 if name == "metrics_port" else 1) or (
            name == "metrics_port" and value > 65535
        ):
            raise ConfigError(f"{key}: out of range: {value}")
    elif name in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: must be a number, got {value!r}")
        value = float(value)
        if value < 0:
            raise ConfigError(f"{key}: must be >= 0, got {value}")
    elif name == "jenkins_crumb":
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false, got {value!r}")
    elif not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: must be a non-empty string, got {value!r}")
    return value


def resolve_options(cli: Mapping[str, Any], section: Mapping[str, Any]) -> WorkerOptions:
    """Merge command-line values (``None`` = not given) over the file's section."""
    for name in section:
        if name not in _KEYS:
            known = ", ".join(sorted(_KEYS))
            raise ConfigError(f"{SECTION}.{name}: unknown key (known: {known})")
    values: dict[str, Any] = {}
    for name in _KEYS:
        if cli.get(name) is not None:
            values[name] = _check(name, cli[name], "--")
        elif name in section and section[name] is not None:
            values[name] = _check(name, section[name], f"{SECTION}.")
    action = values.get("action")
    if action is None:
        raise ConfigError(
            f"--action is required (or {SECTION}.action): one of {', '.join(ACTIONS)}"
        )
    if action not in ACTIONS:
        raise ConfigError(f"--action: {action!r} is not one of {', '.join(ACTIONS)}")
    for name in _REQUIRED[action]:
        if name not in values:
            option = "--" + name.replace("_", "-")
            raise ConfigError(f"{option} is required for the {action} action (or {SECTION}.{name})")
    return WorkerOptions(**values)


@dataclass(frozen=True)
class FileConfig:
    """What the worker takes from the YAML file."""

    kafka: Mapping[str, Any]
    topics: Mapping[str, str]
    section: Mapping[str, Any]


def load_file_config(path: str | os.PathLike[str] | None) -> FileConfig:
    """Read ``path`` (else ``$DRIFTRADAR_CONFIG``; none: empty), validating with the monitor's
    rules for ``kafka:``/``topics:`` and ours for ``retrain_worker:``."""
    from streams.engine.config import ConfigError as MonitorConfigError
    from streams.engine.config import MonitorConfig

    if path is None:
        path = os.environ.get("DRIFTRADAR_CONFIG") or None
    if path is None:
        return FileConfig({}, _topics(MonitorConfig()), {})
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"DRIFTRADAR_CONFIG: cannot read {str(path)!r}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"DRIFTRADAR_CONFIG: {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"DRIFTRADAR_CONFIG: {str(path)!r} must hold a mapping")
    section = document.pop(SECTION, None) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{SECTION}: must be a mapping")
    try:
        monitor = MonitorConfig.from_mapping(document)
    except MonitorConfigError as exc:
        raise ConfigError(str(exc)) from None
    return FileConfig(dict(monitor.kafka), _topics(monitor), section)


def _topics(monitor: Any) -> dict[str, str]:
    topics = monitor.topics
    return {
        "predictions": topics.predictions,
        "ground_truth": topics.ground_truth,
        "alerts": topics.alerts,
        "retrain_requests": topics.retrain_requests,
        "dead_letter": topics.dead_letter,
    }
