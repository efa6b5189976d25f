"""The items of the single table and their keys (the layout is in __init__.py): one place builds
each item and reads it back, so the repositories that share an item (assets and tasks both write
the asset) cannot drift apart. These shapes are the stored format: data written by earlier
releases must still read, so attributes are only ever added, never renamed."""

from __future__ import annotations

import hashlib

from mediaindex.adapters.aws.dynamo import schema as ks
from mediaindex.adapters.aws.dynamo.table import Item, Listing, Table, doc, key, n, s, version
from mediaindex.domain.errors import NotFoundError
from mediaindex.domain.models import Asset, Index, Task
from mediaindex.domain.rules import index_name_key

# Sort keys inside an asset's partition, in the order DynamoDB sorts them:
# "ASSET" < "DERIV#..." < "SEG#..." < "TASK#...".
ASSET_SK = "ASSET"
DERIV_PREFIX = "DERIV#"
SEG_PREFIX = "SEG#"
TASK_REF_PREFIX = "TASK#"
AFTER_DERIVS = "DERIV$"  # "$" follows "#": the upper bound of every DERIV# key


def tenant_of(item: Item | None) -> str | None:
    return str(item["tenant_id"]["S"]) if item is not None and "tenant_id" in item else None


# Tenants, names, keys ------------------------------------------------------------------------------
def tenant_pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


INDEX_NAME_PREFIX = "INDEXNAME#"


def index_name_sk(name: str) -> str:
    return f"{INDEX_NAME_PREFIX}{name}"


def index_sk(index_id: str) -> str:
    return f"INDEX#{index_id}"


# Indexes -------------------------------------------------------------------------------------------
def index_item(index: Index) -> Item:
    """A new index: its counter starts at 0 (asset writes ADD to it; index updates leave it)."""
    return {
        **key(tenant_pk(index.tenant_id), index_sk(index.id)),
        "type": s("index"),
        "name": s(index.name),
        "asset_count": n(0),
        "version": n(index.version),
        "doc": s(index.model_dump_json()),
    }


def index_from(item: Item) -> Index:
    index = Index.model_validate_json(doc(item))
    index.asset_count = int(item.get("asset_count", {"N": "0"})["N"])
    index.version = version(item)
    return index


def index_name_guard(tenant_id: str, name: str, index_id: str) -> Item:
    return {**key(tenant_pk(tenant_id), index_name_sk(name)), "index_id": s(index_id)}


# Name guards. Names are unique per tenant as `index_name_key` compares them (case and Unicode
# forms aside): an index holds the guard INDEXNAME#{key}. Releases before this one guarded the
# name as written, INDEXNAME#{name}; this one writes that guard too where it differs from the key
# (a release before, running beside this one in a rolling deploy or after a rollback, finds the
# guard it checks, renames and deletes), and reads the older guards back when it checks a name.
# A sort key is at most 1024 bytes and NFKC can make a 200-character name 6600 bytes long: a key
# past _MAX_GUARD_KEY_BYTES is guarded by its digest.
_MAX_GUARD_KEY_BYTES = 900


def index_name_guard_key(name: str) -> str:
    name_key = index_name_key(name)
    if len(name_key.encode("utf-8")) > _MAX_GUARD_KEY_BYTES:
        return "~sha256:" + hashlib.sha256(name_key.encode("utf-8")).hexdigest()
    return name_key


def index_name_guards(name: str) -> list[str]:
    """The guard names an index of this name holds: its key, and the name as written if not the same."""
    guard_key = index_name_guard_key(name)
    return [guard_key] if guard_key == name else [guard_key, name]


# Assets --------------------------------------------------------------------------------------------
def asset_pk(asset_id: str) -> str:
    return f"ASSET#{asset_id}"


def assets_of_index(index_id: str) -> Listing:
    return Listing(ks.GSI1, (ks.GSI1_PK, f"INDEX#{index_id}#ASSETS"))


def assets_of_tenant(tenant_id: str) -> Listing:
    return Listing(ks.GSI2, (ks.GSI2_PK, f"TENANT#{tenant_id}#ASSETS"))


# On an asset item: its values are in the usage counters (usage.py). Every writer of asset_item
# adds the change it makes to the counters in the same transaction; items written by earlier
# releases lack it and are adopted (counted once) before a write uses them.
COUNTED = "in_usage"


def asset_item(asset: Asset) -> Item:
    item: Item = {
        **key(asset_pk(asset.id), ASSET_SK),
        ks.GSI1_PK: s(assets_of_index(asset.index_id).partition[1]),
        ks.GSI1_SK: s(asset.id),
        ks.GSI2_PK: s(assets_of_tenant(asset.tenant_id).partition[1]),
        ks.GSI2_SK: s(asset.id),
        "type": s("asset"),
        "tenant_id": s(asset.tenant_id),
        "status": s(asset.status.value),
        "version": n(asset.version),
        "doc": s(asset.model_dump_json()),
        COUNTED: {"BOOL": True},
    }
    if asset.media_type is not None:
        item["media_type"] = s(asset.media_type.value)
    return item


def asset_from(item: Item) -> Asset:
    return Asset.model_validate_json(doc(item))


def is_asset_of(item: Item | None, tenant_id: str) -> bool:
    """Whether `item` is an asset item of `tenant_id` (another tenant's asset reads as missing)."""
    return item is not None and item[ks.SK]["S"] == ASSET_SK and tenant_of(item) == tenant_id


def find_asset(table: Table, tenant_id: str, asset_id: str) -> Asset | None:
    """The tenant's asset (consistent GetItem); another tenant's reads as missing."""
    item = table.get(asset_pk(asset_id), ASSET_SK)
    return asset_from(item) if item is not None and is_asset_of(item, tenant_id) else None


def asset_not_found(asset_id: str) -> NotFoundError:
    return NotFoundError(f"asset {asset_id} not found", code="asset_not_found")


# Tasks ---------------------------------------------------------------------------------------------
def task_pk(task_id: str) -> str:
    return f"TASK#{task_id}"


TASK_SK = "TASK"


def tasks_of_tenant(tenant_id: str) -> Listing:
    return Listing(ks.GSI1, (ks.GSI1_PK, f"TENANT#{tenant_id}#TASKS"))


def tasks_of_asset(asset_id: str) -> Listing:
    return Listing(ks.GSI2, (ks.GSI2_PK, f"ASSET#{asset_id}#TASKS"))


def task_item(task: Task) -> Item:
    return {
        **key(task_pk(task.id), TASK_SK),
        ks.GSI1_PK: s(tasks_of_tenant(task.tenant_id).partition[1]),
        ks.GSI1_SK: s(task.id),
        ks.GSI2_PK: s(tasks_of_asset(task.asset_id).partition[1]),
        ks.GSI2_SK: s(task.id),
        "type": s("task"),
        "tenant_id": s(task.tenant_id),
        "state": s(task.state.value),
        "version": n(task.version),
        "doc": s(task.model_dump_json()),
    }


def task_ref_item(asset_id: str, task_id: str) -> Item:
    """The pointer in the asset's partition that lets deleting the asset find its tasks."""
    return {**key(asset_pk(asset_id), f"{TASK_REF_PREFIX}{task_id}"), "type": s("task_ref")}


def task_from(item: Item) -> Task:
    return Task.model_validate_json(doc(item))
