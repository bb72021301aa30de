"""Webhook, GitLab and Jenkins requests, checked byte for byte by a local HTTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import urllib.parse
from collections.abc import Iterator

import pytest
from retrain_http_recorder import Recorder, Reply, running_recorder

from producers.retrain.actions import (
    GitLabAction,
    JenkinsAction,
    WebhookAction,
    ci_variables,
    sign,
    verify_signature,
)
from producers.retrain.decision import Decision
from producers.retrain.errors import ActionError, ConfigError
from producers.retrain.secrets import Secret
from producers.retrain.transport import USER_AGENT
from streams.core.events import decode_retrain_request, encode

RAW = (
    b'{"request_id": "req-7", "model_id": "churn", "model_version": "v3",'
    b' "requested_at": "2026-11-27T10:05:00Z",'
    b' "reasons": [{"alert_id": "a1", "type": "concept_drift", "signal": "error"},'
    b' {"alert_id": "a2", "type": "data_drift", "signal": "feature:plan"}],'
    b' "window": {"start": "2026-11-27T09:00:00Z", "end": "2026-11-27T10:00:00Z"}}'
)
REQUEST = decode_retrain_request(RAW)
EXPECTED_VARIABLES = {
    "DRIFTRADAR_REQUEST_ID": "req-7",
    "DRIFTRADAR_MODEL_ID": "churn",
    "DRIFTRADAR_MODEL_VERSION": "v3",
    "DRIFTRADAR_WINDOW_START": "2026-11-27T09:00:00Z",
    "DRIFTRADAR_WINDOW_END": "2026-11-27T10:00:00Z",
    "DRIFTRADAR_DETECTED_AT": "",
    "DRIFTRADAR_LABELLED_PAIRS": "",
    "DRIFTRADAR_WINDOW_COMPLETE": "true",
    "DRIFTRADAR_REASONS": "concept_drift,data_drift",
    "DRIFTRADAR_RESULT_ID": "o-req-7",
    "DRIFTRADAR_RESULTS_TOPIC": "retrain-results",
    "DRIFTRADAR_REQUEST": encode(REQUEST).decode(),
}
#: A request of a monitor that located the change and waited for labelled pairs.
RAW_LOCATED = RAW[:-1] + (
    b', "detected_at": "2026-11-27T09:58:30Z", "labelled_pairs": 1500, "complete": false}'
)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    yield from running_recorder()


def test_signature_is_github_style_hmac_sha256_of_the_raw_body() -> None:
    secret = Secret("s3cr3t")
    expected = hmac.new(b"s3cr3t", RAW, hashlib.sha256).hexdigest()
    assert sign(secret, RAW) == f"sha256={expected}"
    assert verify_signature(secret, RAW, sign(secret, RAW))
    assert not verify_signature(Secret("other"), RAW, sign(secret, RAW))
    assert not verify_signature(secret, RAW + b" ", sign(secret, RAW))


def test_webhook_posts_the_original_bytes_signed(recorder: Recorder) -> None:
    action = WebhookAction(url=recorder.url + "/hooks/retrain", secret=Secret("s3cr3t"))
    decision = action.run(REQUEST, RAW, attempt=2)
    assert decision == Decision.handed_over(
        "accepted by the webhook (HTTP 200)", {"http_status": 200, "action": "webhook"}
    )
    [seen] = recorder.requests
    assert seen.method == "POST"
    assert seen.path == "/hooks/retrain"
    assert seen.body == RAW
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["content-length"] == str(len(RAW))
    assert seen.headers["user-agent"] == USER_AGENT
    assert seen.headers["x-driftradar-event"] == "retrain_request"
    assert seen.headers["x-driftradar-request-id"] == "req-7"
    assert seen.headers["x-driftradar-attempt"] == "2"
    assert seen.headers["x-driftradar-result-id"] == "o-req-7"
    assert seen.headers["x-driftradar-results-topic"] == "retrain-results"
    digest = hmac.new(b"s3cr3t", seen.body, hashlib.sha256).hexdigest()
    assert seen.headers["x-driftradar-signature"] == "sha256=" + digest


def test_webhook_body_carries_the_window_detection_and_counts(recorder: Recorder) -> None:
    action = WebhookAction(url=recorder.url, secret=Secret("s"), results_topic="results-eu")
    action.run(decode_retrain_request(RAW_LOCATED), RAW_LOCATED, attempt=1)
    [seen] = recorder.requests
    body = json.loads(seen.body)
    assert body["window"] == {"start": "2026-11-27T09:00:00Z", "end": "2026-11-27T10:00:00Z"}
    assert (body["detected_at"], body["labelled_pairs"], body["complete"]) == (
        "2026-11-27T09:58:30Z",
        1500,
        False,
    )
    assert seen.headers["x-driftradar-results-topic"] == "results-eu"


def test_ci_variables_carry_the_window_detection_and_counts() -> None:
    variables = ci_variables(decode_retrain_request(RAW_LOCATED), "retrain-results")
    assert variables["DRIFTRADAR_DETECTED_AT"] == "2026-11-27T09:58:30Z"
    assert variables["DRIFTRADAR_LABELLED_PAIRS"] == "1500"
    assert variables["DRIFTRADAR_WINDOW_COMPLETE"] == "false"
    assert variables["DRIFTRADAR_WINDOW_START"] == "2026-11-27T09:00:00Z"


def test_a_webhook_that_answers_the_outcome_decides_it(recorder: Recorder) -> None:
    action = WebhookAction(url=recorder.url, secret=Secret("s"))
    evaluation = {"candidate": {"auc": 0.7}, "current": {"auc": 0.5}, "holdout_rows": 400}
    recorder.replies += [
        Reply(
            200,
            body=json.dumps(
                {"outcome": "deployed", "deployed_version": "v4", "evaluation": evaluation}
            ).encode(),
        ),
        Reply(200, body=b'{"outcome": "declined", "reason": "AUC 0.61 < 0.64"}'),
    ]
    deployed = action.run(REQUEST, RAW, attempt=1)
    assert (deployed.outcome, deployed.deployed_version) == ("deployed", "v4")
    assert deployed.evaluation == evaluation
    declined = action.run(REQUEST, RAW, attempt=1)
    assert (declined.outcome, declined.reason) == ("declined", "AUC 0.61 < 0.64")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"outcome": "deployed"}', "without a deployed_version"),
        (b'{"outcome": "failed", "reason": "OOM"}', "reported failure: OOM"),
        (b'{"outcome": "accepted"}', "unknown outcome 'accepted'"),
    ],
)
def test_a_webhook_outcome_that_is_not_a_decision_fails_the_request(
    recorder: Recorder, body: bytes, message: str
) -> None:
    recorder.replies.append(Reply(200, body=body))
    action = WebhookAction(url=recorder.url, secret=Secret("s"))
    with pytest.raises(ActionError, match=message) as caught:
        action.run(REQUEST, RAW, attempt=1)
    assert not caught.value.retryable


def test_gitlab_trigger_shape_matches_the_documented_api(recorder: Recorder) -> None:
    recorder.replies.append(
        Reply(
            201,
            {"Content-Type": "application/json"},
            b'{"id": 4711, "web_url": "https://g/p/4711"}',
        )
    )
    action = GitLabAction(
        gitlab_url=recorder.url + "/",
        project_id="mlops/churn model",
        ref="main",
        token=Secret("glptt-abc123"),
    )
    decision = action.run(REQUEST, RAW, attempt=1)
    assert decision.outcome == "handed_over"  # the pipeline runs, and reports, later
    assert decision.reason == "GitLab pipeline 4711 created (HTTP 201)"
    assert decision.details == {
        "action": "gitlab",
        "http_status": 201,
        "pipeline_id": 4711,
        "web_url": "https://g/p/4711",
    }
    [seen] = recorder.requests
    assert seen.method == "POST"
    # :id is the URL-encoded project path (GitLab "namespaced path encoding").
    assert seen.path == "/api/v4/projects/mlops%2Fchurn%20model/trigger/pipeline"
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    form = urllib.parse.parse_qsl(seen.body.decode(), keep_blank_values=True, strict_parsing=True)
    assert form == [("token", "glptt-abc123"), ("ref", "main")] + [
        (f"variables[{key}]", value) for key, value in EXPECTED_VARIABLES.items()
    ]
    assert "authorization" not in seen.headers  # the trigger token authenticates
    assert json.loads(dict(form)["variables[DRIFTRADAR_REQUEST]"])["request_id"] == "req-7"


def test_jenkins_build_with_parameters_shape(recorder: Recorder) -> None:
    recorder.replies.append(Reply(201, {"Location": recorder.url + "/queue/item/42/"}))
    action = JenkinsAction(
        jenkins_url=recorder.url,
        job="ml/retrain churn",
        token=Secret("job&token"),
        user="bot",
        api_token=Secret("11aa22bb"),
    )
    decision = action.run(REQUEST, RAW, attempt=1)
    assert decision.outcome == "handed_over"
    assert decision.details == {
        "action": "jenkins",
        "http_status": 201,
        "queue_item": recorder.url + "/queue/item/42/",
    }
    [seen] = recorder.requests
    assert seen.method == "POST"
    assert seen.path == "/job/ml/job/retrain%20churn/buildWithParameters?token=job%26token"
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    assert seen.headers["authorization"] == "Basic " + base64.b64encode(b"bot:11aa22bb").decode()
    form = urllib.parse.parse_qsl(seen.body.decode(), keep_blank_values=True, strict_parsing=True)
    assert form == list(EXPECTED_VARIABLES.items())
    assert form == list(ci_variables(REQUEST, "retrain-results").items())


def test_jenkins_fetches_a_crumb_when_asked(recorder: Recorder) -> None:
    recorder.replies += [
        Reply(
            200,
            {"Content-Type": "application/json", "Set-Cookie": "JSESSIONID=abc; Path=/"},
            b'{"crumbRequestField": "Jenkins-Crumb", "crumb": "c0ffee"}',
        ),
        Reply(201, {"Location": "/queue/item/1/"}),
    ]
    action = JenkinsAction(jenkins_url=recorder.url, job="retrain", token=Secret("t"), crumb=True)
    action.run(REQUEST, RAW, attempt=1)
    crumb, build = recorder.requests
    assert (crumb.method, crumb.path) == ("GET", "/crumbIssuer/api/json")
    assert (build.method, build.path) == ("POST", "/job/retrain/buildWithParameters?token=t")
    assert build.headers["jenkins-crumb"] == "c0ffee"
    assert build.headers["cookie"] == "JSESSIONID=abc"  # the crumb belongs to this session
    assert "authorization" not in build.headers


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (401, False), (404, False)]
)
def test_http_errors_are_classified(recorder: Recorder, status: int, retryable: bool) -> None:
    recorder.replies.append(Reply(status, body=b"nope"))
    action = WebhookAction(url=recorder.url, secret=Secret("s"))
    with pytest.raises(ActionError, match=f"HTTP {status} \\(nope\\)") as caught:
        action.run(REQUEST, RAW, attempt=1)
    assert caught.value.retryable is retryable
    assert caught.value.status == status


def test_redirects_are_refused_so_tokens_are_not_resent(recorder: Recorder) -> None:
    recorder.replies.append(Reply(302, {"Location": "http://elsewhere.invalid/"}))
    action = GitLabAction(gitlab_url=recorder.url, project_id="1", ref="main", token=Secret("t"))
    with pytest.raises(ActionError, match="redirect refused: HTTP 302") as caught:
        action.run(REQUEST, RAW, attempt=1)
    assert not caught.value.retryable
    assert len(recorder.requests) == 1


def test_tokens_never_appear_in_errors(recorder: Recorder) -> None:
    # A server that echoes the request back in its error page must not leak the token.
    recorder.replies.append(Reply(400, body=b"bad form: token=glptt-SECRET-1&ref=main"))
    action = GitLabAction(
        gitlab_url=recorder.url, project_id="1", ref="main", token=Secret("glptt-SECRET-1")
    )
    with pytest.raises(ActionError) as caught:
        action.run(REQUEST, RAW, attempt=1)
    assert "glptt-SECRET-1" not in str(caught.value)
    assert "token=***" in str(caught.value)
    jenkins = JenkinsAction(jenkins_url=recorder.url, job="j", token=Secret("jenkins-SECRET-2"))
    recorder.replies.append(Reply(500))
    with pytest.raises(ActionError) as caught:
        jenkins.run(REQUEST, RAW, attempt=1)
    assert "jenkins-SECRET-2" not in str(caught.value)
    assert "jenkins-SECRET-2" not in repr(jenkins)


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    action = WebhookAction(url=f"http://127.0.0.1:{port}/hook", secret=Secret("s"))
    with pytest.raises(ActionError, match=f"POST http://127.0.0.1:{port}/hook failed") as caught:
        action.run(REQUEST, RAW, attempt=1)
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: WebhookAction(url="ftp://x/hook", secret=Secret("s")), "--url: must be an http"),
        (
            lambda: WebhookAction(url="https://u:p@x/hook", secret=Secret("s")),
            "--url: must not carry credentials",
        ),
        (
            lambda: GitLabAction(gitlab_url="https://g", project_id="", ref="m", token=Secret("t")),
            "--project-id: is required",
        ),
        (
            lambda: JenkinsAction(jenkins_url="https://j", job="/", token=Secret("t")),
            "--job: is required",
        ),
        (
            lambda: JenkinsAction(jenkins_url="https://j", job="a", token=Secret("t"), user="bot"),
            "DRIFTRADAR_JENKINS_API_TOKEN: goes together with DRIFTRADAR_JENKINS_USER",
        ),
    ],
)
def test_bad_settings_name_the_option(make: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()  # type: ignore[operator]
