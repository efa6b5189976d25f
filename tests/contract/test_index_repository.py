"""IndexRepository contract, on SQLite and on DynamoDB (moto). Every test gets empty stores."""

from __future__ import annotations

import pytest

from mediaindex.domain.errors import ConflictError, NotFoundError, ValidationError
from mediaindex.domain.models import Index
from mediaindex.ports.stores import MetadataStores
from tests.contract.metadata_factories import T1, T2, make_index, new_test_id


def test_index_create_get_and_tenant_isolation(stores: MetadataStores) -> None:
    index = make_index(stores, "clips")

    assert index.version == 1 and index.asset_count == 0
    assert stores.indexes.get(T1, index.id) == index
    # Another tenant cannot see it, and may use the same name
    assert stores.indexes.get(T2, index.id) is None
    other = make_index(stores, "clips", tenant=T2)
    assert other.name == "clips"


def test_duplicate_index_name_in_a_tenant_is_a_conflict(stores: MetadataStores) -> None:
    make_index(stores, "clips")

    with pytest.raises(ConflictError) as err:
        make_index(stores, "clips")

    assert err.value.code == "index_name_already_exists"
    assert len(stores.indexes.list(T1, limit=10, cursor=None).data) == 1


def test_update_index_bumps_version_and_refuses_stale_writes(stores: MetadataStores) -> None:
    index = make_index(stores, "clips")

    # When it is renamed and described
    updated = stores.indexes.update(index.model_copy(update={"name": "films", "description": "d"}))

    # Then the version went up and the change reads back
    assert updated.version == index.version + 1
    got = stores.indexes.get(T1, index.id)
    assert (
        got is not None and got.name == "films" and got.description == "d" and got.version == updated.version
    )

    # When a writer still holding the old version writes, Then it loses
    with pytest.raises(ConflictError) as err:
        stores.indexes.update(index.model_copy(update={"description": "stale"}))
    assert err.value.code == "version_conflict"

    # And the old name is free again, the new one is taken
    make_index(stores, "clips")
    with pytest.raises(ConflictError) as err:
        make_index(stores, "films")
    assert err.value.code == "index_name_already_exists"


def test_rename_to_a_taken_name_is_a_conflict(stores: MetadataStores) -> None:
    make_index(stores, "a")
    b = make_index(stores, "b")

    with pytest.raises(ConflictError) as err:
        stores.indexes.update(b.model_copy(update={"name": "a"}))

    assert err.value.code == "index_name_already_exists"
    got = stores.indexes.get(T1, b.id)
    assert got is not None and got.name == "b" and got.version == b.version


def test_update_missing_index_is_not_found(stores: MetadataStores) -> None:
    ghost = Index(id=new_test_id("idx"), tenant_id=T1, name="ghost", version=1)
    with pytest.raises(NotFoundError) as err:
        stores.indexes.update(ghost)
    assert err.value.code == "index_not_found"


def test_update_of_another_tenants_index_is_not_found(stores: MetadataStores) -> None:
    index = make_index(stores, "clips")

    with pytest.raises(NotFoundError) as err:
        stores.indexes.update(index.model_copy(update={"tenant_id": T2, "description": "mine now"}))

    assert err.value.code == "index_not_found"
    got = stores.indexes.get(T1, index.id)
    assert got == index


def test_delete_index(stores: MetadataStores) -> None:
    index = make_index(stores, "clips")

    assert stores.indexes.delete(T2, index.id) is False  # not the owner
    assert stores.indexes.get(T1, index.id) == index
    assert stores.indexes.delete(T1, index.id) is True
    assert stores.indexes.get(T1, index.id) is None
    assert stores.indexes.delete(T1, index.id) is False
    make_index(stores, "clips")  # the name is free again


def test_indexes_list_newest_first_in_pages(stores: MetadataStores) -> None:
    made = [make_index(stores, f"i{n}") for n in range(5)]
    make_index(stores, "other", tenant=T2)

    first = stores.indexes.list(T1, limit=3, cursor=None)
    second = stores.indexes.list(T1, limit=3, cursor=first.next_cursor)

    assert [i.id for i in first.data + second.data] == [i.id for i in reversed(made)]
    assert first.next_cursor is not None and second.next_cursor is None
    assert [i.name for i in stores.indexes.list(T2, limit=10, cursor=None).data] == ["other"]


def test_garbage_cursor_is_a_validation_error(stores: MetadataStores) -> None:
    make_index(stores)
    for bad in ("not a cursor!", "eyJ4IjoxfQ"):  # the second is base64url of {"x":1}
        with pytest.raises(ValidationError) as err:
            stores.indexes.list(T1, limit=2, cursor=bad)
        assert err.value.code == "cursor_invalid"


def test_limit_below_one_is_a_validation_error(stores: MetadataStores) -> None:
    with pytest.raises(ValidationError):
        stores.indexes.list(T1, limit=0, cursor=None)
