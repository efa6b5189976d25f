"""Index names are unique per tenant as `index_name_key` compares them (case, Unicode
normalisation and compatibility forms aside), on both adapters, without rewriting what the
previous release stored: its rows and guard items hold names as written ("Clips"), and they must
still block every variant ("clips", "CLIPS", the same in fullwidth letters). Also: the guard
items this release writes (DynamoDB), a release before running beside this one (a rolling deploy,
a rollback) and the race between two creates of one name in two cases."""

from __future__ import annotations

import json
import sqlite3
import threading
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from mediaindex.adapters.aws.dynamo.items import index_name_guard_key
from mediaindex.adapters.local.sqlite import open_stores
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.domain.errors import ConflictError
from mediaindex.domain.models import Index
from mediaindex.ports.stores import MetadataStores
from tests.contract.conftest import METADATA_TABLE
from tests.contract.metadata_factories import T1, T2, make_index
from tests.contract.release_sample import SAMPLE_A, SAMPLE_B, SAMPLE_INDEX

FIXTURES = Path(__file__).parents[1] / "fixtures" / "metadata"
# An index the previous release stored with a mixed-case, decomposed (NFD) name, as it wrote it.
LEGACY_ID = "idx_01HX0000000000000000000009"
LEGACY_NAME = unicodedata.normalize("NFD", "Vidéos Été")


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalpha() else c for c in text)


def variants(name: str) -> list[str]:
    nfc = unicodedata.normalize("NFC", name)
    return [nfc, nfc.lower(), nfc.upper(), unicodedata.normalize("NFD", nfc.swapcase()), fullwidth(nfc)]


def taken(stores: MetadataStores, name: str, tenant: str = T1) -> bool:
    try:
        make_index(stores, name, tenant=tenant)
    except ConflictError as e:
        assert e.code == "index_name_already_exists"
        return True
    return False


# ---- the previous release's data ---------------------------------------------------------------------
def _old_sqlite(tmp_path: Path) -> Database:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / "sqlite_old_release.sql").read_text(encoding="utf-8"))
    # One more index, written with the previous release's statement and its raw name.
    legacy = Index(id=LEGACY_ID, tenant_id=SAMPLE_A, name=LEGACY_NAME, version=1)
    conn.execute(
        "INSERT INTO indexes (id, tenant_id, name, asset_count, version, doc) VALUES (?, ?, ?, 0, ?, ?)",
        (legacy.id, legacy.tenant_id, legacy.name, legacy.version, legacy.model_dump_json()),
    )
    conn.commit()
    conn.close()
    return Database(path)


def _old_dynamo(client: Any) -> None:
    items = json.loads((FIXTURES / "dynamo_old_release.json").read_text(encoding="utf-8"))["items"]
    legacy = Index(id=LEGACY_ID, tenant_id=SAMPLE_A, name=LEGACY_NAME, version=1)
    pk = {"S": f"TENANT#{SAMPLE_A}"}
    items += [  # the previous release's index item and its guard of the name as written
        {"pk": pk, "sk": {"S": f"INDEX#{LEGACY_ID}"}, "type": {"S": "index"}, "name": {"S": LEGACY_NAME},
         "asset_count": {"N": "0"}, "version": {"N": "1"}, "doc": {"S": legacy.model_dump_json()}},
        {"pk": pk, "sk": {"S": f"INDEXNAME#{LEGACY_NAME}"}, "index_id": {"S": LEGACY_ID}},
    ]  # fmt: skip
    for item in items:
        client.put_item(TableName=METADATA_TABLE, Item=item)


@pytest.fixture(params=["sqlite", "dynamodb"])
def old_release(request: pytest.FixtureRequest, tmp_path: Path) -> MetadataStores:
    """Today's repositories over the previous release's data (the release sample plus LEGACY)."""
    if request.param == "sqlite":
        db = _old_sqlite(tmp_path)
        request.addfinalizer(db.close)
        return open_stores(db)
    stores: MetadataStores = request.getfixturevalue("dynamo_stores")
    _old_dynamo(request.getfixturevalue("metadata_dynamodb_client"))
    return stores


def test_an_old_index_name_blocks_its_variants(old_release: MetadataStores) -> None:
    stores = old_release
    for name in variants("clips") + variants(LEGACY_NAME):
        assert taken(stores, name, tenant=SAMPLE_A), name
    # Renaming another index onto an old name's variant is refused the same way
    other = make_index(stores, "other", tenant=SAMPLE_A)
    with pytest.raises(ConflictError) as err:
        stores.indexes.update(other.model_copy(update={"name": "VIDÉOS ÉTÉ"}))
    assert err.value.code == "index_name_already_exists"
    # Another tenant is not concerned
    assert not taken(stores, "CLIPS", tenant=T2)
    assert stores.indexes.get(SAMPLE_B, "idx_01HX0000000000000000000002") is not None


