"""Unit tests of the runner's pure parts: topic layout, offset book, lag, status merge."""

from __future__ import annotations

import json

import pytest
import redis

from streams.checkpoint import StoredStatus
from streams.commands.status import status_document
from streams.core.errors import ConfigError
from streams.core.redact import redact_properties
from streams.core.redact import redact_url as redact
from streams.core.redis_client import group_id, open_redis, redis_retry
from streams.core.settings import RedisConfig
from streams.runner.errors import TopicLayoutError, UnreachableError
from streams.runner.lag import lag_from_stats
from streams.runner.layout import check_layout
from streams.runner.offsets import OffsetBook
from streams.runner.status import merge_models

INPUTS = ("predictions", "ground-truth")


def test_layout_returns_the_shared_partition_count() -> None:
    counts = {"predictions": 6, "ground-truth": 6, "drift-alerts": 1}
    assert check_layout(counts, INPUTS, ["drift-alerts"]) == 6


def test_layout_names_both_counts_when_not_co_partitioned() -> None:
    with pytest.raises(TopicLayoutError) as info:
        check_layout({"predictions": 6, "ground-truth": 4}, INPUTS, [])
    message = str(info.value)
    assert "'predictions' has 6 partitions" in message
    assert "'ground-truth' has 4" in message
    assert "co-partitioned" in message


def test_layout_names_every_missing_topic() -> None:
    with pytest.raises(TopicLayoutError, match="'ground-truth', 'dead-letter'"):
        check_layout({"predictions": 4, "ground-truth": None}, INPUTS, ["dead-letter"])


def test_offset_book_skips_what_was_applied_and_partitions_not_owned() -> None:
    book = OffsetBook(INPUTS)
    book.own(1, {"predictions": 5, "ground-truth": 2})
    assert not book.accepts("predictions", 1, 4)
    assert book.accepts("predictions", 1, 5)
    assert book.accepts("ground-truth", 1, 2)
    assert not book.accepts("predictions", 0, 100)
    book.advance("ground-truth", 1, 7)  # offsets may have gaps
    assert book.offsets(1) == {"predictions": 5, "ground-truth": 8}
    assert book.dirty == {1}
    book.mark_clean({1})
    assert book.dirty == frozenset()
    book.release(1)
    assert book.owned == frozenset()
    assert not book.accepts("predictions", 1, 5)


def test_offset_book_starts_from_the_beginning_without_stored_offsets() -> None:
    book = OffsetBook(INPUTS)
    book.own(0, {})
    assert book.accepts("predictions", 0, 0)
    assert book.offsets(0) == {}
    assert book.next_offset("predictions", 0) is None


def test_lag_uses_the_high_watermark_minus_the_next_offset() -> None:
    stats = {
        "topics": {
            "predictions": {"partitions": {"0": {"hi_offset": 50}, "1": {"hi_offset": 9}}},
            "ground-truth": {"partitions": {"0": {"hi_offset": -1, "consumer_lag": 3}}},
        }
    }
    lags = lag_from_stats(
        json.dumps(stats),
        {("predictions", 0): 40, ("predictions", 1): None, ("ground-truth", 0): 1},
    )
    assert lags == {("predictions", 0): 10, ("predictions", 1): 9, ("ground-truth", 0): 3}


def test_status_merges_models_and_keeps_partition_offsets() -> None:
    detector = {"updates": 2, "drift": False}
    stored = [
        StoredStatus(0, {"predictions": 3}, {"b": {"predictions": 3, "signals": {}}}, 1.0),
        StoredStatus(
            1,
            {"predictions": 2},
            {"a": {"predictions": 2, "signals": {"prediction": {"adwin": detector}}}},
            2.0,
        ),
    ]
    document = status_document(stored)
    assert list(document["models"]) == ["a", "b"]
    assert document["models"]["a"]["signals"]["prediction"]["adwin"] == detector
    assert document["partitions"]["1"]["offsets"] == {"predictions": 2}


def test_merge_adds_counts_of_a_model_seen_on_two_partitions() -> None:
    merged = merge_models([{"m": {"joined": 1, "x": {"drift": True}}}, {"m": {"joined": 4}}])
    assert merged == {"m": {"joined": 5, "x": {"drift": True}}}


def test_group_id_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTRADAR_GROUP_ID", raising=False)
    assert group_id(None, None) == "driftradar"
    assert group_id(None, "from-config") == "from-config"
    monkeypatch.setenv("DRIFTRADAR_GROUP_ID", "from-env")
    assert group_id(None, "from-config") == "from-env"
    assert group_id("explicit", "from-config") == "explicit"


def test_redact_hides_passwords_only() -> None:
    assert redact("redis://user:pw@host:1/0") == "redis://user:***@host:1/0"
    assert "pw" not in redact("rediss://:pw@host")


