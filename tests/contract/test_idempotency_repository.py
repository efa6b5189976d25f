"""IdempotencyRepository contract, on SQLite and on DynamoDB (moto)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mediaindex.domain.errors import ConflictError
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
