"""`driftradar simulate` argument handling (no broker needed: it fails before connecting)."""

from __future__ import annotations

import pytest

from streams.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--label-coverage", "1.5"], "--label-coverage must be a number between 0 and 1"),
        (["--events", "0"], "--events must be an integer >= 1, or 0 (unbounded) with a rate > 0"),
        (
            ["--events", "0", "--rate", "5", "--scenario", "outage"],
            "--change-at must be given when events is 0 (unbounded), for scenario 'outage'",
        ),
        (["--duration", "0"], "--duration must be a number of seconds > 0, got 0.0"),
        (["--duration", "inf"], "--duration must be a number of seconds > 0"),
        (["--follow-deployments", "--deployments-topic", "a b"], "topic name 'a b' is not valid"),
        (["--events", "10", "--change-at", "11"], "--change-at must be an integer between 0"),
        (["--rate", "-1"], "--rate must be a finite number >= 0"),
        (["--label-delay", "-2"], "--label-delay must be"),
        (["--model-id", ""], "--model-id must be 1..256 characters"),
        (["--partitions", "0"], "--partitions must be a positive integer"),
        (["--predictions-topic", "bad name"], "topic name 'bad name' is not valid"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    assert main(["simulate", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scenario", "meteor"], "invalid choice: 'meteor'"),
        (["--events", "many"], "argument --events: invalid int value"),
        (["--start-time", "2026-01-01T00:00:00"], "needs an offset"),
        (["--start-time", "tomorrow"], "not RFC 3339 or epoch seconds"),
        (["--deployments-from", "middle"], "invalid choice: 'middle'"),
    ],
)
def test_malformed_arguments_are_refused_by_the_parser(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["simulate", *argv])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_no_broker_configured_is_explained(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert main(["simulate", "--events", "5"]) == 2
    assert "KAFKA_BOOTSTRAP_SERVERS: no Kafka broker configured" in capsys.readouterr().err
