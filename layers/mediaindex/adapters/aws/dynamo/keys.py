"""KeyRepository on DynamoDB: the tenant item with its name guard (one transaction keeps names
unique), and API keys keyed by the key's sha256, read strongly consistent."""

from __future__ import annotations

from mediaindex.adapters.aws.dynamo import schema as ks
from mediaindex.adapters.aws.dynamo.items import tenant_pk
from mediaindex.adapters.aws.dynamo.table import ConditionFailed, Table, doc, s
from mediaindex.adapters.aws.dynamo.table import key as primary_key
from mediaindex.domain.errors import ConflictError
from mediaindex.domain.models import ApiKey, Tenant
from mediaindex.ports.keys import KeyRepository

_TENANT_SK = "TENANT"
_NAME_SK = "TENANTNAME"
_KEY_SK = "APIKEY"


def _name_pk(name: str) -> str:
    return f"TENANTNAME#{name}"


def _key_pk(key_hash: str) -> str:
    return f"APIKEY#{key_hash}"


class DynamoKeyRepository(KeyRepository):
    def __init__(self, table: Table) -> None:
        self._t = table

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
                ks.GSI1_PK: s(f"TENANT#{key.tenant_id}#APIKEYS"),
                ks.GSI1_SK: s(key.id),
                "type": s("api_key"),
                "tenant_id": s(key.tenant_id),
                "doc": s(key.model_dump_json()),
            }
        )

    def get_key_by_hash(self, key_hash: str) -> ApiKey | None:
        item = self._t.get(_key_pk(key_hash), _KEY_SK)
        return ApiKey.model_validate_json(doc(item)) if item else None
