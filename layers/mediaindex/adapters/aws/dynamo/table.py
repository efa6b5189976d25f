"""What the DynamoDB repositories share: the one table and its client, attribute codecs, the
translation of condition and transaction failures, paged queries with cursors, batched writes and
the bounded optimistic retry. Keys and item shapes are in items.py, the layout in __init__.py."""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from botocore.exceptions import ClientError

from mediaindex.adapters.aws.dynamo import schema as ks
from mediaindex.domain.errors import ConflictError, ValidationError
from mediaindex.domain.models import Page

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

E = TypeVar("E")
Item = dict[str, Any]


class Listing(NamedTuple):
    """Where a Query reads: the table (gsi None) or a GSI, and its partition (key attribute, value)."""

    gsi: str | None
    partition: tuple[str, str]


MAX_ATTEMPTS = 8  # optimistic attempts of a read/apply/conditional-write before a ConflictError
TX_CONFLICT_ATTEMPTS = 12  # a transaction cancelled only by conflicts with others in flight
_CONDITION_FAILED = "ConditionalCheckFailedException"
_TX_CANCELLED = "TransactionCanceledException"
_BATCH = 25  # BatchWriteItem's limit
_BATCH_GET = 100  # keys per BatchGetItem (the service's limit)


# Attribute codecs ----------------------------------------------------------------------------------
def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int | float) -> dict[str, str]:
    return {"N": str(value)}


def key(pk: str, sk: str) -> Item:
    return {ks.PK: s(pk), ks.SK: s(sk)}


def doc(item: Item) -> str:
    return str(item["doc"]["S"])


def version(item: Item) -> int:
    return int(item["version"]["N"])


# Failures ------------------------------------------------------------------------------------------
class ConditionFailed(ConflictError):
    """A conditional write lost: one item's condition (stale version, existing key) or, for a
    transaction, any of them (`failed[i]`: the i-th item failed its condition). Repositories turn
    it into the contract's ConflictError or NotFoundError; `retrying` repeats the attempt instead.
    A transaction that only collided with another one in flight (TransactionConflict) is not a
    failed condition: `Table.transact` retries it and never raises this for it."""

    def __init__(self, failed: list[bool]) -> None:
        super().__init__("a conditional write failed", code="version_conflict")
        self.failed = failed

    def at(self, i: int) -> bool:
        return i < len(self.failed) and self.failed[i]


def _error_code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _cancellation_codes(e: ClientError) -> list[str]:
    return [str(r.get("Code") or "None") for r in e.response.get("CancellationReasons") or []]


def cursor_invalid() -> ValidationError:
    return ValidationError("cursor is not valid", code="cursor_invalid", field="cursor")


def backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.05, 0.005 * 2**attempt)))  # noqa: S311 - jitter, not security


def retrying(attempt_fn: Callable[[], E], what: str) -> E:
    """Runs a read/apply/conditional-write attempt until its write stops losing races
    (ConditionFailed), at most MAX_ATTEMPTS times; then ConflictError(`version_conflict`)."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            return attempt_fn()
        except ConditionFailed:
            backoff(attempt)
    raise ConflictError(
        f"{what} kept changing; gave up after {MAX_ATTEMPTS} attempts", code="version_conflict"
    )


# Cursors: the key of the last item served, as base64url JSON -----------------------------------------
def _encode_cursor(item: Item, attrs: tuple[str, ...]) -> str:
    raw = json.dumps({a: item[a] for a in attrs}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, attrs: tuple[str, ...], partition: tuple[str, str]) -> Item:
    try:
        start = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, RecursionError) as e:  # deep nesting is RecursionError
        raise cursor_invalid() from e
    if not isinstance(start, dict) or set(start) != set(attrs):
        raise cursor_invalid()
    for value in start.values():
        if not (isinstance(value, dict) and list(value) == ["S"] and isinstance(value["S"], str)):
            raise cursor_invalid()
        try:  # a lone surrogate cannot be sent to DynamoDB (botocore fails encoding it)
            value["S"].encode("utf-8")
        except UnicodeEncodeError as e:
            raise cursor_invalid() from e
    # A cursor only continues the listing it came from: never another tenant's partition.
    attr, expected = partition
    if start[attr]["S"] != expected:
        raise cursor_invalid()
    return start


def _key_attributes(index: str | None) -> tuple[str, ...]:
    """The attributes of an item's position in a table or GSI (what ExclusiveStartKey holds)."""
    if index is None:
        return (ks.PK, ks.SK)
    if index == ks.GSI1:
        return (ks.PK, ks.SK, ks.GSI1_PK, ks.GSI1_SK)
    return (ks.PK, ks.SK, ks.GSI2_PK, ks.GSI2_SK)


