"""Creates into one index all touch its `asset_count`: DynamoDB cancels a transaction that collides
with another in flight on that item (TransactionConflict). That is contention, not a missing index:
it must be retried, never answered as 404 `index_not_found`, and the count must stay exact."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mediaindex.adapters.aws import dynamo
from mediaindex.adapters.aws.dynamo.table import TX_CONFLICT_ATTEMPTS
from mediaindex.domain.errors import ConflictError, NotFoundError
from mediaindex.domain.models import Asset
from mediaindex.ports.stores import MetadataStores
from tests.contract.conftest import METADATA_TABLE
from tests.contract.metadata_factories import T1, make_index, new_test_id


class Contended:
    """The real client, except that TransactWriteItems is cancelled for a conflict on its second
    item (the index's counter) `conflicts` times first, as DynamoDB does under contention."""

    def __init__(self, client: Any, conflicts: int) -> None:
        self._client = client
        self.left = conflicts
        self.calls = 0
        self._lock = threading.Lock()
        self._moto = threading.Lock()  # moto's in-process backend is not thread-safe; DynamoDB is

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def serialised(*args: Any, **kw: Any) -> Any:
            with self._moto:
                return method(*args, **kw)

        return serialised

    def transact_write_items(self, **kw: Any) -> Any:
        with self._lock:
            self.calls += 1
            conflict = self.left > 0
            self.left -= conflict
        if conflict:
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                    "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
                },
                "TransactWriteItems",
            )
        with self._moto:
            return self._client.transact_write_items(**kw)


def _asset(index_id: str) -> Asset:
    return Asset(id=new_test_id("ast"), tenant_id=T1, index_id=index_id, name="clip.mp4")


def test_a_create_that_collides_with_another_transaction_is_retried_not_404(
    dynamo_stores: MetadataStores, metadata_dynamodb_client: Any
) -> None:
    index = make_index(dynamo_stores)
    client = Contended(metadata_dynamodb_client, conflicts=3)
    stores = dynamo.open_stores(METADATA_TABLE, client)
    created = stores.assets.create(_asset(index.id))
    assert client.calls == 4  # three conflicts, then the write
    assert stores.assets.get(T1, created.id) is not None
    fresh = stores.indexes.get(T1, index.id)
    assert fresh is not None and fresh.asset_count == 1


def test_endless_contention_is_a_retryable_conflict_and_writes_nothing(
    dynamo_stores: MetadataStores, metadata_dynamodb_client: Any
) -> None:
    index = make_index(dynamo_stores)
    stores = dynamo.open_stores(METADATA_TABLE, Contended(metadata_dynamodb_client, conflicts=10**6))
    asset = _asset(index.id)
    with pytest.raises(ConflictError) as err:
        stores.assets.create(asset)
    assert err.value.code == "write_contention"
    assert stores.assets.get(T1, asset.id) is None
    fresh = stores.indexes.get(T1, index.id)
    assert fresh is not None and fresh.asset_count == 0
    assert TX_CONFLICT_ATTEMPTS > 1


def test_a_missing_index_is_still_404(dynamo_stores: MetadataStores) -> None:
    with pytest.raises(NotFoundError) as err:
        dynamo_stores.assets.create(_asset("idx_gone"))
    assert err.value.code == "index_not_found"


def test_32_concurrent_creates_into_one_index_all_succeed_and_the_count_is_exact(
    dynamo_stores: MetadataStores, metadata_dynamodb_client: Any
) -> None:
    index = make_index(dynamo_stores)
    # Every other transaction meets a conflict first, from 32 threads at once.
    client = Contended(metadata_dynamodb_client, conflicts=16)
    stores = dynamo.open_stores(METADATA_TABLE, client)
    with ThreadPoolExecutor(max_workers=32) as pool:
        created = list(pool.map(lambda _: stores.assets.create(_asset(index.id)), range(32)))
    assert len({a.id for a in created}) == 32
    fresh = stores.indexes.get(T1, index.id)
    assert fresh is not None and fresh.asset_count == 32
