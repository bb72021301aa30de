"""The retrain worker: consume retrain requests and act on each once per request_id.

Modules: :mod:`~producers.retrain.worker` (the consumer loop), :mod:`~.state` (request
status, leases and the stored decision in Redis), :mod:`~.backoff` (retry policy),
:mod:`~.actions` (webhook, GitLab, Jenkins), :mod:`~.local` (the built-in trainer),
:mod:`~.evaluation` (champion vs challenger), :mod:`~.decision` (what an action decided, the
``retrain-results`` event and its log line), :mod:`~.metrics`.
"""

from producers.retrain.backoff import BackoffPolicy
from producers.retrain.errors import ActionError, ConfigError, RetrainError
from producers.retrain.state import RequestStore, Status

__all__ = [
    "ActionError",
    "BackoffPolicy",
    "ConfigError",
    "RequestStore",
    "RetrainError",
    "Status",
]
