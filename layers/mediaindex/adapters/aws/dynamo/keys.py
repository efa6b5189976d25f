"""KeyRepository on DynamoDB: the tenant item with its name guard (one transaction keeps names
unique), and API keys keyed by the key's sha256, read strongly consistent. A key's `last_used_at`
is an attribute beside its document (touching it never rewrites the document, so it cannot undo a
revocation); the next write of the key folds it into the document."""

from __future__ import annotations

from datetime import datetime

from mediaindex.adapters.aws.dynamo import schema as ks
from mediaindex.adapters.aws.dynamo.items import tenant_pk
from mediaindex.adapters.aws.dynamo.quotas import DynamoQuotas
from mediaindex.adapters.aws.dynamo.table import ConditionFailed, Item, Listing, Table, doc, s
from mediaindex.adapters.aws.dynamo.table import key as primary_key
from mediaindex.domain.errors import ConflictError
from mediaindex.domain.models import ApiKey, Tenant
from mediaindex.domain.quotas import Quotas
from mediaindex.ports.keys import KeyRepository, key_document

_TENANT_SK = "TENANT"
_NAME_SK = "TENANTNAME"
_KEY_SK = "APIKEY"


def _name_pk(name: str) -> str:
    return f"TENANTNAME#{name}"


def _key_pk(key_hash: str) -> str:
    return f"APIKEY#{key_hash}"


def _keys_gsi1pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}#APIKEYS"


def _parse_key(item: Item) -> ApiKey:
    key = ApiKey.model_validate_json(doc(item))
    if "last_used_at" in item:
        key = key.model_copy(update={"last_used_at": datetime.fromisoformat(item["last_used_at"]["S"])})
    return key


class DynamoKeyRepository(KeyRepository):
    def __init__(self, table: Table) -> None:
        self._t = table
        self._quotas = DynamoQuotas(table)

    def create_tenant(self, tenant: Tenant) -> Tenant:
        tenant_item = {
            **primary_key(tenant_pk(tenant.id), _TENANT_SK),
            "name": s(tenant.name),
            "doc": s(tenant.model_dump_json()),
        }
        guard = {**primary_key(_name_pk(tenant.name), _NAME_SK), "tenant_id": s(tenant.id)}
        try:
            self._t.transact(
                [
                    self._t.tx_put(tenant_item, "attribute_not_exists(pk)"),
                    self._t.tx_put(guard, "attribute_not_exists(pk)"),
                ]
            )
        except ConditionFailed as e:
            if e.at(1):
                raise ConflictError(
                    f"tenant name {tenant.name!r} is taken", code="tenant_name_already_exists"
                ) from e
            raise ConflictError(f"tenant {tenant.id} exists", code="tenant_already_exists") from e
        return tenant

    def get_tenant_by_name(self, name: str) -> Tenant | None:
        guard = self._t.get(_name_pk(name), _NAME_SK)
        if guard is None:
            return None
        item = self._t.get(tenant_pk(guard["tenant_id"]["S"]), _TENANT_SK)
        return Tenant.model_validate_json(doc(item)) if item else None

    def put_key(self, key: ApiKey) -> None:
        self._t.put(
            {
                **primary_key(_key_pk(key.key_hash), _KEY_SK),
                ks.GSI1_PK: s(_keys_gsi1pk(key.tenant_id)),
                ks.GSI1_SK: s(key.id),
                "type": s("api_key"),
                "tenant_id": s(key.tenant_id),
                "doc": s(key_document(key)),
            }
        )

    def get_key_by_hash(self, key_hash: str) -> ApiKey | None:
        item = self._t.get(_key_pk(key_hash), _KEY_SK)
        return _parse_key(item) if item else None

    def list_keys(self, tenant_id: str) -> list[ApiKey]:
        # GSI1 (eventually consistent): a key changed a moment ago may list as it was; authentication
        # and revocation read the key itself, strongly consistent.
        keys: list[ApiKey] = []
        cursor = None
        while True:
            page = self._t.query_page(
                _parse_key, Listing(ks.GSI1, (ks.GSI1_PK, _keys_gsi1pk(tenant_id))), limit=100, cursor=cursor
            )
            keys.extend(page.data)
            if page.next_cursor is None:
                return keys
            cursor = page.next_cursor

    def touch_key(self, key: ApiKey, at: datetime) -> None:
        update = self._t.tx_update(
            _key_pk(key.key_hash),
            _KEY_SK,
            "SET last_used_at = :t",
            "attribute_exists(pk)",
            {},
            {":t": s(at.isoformat())},
        )
        try:
            self._t.transact([update])
        except ConflictError:  # deleted meanwhile, or busy: the next request touches it
            return

    def get_quotas(self, tenant_id: str) -> Quotas | None:
        return self._quotas.get(tenant_id)

    def put_quotas(self, tenant_id: str, quotas: Quotas) -> None:
        self._quotas.put(tenant_id, quotas)

    def count_request(self, tenant_id: str, window_start: int, limit: int) -> bool:
        return self._quotas.count_request(tenant_id, window_start, limit)

    def requests_counted(self, tenant_id: str, window_start: int) -> int:
        return self._quotas.requests_counted(tenant_id, window_start)
