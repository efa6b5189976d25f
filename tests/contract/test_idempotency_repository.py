"""IdempotencyRepository contract, on SQLite and on DynamoDB (moto)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from mediaindex.domain.errors import ConflictError
from mediaindex.domain.models import IdempotencyRecord, utcnow
from mediaindex.ports.idempotency import Pending
from mediaindex.ports.stores import MetadataStores
from tests.contract.metadata_factories import T1, T2, record


def test_idempotency_record_round_trip_and_second_put_conflicts(stores: MetadataStores) -> None:
    rec = record("k1")
    stores.idempotency.put(rec)

    assert stores.idempotency.get(T1, "k1") == rec
    assert stores.idempotency.get(T2, "k1") is None  # keys are per tenant
    with pytest.raises(ConflictError):
        stores.idempotency.put(record("k1"))


def test_same_key_in_another_tenant_is_its_own_record(stores: MetadataStores) -> None:
    stores.idempotency.put(record("k1"))

    theirs = record("k1", tenant=T2)
    stores.idempotency.put(theirs)

    assert stores.idempotency.get(T2, "k1") == theirs
    got = stores.idempotency.get(T1, "k1")
    assert got is not None and got.tenant_id == T1


def test_expired_idempotency_record_reads_as_none_and_can_be_replaced(stores: MetadataStores) -> None:
    stores.idempotency.put(record("k2", expires_in=timedelta(seconds=-5)))

    assert stores.idempotency.get(T1, "k2") is None

    fresh = record("k2")
    stores.idempotency.put(fresh)
    assert stores.idempotency.get(T1, "k2") == fresh


# ---- reservations: reserve -> complete | release -------------------------------------------------


def pending(
    key: str, token: str, *, lease_s: float = 30.0, tenant: str = T1, request_hash: str = "h1"
) -> Pending:
    return Pending(
        tenant_id=tenant,
        key=key,
        request_hash=request_hash,
        token=token,
        lease_until=utcnow() + timedelta(seconds=lease_s),
    )


def test_a_key_is_reserved_once_and_reads_as_pending_not_as_a_record(stores: MetadataStores) -> None:
    assert stores.idempotency.reserve(pending("k1", "a")) is True
    assert stores.idempotency.reserve(pending("k1", "b")) is False  # the twin loses

    held = stores.idempotency.lookup(T1, "k1")
    assert isinstance(held, Pending) and held.token == "a" and held.request_hash == "h1"
    assert stores.idempotency.get(T1, "k1") is None  # nothing to replay yet
    with pytest.raises(ConflictError):
        stores.idempotency.put(record("k1"))
    assert stores.idempotency.reserve(pending("k1", "c", tenant=T2)) is True  # per tenant


def test_complete_replaces_only_its_own_reservation(stores: MetadataStores) -> None:
    stores.idempotency.reserve(pending("k1", "a"))

    assert stores.idempotency.complete(record("k1"), "someone-else") is False
    assert isinstance(stores.idempotency.lookup(T1, "k1"), Pending)

    assert stores.idempotency.complete(record("k1"), "a") is True
    got = stores.idempotency.get(T1, "k1")
    assert got is not None and got.status_code == 201 and got.body == {"id": "ast_x"}
    assert stores.idempotency.lookup(T1, "k1") == got
    assert stores.idempotency.reserve(pending("k1", "b")) is False  # a record holds it for its TTL
    assert stores.idempotency.complete(record("k1"), "a") is False  # completing twice: not a reservation


def test_release_frees_the_key_only_for_its_holder(stores: MetadataStores) -> None:
    stores.idempotency.reserve(pending("k1", "a"))

    stores.idempotency.release(T1, "k1", "not-mine")
    assert isinstance(stores.idempotency.lookup(T1, "k1"), Pending)

    stores.idempotency.release(T1, "k1", "a")
    assert stores.idempotency.lookup(T1, "k1") is None
    assert stores.idempotency.reserve(pending("k1", "b")) is True

    stores.idempotency.complete(record("k1"), "b")
    stores.idempotency.release(T1, "k1", "b")  # a completed record is never released
    assert stores.idempotency.get(T1, "k1") is not None


def test_a_lapsed_reservation_reads_as_absent_and_can_be_taken(stores: MetadataStores) -> None:
    stores.idempotency.reserve(pending("k1", "dead", lease_s=-5))  # its holder died long ago

    assert stores.idempotency.lookup(T1, "k1") is None
    assert stores.idempotency.reserve(pending("k1", "new")) is True
    assert stores.idempotency.complete(record("k1"), "dead") is False  # the late holder lost it
    assert stores.idempotency.complete(record("k1"), "new") is True


def test_an_expired_record_can_be_reserved_again(stores: MetadataStores) -> None:
    stores.idempotency.put(record("k2", expires_in=timedelta(seconds=-5)))

    assert stores.idempotency.reserve(pending("k2", "a")) is True


def test_a_record_written_by_the_previous_release_still_replays(stores: MetadataStores) -> None:
    # `put` is how the previous release stored records (no reservation ever existed).
    stores.idempotency.put(record("old"))

    assert stores.idempotency.reserve(pending("old", "a")) is False
    held = stores.idempotency.lookup(T1, "old")
    assert isinstance(held, IdempotencyRecord) and held.body == {"id": "ast_x"}


@pytest.mark.parametrize("round_", range(5))
def test_exactly_one_of_sixteen_racing_reservations_wins(stores: MetadataStores, round_: int) -> None:
    start = threading.Barrier(16)

    def attempt(i: int) -> bool:
        start.wait()
        return stores.idempotency.reserve(pending(f"race-{round_}", f"t{i}"))

    with ThreadPoolExecutor(16) as pool:
        won = list(pool.map(attempt, range(16)))

    assert won.count(True) == 1, won
    held = stores.idempotency.lookup(T1, f"race-{round_}")
    assert isinstance(held, Pending) and held.token == f"t{won.index(True)}"
