"""IndexRepository on DynamoDB: the index item in its tenant's partition, with a name guard item
beside it written in the same transaction (names are unique per tenant). `asset_count` is an
attribute beside the document, changed by asset writes with ADD; updates never write it and it
does not bump the index version."""

from __future__ import annotations

from mediaindex.adapters.aws.dynamo import schema as ks
from mediaindex.adapters.aws.dynamo.items import (
    index_from,
    index_item,
    index_name_guard,
    index_name_sk,
    index_sk,
    tenant_pk,
)
from mediaindex.adapters.aws.dynamo.table import ConditionFailed, Item, Listing, Table, n, s
from mediaindex.domain.errors import ConflictError, NotFoundError
from mediaindex.domain.models import Index, Page
from mediaindex.ports.indexes import IndexRepository

_FRESH = "attribute_not_exists(pk)"


def _name_taken(index: Index) -> ConflictError:
    return ConflictError(
        f"an index named {index.name!r} exists", code="index_name_already_exists", field="name"
    )


class DynamoIndexRepository(IndexRepository):
    def __init__(self, table: Table) -> None:
        self._t = table

    def create(self, index: Index) -> Index:
        stored = index.model_copy(update={"version": index.version + 1, "asset_count": 0})
        try:
            self._t.transact(
                [
                    self._t.tx_put(index_item(stored), _FRESH),
                    self._t.tx_put(index_name_guard(index.tenant_id, index.name, index.id), _FRESH),
                ]
            )
        except ConditionFailed as e:
            if e.at(1):
                raise _name_taken(index) from e
            raise ConflictError(f"index {index.id} exists", code="index_already_exists") from e
        return stored

    def get(self, tenant_id: str, index_id: str) -> Index | None:
        item = self._t.get(tenant_pk(tenant_id), index_sk(index_id))
        return index_from(item) if item else None

    def list(self, tenant_id: str, *, limit: int, cursor: str | None) -> Page[Index]:
        listing = Listing(None, (ks.PK, tenant_pk(tenant_id)))
        return self._t.query_page(index_from, listing, sk_prefix="INDEX#", limit=limit, cursor=cursor)

    def update(self, index: Index) -> Index:
        pk, sk = tenant_pk(index.tenant_id), index_sk(index.id)
        current = self._t.get(pk, sk)
        if current is None:
            raise NotFoundError(f"index {index.id} not found", code="index_not_found")
        stored = index.model_copy(update={"version": index.version + 1})
        items: list[Item] = [
            self._t.tx_update(
                pk,
                sk,
                # asset_count is left alone: asset writes own it.
                "SET #name = :name, #doc = :doc, #version = :new",
                "#version = :expected",
                {"#name": "name", "#doc": "doc", "#version": "version"},
                {
                    ":name": s(index.name),
                    ":doc": s(stored.model_dump_json()),
                    ":new": n(stored.version),
                    ":expected": n(index.version),
                },
            )
        ]
        old_name = current["name"]["S"]
        if old_name != index.name:
            items += [
                self._t.tx_delete(pk, index_name_sk(old_name), "index_id = :id", {":id": s(index.id)}),
                self._t.tx_put(index_name_guard(index.tenant_id, index.name, index.id), _FRESH),
            ]
        try:
            self._t.transact(items)
        except ConditionFailed as e:
            if e.at(2) and not e.at(0):
                raise _name_taken(index) from e
            if self._t.get(pk, sk) is None:
                raise NotFoundError(f"index {index.id} not found", code="index_not_found") from e
            raise ConflictError(f"index {index.id} changed meanwhile", code="version_conflict") from e
        fresh = self.get(index.tenant_id, index.id)  # the counter may have moved meanwhile
        stored.asset_count = fresh.asset_count if fresh else int(current["asset_count"]["N"])
        return stored

    def delete(self, tenant_id: str, index_id: str) -> bool:
        pk = tenant_pk(tenant_id)
        current = self._t.get(pk, index_sk(index_id))
        if current is None:
            return False
        guard_condition = "attribute_not_exists(pk) OR index_id = :id"
        try:
            self._t.transact(
                [
                    self._t.tx_delete(pk, index_sk(index_id), "attribute_exists(pk)"),
                    self._t.tx_delete(
                        pk, index_name_sk(current["name"]["S"]), guard_condition, {":id": s(index_id)}
                    ),
                ]
            )
        except ConditionFailed:
            return False  # deleted (or renamed) concurrently; a retry by the caller sees the truth
        return True
