"""KeyRepository's listing and `touch_key` on SQLite and DynamoDB, and keys stored by the previous
release (no scope, no expiry: tests/fixtures/metadata/) opening as admin keys that can be managed."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mediaindex.adapters.local.sqlite import open_stores
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.domain.keys import KeyScope, scope_allows
from mediaindex.domain.models import ApiKey
from mediaindex.ports.stores import MetadataStores
from mediaindex.services.keys import KeyService
from tests.contract.conftest import METADATA_TABLE
from tests.contract.metadata_factories import T1, T2, new_test_id
from tests.contract.release_sample import SAMPLE_A

FIXTURES = Path(__file__).parents[1] / "fixtures" / "metadata"
OLD_KEY_ID = "key_01HX0000000000000000000001"
OLD_HASH = "ab" * 32
AT = datetime(2030, 1, 1, tzinfo=UTC)


def _key(tenant: str, hash_char: str) -> ApiKey:
    return ApiKey(id=new_test_id("key"), tenant_id=tenant, key_hash=hash_char * 64, prefix="mi_test")


def test_keys_are_listed_per_tenant_newest_first(stores: MetadataStores) -> None:
    first, second, other = _key(T1, "a"), _key(T1, "b"), _key(T2, "c")
    for k in (first, second, other):
        stores.keys.put_key(k)

    assert [k.id for k in stores.keys.list_keys(T1)] == [second.id, first.id]
    assert [k.id for k in stores.keys.list_keys(T2)] == [other.id]
    assert stores.keys.list_keys("ten_nobody") == []


def test_touch_sets_last_used_without_undoing_a_revocation(stores: MetadataStores) -> None:
    key = _key(T1, "d")
    stores.keys.put_key(key)
    # A request read the key before it was revoked, and touches it after
    stores.keys.put_key(key.model_copy(update={"revoked": True, "revoked_at": AT}))
    stores.keys.touch_key(key, AT)

    found = stores.keys.get_key_by_hash(key.key_hash)
    assert found is not None and found.revoked and found.last_used_at == AT
    # A later full write keeps the touched time
    stores.keys.put_key(found.model_copy(update={"name": "renamed"}))
    again = stores.keys.get_key_by_hash(key.key_hash)
    assert again is not None and again.last_used_at == AT and again.name == "renamed"


def test_touching_a_missing_key_writes_nothing(stores: MetadataStores) -> None:
    stores.keys.touch_key(_key(T1, "e"), AT)

    assert stores.keys.get_key_by_hash("e" * 64) is None


def _assert_old_key_is_a_manageable_admin_key(stores: MetadataStores) -> None:
    key = stores.keys.get_key_by_hash(OLD_HASH)
    assert key is not None and key.scope is KeyScope.ADMIN and key.expires_at is None
    assert scope_allows(key.scope, "POST", "/v1/keys") and key.last4 is None
    assert [k.id for k in stores.keys.list_keys(SAMPLE_A)] == [OLD_KEY_ID]
    service = KeyService(stores.keys, clock=lambda: AT)
    rotated, raw = service.rotate(SAMPLE_A, OLD_KEY_ID, overlap_s=60)
    assert rotated.scope is KeyScope.ADMIN and service.authenticate(raw).id == rotated.id
    old = service.get_key(SAMPLE_A, OLD_KEY_ID)
    assert old.rotated_to == rotated.id and old.expires_at is not None


def test_sqlite_keys_of_the_previous_release_open_as_admin(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / "sqlite_old_release.sql").read_text(encoding="utf-8"))
    conn.close()
    db = Database(path)
    try:
        _assert_old_key_is_a_manageable_admin_key(open_stores(db))
    finally:
        db.close()


def test_dynamo_keys_of_the_previous_release_open_as_admin(
    dynamo_stores: MetadataStores, metadata_dynamodb_client: Any
) -> None:
    items = json.loads((FIXTURES / "dynamo_old_release.json").read_text(encoding="utf-8"))["items"]
    for item in items:
        metadata_dynamodb_client.put_item(TableName=METADATA_TABLE, Item=item)

    _assert_old_key_is_a_manageable_admin_key(dynamo_stores)