@pytest.mark.parametrize("password", ["p/ss", "p#ss", "p@ss", "p:ss", "p%ss", "a/b#c@d:e%f"])
def test_no_password_character_leaks_from_a_redis_url(password: str) -> None:
    url = f"redis://monitor:{password}@db.example:6379/0"
    shown = redact(url)
    assert shown == "redis://monitor:***@db.example:6379/0"
    for piece in ("p/ss", "p#ss", "p@ss", "ss", "a/b", "c@d", "e%f"):
        if piece in password:
            assert piece not in shown


@pytest.mark.parametrize("password", ["p/ss", "p#ss", "a/b#c"])
def test_an_unusable_redis_url_is_refused_without_showing_its_password(password: str) -> None:
    url = f"redis://:{password}@127.0.0.1:1/0"
    with pytest.raises(ConfigError) as info:
        open_redis(url)
    message = str(info.value)
    assert "percent-encode" in message
    assert password not in message
    assert "***" in message


def test_a_redis_error_never_quotes_a_piece_of_the_password() -> None:
    url = "redis://:hunter2pass@127.0.0.1:1/0"  # nothing listens on port 1
    with pytest.raises(UnreachableError) as info:
        open_redis(url, RedisConfig(retries=0, connect_timeout_seconds=0.5))
    assert "hunter2pass" not in str(info.value)
    assert "127.0.0.1:1" in str(info.value)


def test_kafka_secrets_are_redacted() -> None:
    shown = redact_properties(
        {
            "security.protocol": "SASL_SSL",
            "sasl.username": "monitor",
            "sasl.password": "p/ss#w@rd",
            "ssl.key.password": "k",
            "sasl.oauthbearer.client.secret": "s",
            "sasl.jaas.config": "org.apache... password=x",
        }
    )
    assert shown["sasl.username"] == "monitor"
    assert {shown[k] for k in shown if k not in ("security.protocol", "sasl.username")} == {"***"}


def test_layout_holds_retrain_results_to_the_inputs_partitioning() -> None:
    consumed = (*INPUTS, "retrain-results")
    counts = {"predictions": 6, "ground-truth": 6, "retrain-results": 6, "drift-alerts": 1}
    assert check_layout(counts, consumed, ["drift-alerts"]) == 6
    with pytest.raises(TopicLayoutError, match="'retrain-results' has 1"):
        check_layout({**counts, "retrain-results": 1}, consumed, [])
    with pytest.raises(TopicLayoutError, match="'retrain-results'"):
        check_layout({**counts, "retrain-results": None}, consumed, [])


def test_status_shows_what_a_pending_retrain_waits_for_and_the_last_decision() -> None:
    from rich.console import Console

    from streams.commands.status import _retrain_table

    waiting = {
        "labelled_pairs": 412,
        "min_labelled": 1000,
        "change_at": "2026-01-01T00:00:00.000Z",
        "deadline": "2026-01-01T06:00:00.000Z",
    }
    decision = {
        "outcome": "declined",
        "reason": "not better than the current model by the margin",
        "decided_at": "2026-01-01T07:00:00.000Z",
        "deployed_version": None,
    }
    models = {
        "churn": {"retrain": {"state": "retrain_pending", "waiting": waiting, "requested": 0}},
        "fraud": {"retrain": {"state": "declined", "requested": 2, "last_decision": decision}},
    }
    console = Console(width=400, record=True)
    console.print(_retrain_table(models))
    text = console.export_text()
    assert "412/1000 labelled pairs since 2026-01-01T00:00:00.000Z" in text
    assert "declined: not better than the current model by the margin" in text


@pytest.mark.parametrize(("timeouts", "calls"), [(True, 3), (False, 1)])
def test_a_client_with_a_long_timeout_does_not_retry_a_timeout(timeouts: bool, calls: int) -> None:
    """The bulk client waits ``checkpoint_timeout_seconds`` (60 s): retrying a timeout would
    hide a stalled Redis for (retries + 1) times that. A dropped connection is retried."""
    settings = RedisConfig(retries=2, backoff_base_seconds=0.001, backoff_cap_seconds=0.001)
    retry = redis_retry(settings, timeouts=timeouts)
    made: list[int] = []

    def call(error: Exception) -> None:
        made.append(1)
        raise error

    with pytest.raises(redis.TimeoutError):
        retry.call_with_retry(lambda: call(redis.TimeoutError("no answer")), lambda _: None)
    assert len(made) == calls
    made.clear()
    with pytest.raises(redis.ConnectionError):
        retry.call_with_retry(lambda: call(redis.ConnectionError("reset")), lambda _: None)
    assert len(made) == 3
