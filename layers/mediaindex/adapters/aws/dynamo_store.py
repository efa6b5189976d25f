"""MetadataStore on one DynamoDB table (keys in dynamo_schema.py).

Each entity is an item holding its JSON document (`doc`) plus the attributes that keys, conditions
and filters use. Everything an asset owns lives in the asset's partition, so deleting an asset is
one strongly consistent Query plus batched deletes.

Items and their keys (`{...}` are ids; GSI sort keys are the item's id, so newest first = descending):

| Item                       | pk                           | sk                          |
|----------------------------|------------------------------|-----------------------------|
| tenant                     | TENANT#{tenant}              | TENANT                      |
| tenant name guard          | TENANTNAME#{name}            | TENANTNAME                  |
| api key                    | APIKEY#{sha256 of the key}   | APIKEY                      |
| index                      | TENANT#{tenant}              | INDEX#{index}               |
| index name guard           | TENANT#{tenant}              | INDEXNAME#{name}            |
| asset                      | ASSET#{asset}                | ASSET                       |
| task                       | TASK#{task}                  | TASK                        |
| task pointer (for delete)  | ASSET#{asset}                | TASK#{task}                 |
| derivative                 | ASSET#{asset}                | DERIV#{kind}#{index:06d}    |
| segment                    | ASSET#{asset}                | SEG#{start ms:012d}#{seg}   |
| idempotency record (TTL)   | IDEMPOTENCY#{tenant}#{key}   | IDEMPOTENCY                 |

| Item    | gsi1pk (gsi1sk = id)         | gsi2pk (gsi2sk = id)         |
|---------|------------------------------|------------------------------|
| api key | TENANT#{tenant}#APIKEYS      |                              |
| asset   | INDEX#{index}#ASSETS         | TENANT#{tenant}#ASSETS       |
| task    | TENANT#{tenant}#TASKS        | ASSET#{asset}#TASKS          |

| Access pattern                         | How                                                               |
|----------------------------------------|-------------------------------------------------------------------|
| get tenant / index / asset / task      | consistent GetItem on the primary key                             |
| tenant by name                         | GetItem on the name guard, then on the tenant                     |
| api key by hash                        | consistent GetItem (a revoked key is refused at once)             |
| list indexes of a tenant               | Query pk=TENANT#{tenant}, begins_with(sk, INDEX#), descending     |
| list assets by index (+status, +type)  | Query gsi1 INDEX#{index}#ASSETS, filter status / media_type       |
| list assets of a tenant (+filters)     | Query gsi2 TENANT#{tenant}#ASSETS, same filters                   |
| list tasks of a tenant / active tasks  | Query gsi1 TENANT#{tenant}#TASKS, filter state in (queued, proc.) |
| list tasks of an asset                 | Query gsi2 ASSET#{asset}#TASKS                                    |
| derivatives, segments of an asset      | Query pk=ASSET#{asset}, begins_with(sk, DERIV# / SEG#)            |
| delete an asset with what it owns      | Query pk=ASSET#{asset} (consistent), batched deletes              |
| idempotency record                     | GetItem; expiry checked on read; TTL on expires_at_epoch          |
| index name unique per tenant           | guard item Put attribute_not_exists in the index's transaction    |

Idempotency records carry `expires_at_epoch` (the table's TTL attribute, rounded up); DynamoDB
deletes them some time after expiry (moto never), so reads check the expiry themselves.

Invariants are conditional writes: versions (`version = :expected`), uniqueness (a guard item
written in the same TransactWriteItems as its owner), an asset insert/delete and its index's
`asset_count` in one transaction, a new task with its asset's version check. `asset_count` is an
attribute beside the index document, changed by ADD, never by `update_index`, and it does not
bump the index version. `mutate_*` read, apply and write conditionally, retrying a bounded number of
times. Filtered lists keep querying until they hold `limit` items or the partition ends; cursors
are the key of the last item served (base64url JSON of a DynamoDB key) and must belong to the
queried partition.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from mediaindex.adapters.aws import dynamo_schema as ks
from mediaindex.domain.models import (
    ApiKey,
    Asset,
    AssetStatus,
    Derivative,
    IdempotencyRecord,
    Index,
    MediaType,
    Page,
    Segment,
    Task,
    TaskState,
    Tenant,
)
from mediaindex.errors import ConflictError, NotFoundError, ValidationError
from mediaindex.ports.metadata import AssetFn, MetadataStore, TaskAssetFn, next_asset, next_task

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

E = TypeVar("E")
Item = dict[str, Any]

MAX_ATTEMPTS = 8  # optimistic retries for mutate_* before a ConflictError
_CONDITION_FAILED = "ConditionalCheckFailedException"
_TX_CANCELLED = "TransactionCanceledException"
_MAIN_KEYS = (ks.PK, ks.SK)
_GSI1_KEYS = (ks.PK, ks.SK, ks.GSI1_PK, ks.GSI1_SK)


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int | float) -> dict[str, str]:
    return {"N": str(value)}


def _key(pk: str, sk: str) -> Item:
    return {ks.PK: _s(pk), ks.SK: _s(sk)}


def _doc(item: Item) -> str:
    return str(item["doc"]["S"])


def _version(item: Item) -> int:
    return int(item["version"]["N"])


def _error_code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _failed_reasons(e: ClientError) -> list[bool]:
    """Which items of a cancelled transaction failed their condition (or lost a race with another
    transaction: `TransactionConflict`, which a retry resolves the same way)."""
    reasons = e.response.get("CancellationReasons") or []
    return [r.get("Code") in ("ConditionalCheckFailed", "TransactionConflict") for r in reasons]


def _cursor_invalid() -> ValidationError:
    return ValidationError("cursor is not valid", code="cursor_invalid", field="cursor")


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.05, 0.005 * 2**attempt)))  # noqa: S311 - jitter, not security


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class DynamoMetadataStore(MetadataStore):
    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        # Items are built as plain dicts; the typed client's TypedDicts add nothing but casts here.
        self._c: Any = client

    # Low-level helpers -------------------------------------------------------------------------
    def _get(self, pk: str, sk: str) -> Item | None:
        resp = self._c.get_item(TableName=self._table, Key=_key(pk, sk), ConsistentRead=True)
        item: Item | None = resp.get("Item")
        return item

    def _put(self, item: Item, condition: str | None = None, values: Item | None = None) -> None:
        kwargs: dict[str, Any] = {"TableName": self._table, "Item": item}
        if condition:
            kwargs["ConditionExpression"] = condition
        if values:
            kwargs["ExpressionAttributeValues"] = values
        self._c.put_item(**kwargs)

    def _transact(self, items: list[Item]) -> None:
        self._c.transact_write_items(TransactItems=items)

    def _tx_put(self, item: Item, condition: str | None = None, values: Item | None = None) -> Item:
        put: Item = {"TableName": self._table, "Item": item}
        if condition:
            put["ConditionExpression"] = condition
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}

    def _encode_cursor(self, item: Item, attrs: tuple[str, ...]) -> str:
        key = {a: item[a] for a in attrs}
        raw = json.dumps(key, separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _decode_cursor(self, cursor: str, attrs: tuple[str, ...], partition: tuple[str, str]) -> Item:
        try:
            key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        except (binascii.Error, ValueError) as e:
            raise _cursor_invalid() from e
        if not isinstance(key, dict) or set(key) != set(attrs):
            raise _cursor_invalid()
        for value in key.values():
            if not (isinstance(value, dict) and list(value) == ["S"] and isinstance(value["S"], str)):
                raise _cursor_invalid()
        # A cursor only continues the listing it came from: never another tenant's partition.
        attr, expected = partition
        if key[attr]["S"] != expected:
            raise _cursor_invalid()
        return key

    def _query_page(
        self,
        *,
        index: str | None,
        partition: tuple[str, str],
        sk_prefix: str | None = None,
        filters: list[tuple[str, list[str]]] | None = None,
        limit: int,
        cursor: str | None,
        newest_first: bool = True,
    ) -> tuple[list[Item], str | None]:
        """One page of a (filtered) Query. `filters` are (attribute, allowed values). Keeps querying
        until `limit` items pass the filter or the partition ends, and reads
        one item beyond so `next_cursor` is None exactly at the end."""
        if limit < 1:
            raise ValidationError("limit must be at least 1", field="limit")
        attrs = _MAIN_KEYS if index is None else (*_MAIN_KEYS, *_key_names(index))
        pattr, pvalue = partition
        names: dict[str, str] = {"#p": pattr}
        values: Item = {":p": _s(pvalue)}
        cond = "#p = :p"
        if sk_prefix is not None:
            names["#s"] = ks.SK
            values[":s"] = _s(sk_prefix)
            cond += " AND begins_with(#s, :s)"
        filter_parts = []
        for i, (attr, allowed) in enumerate(filters or []):
            names[f"#f{i}"] = attr
            marks = []
            for j, v in enumerate(allowed):
                values[f":f{i}_{j}"] = _s(v)
                marks.append(f":f{i}_{j}")
            filter_parts.append(f"#f{i} IN ({', '.join(marks)})")
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": cond,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not newest_first,
        }
        if index is not None:
            kwargs["IndexName"] = index
        else:
            kwargs["ConsistentRead"] = True
        if filter_parts:
            kwargs["FilterExpression"] = " AND ".join(filter_parts)
        start = self._decode_cursor(cursor, attrs, partition) if cursor else None
        items: list[Item] = []
        while len(items) <= limit:
            want = limit + 1 - len(items)
            # Unfiltered: read exactly what the page needs; filtered: larger bites, fewer round trips.
            kwargs["Limit"] = max(want, 100) if filter_parts else want
            if start:
                kwargs["ExclusiveStartKey"] = start
            try:
                resp = self._c.query(**kwargs)
            except ClientError as e:
                if _error_code(e) == "ValidationException" and cursor:
                    raise _cursor_invalid() from e
                raise
            items.extend(resp.get("Items", []))
            start = resp.get("LastEvaluatedKey")
            if not start:
                break
        more = len(items) > limit
        page = items[:limit]
        return page, (self._encode_cursor(page[-1], attrs) if more else None)

    def _batch_delete(self, keys: list[Item]) -> None:
        for i in range(0, len(keys), 25):
            requests: list[Item] = [{"DeleteRequest": {"Key": k}} for k in keys[i : i + 25]]
            self._batch_write(requests)

    def _batch_put(self, items: list[Item]) -> None:
        for i in range(0, len(items), 25):
            self._batch_write([{"PutRequest": {"Item": it}} for it in items[i : i + 25]])

    def _batch_write(self, requests: list[Item]) -> None:
        pending: dict[str, list[Item]] = {self._table: requests}
        for attempt in range(10):
            resp = self._c.batch_write_item(RequestItems=pending)
            pending = resp.get("UnprocessedItems") or {}
            if not pending:
                return
            _backoff(attempt)
        raise ConflictError("DynamoDB left writes unprocessed; try again", code="storage_busy")

    # Item builders -----------------------------------------------------------------------------
    def _asset_item(self, asset: Asset) -> Item:
        item: Item = {
            **_key(f"ASSET#{asset.id}", "ASSET"),
            ks.GSI1_PK: _s(f"INDEX#{asset.index_id}#ASSETS"),
            ks.GSI1_SK: _s(asset.id),
            ks.GSI2_PK: _s(f"TENANT#{asset.tenant_id}#ASSETS"),
            ks.GSI2_SK: _s(asset.id),
            "type": _s("asset"),
            "tenant_id": _s(asset.tenant_id),
            "status": _s(asset.status.value),
            "version": _n(asset.version),
            "doc": _s(asset.model_dump_json()),
        }
        if asset.media_type is not None:
            item["media_type"] = _s(asset.media_type.value)
        return item

    def _task_item(self, task: Task) -> Item:
        return {
            **_key(f"TASK#{task.id}", "TASK"),
            ks.GSI1_PK: _s(f"TENANT#{task.tenant_id}#TASKS"),
            ks.GSI1_SK: _s(task.id),
            ks.GSI2_PK: _s(f"ASSET#{task.asset_id}#TASKS"),
            ks.GSI2_SK: _s(task.id),
            "type": _s("task"),
            "tenant_id": _s(task.tenant_id),
            "state": _s(task.state.value),
            "version": _n(task.version),
            "doc": _s(task.model_dump_json()),
        }

    @staticmethod
    def _index_from(item: Item) -> Index:
        index = Index.model_validate_json(_doc(item))
        index.asset_count = int(item.get("asset_count", {"N": "0"})["N"])
        index.version = _version(item)
        return index

    # Tenants and keys --------------------------------------------------------------------------
    def create_tenant(self, tenant: Tenant) -> Tenant:
        try:
            self._transact(
                [
                    self._tx_put(
                        {
                            **_key(f"TENANT#{tenant.id}", "TENANT"),
                            "name": _s(tenant.name),
                            "doc": _s(tenant.model_dump_json()),
                        },
                        "attribute_not_exists(pk)",
                    ),
                    self._tx_put(
                        {**_key(f"TENANTNAME#{tenant.name}", "TENANTNAME"), "tenant_id": _s(tenant.id)},
                        "attribute_not_exists(pk)",
                    ),
                ]
            )
        except ClientError as e:
            if _error_code(e) != _TX_CANCELLED:
                raise
            failed = _failed_reasons(e)
            if len(failed) > 1 and failed[1]:
                raise ConflictError(
                    f"tenant name {tenant.name!r} is taken", code="tenant_name_already_exists"
                ) from e
            raise ConflictError(f"tenant {tenant.id} exists", code="tenant_already_exists") from e
        return tenant

    def get_tenant_by_name(self, name: str) -> Tenant | None:
        guard = self._get(f"TENANTNAME#{name}", "TENANTNAME")
        if guard is None:
            return None
        item = self._get(f"TENANT#{guard['tenant_id']['S']}", "TENANT")
        return Tenant.model_validate_json(_doc(item)) if item else None

    def put_api_key(self, key: ApiKey) -> None:
        self._put(
            {
                **_key(f"APIKEY#{key.key_hash}", "APIKEY"),
                ks.GSI1_PK: _s(f"TENANT#{key.tenant_id}#APIKEYS"),
                ks.GSI1_SK: _s(key.id),
                "type": _s("api_key"),
                "tenant_id": _s(key.tenant_id),
                "doc": _s(key.model_dump_json()),
            }
        )

    def get_api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        item = self._get(f"APIKEY#{key_hash}", "APIKEY")
        return ApiKey.model_validate_json(_doc(item)) if item else None

    # Indexes -----------------------------------------------------------------------------------
    def create_index(self, index: Index) -> Index:
        stored = index.model_copy(update={"version": index.version + 1, "asset_count": 0})
        pk = f"TENANT#{index.tenant_id}"
        try:
            self._transact(
                [
                    self._tx_put(
                        {
                            **_key(pk, f"INDEX#{index.id}"),
                            "type": _s("index"),
                            "name": _s(index.name),
                            "asset_count": _n(0),
                            "version": _n(stored.version),
                            "doc": _s(stored.model_dump_json()),
                        },
                        "attribute_not_exists(pk)",
                    ),
                    self._tx_put(
                        {**_key(pk, f"INDEXNAME#{index.name}"), "index_id": _s(index.id)},
                        "attribute_not_exists(pk)",
                    ),
                ]
            )
        except ClientError as e:
            if _error_code(e) != _TX_CANCELLED:
                raise
            failed = _failed_reasons(e)
            if len(failed) > 1 and failed[1]:
                raise ConflictError(
                    f"an index named {index.name!r} exists", code="index_name_already_exists", field="name"
                ) from e
            raise ConflictError(f"index {index.id} exists", code="index_already_exists") from e
        return stored

    def get_index(self, tenant_id: str, index_id: str) -> Index | None:
        item = self._get(f"TENANT#{tenant_id}", f"INDEX#{index_id}")
        return self._index_from(item) if item else None

    def list_indexes(self, tenant_id: str, *, limit: int, cursor: str | None) -> Page[Index]:
        items, nxt = self._query_page(
            index=None,
            partition=(ks.PK, f"TENANT#{tenant_id}"),
            sk_prefix="INDEX#",
            limit=limit,
            cursor=cursor,
        )
        return Page[Index](data=[self._index_from(i) for i in items], next_cursor=nxt)

    def update_index(self, index: Index) -> Index:
        pk = f"TENANT#{index.tenant_id}"
        current = self._get(pk, f"INDEX#{index.id}")
        if current is None:
            raise NotFoundError(f"index {index.id} not found", code="index_not_found")
        stored = index.model_copy(update={"version": index.version + 1})
        update: Item = {
            "Update": {
                "TableName": self._table,
                "Key": _key(pk, f"INDEX#{index.id}"),
                # asset_count is left alone: asset writes own it.
                "UpdateExpression": "SET #name = :name, #doc = :doc, #version = :new",
                "ConditionExpression": "#version = :expected",
                "ExpressionAttributeNames": {"#name": "name", "#doc": "doc", "#version": "version"},
                "ExpressionAttributeValues": {
                    ":name": _s(index.name),
                    ":doc": _s(stored.model_dump_json()),
                    ":new": _n(stored.version),
                    ":expected": _n(index.version),
                },
            }
        }
        old_name = current["name"]["S"]
        items = [update]
        if old_name != index.name:
            items.append(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": _key(pk, f"INDEXNAME#{old_name}"),
                        "ConditionExpression": "index_id = :id",
                        "ExpressionAttributeValues": {":id": _s(index.id)},
                    }
                }
            )
            items.append(
                self._tx_put(
                    {**_key(pk, f"INDEXNAME#{index.name}"), "index_id": _s(index.id)},
                    "attribute_not_exists(pk)",
                )
            )
        try:
            self._transact(items)
        except ClientError as e:
            if _error_code(e) != _TX_CANCELLED:
                raise
            failed = _failed_reasons(e)
            if len(failed) > 2 and failed[2] and not failed[0]:
                raise ConflictError(
                    f"an index named {index.name!r} exists", code="index_name_already_exists", field="name"
                ) from e
            if self._get(pk, f"INDEX#{index.id}") is None:
                raise NotFoundError(f"index {index.id} not found", code="index_not_found") from e
            raise ConflictError(f"index {index.id} changed meanwhile", code="version_conflict") from e
        fresh = self.get_index(index.tenant_id, index.id)  # the counter may have moved meanwhile
        stored.asset_count = fresh.asset_count if fresh else int(current["asset_count"]["N"])
        return stored

    def delete_index(self, tenant_id: str, index_id: str) -> bool:
        pk = f"TENANT#{tenant_id}"
        current = self._get(pk, f"INDEX#{index_id}")
        if current is None:
            return False
        name = current["name"]["S"]
        try:
            self._transact(
                [
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": _key(pk, f"INDEX#{index_id}"),
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": _key(pk, f"INDEXNAME#{name}"),
                            "ConditionExpression": "attribute_not_exists(pk) OR index_id = :id",
                            "ExpressionAttributeValues": {":id": _s(index_id)},
                        }
                    },
                ]
            )
        except ClientError as e:
            if _error_code(e) != _TX_CANCELLED:
                raise
            return False  # deleted (or renamed) concurrently; a retry by the caller sees the truth
        return True

    # Assets ------------------------------------------------------------------------------------
    def _index_count_update(self, asset: Asset, delta: int) -> Item:
        return {
            "Update": {
                "TableName": self._table,
                "Key": _key(f"TENANT#{asset.tenant_id}", f"INDEX#{asset.index_id}"),
                "UpdateExpression": "ADD asset_count :d",
                # Without it, ADD on a missing index would create a stray item.
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":d": _n(delta)},
            }
        }

    def create_asset(self, asset: Asset) -> Asset:
        stored = asset.model_copy(update={"version": asset.version + 1})
        try:
            self._transact(
                [
                    self._tx_put(self._asset_item(stored), "attribute_not_exists(pk)"),
                    self._index_count_update(stored, 1),
                ]
            )
        except ClientError as e:
            if _error_code(e) != _TX_CANCELLED:
                raise
            failed = _failed_reasons(e)
            if len(failed) > 1 and failed[1]:
                raise NotFoundError(
                    f"index {asset.index_id} not found", code="index_not_found", field="index_id"
                ) from e
            raise ConflictError(f"asset {asset.id} exists", code="asset_already_exists") from e
        return stored

    def get_asset(self, asset_id: str, tenant_id: str | None = None) -> Asset | None:
        item = self._get(f"ASSET#{asset_id}", "ASSET")
        if item is None or (tenant_id is not None and item["tenant_id"]["S"] != tenant_id):
            return None
        return Asset.model_validate_json(_doc(item))

    def list_assets(
        self,
        tenant_id: str,
        *,
        index_id: str | None = None,
        status: AssetStatus | None = None,
        media_type: MediaType | None = None,
        limit: int,
        cursor: str | None,
    ) -> Page[Asset]:
        filters: list[tuple[str, list[str]]] = []
        if status is not None:
            filters.append(("status", [AssetStatus(status).value]))
        if media_type is not None:
            filters.append(("media_type", [MediaType(media_type).value]))
        if index_id is not None:
            # Index ids are unguessable, but the tenant is still checked on every item.
            filters.append(("tenant_id", [tenant_id]))
            index, partition = ks.GSI1, (ks.GSI1_PK, f"INDEX#{index_id}#ASSETS")
        else:
            index, partition = ks.GSI2, (ks.GSI2_PK, f"TENANT#{tenant_id}#ASSETS")
        items, nxt = self._query_page(
            index=index, partition=partition, filters=filters, limit=limit, cursor=cursor
        )
        return Page[Asset](data=[Asset.model_validate_json(_doc(i)) for i in items], next_cursor=nxt)

    def _put_versioned(self, item: Item, expected: int) -> Item:
        return self._tx_put(item, "version = :expected", {":expected": _n(expected)})

    def _retrying(self, attempt_fn: Callable[[], E], what: str) -> E:
        """Runs a read/apply/conditional-write attempt until it stops losing races."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                return attempt_fn()
            except _LostRace:
                _backoff(attempt)
        raise ConflictError(
            f"{what} kept changing; gave up after {MAX_ATTEMPTS} attempts", code="version_conflict"
        )

    def mutate_asset(self, asset_id: str, fn: AssetFn) -> Asset:
        def attempt() -> Asset:
            item = self._get(f"ASSET#{asset_id}", "ASSET")
            if item is None:
                raise NotFoundError(f"asset {asset_id} not found", code="asset_not_found")
            current = Asset.model_validate_json(_doc(item))
            new = next_asset(current, fn(current))
            try:
                self._put(self._asset_item(new), "version = :expected", {":expected": _n(current.version)})
            except ClientError as e:
                if _error_code(e) == _CONDITION_FAILED:
                    raise _LostRace from e
                raise
            return new

        return self._retrying(attempt, f"asset {asset_id}")

    def delete_asset(self, asset_id: str) -> Asset | None:
        deleted: Asset | None = None
        for attempt in range(MAX_ATTEMPTS):
            item = self._get(f"ASSET#{asset_id}", "ASSET")
            if item is None:
                break
            asset = Asset.model_validate_json(_doc(item))
            delete = {
                "Delete": {
                    "TableName": self._table,
                    "Key": _key(f"ASSET#{asset_id}", "ASSET"),
                    "ConditionExpression": "version = :expected",
                    "ExpressionAttributeValues": {":expected": _n(asset.version)},
                }
            }
            try:
                # The asset goes first, with its count: a concurrent save_task_and_asset then fails its
                # version check instead of adding work to an asset being deleted.
                self._transact([delete, self._index_count_update(asset, -1)])
            except ClientError as e:
                if _error_code(e) != _TX_CANCELLED:
                    raise
                failed = _failed_reasons(e)
                if failed and failed[0]:
                    _backoff(attempt)
                    continue  # changed or deleted meanwhile: look again
                try:  # the index is gone already (index deletion sweeps assets after it)
                    self._c.delete_item(
                        TableName=self._table,
                        Key=_key(f"ASSET#{asset_id}", "ASSET"),
                        ConditionExpression="version = :expected",
                        ExpressionAttributeValues={":expected": _n(asset.version)},
                    )
                except ClientError as e2:
                    if _error_code(e2) != _CONDITION_FAILED:
                        raise
                    _backoff(attempt)
                    continue
            deleted = asset
            break
        else:
            raise ConflictError(f"asset {asset_id} kept changing; not deleted", code="version_conflict")
        self._sweep_asset_partition(asset_id)
        return deleted

    def _sweep_asset_partition(self, asset_id: str) -> None:
        """Deletes what the asset owned: task pointers and their tasks, derivatives, segments."""
        keys: list[Item] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": _s(f"ASSET#{asset_id}")},
            "ProjectionExpression": "pk, sk",
            "ConsistentRead": True,
        }
        while True:
            resp = self._c.query(**kwargs)
            for it in resp.get("Items", []):
                keys.append({ks.PK: it[ks.PK], ks.SK: it[ks.SK]})
                sk = it[ks.SK]["S"]
                if sk.startswith("TASK#"):
                    keys.append(_key(sk, "TASK"))
            if not resp.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        self._batch_delete(keys)

    # Tasks -------------------------------------------------------------------------------------
    def save_task_and_asset(self, task: Task, asset: Asset) -> tuple[Task, Asset]:
        stored_task = task.model_copy(update={"version": task.version + 1})
        stored_asset = asset.model_copy(update={"version": asset.version + 1})
        try:
            self._transact(
                [
                    self._put_versioned(self._asset_item(stored_asset), asset.version),
                    self._tx_put(self._task_item(stored_task), "attribute_not_exists(pk)"),
                    self._tx_put({**_key(f"ASSET#{asset.id}", f"TASK#{task.id}"), "type": _s("task_ref")}),
                ]
            )
        except ClientError as e:
            if _error_code(e) != _TX_CANCELLED:
                raise
            failed = _failed_reasons(e)
            if failed and failed[0]:
                if self._get(f"ASSET#{asset.id}", "ASSET") is None:
                    raise NotFoundError(f"asset {asset.id} not found", code="asset_not_found") from e
                raise ConflictError(f"asset {asset.id} changed meanwhile", code="version_conflict") from e
            raise ConflictError(f"task {task.id} exists", code="task_already_exists") from e
        return stored_task, stored_asset

    def get_task(self, task_id: str, tenant_id: str | None = None) -> Task | None:
        item = self._get(f"TASK#{task_id}", "TASK")
        if item is None or (tenant_id is not None and item["tenant_id"]["S"] != tenant_id):
            return None
        return Task.model_validate_json(_doc(item))

    def list_tasks(
        self,
        tenant_id: str,
        *,
        asset_id: str | None = None,
        active_only: bool = False,
        limit: int,
        cursor: str | None,
    ) -> Page[Task]:
        filters: list[tuple[str, list[str]]] = []
        if active_only:
            filters.append(("state", [TaskState.QUEUED.value, TaskState.PROCESSING.value]))
        if asset_id is not None:
            filters.append(("tenant_id", [tenant_id]))
            index, partition = ks.GSI2, (ks.GSI2_PK, f"ASSET#{asset_id}#TASKS")
        else:
            index, partition = ks.GSI1, (ks.GSI1_PK, f"TENANT#{tenant_id}#TASKS")
        items, nxt = self._query_page(
            index=index, partition=partition, filters=filters, limit=limit, cursor=cursor
        )
        return Page[Task](data=[Task.model_validate_json(_doc(i)) for i in items], next_cursor=nxt)

    def mutate_task_and_asset(self, task_id: str, fn: TaskAssetFn) -> tuple[Task, Asset]:
        def attempt() -> tuple[Task, Asset]:
            task_item = self._get(f"TASK#{task_id}", "TASK")
            if task_item is None:
                raise NotFoundError(f"task {task_id} not found", code="task_not_found")
            task = Task.model_validate_json(_doc(task_item))
            asset_item = self._get(f"ASSET#{task.asset_id}", "ASSET")
            if asset_item is None:
                raise NotFoundError(f"asset {task.asset_id} not found", code="asset_not_found")
            asset = Asset.model_validate_json(_doc(asset_item))
            changed_task, changed_asset = fn(task, asset)
            new_task, new_asset = next_task(task, changed_task), next_asset(asset, changed_asset)
            try:
                self._transact(
                    [
                        self._put_versioned(self._task_item(new_task), task.version),
                        self._put_versioned(self._asset_item(new_asset), asset.version),
                    ]
                )
            except ClientError as e:
                if _error_code(e) == _TX_CANCELLED:
                    raise _LostRace from e
                raise
            return new_task, new_asset

        return self._retrying(attempt, f"task {task_id}")

    # Outputs -----------------------------------------------------------------------------------
    def _require_asset(self, asset_id: str) -> None:
        if self._get(f"ASSET#{asset_id}", "ASSET") is None:
            raise NotFoundError(f"asset {asset_id} not found", code="asset_not_found")

    def _partition_items(self, asset_id: str, prefix: str) -> list[Item]:
        out: list[Item] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
            "ExpressionAttributeValues": {":p": _s(f"ASSET#{asset_id}"), ":s": _s(prefix)},
            "ConsistentRead": True,
        }
        while True:
            resp = self._c.query(**kwargs)
            out.extend(resp.get("Items", []))
            if not resp.get("LastEvaluatedKey"):
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def replace_derivatives(self, asset_id: str, kinds: list[str], derivatives: list[Derivative]) -> None:
        """Not one transaction (a set may exceed its 100 items): puts overwrite same-key items first,
        then stale items of `kinds` go; a re-run converges on one set."""
        self._require_asset(asset_id)
        new_items = {
            f"DERIV#{d.kind}#{d.index:06d}": {
                **_key(f"ASSET#{asset_id}", f"DERIV#{d.kind}#{d.index:06d}"),
                "type": _s("derivative"),
                "doc": _s(d.model_copy(update={"asset_id": asset_id}).model_dump_json()),
            }
            for d in derivatives
        }
        wanted = set(kinds)
        stale = [
            {ks.PK: it[ks.PK], ks.SK: it[ks.SK]}
            for it in self._partition_items(asset_id, "DERIV#")
            if it[ks.SK]["S"] not in new_items and Derivative.model_validate_json(_doc(it)).kind in wanted
        ]
        self._batch_put(list(new_items.values()))
        self._batch_delete(stale)

    def list_derivatives(self, asset_id: str) -> list[Derivative]:
        return [Derivative.model_validate_json(_doc(it)) for it in self._partition_items(asset_id, "DERIV#")]

    @staticmethod
    def _segment_sk(seg: Segment) -> str:
        return f"SEG#{_ms(seg.start):012d}#{seg.id}"

    def replace_segments(self, asset_id: str, segments: list[Segment]) -> None:
        self._require_asset(asset_id)
        new_items = {
            self._segment_sk(s): {
                **_key(f"ASSET#{asset_id}", self._segment_sk(s)),
                "type": _s("segment"),
                "doc": _s(s.model_copy(update={"asset_id": asset_id}).model_dump_json()),
            }
            for s in segments
        }
        stale = [
            {ks.PK: it[ks.PK], ks.SK: it[ks.SK]}
            for it in self._partition_items(asset_id, "SEG#")
            if it[ks.SK]["S"] not in new_items
        ]
        self._batch_put(list(new_items.values()))
        self._batch_delete(stale)

    def list_segments(self, asset_id: str, *, limit: int, cursor: str | None) -> Page[Segment]:
        """In time order (start, then id), the order a player wants, not newest first."""
        items, nxt = self._query_page(
            index=None,
            partition=(ks.PK, f"ASSET#{asset_id}"),
            sk_prefix="SEG#",
            limit=limit,
            cursor=cursor,
            newest_first=False,
        )
        return Page[Segment](data=[Segment.model_validate_json(_doc(i)) for i in items], next_cursor=nxt)

    # Idempotency -------------------------------------------------------------------------------
    def get_idempotency(self, tenant_id: str, key: str) -> IdempotencyRecord | None:
        item = self._get(f"IDEMPOTENCY#{tenant_id}#{key}", "IDEMPOTENCY")
        if item is None:
            return None
        record = IdempotencyRecord.model_validate_json(_doc(item))
        # TTL deletion lags expiry by up to days (and moto never expires), so check here.
        if _aware(record.expires_at) <= datetime.now(UTC):
            return None
        return record

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        expires = _aware(record.expires_at).timestamp()
        try:
            self._put(
                {
                    **_key(f"IDEMPOTENCY#{record.tenant_id}#{record.key}", "IDEMPOTENCY"),
                    "type": _s("idempotency"),
                    # Rounded up: the item never disappears while the record is still live.
                    ks.TTL_ATTRIBUTE: _n(math.ceil(expires)),
                    "doc": _s(record.model_dump_json()),
                },
                # A live record wins; an expired one not yet removed by TTL is replaced.
                f"attribute_not_exists(pk) OR {ks.TTL_ATTRIBUTE} <= :now",
                {":now": _n(int(time.time()))},
            )
        except ClientError as e:
            if _error_code(e) == _CONDITION_FAILED:
                raise ConflictError("the idempotency key is in use", code="idempotency_key_exists") from e
            raise


class _LostRace(Exception):
    """An optimistic write lost to a concurrent writer; the attempt is repeated."""


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _key_names(index: str) -> tuple[str, str]:
    return (ks.GSI1_PK, ks.GSI1_SK) if index == ks.GSI1 else (ks.GSI2_PK, ks.GSI2_SK)
