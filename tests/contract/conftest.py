"""Fixtures of the MetadataStore contract suite: one store per adapter, fresh for every test.

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

from mediaindex.adapters.aws.dynamo_schema import table_definition
from mediaindex.adapters.aws.dynamo_store import DynamoMetadataStore
from mediaindex.adapters.local.sqlite_db import Database
from mediaindex.adapters.local.sqlite_store import SqliteMetadataStore
from mediaindex.ports.metadata import MetadataStore

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
def metadata_sqlite_store(metadata_sqlite_db: Database) -> SqliteMetadataStore:
    return SqliteMetadataStore(metadata_sqlite_db)


@pytest.fixture
def metadata_dynamo_store(metadata_dynamodb_client: Any) -> Iterator[DynamoMetadataStore]:
    with mock_aws():
        metadata_dynamodb_client.create_table(**table_definition(METADATA_TABLE))
        yield DynamoMetadataStore(METADATA_TABLE, metadata_dynamodb_client)


@pytest.fixture(params=["sqlite", "dynamodb"])
def metadata_store(request: pytest.FixtureRequest) -> MetadataStore:
    name = "metadata_sqlite_store" if request.param == "sqlite" else "metadata_dynamo_store"
    store: MetadataStore = request.getfixturevalue(name)
    return store
