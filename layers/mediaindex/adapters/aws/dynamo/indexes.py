"""IndexRepository on DynamoDB: the index item in its tenant's partition, with name guard items
beside it written in the same transaction (names are unique per tenant as `index_name_key`
compares them; the guards are described in items.py). `asset_count` is an
attribute beside the document, changed by asset writes with ADD; updates never write it and it
does not bump the index version."""

from __future__ import annotations

from mediaindex.adapters.aws.dynamo import schema as ks
from mediaindex.adapters.aws.dynamo.items import (
    INDEX_NAME_PREFIX,
    index_from,
    index_item,
    index_name_guard,
    index_name_guard_key,
    index_name_guards,
    index_name_sk,
    index_sk,
    tenant_pk,
)
from mediaindex.adapters.aws.dynamo.table import ConditionFailed, Item, Listing, Table, key, n, s
from mediaindex.domain.errors import ConflictError, NotFoundError
from mediaindex.domain.models import Index, Page
from mediaindex.ports.indexes import IndexRepository

_FRESH = "attribute_not_exists(pk)"
_OURS = "attribute_not_exists(pk) OR index_id = :id"


def _name_taken(index: Index) -> ConflictError:
    return ConflictError(
        f"an index named {index.name!r} exists", code="index_name_already_exists", field="name"
    )


class DynamoIndexRepository(IndexRepository):
    def __init__(self, table: Table) -> None:
        self._t = table

    def _claim_name(self, index: Index) -> list[Item]:
        """The transaction items that claim the guards of the index's name; 409 when another
        index of the tenant has the name as names compare. The tenant's guards are read back, so
        a name an earlier release guarded as written ("Clips") blocks its variants ("clips")
        too. A guard whose index is gone or now has another name was left by an earlier release
        renaming or deleting an index of this one (it knows nothing of key guards): it is taken
        over, in the same transaction as a check that its index is still gone or still named
        as read. Among writers of this release, the conditional puts keep names unique."""
        pk = tenant_pk(index.tenant_id)
        guard_key = index_name_guard_key(index.name)
        stale: dict[str, tuple[str, Item | None]] = {}
        for item in self._t.partition(pk, prefix=INDEX_NAME_PREFIX):
            written = str(item[ks.SK]["S"])[len(INDEX_NAME_PREFIX) :]
            holder = item.get("index_id", {}).get("S")
            if holder == index.id or (written != guard_key and index_name_guard_key(written) != guard_key):
                continue
            current = self._t.get(pk, index_sk(holder)) if holder else None
            if not holder or (
                current is not None and index_name_guard_key(current["name"]["S"]) == guard_key
            ):
                raise _name_taken(index)
            stale[written] = (str(holder), current)
        items: list[Item] = []
        for g in index_name_guards(index.name):
            guard = index_name_guard(index.tenant_id, g, index.id)
            if g not in stale:
                items.append(self._t.tx_put(guard, _OURS, {":id": s(index.id)}))
                continue
            holder, current = stale[g]
            items.append(self._t.tx_put(guard, "index_id = :stale", {":stale": s(holder)}))
            check: Item = {"TableName": self._t.name, "Key": key(pk, index_sk(holder))}
            if current is None:
                check["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                check["ConditionExpression"] = "#name = :seen"
                check["ExpressionAttributeNames"] = {"#name": "name"}
                check["ExpressionAttributeValues"] = {":seen": current["name"]}
            items.append({"ConditionCheck": check})
        return items

    def create(self, index: Index) -> Index:
        stored = index.model_copy(update={"version": index.version + 1, "asset_count": 0})
        claims = self._claim_name(index)
        try:
            self._t.transact([self._t.tx_put(index_item(stored), _FRESH), *claims])
        except ConditionFailed as e:
            if any(e.at(i) for i in range(1, 1 + len(claims))):
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
        claims: range = range(0)  # where the new name's guards are in `items`
        if old_name != index.name:
            # A guard both names hold (a rename in case only) is claimed again, not deleted.
            kept = set(index_name_guards(index.name))
            items += [
                self._t.tx_delete(pk, index_name_sk(g), _OURS, {":id": s(index.id)})
                for g in index_name_guards(old_name)
                if g not in kept
            ]
            new_guards = self._claim_name(index)
            claims = range(len(items), len(items) + len(new_guards))
            items += new_guards
        try:
            self._t.transact(items)
        except ConditionFailed as e:
            if any(e.at(i) for i in claims) and not e.at(0):
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
        guards = [
            self._t.tx_delete(pk, index_name_sk(g), _OURS, {":id": s(index_id)})
            for g in index_name_guards(current["name"]["S"])
        ]
        try:
            self._t.transact([self._t.tx_delete(pk, index_sk(index_id), "attribute_exists(pk)"), *guards])
        except ConditionFailed:
            return False  # deleted (or renamed) concurrently; a retry by the caller sees the truth
        return True
