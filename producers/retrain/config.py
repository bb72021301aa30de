"""The retrain worker's options: command line over the config file over defaults.

The config file is the project's one YAML (``--config`` or ``$DRIFTRADAR_CONFIG``), read and
validated by ``driftradar retrain-worker`` like the monitor's; the worker takes its
``kafka:`` and ``topics:`` sections, and its own ``retrain_worker:`` section, whose keys
are the long options without dashes::

    retrain_worker:
      action: gitlab
      gitlab_url: https://gitlab.example.com
      project_id: mlops/churn
      ref: main
      max_attempts: 5

Secrets are never read from the file or the command line: only from the environment
(:data:`SECRET_ENV`). Unknown keys and bad values fail with a message naming the option
(``--max-attempts``) or the key (``retrain_worker.max_attempts``), whichever gave it.

>>> opts = resolve_options({}, {"action": "webhook", "url": "https://hooks.example/retrain"})
>>> opts.action, opts.max_attempts, opts.group_id
('webhook', 5, 'driftradar-retrain-worker')
>>> resolve_options({}, {"action": "webhook", "retries": 3})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
streams.core.errors.ConfigError: retrain_worker.retries: unknown key (known: action, ...)
>>> resolve_options({"max_attempts": 0}, {"action": "local"})
Traceback (most recent call last):
...
streams.core.errors.ConfigError: --max-attempts: must be an integer >= 1
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final

from producers.retrain.errors import ConfigError
from producers.retrain.evaluation import DEFAULT_MIN_ROWS
from streams.core.convert import convert, one_of
from streams.core.settings import (
    DEPLOYMENTS_TOPIC,
    Fraction,
    NonNegative,
    Port,
    Positive,
    PositiveInt,
    Settings,
    Text,
)

__all__ = [
    "ACTIONS",
    "DEFAULT_GROUP_ID",
    "DEFAULT_LEASE_SECONDS",
    "SECRET_ENV",
    "SECTION",
    "WorkerOptions",
    "resolve_options",
]

ACTIONS: Final = ("webhook", "gitlab", "jenkins", "local")
SECTION: Final = "retrain_worker"
#: The worker's own consumer group (run several workers in it to share the partitions).
DEFAULT_GROUP_ID: Final = "driftradar-retrain-worker"
#: How long a request may stay "running" before another worker takes it over.
DEFAULT_LEASE_SECONDS: Final = 900.0

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


class WorkerOptions(Settings, frozen=True):
    """Every non-secret setting, resolved and validated."""

    action: Annotated[str, one_of(ACTIONS)]
    url: Text | None = None
    gitlab_url: Text | None = None
    project_id: Text | None = None
    ref: Text | None = None
    jenkins_url: Text | None = None
    job: Text | None = None
    jenkins_crumb: bool = False
    group_id: Text = DEFAULT_GROUP_ID
    max_attempts: PositiveInt = 5
    backoff_base: NonNegative = 2.0
    backoff_factor: NonNegative = 2.0
    backoff_max_delay: NonNegative = 300.0
    lease_seconds: Positive = DEFAULT_LEASE_SECONDS
    timeout: NonNegative = 30.0
    metrics_port: Port | None = None
    deployments_topic: Text = DEPLOYMENTS_TOPIC
    holdout: NonNegative = 0.25
    min_rows: PositiveInt = DEFAULT_MIN_ROWS
    min_improvement: NonNegative = 0.0
    confidence: Fraction = 0.99
    max_rows: PositiveInt = 500_000


_REQUIRED: Final = {
    "webhook": ("url",),
    "gitlab": ("gitlab_url", "project_id", "ref"),
    "jenkins": ("jenkins_url", "job"),
    "local": (),
}


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def resolve_options(cli: Mapping[str, Any], section: Any) -> WorkerOptions:
    """Command-line values (``None`` = not given) over the file's ``retrain_worker:``."""
    file_values = convert(section, dict[str, Any], SECTION)
    given = {
        name: value
        for name, value in cli.items()
        if name in WorkerOptions.__struct_fields__ and value is not None
    }
    values = {k: v for k, v in file_values.items() if v is not None} | given
    if values.get("action") is None:
        raise ConfigError(
            "--action", f"is required (or {SECTION}.action): one of {', '.join(ACTIONS)}"
        )
    try:
        options = convert(values, WorkerOptions)
    except ConfigError as exc:
        name = exc.key.split(".")[0]
        key = _option(name) if name in given else f"{SECTION}.{exc.key}"
        raise ConfigError(key, exc.problem) from None
    for name in _REQUIRED[options.action]:
        if getattr(options, name) is None:
            raise ConfigError(
                _option(name), f"is required for the {options.action} action (or {SECTION}.{name})"
            )
    return options