class Table:
    """The single table, through a client passed in (created by the composition root)."""

    def __init__(self, name: str, client: DynamoDBClient) -> None:
        self.name = name
        # Items are built as plain dicts; the typed client's TypedDicts add nothing but casts here.
        self._c: Any = client

    # Single items -------------------------------------------------------------------------------
    def get(self, pk: str, sk: str) -> Item | None:
        """Strongly consistent GetItem."""
        resp = self._c.get_item(TableName=self.name, Key=key(pk, sk), ConsistentRead=True)
        item: Item | None = resp.get("Item")
        return item

    def put(self, item: Item, condition: str | None = None, values: Item | None = None) -> None:
        """PutItem; ConditionFailed when `condition` does not hold."""
        self._single(self._c.put_item, self._with_condition({"Item": item}, condition, values))

    def delete(self, pk: str, sk: str, condition: str, values: Item) -> None:
        """DeleteItem; ConditionFailed when `condition` does not hold."""
        self._single(self._c.delete_item, self._with_condition({"Key": key(pk, sk)}, condition, values))

    def _single(self, call: Callable[..., Any], kwargs: Item) -> None:
        try:
            call(**kwargs)
        except ClientError as e:
            if _error_code(e) == _CONDITION_FAILED:
                raise ConditionFailed([True]) from e
            raise

    def _with_condition(self, request: Item, condition: str | None, values: Item | None) -> Item:
        request = {"TableName": self.name, **request}
        if condition:
            request["ConditionExpression"] = condition
        if values:
            request["ExpressionAttributeValues"] = values
        return request

    # Transactions -------------------------------------------------------------------------------
    def transact(self, items: list[Item]) -> None:
        """TransactWriteItems; ConditionFailed (with which items failed their condition) when it is
        cancelled for a condition. A cancellation for a conflict with another transaction on one of
        the items (a hot counter such as an index's asset_count), with no failed condition, wrote
        nothing: it is retried with jittered backoff, then ConflictError(`write_contention`)."""
        for attempt in range(TX_CONFLICT_ATTEMPTS):
            try:
                self._c.transact_write_items(TransactItems=items)
                return
            except ClientError as e:
                if _error_code(e) != _TX_CANCELLED:
                    raise
                codes = _cancellation_codes(e)
                if "ConditionalCheckFailed" in codes or "TransactionConflict" not in codes:
                    raise ConditionFailed([c == "ConditionalCheckFailed" for c in codes]) from e
            backoff(attempt)
        raise ConflictError(
            "the write kept colliding with others on the same items; retry", code="write_contention"
        )

    def tx_put(self, item: Item, condition: str | None = None, values: Item | None = None) -> Item:
        return {"Put": self._with_condition({"Item": item}, condition, values)}

    def tx_put_versioned(self, item: Item, expected: int) -> Item:
        return self.tx_put(item, "version = :expected", {":expected": n(expected)})

    def tx_delete(self, pk: str, sk: str, condition: str, values: Item | None = None) -> Item:
        return {"Delete": self._with_condition({"Key": key(pk, sk)}, condition, values)}

    def tx_update(self, pk: str, sk: str, update: str, condition: str, names: Item, values: Item) -> Item:
        request = self._with_condition({"Key": key(pk, sk), "UpdateExpression": update}, condition, values)
        if names:
            request["ExpressionAttributeNames"] = names
        return {"Update": request}

    # Queries ------------------------------------------------------------------------------------
    def partition(
        self,
        pk: str,
        *,
        between: tuple[str, str] | None = None,
        prefix: str | None = None,
        keys_only: bool = False,
    ) -> list[Item]:
        """Every item of partition `pk` (with between[0] <= sk <= between[1], or sk beginning with
        `prefix`), in sk order, strongly consistent, all pages."""
        cond, values = "pk = :p", {":p": s(pk)}
        if between is not None:
            cond += " AND sk BETWEEN :a AND :b"
            values.update({":a": s(between[0]), ":b": s(between[1])})
        elif prefix is not None:
            cond += " AND begins_with(sk, :a)"
            values[":a"] = s(prefix)
        kwargs: Item = {
            "TableName": self.name,
            "KeyConditionExpression": cond,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        if keys_only:
            kwargs["ProjectionExpression"] = "pk, sk"
        return self._every_page(kwargs)

    def _every_page(self, kwargs: Item) -> list[Item]:
        """The items of a Query, every page of it."""
        out: list[Item] = []
        while True:
            resp = self._c.query(**kwargs)
            out.extend(resp.get("Items", []))
            if not resp.get("LastEvaluatedKey"):
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def keys_lacking(self, listing: Listing, attribute: str) -> list[Item]:
        """The primary keys of every item of `listing` without `attribute`, all pages (eventually
        consistent on a GSI): what a one-off backfill walks."""
        index, partition = listing
        kwargs: Item = {
            "TableName": self.name,
            "KeyConditionExpression": "#p = :p",
            "FilterExpression": "attribute_not_exists(#a)",
            "ProjectionExpression": "#k, #s",
            "ExpressionAttributeNames": {"#p": partition[0], "#a": attribute, "#k": ks.PK, "#s": ks.SK},
            "ExpressionAttributeValues": {":p": s(partition[1])},
        }
        if index is not None:
            kwargs["IndexName"] = index
        return self._every_page(kwargs)

    def query_page(
        self,
        parse: Callable[[Item], E],
        listing: Listing,
        *,
        sk_prefix: str | None = None,
        filters: list[tuple[str, list[str]]] | None = None,
        limit: int,
        cursor: str | None,
        newest_first: bool = True,
    ) -> Page[E]:
        """One page of a (filtered) Query of `listing`, each item read by `parse`. `filters` are
        (attribute, allowed values). Keeps querying until `limit` items pass the filter or the
        partition ends, and reads one item beyond so the cursor is None exactly at the end."""
        index, partition = listing
        if limit < 1:
            raise ValidationError("limit must be at least 1", field="limit")
        attrs = _key_attributes(index)
        names: dict[str, str] = {"#p": partition[0]}
        values: Item = {":p": s(partition[1])}
        cond = "#p = :p"
        if sk_prefix is not None:
            names["#s"] = ks.SK
            values[":s"] = s(sk_prefix)
            cond += " AND begins_with(#s, :s)"
        filter_parts = []
        for i, (attr, allowed) in enumerate(filters or []):
            names[f"#f{i}"] = attr
            marks = [f":f{i}_{j}" for j in range(len(allowed))]
            values.update({m: s(v) for m, v in zip(marks, allowed, strict=True)})
            filter_parts.append(f"#f{i} IN ({', '.join(marks)})")
        kwargs: Item = {
            "TableName": self.name,
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
        start = _decode_cursor(cursor, attrs, partition) if cursor else None
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
                    raise cursor_invalid() from e
                raise
            items.extend(resp.get("Items", []))
            start = resp.get("LastEvaluatedKey")
            if not start:
                break
        page = items[:limit]
        nxt = _encode_cursor(page[-1], attrs) if len(items) > limit else None
        return Page[E](data=[parse(i) for i in page], next_cursor=nxt)

    # Batches ------------------------------------------------------------------------------------
    def batch_get(self, keys: list[tuple[str, str]]) -> list[Item]:
        """Strongly consistent BatchGetItem of (pk, sk) keys, 100 a request, unprocessed keys asked
        again; the items found, in no particular order."""
        found: list[Item] = []
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), _BATCH_GET):
            pending: dict[str, Item] = {
                self.name: {
                    "Keys": [key(pk, sk) for pk, sk in unique[i : i + _BATCH_GET]],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(10):
                resp = self._c.batch_get_item(RequestItems=pending)
                found.extend(resp.get("Responses", {}).get(self.name, []))
                pending = resp.get("UnprocessedKeys") or {}
                if not pending:
                    break
                backoff(attempt)
            else:
                raise ConflictError("DynamoDB left reads unprocessed; try again", code="storage_busy")
        return found

    def batch_put(self, items: list[Item]) -> None:
        self._batch_write([{"PutRequest": {"Item": it}} for it in items])

    def batch_delete(self, keys: list[Item]) -> None:
        self._batch_write([{"DeleteRequest": {"Key": {ks.PK: k[ks.PK], ks.SK: k[ks.SK]}}} for k in keys])

    def _batch_write(self, requests: list[Item]) -> None:
        for i in range(0, len(requests), _BATCH):
            pending: dict[str, list[Item]] = {self.name: requests[i : i + _BATCH]}
            for attempt in range(10):
                resp = self._c.batch_write_item(RequestItems=pending)
                pending = resp.get("UnprocessedItems") or {}
                if not pending:
                    break
                backoff(attempt)
            else:
                raise ConflictError("DynamoDB left writes unprocessed; try again", code="storage_busy")
