"""KeyRepository's quotas and request windows on SQLite and DynamoDB: quotas read back as written,
and a window admits exactly its limit, on DynamoDB across separate repository instances (each
Lambda instance has its own)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.stub import Stubber

from mediaindex.adapters.aws import dynamo
from mediaindex.adapters.aws.dynamo.quotas import DynamoQuotas
from mediaindex.adapters.aws.dynamo.table import TX_CONFLICT_ATTEMPTS, Table
from mediaindex.domain.quotas import Quotas
from mediaindex.ports.stores import MetadataStores
from tests.contract.conftest import METADATA_TABLE
from tests.contract.metadata_factories import T1, T2

WINDOW = 1_900_000_020


def test_quotas_read_back_per_tenant(stores: MetadataStores) -> None:
    assert stores.keys.get_quotas(T1) is None

    stores.keys.put_quotas(T1, Quotas(max_stored_bytes=10, max_media_hours_per_day=1.5))
    stores.keys.put_quotas(T1, Quotas(max_concurrent_tasks=2))

    assert stores.keys.get_quotas(T1) == Quotas(max_concurrent_tasks=2)
    assert stores.keys.get_quotas(T2) is None


def test_a_window_admits_its_limit_per_tenant(stores: MetadataStores) -> None:
    admitted = [stores.keys.count_request(T1, WINDOW, 3) for _ in range(5)]

    assert admitted == [True, True, True, False, False]
    assert stores.keys.requests_counted(T1, WINDOW) == 3
    assert stores.keys.count_request(T2, WINDOW, 3)  # another tenant
    assert stores.keys.count_request(T1, WINDOW + 60, 3)  # the next window
    assert stores.keys.requests_counted(T1, WINDOW + 60) == 1


def test_dynamo_windows_are_shared_by_every_instance(
    dynamo_stores: MetadataStores, metadata_dynamodb_client: Any
) -> None:
    # Four "Lambda instances", each with its own repositories over the one table
    instances = [dynamo.open_stores(METADATA_TABLE, metadata_dynamodb_client) for _ in range(4)]

    # Interleaved, not threaded: moto applies a conditional update without DynamoDB's per-item
    # atomicity, so concurrent calls would test moto. What is tested is that every instance counts
    # into, and is refused by, the one window item.
    admitted = [instances[i % 4].keys.count_request(T1, WINDOW, 10) for i in range(24)]

    assert admitted == [True] * 10 + [False] * 14
    assert dynamo_stores.keys.requests_counted(T1, WINDOW) == 10


def _cancelled(code: str) -> dict[str, Any]:
    return {
        "service_error_code": "TransactionCanceledException",
        "service_message": "Transaction cancelled",
        "response_meta": {},
        "modeled_fields": {"CancellationReasons": [{"Code": code}]},
    }


def test_a_window_write_that_lost_a_race_is_retried_and_a_full_window_is_not() -> None:
    # DynamoDB cancels a transaction that races another on the same item (moto never does).
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    # No botocore retries: each stubbed answer is one attempt of the adapter's own loop.
    client = session.client(
        "dynamodb", region_name="us-east-1", config=Config(retries={"total_max_attempts": 1})
    )
    quotas = DynamoQuotas(Table("t", client))
    with Stubber(client) as stub:
        stub.add_client_error("transact_write_items", **_cancelled("TransactionConflict"))
        stub.add_response("transact_write_items", {})
        stub.add_client_error("transact_write_items", **_cancelled("ConditionalCheckFailed"))

        assert quotas.count_request(T1, WINDOW, 5) is True  # retried after the conflict
        assert quotas.count_request(T1, WINDOW, 5) is False  # the window is full: no retry
        for _ in range(TX_CONFLICT_ATTEMPTS):
            stub.add_client_error("transact_write_items", **_cancelled("TransactionConflict"))
        assert quotas.count_request(T1, WINDOW, 5) is False  # refused after losing every race
        stub.assert_no_pending_responses()
