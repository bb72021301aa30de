"""The request records in a real Redis: claim, lease, attempts, final status, TTL."""

from __future__ import annotations

from typing import Any

import pytest

from producers.retrain.state import ClaimKind, LeaseLostError, RequestStore, Status

pytestmark = pytest.mark.integration
T0 = 1_000.0


@pytest.fixture
def store(redis_client: Any) -> RequestStore:
    return RequestStore(redis_client, prefix="test-retrain", ttl_seconds=3600)


def test_lifecycle_received_running_succeeded(store: RequestStore, redis_client: Any) -> None:
    claim = store.claim("r", "churn", "a", 30, T0)
    assert (claim.kind, claim.status, claim.attempts, claim.lease_until) == (
        ClaimKind.NEW,
        Status.RECEIVED,
        0,
        T0 + 30,
    )
    assert 3500 < redis_client.ttl(store.key("r")) <= 3600
    assert store.begin_attempt("r", "a", 30, T0 + 1) == 1
    state = store.get("r")
    assert state is not None
    assert (state.status, state.attempts, state.lease_until) == (Status.RUNNING, 1, T0 + 31)
    store.finish("r", "a", Status.SUCCEEDED, T0 + 2, result={"pipeline_id": 7})
    state = store.get("r")
    assert state is not None
    assert (state.status, state.result, state.lease_until) == (
        Status.SUCCEEDED,
        {"pipeline_id": 7},
        0.0,
    )
    assert store.claim("r", "churn", "b", 30, T0 + 3).kind is ClaimKind.DONE


def test_a_live_lease_keeps_other_workers_out(store: RequestStore) -> None:
    store.claim("r", "churn", "a", 30, T0)
    busy = store.claim("r", "churn", "b", 30, T0 + 10)
    assert (busy.kind, busy.lease_until) == (ClaimKind.BUSY, T0 + 30)
    with pytest.raises(LeaseLostError, match="lease not held by 'b'"):
        store.begin_attempt("r", "b", 30, T0 + 10)
    # The owner itself may claim again (a redelivery to the same worker).
    assert store.claim("r", "churn", "a", 30, T0 + 10).kind is ClaimKind.RESUME


def test_an_expired_lease_is_taken_over_and_the_old_owner_is_locked_out(
    store: RequestStore,
) -> None:
    store.claim("r", "churn", "a", 30, T0)
    store.begin_attempt("r", "a", 30, T0)
    takeover = store.claim("r", "churn", "b", 30, T0 + 31)
    assert (takeover.kind, takeover.status, takeover.attempts) == (
        ClaimKind.RESUME,
        Status.RUNNING,
        1,
    )
    assert store.begin_attempt("r", "b", 30, T0 + 31) == 2
    with pytest.raises(LeaseLostError):
        store.finish("r", "a", Status.SUCCEEDED, T0 + 32)
    store.finish("r", "b", Status.FAILED, T0 + 33, error="HTTP 503")
    state = store.get("r")
    assert state is not None
    assert (state.status, state.error, state.owner) == (Status.FAILED, "HTTP 503", "b")


def test_release_lets_a_restart_resume_at_once(store: RequestStore) -> None:
    store.claim("r", "churn", "a", 600, T0)
    assert store.release("r", "a")
    assert store.claim("r", "churn", "b", 600, T0 + 1).kind is ClaimKind.RESUME
    assert not store.release("r", "a")  # no longer the owner


def test_finish_needs_a_final_status(store: RequestStore) -> None:
    store.claim("r", "churn", "a", 30, T0)
    with pytest.raises(ValueError, match="final status, not 'running'"):
        store.finish("r", "a", Status.RUNNING, T0)
