"""Retrain actions that call out to another system: a signed webhook, GitLab, Jenkins.

Each action turns one :class:`~streams.core.events.RetrainRequest` into one HTTP request and
returns a :class:`~producers.retrain.decision.Decision`; failures raise :class:`ActionError`
(retryable or not). Tokens come from the environment as :class:`Secret` and are never
logged or put in errors.

What a 2xx answer means: the external pipeline *accepted* the request. GitLab and Jenkins
start it asynchronously (201 with a pipeline id or a queue item), so their decision is
``handed_over``: the pipeline reports the outcome itself, to ``retrain-results`` under the
result id it was given (``DRIFTRADAR_RESULT_ID``). A webhook receiver may instead answer
with the outcome in its JSON body (:func:`webhook_decision`): ``deployed`` (with
``deployed_version``) or ``declined`` (with ``reason``) become the worker's result,
``failed`` fails the request; a body without ``outcome`` is a hand-over too. The worker
never reports ``deployed`` unless the pipeline said so.

The CI variables passed to GitLab and Jenkins (:func:`ci_variables`):

>>> from streams.core.events import decode_retrain_request
>>> req = decode_retrain_request(
...     b'{"request_id": "r1", "model_id": "churn", "model_version": "v3",'
...     b' "requested_at": "2026-11-27T10:05:00Z", "reasons": [],'
...     b' "window": {"start": "2026-11-27T09:00:00Z", "end": "2026-11-27T10:00:00Z"}}')
>>> variables = ci_variables(req, "retrain-results")
>>> sorted(variables)[:4]
['DRIFTRADAR_DETECTED_AT', 'DRIFTRADAR_LABELLED_PAIRS', 'DRIFTRADAR_MODEL_ID', \
'DRIFTRADAR_MODEL_VERSION']
>>> variables["DRIFTRADAR_RESULT_ID"], variables["DRIFTRADAR_WINDOW_COMPLETE"]
('o-r1', 'true')
>>> sign(Secret("It's a Secret to Everybody"), b"Hello, World!")
'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from producers.retrain import transport as http
from producers.retrain.decision import DECLINED, DEPLOYED, FAILED, Decision
from producers.retrain.errors import ActionError, ConfigError
from producers.retrain.secrets import Secret
from streams.core.events import RetrainRequest, encode, result_id
from streams.core.settings import TOPICS

__all__ = [
    "SIGNATURE_HEADER",
    "Action",
    "GitLabAction",
    "JenkinsAction",
    "WebhookAction",
    "ci_variables",
    "sign",
    "verify_signature",
    "webhook_decision",
]

SIGNATURE_HEADER: Final = "X-Driftradar-Signature"
REQUEST_ID_HEADER: Final = "X-Driftradar-Request-Id"
EVENT_HEADER: Final = "X-Driftradar-Event"
ATTEMPT_HEADER: Final = "X-Driftradar-Attempt"
RESULT_ID_HEADER: Final = "X-Driftradar-Result-Id"
RESULTS_TOPIC_HEADER: Final = "X-Driftradar-Results-Topic"
_FORM: Final = "application/x-www-form-urlencoded"


class Action(Protocol):
    """What the worker calls for each attempt; ``name`` labels metrics and logs."""

    @property
    def name(self) -> str: ...

    def run(self, request: RetrainRequest, raw: bytes, attempt: int) -> Decision:
        """Act on ``request`` (``raw``: its original message bytes); return the decision."""
        ...


def sign(secret: Secret, body: bytes) -> str:
    """GitHub-style signature header value: ``sha256=`` + hex HMAC-SHA256 of the raw body."""
    digest = hmac.new(secret.reveal().encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: Secret, body: bytes, header: str) -> bool:
    """What a receiver does: recompute and compare in constant time.

    >>> key = Secret("k")
    >>> good = sign(key, b"{}")
    >>> verify_signature(key, b"{}", good), verify_signature(key, b"{} ", good)
    (True, False)
    """
    return hmac.compare_digest(sign(secret, body), header)


def ci_variables(request: RetrainRequest, results_topic: str) -> dict[str, str]:
    """The request as flat string variables for a CI pipeline (the full JSON included),
    with where and under which id the pipeline reports its outcome.

    ``DRIFTRADAR_DETECTED_AT`` and ``DRIFTRADAR_LABELLED_PAIRS`` are empty when the request
    does not carry them (a monitor older than the field).
    """
    pairs = request.labelled_pairs
    return {
        "DRIFTRADAR_REQUEST_ID": request.request_id,
        "DRIFTRADAR_MODEL_ID": request.model_id,
        "DRIFTRADAR_MODEL_VERSION": request.model_version,
        "DRIFTRADAR_WINDOW_START": request.window.start,
        "DRIFTRADAR_WINDOW_END": request.window.end,
        "DRIFTRADAR_DETECTED_AT": request.detected_at or "",
        "DRIFTRADAR_LABELLED_PAIRS": "" if pairs is None else str(pairs),
        "DRIFTRADAR_WINDOW_COMPLETE": "true" if request.complete else "false",
        "DRIFTRADAR_REASONS": ",".join(sorted({reason.type for reason in request.reasons})),
        "DRIFTRADAR_RESULT_ID": result_id(request.request_id),
        "DRIFTRADAR_RESULTS_TOPIC": results_topic,
        "DRIFTRADAR_REQUEST": encode(request).decode(),
    }


def webhook_decision(status: int, body: bytes) -> Decision:
    """What a webhook's 2xx answer decided (see the module's docstring).

    >>> webhook_decision(200, b'{"outcome": "deployed", "deployed_version": "v4"}').outcome
    'deployed'
    >>> webhook_decision(200, b'{"outcome": "declined", "reason": "AUC 0.61 < 0.64"}').reason
    'AUC 0.61 < 0.64'
    >>> webhook_decision(202, b"").outcome
    'handed_over'
    >>> webhook_decision(200, b'{"outcome": "deployed"}')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    producers.retrain.errors.ActionError: the webhook answered outcome 'deployed' without ...
    """
    answer = _json_or_empty(body)
    outcome = answer.get("outcome")
    details: dict[str, Any] = {"http_status": status}
    evaluation = answer.get("evaluation")
    evaluation = evaluation if isinstance(evaluation, dict) else {}
    reason = answer.get("reason") if isinstance(answer.get("reason"), str) else None
    if outcome is None:
        return Decision.handed_over(f"accepted by the webhook (HTTP {status})", details)
    if outcome == DEPLOYED:
        version = answer.get("deployed_version")
        if not isinstance(version, str) or not version:
            raise ActionError(
                "the webhook answered outcome 'deployed' without a deployed_version",
                retryable=False,
            )
        return Decision.deployed(
            version, reason or "deployed by the webhook's pipeline", evaluation, details
        )
    if outcome == DECLINED:
        return Decision.declined(
            reason or "declined by the webhook's pipeline (no reason given)", evaluation, details
        )
    if outcome == FAILED:
        raise ActionError(
            f"the webhook's pipeline reported failure: {reason or 'no reason given'}",
            retryable=False,
        )
    raise ActionError(
        f"the webhook answered an unknown outcome {outcome!r} "
        "(expected deployed, declined or failed)",
        retryable=False,
    )


def _require_http_url(option: str, url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(option, f"must be an http(s) URL, got {http.redact_url(url)!r}")
    if parts.username or parts.password:
        raise ConfigError(option, "must not carry credentials: use the environment variables")
    return url.rstrip("/")


def _json_or_empty(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body) if body else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class WebhookAction:
    """POST the request's original JSON bytes to ``url``, signed with HMAC-SHA256.

    Headers: ``Content-Type: application/json``, ``X-Driftradar-Event: retrain_request``,
    ``X-Driftradar-Request-Id`` (the receiver's idempotency key: an attempt may be
    repeated after a crash), ``X-Driftradar-Attempt``, ``X-Driftradar-Result-Id`` and
    ``X-Driftradar-Results-Topic`` (where an asynchronous pipeline reports its outcome) and
    ``X-Driftradar-Signature: sha256=<hex HMAC-SHA256 of the raw body keyed by
    DRIFTRADAR_WEBHOOK_SECRET>`` — the scheme GitHub uses for ``X-Hub-Signature-256``. The
    body is the request as published: its window, ``detected_at``, ``labelled_pairs`` and
    ``complete`` included. A 2xx answer is read by :func:`webhook_decision`.
    """

    url: str
    secret: Secret = field(repr=False)
    timeout: float = 30.0
    results_topic: str = TOPICS.retrain_results
    name: str = "webhook"

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", _require_http_url("--url", self.url))

    def run(self, request: RetrainRequest, raw: bytes, attempt: int) -> Decision:
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: "retrain_request",
            REQUEST_ID_HEADER: request.request_id,
            ATTEMPT_HEADER: str(attempt),
            RESULT_ID_HEADER: result_id(request.request_id),
            RESULTS_TOPIC_HEADER: self.results_topic,
            SIGNATURE_HEADER: sign(self.secret, raw),
        }
        response = http.post(self.url, raw, headers, timeout=self.timeout, secrets=[self.secret])
        decision = webhook_decision(response.status, response.body)
        decision.details["action"] = self.name
        return decision


@dataclass(frozen=True)
class GitLabAction:
    """GitLab's pipeline trigger API: ``POST /api/v4/projects/:id/trigger/pipeline``.

    As documented in GitLab's "Trigger pipelines by using the API" (``curl --request POST
    --form token=TOKEN --form ref=main --form "variables[KEY]=value"
    https://gitlab.example.com/api/v4/projects/<id>/trigger/pipeline``): form fields
    ``token`` (the pipeline trigger token, from DRIFTRADAR_GITLAB_TRIGGER_TOKEN), ``ref``
    (branch or tag) and one ``variables[KEY]`` per :func:`ci_variables` entry, sent URL-
    encoded. ``:id`` is the numeric id or the URL-encoded ``group/project`` path. GitLab
    answers ``201 Created`` with the pipeline (``id``, ``web_url``).
    """

    gitlab_url: str
    project_id: str
    ref: str
    token: Secret = field(repr=False)
    timeout: float = 30.0
    results_topic: str = TOPICS.retrain_results
    name: str = "gitlab"

    def __post_init__(self) -> None:
        object.__setattr__(self, "gitlab_url", _require_http_url("--gitlab-url", self.gitlab_url))
        if not self.project_id:
            raise ConfigError("--project-id", "is required for the gitlab action")
        if not self.ref:
            raise ConfigError("--ref", "is required for the gitlab action")

    @property
    def url(self) -> str:
        project = urllib.parse.quote(self.project_id, safe="")
        return f"{self.gitlab_url}/api/v4/projects/{project}/trigger/pipeline"

    def form(self, request: RetrainRequest) -> list[tuple[str, str]]:
        fields = [("token", self.token.reveal()), ("ref", self.ref)]
        variables = ci_variables(request, self.results_topic)
        fields += [(f"variables[{key}]", value) for key, value in variables.items()]
        return fields

    def run(self, request: RetrainRequest, raw: bytes, attempt: int) -> Decision:
        body = urllib.parse.urlencode(self.form(request)).encode()
        headers = {"Content-Type": _FORM, "Accept": "application/json"}
        response = http.post(self.url, body, headers, timeout=self.timeout, secrets=[self.token])
        pipeline = _json_or_empty(response.body)
        details = {
            "action": self.name,
            "http_status": response.status,
            "pipeline_id": pipeline.get("id"),
            "web_url": pipeline.get("web_url"),
        }
        return Decision.handed_over(
            f"GitLab pipeline {pipeline.get('id', '?')} created (HTTP {response.status})", details
        )


@dataclass(frozen=True)
class JenkinsAction:
    """Jenkins' remote build trigger: ``POST /job/NAME/buildWithParameters?token=TOKEN``.

    As documented in Jenkins' "Remote Access API" (jobs with parameters: ``curl
    JENKINS_URL/job/JOB_NAME/buildWithParameters --user USER:TOKEN --data id=123``) and the
    job's "Trigger builds remotely" option (the job's authentication token in the
    ``token`` query parameter, from DRIFTRADAR_JENKINS_TOKEN). Parameters are URL-encoded
    form fields, one per :func:`ci_variables` entry (the job must declare them). A job in
    folders is named ``folder/job`` and becomes ``/job/folder/job/job``. Optional HTTP basic
    auth with a user's API token (DRIFTRADAR_JENKINS_USER + DRIFTRADAR_JENKINS_API_TOKEN);
    with ``crumb=True`` a CSRF crumb is fetched first from ``/crumbIssuer/api/json`` and sent
    as its ``crumbRequestField`` header (same session cookie). Jenkins answers ``201
    Created`` with the queue item in ``Location``.
    """

    jenkins_url: str
    job: str
    token: Secret = field(repr=False)
    user: str | None = None
    api_token: Secret | None = field(default=None, repr=False)
    crumb: bool = False
    timeout: float = 30.0
    results_topic: str = TOPICS.retrain_results
    name: str = "jenkins"

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "jenkins_url", _require_http_url("--jenkins-url", self.jenkins_url)
        )
        if not self.job.strip("/"):
            raise ConfigError("--job", "is required for the jenkins action")
        if (self.user is None) != (self.api_token is None):
            raise ConfigError(
                "DRIFTRADAR_JENKINS_API_TOKEN",
                "goes together with DRIFTRADAR_JENKINS_USER: set both or neither",
            )

    @property
    def job_path(self) -> str:
        parts = [urllib.parse.quote(part, safe="") for part in self.job.strip("/").split("/")]
        return "".join(f"/job/{part}" for part in parts)

    @property
    def url(self) -> str:
        token = urllib.parse.quote(self.token.reveal(), safe="")
        return f"{self.jenkins_url}{self.job_path}/buildWithParameters?token={token}"

    def _auth_headers(self) -> dict[str, str]:
        if self.user is None or self.api_token is None:
            return {}
        pair = f"{self.user}:{self.api_token.reveal()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}

    def _secrets(self) -> list[Secret]:
        return [s for s in (self.token, self.api_token) if s is not None]

    def run(self, request: RetrainRequest, raw: bytes, attempt: int) -> Decision:
        opener = http.cookie_opener()
        headers = {"Content-Type": _FORM, **self._auth_headers()}
        if self.crumb:
            headers.update(self._fetch_crumb(opener))
        variables = ci_variables(request, self.results_topic)
        body = urllib.parse.urlencode(list(variables.items())).encode()
        response = http.post(
            self.url, body, headers, timeout=self.timeout, opener=opener, secrets=self._secrets()
        )
        queue_item = response.headers.get("location")
        details = {"action": self.name, "http_status": response.status, "queue_item": queue_item}
        return Decision.handed_over(
            f"Jenkins build queued at {queue_item or '?'} (HTTP {response.status})", details
        )

    def _fetch_crumb(self, opener: Any) -> Mapping[str, str]:
        response = http.request(
            "GET",
            f"{self.jenkins_url}/crumbIssuer/api/json",
            headers=self._auth_headers(),
            timeout=self.timeout,
            opener=opener,
            secrets=self._secrets(),
        )
        crumb = _json_or_empty(response.body)
        if not isinstance(crumb.get("crumbRequestField"), str) or not isinstance(
            crumb.get("crumb"), str
        ):
            raise ActionError(
                "Jenkins crumbIssuer answered without crumbRequestField/crumb", retryable=False
            )
        return {crumb["crumbRequestField"]: crumb["crumb"]}
