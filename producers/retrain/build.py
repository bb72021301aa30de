"""Build the configured action from options and the environment's secrets.

>>> from producers.retrain.config import resolve_options
>>> opts = resolve_options({"action": "gitlab", "gitlab_url": "https://gitlab.example.com",
...                         "project_id": "mlops/churn", "ref": "main"}, {})
>>> action = build_action(opts, {"DRIFTRADAR_GITLAB_TRIGGER_TOKEN": "glptt-x"})
>>> action.url
'https://gitlab.example.com/api/v4/projects/mlops%2Fchurn/trigger/pipeline'
>>> "glptt-x" in repr(action)
False
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis

from producers.retrain.actions import Action, GitLabAction, JenkinsAction, WebhookAction
from producers.retrain.config import WorkerOptions
from producers.retrain.errors import ConfigError
from producers.retrain.local import LocalTrainerAction
from producers.retrain.secrets import optional_secret_from_env, secret_from_env
from streams.core.settings import TOPICS, TopicsConfig

__all__ = ["build_action"]


def build_action(
    options: WorkerOptions,
    environ: Mapping[str, str],
    *,
    bootstrap: str | None = None,
    redis_client: redis.Redis | None = None,
    kafka_extra: Mapping[str, Any] | None = None,
    topics: TopicsConfig = TOPICS,
    prefix: str = "driftradar:retrain",
) -> Action:
    """The action named by ``options.action``; a missing secret fails here, at start."""
    if options.action == "webhook":
        return WebhookAction(
            url=options.url or "",
            secret=secret_from_env("DRIFTRADAR_WEBHOOK_SECRET", environ),
            timeout=options.timeout,
            results_topic=topics.retrain_results,
        )
    if options.action == "gitlab":
        return GitLabAction(
            gitlab_url=options.gitlab_url or "",
            project_id=options.project_id or "",
            ref=options.ref or "",
            token=secret_from_env("DRIFTRADAR_GITLAB_TRIGGER_TOKEN", environ),
            timeout=options.timeout,
            results_topic=topics.retrain_results,
        )
    if options.action == "jenkins":
        user = environ.get("DRIFTRADAR_JENKINS_USER") or None
        return JenkinsAction(
            jenkins_url=options.jenkins_url or "",
            job=options.job or "",
            token=secret_from_env("DRIFTRADAR_JENKINS_TOKEN", environ),
            user=user,
            api_token=optional_secret_from_env("DRIFTRADAR_JENKINS_API_TOKEN", environ),
            crumb=options.jenkins_crumb,
            timeout=options.timeout,
            results_topic=topics.retrain_results,
        )
    if options.action == "local":
        if bootstrap is None or redis_client is None:
            raise ConfigError("--action", "local needs a Kafka broker and Redis")
        return LocalTrainerAction(
            bootstrap=bootstrap,
            redis_client=redis_client,
            predictions_topic=topics.predictions,
            ground_truth_topic=topics.ground_truth,
            deployments_topic=options.deployments_topic,
            prefix=prefix,
            holdout=options.holdout,
            min_rows=options.min_rows,
            min_improvement=options.min_improvement,
            confidence=options.confidence,
            max_rows=options.max_rows,
            kafka_extra=dict(kafka_extra or {}),
        )
    raise ConfigError("--action", f"unknown action {options.action!r}")