def test_an_old_index_renames_and_deletes_and_its_name_is_free_again(old_release: MetadataStores) -> None:
    stores = old_release
    legacy = stores.indexes.get(SAMPLE_A, LEGACY_ID)
    assert legacy is not None and legacy.name == LEGACY_NAME  # read as stored
    # A rename in case only is its own name: allowed
    renamed = stores.indexes.update(legacy.model_copy(update={"name": "VIDÉOS ÉTÉ"}))
    assert renamed.name == "VIDÉOS ÉTÉ"
    assert taken(stores, "vidéos été", tenant=SAMPLE_A)
    assert stores.indexes.delete(SAMPLE_A, LEGACY_ID)
    assert not taken(stores, "Vidéos Été", tenant=SAMPLE_A)
    sample = stores.indexes.get(SAMPLE_A, SAMPLE_INDEX)
    assert sample is not None and stores.indexes.delete(SAMPLE_A, SAMPLE_INDEX)
    assert not taken(stores, "CLIPS", tenant=SAMPLE_A)


# ---- every adapter, fresh data ------------------------------------------------------------------------
def test_names_collide_whatever_the_case_or_form(stores: MetadataStores) -> None:
    make_index(stores, "Café Clips")
    for name in variants("Café Clips"):
        assert taken(stores, name), name
    b = make_index(stores, "b")
    with pytest.raises(ConflictError):
        stores.indexes.update(b.model_copy(update={"name": "CAFÉ CLIPS"}))
    assert not taken(stores, "Café Clips 2")


def test_a_long_name_that_nfkc_expands_is_still_unique(stores: MetadataStores) -> None:
    name = "\ufdfa" * 200  # each expands to 18 characters (33 bytes) under NFKC
    make_index(stores, name)
    assert taken(stores, name)
    assert len(("INDEXNAME#" + index_name_guard_key(name)).encode()) <= 1024


