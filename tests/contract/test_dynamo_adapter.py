"""What only the DynamoDB adapter can show: lost races (injected between a read and its
conditional write), cursors bound to their partition, how few calls the tenant checks cost, and
that items written by the previous release read the same."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mediaindex.adapters.aws.dynamo.table import MAX_ATTEMPTS
from mediaindex.domain.errors import ConflictError, ValidationError
from mediaindex.domain.models import Asset, AssetStatus, Task, TaskState
from mediaindex.ports.stores import MetadataStores
from tests.contract.conftest import METADATA_TABLE
from tests.contract.metadata_factories import (
    T1,
    T2,
    deriv,
    make_asset,
    make_index,
    segment,
    start_task,
)
from tests.contract.release_sample import (
    assert_reads_release_sample,
    assert_writes_over_release_sample,
    write_release_sample,
)

OLD_RELEASE_ITEMS = Path(__file__).parents[1] / "fixtures" / "metadata" / "dynamo_old_release.json"


def test_dynamo_mutate_asset_retries_a_lost_race_and_keeps_both_updates(
    dynamo_stores: MetadataStores,
) -> None:
    stores = dynamo_stores
    asset = make_asset(stores, make_index(stores))
    calls = 0

    def tag(a: Asset) -> Asset:
        nonlocal calls
        calls += 1
        if calls == 1:  # another writer gets in between our read and our write, once
            stores.assets.mutate(
                T1,
                asset.id,
                lambda b: b.model_copy(update={"user_metadata": {**b.user_metadata, "other": 1}}),
            )
        return a.model_copy(update={"user_metadata": {**a.user_metadata, "mine": 1}})

    out = stores.assets.mutate(T1, asset.id, tag)

    assert calls == 2
    assert out.user_metadata == {"other": 1, "mine": 1}
    assert out.version == asset.version + 2
    assert stores.assets.get(T1, asset.id) == out


def test_dynamo_mutate_gives_up_with_a_conflict_when_always_losing(dynamo_stores: MetadataStores) -> None:
    stores = dynamo_stores
    asset = make_asset(stores, make_index(stores))
    calls = 0

    def always_interfered(a: Asset) -> Asset:
        nonlocal calls
        calls += 1
        stores.assets.mutate(T1, asset.id, lambda b: b.model_copy(update={"name": f"n{calls}.mp4"}))
        return a.model_copy(update={"name": "mine.mp4"})

    with pytest.raises(ConflictError) as err:
        stores.assets.mutate(T1, asset.id, always_interfered)

    assert err.value.code == "version_conflict"
    assert calls == MAX_ATTEMPTS
    got = stores.assets.get(T1, asset.id)
    assert got is not None and got.name == f"n{MAX_ATTEMPTS}.mp4"


def test_dynamo_mutate_task_and_asset_retries_when_the_asset_moved(dynamo_stores: MetadataStores) -> None:
    stores = dynamo_stores
    task, asset = start_task(stores, make_asset(stores, make_index(stores)))
    calls = 0

    def finish(t: Task, a: Asset) -> tuple[Task, Asset]:
        nonlocal calls
        calls += 1
        if calls == 1:
            stores.assets.mutate(T1, a.id, lambda b: b.model_copy(update={"name": "renamed.mp4"}))
        return t.model_copy(update={"state": TaskState.COMPLETED}), a.model_copy(
            update={"status": AssetStatus.READY}
        )

    new_task, new_asset = stores.tasks.mutate_with_asset(T1, task.id, finish)

    assert calls == 2
    assert new_task.state == TaskState.COMPLETED and new_task.version == task.version + 1
    assert new_asset.name == "renamed.mp4" and new_asset.status == AssetStatus.READY
    assert stores.assets.get(T1, asset.id) == new_asset


def test_dynamo_cursor_only_continues_its_own_listing(dynamo_stores: MetadataStores) -> None:
    # Given a cursor from tenant one's asset listing
    stores = dynamo_stores
    index = make_index(stores)
    for _ in range(3):
        make_asset(stores, index)
    cursor = stores.assets.list(T1, limit=1, cursor=None).next_cursor
    assert cursor is not None

    # When tenant two (or another listing) presents it, Then it is refused, never followed
    with pytest.raises(ValidationError) as err:
        stores.assets.list(T2, limit=1, cursor=cursor)
    assert err.value.code == "cursor_invalid"
    with pytest.raises(ValidationError):
        stores.assets.list(T1, index_id=index.id, limit=1, cursor=cursor)


# What the tenant checks cost --------------------------------------------------------------------------
@contextmanager
def counting_calls(client: Any) -> Iterator[Counter[str]]:
    """Counts the DynamoDB operations the client makes inside the block."""
    seen: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        seen[model.name] += 1

    client.meta.events.register("before-call.dynamodb", count)
    try:
        yield seen
    finally:
        client.meta.events.unregister("before-call.dynamodb", count)


def test_dynamo_outputs_check_the_tenant_without_extra_calls(
    dynamo_stores: MetadataStores, metadata_dynamodb_client: Any
) -> None:
    stores = dynamo_stores
    asset = make_asset(stores, make_index(stores))
    stores.outputs.replace_segments(T1, asset.id, [segment(asset)])

    # Derivatives: the asset item comes back with them, in one Query
    with counting_calls(metadata_dynamodb_client) as calls:
        stores.outputs.list_derivatives(T1, asset.id)
        stores.outputs.list_derivatives(T2, asset.id)
    assert calls == Counter(Query=2)
    # Replacing them also keeps the usage counters exact: the old and new sizes go into the
    # counters in one transaction, checked against a re-read of the partition (concurrent replaces).
    with counting_calls(metadata_dynamodb_client) as calls:
        stores.outputs.replace_derivatives(T1, asset.id, ["proxy"], [deriv(asset, "proxy")])
    assert calls == Counter(Query=2, GetItem=1, TransactWriteItems=1, BatchWriteItem=1)

    # Segments: one GetItem of the asset, then the page
    with counting_calls(metadata_dynamodb_client) as calls:
        stores.outputs.list_segments(T1, asset.id, limit=5, cursor=None)
    assert calls == Counter(GetItem=1, Query=1)
    with counting_calls(metadata_dynamodb_client) as calls:
        stores.outputs.list_segments(T2, asset.id, limit=5, cursor=None)
    assert calls == Counter(GetItem=1)


# The previous release's items ------------------------------------------------------------------------
def _old_release_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(OLD_RELEASE_ITEMS.read_text(encoding="utf-8"))["items"]
    return items


def _scan(client: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.scan(TableName=table, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def test_items_written_by_the_previous_release_read_the_same(
    dynamo_stores: MetadataStores, metadata_dynamodb_client: Any
) -> None:
    for item in _old_release_items():
        metadata_dynamodb_client.put_item(TableName=METADATA_TABLE, Item=item)

    assert_reads_release_sample(dynamo_stores)
    assert_writes_over_release_sample(dynamo_stores)


def test_todays_writes_store_the_previous_release_format(
    dynamo_stores: MetadataStores, metadata_dynamodb_client: Any
) -> None:
    write_release_sample(dynamo_stores)

    # What this release only adds, and the previous one never reads: the usage counter items and
    # the asset's flag saying it is counted in them (adapters/aws/dynamo/usage.py).
    today = [
        {k: v for k, v in item.items() if k != "in_usage"}
        for item in _scan(metadata_dynamodb_client, METADATA_TABLE)
        if not item["sk"]["S"].startswith("USAGE")
    ]
    assert today == sorted(_old_release_items(), key=lambda i: (i["pk"]["S"], i["sk"]["S"]))
