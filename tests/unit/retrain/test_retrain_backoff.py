from __future__ import annotations

import random

import pytest

from producers.retrain.backoff import BackoffPolicy


def test_schedule_is_exponential_and_capped() -> None:
    policy = BackoffPolicy(base=0.5, factor=3.0, max_delay=10.0, max_attempts=6, jitter=False)
    assert policy.schedule() == [0.5, 1.5, 4.5, 10.0, 10.0]
    assert [policy.allows(n) for n in (0, 1, 6, 7)] == [False, True, True, False]


def test_one_attempt_means_no_retry() -> None:
    assert BackoffPolicy(max_attempts=1, jitter=False).schedule() == []


def test_huge_retry_numbers_stay_capped() -> None:
    policy = BackoffPolicy(base=1.0, factor=10.0, max_delay=60.0, jitter=False)
    assert policy.delay(10_000) == 60.0


def test_jitter_stays_within_half_to_full_delay() -> None:
    policy = BackoffPolicy(base=1.0, factor=2.0, max_delay=8.0, rng=random.Random(7))
    for retry in range(1, 8):
        full = min(2.0 ** (retry - 1), 8.0)
        delays = {policy.delay(retry) for _ in range(50)}
        assert all(full / 2 <= d <= full for d in delays)
        assert len(delays) > 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base": -1.0}, "backoff base must be >= 0"),
        ({"factor": 0.5}, "backoff factor must be >= 1"),
        ({"max_delay": -2.0}, "backoff max_delay must be >= 0"),
        ({"max_attempts": 0}, "max_attempts must be >= 1"),
        ({"max_attempts": 2.5}, "max_attempts must be an integer"),
    ],
)
def test_bad_policy_names_the_parameter(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BackoffPolicy(**kwargs)  # type: ignore[arg-type]


def test_delay_rejects_retry_zero() -> None:
    with pytest.raises(ValueError, match="retry number must be >= 1"):
        BackoffPolicy().delay(0)