def test_concurrent_creates_of_one_name_make_one_index(stores: MetadataStores) -> None:
    if type(stores.indexes).__name__.startswith("Dynamo"):
        pytest.skip("moto is not thread-safe under transactions; see the injected race below")
    names = ["Race", "race", "RACE", fullwidth("race"), "rAcE", "Race", "racE", "RACe"]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(names))

    def create(name: str) -> None:
        barrier.wait()
        try:
            make_index(stores, name)
            outcomes.append("made")
        except ConflictError:
            outcomes.append("taken")

    threads = [threading.Thread(target=create, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["made"] + ["taken"] * (len(names) - 1)
    assert len(stores.indexes.list(T1, limit=20, cursor=None).data) == 1


# ---- DynamoDB: guard items, the race, an older release beside this one --------------------------------
def _guards(client: Any, tenant: str = T1) -> dict[str, str]:
    items = client.query(
        TableName=METADATA_TABLE,
        KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
        ExpressionAttributeValues={":p": {"S": f"TENANT#{tenant}"}, ":s": {"S": "INDEXNAME#"}},
        ConsistentRead=True,
    )["Items"]
    return {i["sk"]["S"].removeprefix("INDEXNAME#"): i["index_id"]["S"] for i in items}


def test_dynamo_guards_the_key_and_the_name_as_written(
    dynamo_stores: MetadataStores, metadata_dynamodb_client: Any
) -> None:
    stores, client = dynamo_stores, metadata_dynamodb_client
    lower = make_index(stores, "clips")
    assert _guards(client) == {"clips": lower.id}  # the previous release's format, unchanged
    mixed = make_index(stores, "My Clips")
    assert _guards(client) == {"clips": lower.id, "my clips": mixed.id, "My Clips": mixed.id}
    # Renames move both guards; a rename in case only keeps the key guard
    stores.indexes.update(mixed.model_copy(update={"name": "MY CLIPS"}))
    assert _guards(client) == {"clips": lower.id, "my clips": mixed.id, "MY CLIPS": mixed.id}
    current = stores.indexes.get(T1, mixed.id)
    assert current is not None
    stores.indexes.update(current.model_copy(update={"name": "my clips"}))
    assert _guards(client) == {"clips": lower.id, "my clips": mixed.id}
    assert stores.indexes.delete(T1, mixed.id)
    assert _guards(client) == {"clips": lower.id}


def test_dynamo_a_create_that_loses_the_race_is_409(
    dynamo_stores: MetadataStores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both creates pass the read of the guards; the other one's transaction lands first."""
    stores = dynamo_stores
    table: Any = stores.indexes._t  # type: ignore[attr-defined]
    real = table.transact
    raced = False

    def transact(items: list[Any]) -> None:
        nonlocal raced
        if not raced:
            raced = True
            make_index(stores, "Race")  # lands between our read and our write
        real(items)

    monkeypatch.setattr(table, "transact", transact)
    with pytest.raises(ConflictError) as err:
        make_index(stores, "RACE")
    assert err.value.code == "index_name_already_exists"
    assert [i.name for i in stores.indexes.list(T1, limit=10, cursor=None).data] == ["Race"]


def _old_release_renames(client: Any, index: Index, new_name: str) -> None:
    """What the previous release's rename did: moves only the guard of the name as written."""
    pk = {"S": f"TENANT#{index.tenant_id}"}
    ours = {":id": {"S": index.id}}
    update = {
        "TableName": METADATA_TABLE,
        "Key": {"pk": pk, "sk": {"S": f"INDEX#{index.id}"}},
        "UpdateExpression": "SET #n = :n, #d = :d",
        "ExpressionAttributeNames": {"#n": "name", "#d": "doc"},
        "ExpressionAttributeValues": {
            ":n": {"S": new_name},
            ":d": {"S": index.model_copy(update={"name": new_name}).model_dump_json()},
        },
    }
    old_guard = {
        "TableName": METADATA_TABLE,
        "Key": {"pk": pk, "sk": {"S": f"INDEXNAME#{index.name}"}},
        "ConditionExpression": "index_id = :id",
        "ExpressionAttributeValues": ours,
    }
    new_guard = {
        "TableName": METADATA_TABLE,
        "Item": {"pk": pk, "sk": {"S": f"INDEXNAME#{new_name}"}, "index_id": {"S": index.id}},
        "ConditionExpression": "attribute_not_exists(pk)",
    }
    client.transact_write_items(TransactItems=[{"Update": update}, {"Delete": old_guard}, {"Put": new_guard}])


def _old_release_deletes(client: Any, index: Index) -> None:
    pk = {"S": f"TENANT#{index.tenant_id}"}
    for sk in (f"INDEX#{index.id}", f"INDEXNAME#{index.name}"):
        client.delete_item(TableName=METADATA_TABLE, Key={"pk": pk, "sk": {"S": sk}})


def test_dynamo_guards_an_older_release_left_behind_are_taken_over(
    dynamo_stores: MetadataStores, metadata_dynamodb_client: Any
) -> None:
    stores, client = dynamo_stores, metadata_dynamodb_client
    # An index of this release, renamed by the previous one (rolled back to): its key guard stays
    films = make_index(stores, "Clips")
    _old_release_renames(client, films, "Films")
    assert _guards(client) == {"clips": films.id, "Films": films.id}
    # The name is free all the same, and taking it over is one transaction
    clips = make_index(stores, "clips")
    assert _guards(client) == {"clips": clips.id, "Films": films.id}
    assert taken(stores, "FILMS")  # the older release's guard of "Films" still counts
    # An index of this release deleted by the previous one: its key guard stays, and is taken over
    gone = make_index(stores, "Gone Soon")
    _old_release_deletes(client, gone)
    assert "gone soon" in _guards(client)
    again = make_index(stores, "GONE SOON")
    assert _guards(client)["gone soon"] == again.id


def test_dynamo_a_stale_guard_is_not_taken_over_once_its_index_moved(
    dynamo_stores: MetadataStores, metadata_dynamodb_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The take-over checks, in its transaction, that the guard's index is still named as read."""
    stores, client = dynamo_stores, metadata_dynamodb_client
    x = make_index(stores, "Clips")
    _old_release_renames(client, x, "Films")  # the key guard "clips" is stale now
    table: Any = stores.indexes._t  # type: ignore[attr-defined]
    real = table.transact
    moved = False

    def transact(items: list[Any]) -> None:
        nonlocal moved
        if not moved:  # meanwhile, X is renamed back to "Clips" by the previous release
            moved = True
            current = stores.indexes.get(T1, x.id)
            assert current is not None
            _old_release_renames(client, current, "Clips")
        real(items)

    monkeypatch.setattr(table, "transact", transact)
    with pytest.raises(ConflictError) as err:
        make_index(stores, "CLIPS")
    assert err.value.code == "index_name_already_exists"
    assert [i.name for i in stores.indexes.list(T1, limit=10, cursor=None).data] == ["Clips"]


def test_sqlite_a_name_an_older_release_renamed_is_seen(tmp_path: Path) -> None:
    """SQLite keeps no key: the rows' names are compared as they are now, whoever wrote them."""
    db = Database(tmp_path / "m.db")
    try:
        stores = open_stores(db)
        x = make_index(stores, "Clips")
        with db.transaction() as tx:  # the previous release's rename
            tx.execute("UPDATE indexes SET name = ? WHERE id = ?", ("Films", x.id))
        assert not taken(stores, "clips")
        assert taken(stores, "FILMS")
        assert stores.indexes.get(T1, x.id) is not None
    finally:
        db.close()
