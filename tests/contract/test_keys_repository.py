"""KeyRepository contract (tenants and API keys), on SQLite and on DynamoDB (moto)."""

from __future__ import annotations

import pytest

from mediaindex.domain.errors import ConflictError
from mediaindex.domain.models import ApiKey, Tenant
from mediaindex.ports.stores import MetadataStores
from tests.contract.metadata_factories import T1, new_test_id


def test_tenant_is_found_by_name_and_its_name_is_unique(stores: MetadataStores) -> None:
    # Given a tenant
    tenant = stores.keys.create_tenant(Tenant(id=new_test_id("ten"), name="acme"))

    # Then it reads back by name, and an unknown name reads as None
    assert stores.keys.get_tenant_by_name("acme") == tenant
    assert stores.keys.get_tenant_by_name("nobody") is None

    # When another tenant takes the same name, Then it is refused with the contract's code
    with pytest.raises(ConflictError) as err:
        stores.keys.create_tenant(Tenant(id=new_test_id("ten"), name="acme"))
    assert err.value.code == "tenant_name_already_exists"


def test_api_key_is_found_by_hash_and_revocation_is_seen_at_once(stores: MetadataStores) -> None:
    key = ApiKey(id=new_test_id("key"), tenant_id=T1, key_hash="ab" * 32, prefix="mi_live_ab")
    stores.keys.put_key(key)

    assert stores.keys.get_key_by_hash("ab" * 32) == key
    assert stores.keys.get_key_by_hash("cd" * 32) is None

    # When the key is revoked (written again), Then the next lookup sees it revoked
    stores.keys.put_key(key.model_copy(update={"revoked": True}))
    found = stores.keys.get_key_by_hash("ab" * 32)
    assert found is not None and found.revoked
