"""The Faust app: score each request, answer it, report the prediction; report outcomes later.

Topics (each name prefixed by ``$MODEL_SERVER_TOPIC_PREFIX``, empty by default):

- ``scoring-requests`` (in): ``{"request_id": "r-1", "customer": {"tenure_months": 14, ...}}``
- ``scoring-responses`` (out): ``{"request_id": "r-1", "churn_probability": 0.31,
  "model_version": "v1"}``
- ``customer-outcomes`` (in, days later): ``{"request_id": "r-1", "churned": true}``
- ``predictions`` and ``ground-truth`` (out, to driftradar), through
  :class:`~producers.faust_client.FaustMonitorClient` and the app's own producer.

The request id is the prediction's ``event_id``, so an outcome names the prediction it
settles and the monitor joins the two. Environment: ``KAFKA_BOOTSTRAP_SERVERS`` (default
``localhost:9092``) and Faust's own variables (``BROKER_SESSION_TIMEOUT``,
``APP_DATADIR``, ...), which override the settings below.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Final

import faust

from examples.faust_model_server.model import MODEL_ID, MODEL_VERSION, churn_probability
from producers.delivery import DeliveryError, DeliveryFailure
from producers.faust_client import FaustMonitorClient
from producers.reporting import InvalidEventError
from streams.core.kafka import faust_group_settings
from streams.core.settings import TOPICS

__all__ = ["Outcome", "ScoringRequest", "ScoringResponse", "app", "monitor"]

log = logging.getLogger("churn-model-server")

PREFIX: Final = os.environ.get("MODEL_SERVER_TOPIC_PREFIX", "")
BOOTSTRAP: Final = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
REQUESTS_TOPIC: Final = PREFIX + "scoring-requests"
RESPONSES_TOPIC: Final = PREFIX + "scoring-responses"
OUTCOMES_TOPIC: Final = PREFIX + "customer-outcomes"

app = faust.App(
    f"{PREFIX}churn-model-server",
    broker=[f"kafka://{server}" for server in BOOTSTRAP.split(",")],
    datadir=f".driftradar/{PREFIX}churn-model-server-data",
    web_enabled=False,
    producer_linger=0.005,  # batch for 5 ms, as the sync SDK does: ~2x the report rate
    # A group join waits ~session timeout / 2 on the local broker: 6 s here, not Faust's 60.
    **faust_group_settings(),
)


class ScoringRequest(faust.Record, serializer="json"):
    request_id: str
    customer: dict[str, Any]


class ScoringResponse(faust.Record, serializer="json", include_metadata=False):
    request_id: str
    churn_probability: float
    model_version: str


class Outcome(faust.Record, serializer="json"):
    request_id: str
    churned: bool


requests_topic = app.topic(REQUESTS_TOPIC, value_type=ScoringRequest)
responses_topic = app.topic(RESPONSES_TOPIC, value_type=ScoringResponse)
outcomes_topic = app.topic(OUTCOMES_TOPIC, value_type=Outcome)


def _delivery_failed(failure: DeliveryFailure) -> None:
    log.error("a report to driftradar was not delivered: %s", failure)


monitor = FaustMonitorClient(
    app,
    predictions_topic=PREFIX + TOPICS.predictions,
    ground_truth_topic=PREFIX + TOPICS.ground_truth,
    on_delivery_error=_delivery_failed,
)


@app.agent(requests_topic)
async def score(requests: faust.StreamT[ScoringRequest]) -> None:
    """Answer every scoring request, then report the prediction to driftradar."""
    async for request in requests:
        probability = churn_probability(request.customer)
        await responses_topic.send(
            key=request.request_id,
            value=ScoringResponse(request.request_id, probability, MODEL_VERSION),
        )
        try:
            await monitor.log_prediction(
                MODEL_ID,
                request.customer,
                probability,
                model_version=MODEL_VERSION,
                event_id=request.request_id,
            )
        except InvalidEventError as exc:  # the customer answered, the report refused
            log.warning("request %r not reported: %s", request.request_id, exc)


@app.agent(outcomes_topic)
async def settle(outcomes: faust.StreamT[Outcome]) -> None:
    """Report each customer's true outcome for the prediction it settles."""
    async for outcome in outcomes:
        try:
            await monitor.log_ground_truth(outcome.request_id, MODEL_ID, outcome.churned)
        except InvalidEventError as exc:
            log.warning("outcome %r not reported: %s", outcome.request_id, exc)


@app.on_before_shutdown.connect
async def _flush_reports(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Wait for the reports still in flight before the producer stops."""
    try:
        await monitor.flush(timeout=10.0)
    except DeliveryError as exc:
        log.error("reports lost at shutdown: %s", exc)
