"""Fixtures of the metadata repository contract suite: the six repositories of one adapter
(`stores`, a MetadataStores, parametrized over SQLite and DynamoDB), fresh for every test.

The DynamoDB client is created once per session (client creation costs ~110 ms, a table ~20 ms);
moto is imported first so the client carries moto's request hook, and every test opens its own
`mock_aws` block, so each starts from an empty, freshly created table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mediaindex.adapters.aws import dynamo
from mediaindex.adapters.aws.dynamo.schema import table_definition
from mediaindex.adapters.local import sqlite
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.ports.stores import MetadataStores

METADATA_TABLE = "mediaindex-contract"


@pytest.fixture(scope="session")
def metadata_dynamodb_client() -> Any:
    # Explicit fake credentials: the client signs before moto's hook answers the request.
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def metadata_sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(tmp_path / "metadata.db")
    yield db
    db.close()


@pytest.fixture
def sqlite_stores(metadata_sqlite_db: Database) -> MetadataStores:
    return sqlite.open_stores(metadata_sqlite_db)


@pytest.fixture
def dynamo_stores(metadata_dynamodb_client: Any) -> Iterator[MetadataStores]:
    """The repositories over a fresh table; the mock stays active for the whole test, so the test
    may also use `metadata_dynamodb_client` on METADATA_TABLE directly."""
    with mock_aws():
        metadata_dynamodb_client.create_table(**table_definition(METADATA_TABLE))
        yield dynamo.open_stores(METADATA_TABLE, metadata_dynamodb_client)


@pytest.fixture(params=["sqlite", "dynamodb"])
def stores(request: pytest.FixtureRequest) -> MetadataStores:
    name = "sqlite_stores" if request.param == "sqlite" else "dynamo_stores"
    opened: MetadataStores = request.getfixturevalue(name)
    return opened
