"""The metadata repositories on one DynamoDB table (keys and GSIs in schema.py).

Each entity is an item holding its JSON document (`doc`) plus the attributes that keys, conditions
and filters use. Everything an asset owns lives in the asset's partition, so deleting an asset is
one strongly consistent Query plus batched deletes. Modules: `table.py` (client calls, codecs,
error translation, paging, retries), `items.py` (item shapes and keys), one module per repository.

Items and their keys (`{...}` are ids; GSI sort keys are the item's id, so newest first = descending):

| Item                       | pk                           | sk                          |
|----------------------------|------------------------------|-----------------------------|
| tenant                     | TENANT#{tenant}              | TENANT                      |
| tenant name guard          | TENANTNAME#{name}            | TENANTNAME                  |
| api key                    | APIKEY#{sha256 of the key}   | APIKEY                      |
| index                      | TENANT#{tenant}              | INDEX#{index}               |
| index name guard           | TENANT#{tenant}              | INDEXNAME#{caseless name}   |
| (legacy/as-written guard)  | TENANT#{tenant}              | INDEXNAME#{name as written} |
| asset                      | ASSET#{asset}                | ASSET                       |
| task                       | TASK#{task}                  | TASK                        |
| task pointer (for delete)  | ASSET#{asset}                | TASK#{task}                 |
| derivative                 | ASSET#{asset}                | DERIV#{kind}#{index:06d}    |
| segment                    | ASSET#{asset}                | SEG#{start ms:012d}#{seg}   |
| idempotency record (TTL)   | IDEMPOTENCY#{tenant}#{key}   | IDEMPOTENCY                 |
| usage counter shard        | TENANT#{tenant}              | USAGE#{index}#{0..3}        |
| usage counters whole       | TENANT#{tenant}              | USAGE                       |
| derivative bytes counted   | ASSET#{asset}                | USAGE                       |
| index purge ledger         | PURGES                       | {tenant}#{index}            |

| Item    | gsi1pk (gsi1sk = id)         | gsi2pk (gsi2sk = id)         |
|---------|------------------------------|------------------------------|
| api key | TENANT#{tenant}#APIKEYS      |                              |
| asset   | INDEX#{index}#ASSETS         | TENANT#{tenant}#ASSETS       |
| task    | TENANT#{tenant}#TASKS        | ASSET#{asset}#TASKS          |

| Access pattern                         | How                                                               |
|----------------------------------------|-------------------------------------------------------------------|
| get tenant / index / asset / task      | consistent GetItem on the primary key; asset and task items carry |
|                                        | `tenant_id`, checked on every call (another tenant's: missing)    |
| tenant by name                         | GetItem on the name guard, then on the tenant                     |
| api key by hash                        | consistent GetItem (a revoked key is refused at once)             |
| list indexes of a tenant               | Query pk=TENANT#{tenant}, begins_with(sk, INDEX#), descending     |
| list assets by index (+status, +type)  | Query gsi1 INDEX#{index}#ASSETS, filter status / media_type       |
| list assets of a tenant (+filters)     | Query gsi2 TENANT#{tenant}#ASSETS, same filters                   |
| list tasks of a tenant / active tasks  | Query gsi1 TENANT#{tenant}#TASKS, filter state in (queued, proc.) |
| list tasks of an asset                 | Query gsi2 ASSET#{asset}#TASKS, filter tenant_id                  |
| derivatives of an asset                | Query pk=ASSET#{asset}, sk between ASSET and DERIV$: the asset    |
|                                        | item comes first ('ASSET' < 'DERIV#' < 'SEG#' < 'TASK#') and its  |
|                                        | tenant is checked                                                 |
| segments of an asset                   | GetItem of the asset (tenant), Query begins_with(sk, SEG#)        |
| delete an asset with what it owns      | Query pk=ASSET#{asset} (consistent), batched deletes              |
| idempotency record                     | GetItem; expiry checked on read; TTL on expires_at_epoch          |
| usage of a tenant                      | Query pk=TENANT#{tenant}, begins_with(sk, USAGE) (usage.py)       |
| index name unique per tenant           | guard item Put attribute_not_exists in the index's transaction    |

Idempotency records carry `expires_at_epoch` (the table's TTL attribute, rounded up); DynamoDB
deletes them some time after expiry (moto never), so reads check the expiry themselves.

Invariants are conditional writes: versions (`version = :expected`), uniqueness (a guard item
written in the same TransactWriteItems as its owner), an asset insert/delete and its index's
`asset_count` in one transaction, a new task with its asset's version (and tenant) check.
`asset_count` is an attribute beside the index document, changed by ADD, never by an index update,
and it does not bump the index version. `mutate*` read, apply and write conditionally, retrying a
bounded number of times (table.MAX_ATTEMPTS). Filtered lists keep querying until they hold `limit`
items or the partition ends; cursors are the key of the last item served (base64url JSON of a
DynamoDB key) and must belong to the queried partition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mediaindex.adapters.aws.dynamo.assets import DynamoAssetRepository
from mediaindex.adapters.aws.dynamo.idempotency import DynamoIdempotencyRepository
from mediaindex.adapters.aws.dynamo.indexes import DynamoIndexRepository
from mediaindex.adapters.aws.dynamo.keys import DynamoKeyRepository
from mediaindex.adapters.aws.dynamo.outputs import DynamoOutputRepository
from mediaindex.adapters.aws.dynamo.table import Table
from mediaindex.adapters.aws.dynamo.tasks import DynamoTaskRepository
from mediaindex.ports.stores import MetadataStores

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def open_stores(table_name: str, client: DynamoDBClient) -> MetadataStores:
    """Every repository over the table `table_name`, through `client` (made by the caller; nothing
    here creates a client or calls AWS until a repository is used)."""
    table = Table(table_name, client)
    return MetadataStores(
        keys=DynamoKeyRepository(table),
        indexes=DynamoIndexRepository(table),
        assets=DynamoAssetRepository(table),
        outputs=DynamoOutputRepository(table),
        tasks=DynamoTaskRepository(table),
        idempotency=DynamoIdempotencyRepository(table),
    )


__all__ = [
    "DynamoAssetRepository",
    "DynamoIdempotencyRepository",
    "DynamoIndexRepository",
    "DynamoKeyRepository",
    "DynamoOutputRepository",
    "DynamoTaskRepository",
    "Table",
    "open_stores",
]
