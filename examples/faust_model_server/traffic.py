"""Traffic for the example model server: scoring requests, then the customers' outcomes.

``python -m examples.faust_model_server.traffic --requests 4000 --shift-at 2000`` sends
4000 scoring requests (from request 2000 on, monthly charges are ``--shift`` higher: a data
drift), waits until the model server has answered every one of them, then sends each
customer's outcome, as a CRM would once it knows who churned (drawn from the model's own
probability: the world did not change, only the inputs). Prints one summary line.

Topics are created when missing, with ``--partitions`` partitions; names take the same
``$MODEL_SERVER_TOPIC_PREFIX`` as the app. Exit code 1 if a request is not answered in
``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
from confluent_kafka import Consumer, Producer, TopicPartition

from examples.faust_model_server.app import OUTCOMES_TOPIC, REQUESTS_TOPIC, RESPONSES_TOPIC
from examples.faust_model_server.model import churn_probability
from streams.core.kafka import bootstrap_servers, consumer_config, producer_config
from streams.core.topics import ensure_topics

__all__ = ["customers", "main"]

_CONTRACTS = ("month-to-month", "one-year", "two-year")


def customers(count: int, *, shift_at: int, shift: float, seed: int) -> list[dict[str, Any]]:
    """``count`` customers; from ``shift_at`` on, monthly charges are ``shift`` higher.

    >>> rows = customers(1000, shift_at=500, shift=30.0, seed=1)
    >>> sorted(rows[0])
    ['contract', 'monthly_charges', 'support_calls', 'tenure_months']
    >>> before = np.mean([r["monthly_charges"] for r in rows[:500]])
    >>> after = np.mean([r["monthly_charges"] for r in rows[500:]])
    >>> bool(25 < after - before < 35)
    True
    """
    rng = np.random.default_rng(seed)
    tenure = np.minimum(rng.gamma(1.6, 18.0, count), 72).round()
    charges = np.clip(rng.normal(65.0, 15.0, count), 18.0, 120.0)
    charges[shift_at:] += shift
    calls = rng.poisson(1.5, count)
    contracts = rng.choice(len(_CONTRACTS), count, p=[0.5, 0.3, 0.2])
    return [
        {
            "tenure_months": int(tenure[i]),
            "monthly_charges": round(float(charges[i]), 2),
            "support_calls": int(calls[i]),
            "contract": _CONTRACTS[contracts[i]],
        }
        for i in range(count)
    ]


def _await_answers(bootstrap: str, wanted: set[str], timeout: float) -> int:
    """Read ``scoring-responses`` (every partition, no group) until all ``wanted`` ids."""
    consumer = Consumer(consumer_config(bootstrap, f"traffic-{uuid.uuid4().hex}"))
    metadata = consumer.list_topics(RESPONSES_TOPIC, timeout=10).topics[RESPONSES_TOPIC]
    consumer.assign([TopicPartition(RESPONSES_TOPIC, p, 0) for p in metadata.partitions])
    missing = set(wanted)
    deadline = time.monotonic() + timeout
    try:
        while missing and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.2):
                if message.error() is None:
                    answer = msgspec.json.decode(message.value() or b"{}")
                    missing.discard(answer.get("request_id"))
    finally:
        consumer.close()
    return len(wanted) - len(missing)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.faust_model_server.traffic")
    parser.add_argument("--requests", type=int, default=4000, help="scoring requests to send")
    parser.add_argument("--shift-at", type=int, default=None, help="first shifted request")
    parser.add_argument("--shift", type=float, default=30.0, help="monthly charges added")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--partitions", type=int, default=1, help="for topics created here (1: requests in order)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="for all answers, in s")
    args = parser.parse_args(argv)
    shift_at = args.requests if args.shift_at is None else args.shift_at
    bootstrap = bootstrap_servers(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    ensure_topics(bootstrap, [REQUESTS_TOPIC, RESPONSES_TOPIC, OUTCOMES_TOPIC], args.partitions)

    run = uuid.uuid4().hex[:8]
    rows = customers(args.requests, shift_at=shift_at, shift=args.shift, seed=args.seed)
    ids = [f"{run}-{i}" for i in range(len(rows))]
    producer = Producer(producer_config(bootstrap))
    for request_id, customer in zip(ids, rows, strict=True):
        body: dict[str, Any] = {"request_id": request_id, "customer": customer}
        producer.produce(REQUESTS_TOPIC, msgspec.json.encode(body), request_id.encode())
        producer.poll(0)
    if producer.flush(30):
        print("traffic: requests not delivered", file=sys.stderr)
        return 1

    answered = _await_answers(bootstrap, set(ids), args.timeout)
    if answered < len(ids):
        print(f"traffic: only {answered} of {len(ids)} requests answered", file=sys.stderr)
        return 1

    rng = np.random.default_rng(args.seed + 1)
    for request_id, customer in zip(ids, rows, strict=True):
        churned = bool(rng.random() < churn_probability(customer))
        body = {"request_id": request_id, "churned": churned}
        producer.produce(OUTCOMES_TOPIC, msgspec.json.encode(body), request_id.encode())
        producer.poll(0)
    if producer.flush(30):
        print("traffic: outcomes not delivered", file=sys.stderr)
        return 1
    print(
        f"traffic: {len(ids)} requests (monthly charges +{args.shift:g} from request "
        f"{shift_at}), {answered} answered, {len(ids)} outcomes sent"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
