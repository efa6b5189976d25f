"""GET /v1/usage and the stored-bytes quota at 20,000 assets: a constant number of store calls on
each runtime (botocore calls under moto; SQL statements on SQLite), the same as for a tenant with
three assets, and exact numbers before and after writes through the repositories.

Under moto every TransactWriteItems deep-copies the whole table (seconds at 20k items), so the
AWS tenant's assets are loaded with batch writes: the asset items as this release writes them and
the counter shards holding what their 20k create transactions would have added (`add_usage`, the
adapter's own item builder, summed per shard). The expected numbers are counted from the assets
the test made, not read back from the stores."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mediaindex.adapters.aws.dynamo.items import asset_item, tenant_pk
from mediaindex.adapters.aws.dynamo.table import Item, Table, key, n
from mediaindex.adapters.aws.dynamo.usage import add_usage
from mediaindex.adapters.local import sqlite
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.domain.models import Asset, Derivative, Feature, FeatureState, FeatureStatus, Index, MediaType
from mediaindex.domain.quotas import QuotaExceededError, Quotas
from mediaindex.ports.assets import asset_usage
from mediaindex.ports.stores import MetadataStores
from mediaindex.services.quotas import QuotaService
from mediaindex.services.usage import UsageService, stored_bytes
from tests.apiclient import Api
from tests.contract.metadata_factories import new_test_id
from tests.functional.conftest import BASE_URL

ASSETS = 20_000
_TYPES = (MediaType.VIDEO, MediaType.AUDIO, MediaType.IMAGE, None)
_STATES = (FeatureStatus.COMPLETED, FeatureStatus.FAILED, FeatureStatus.QUEUED)


def make_assets(index: Index, count: int) -> list[Asset]:
    """Assets of every media type (and unprobed ones), sizes and feature states, stored at version 1."""
    return [
        Asset(
            id=new_test_id("ast"),
            tenant_id=index.tenant_id,
            index_id=index.id,
            name=f"a{i}",
            media_type=_TYPES[i % 4],
            size_bytes=None if i % 4 == 3 else 1000 + i,
            features={Feature.PROXY: FeatureState(state=_STATES[i % 3])},
            version=1,
        )
        for i in range(count)
    ]


class Expected:
    """GET /v1/usage's numbers, counted from the assets and derivative sizes the test holds."""

    def __init__(self, assets: list[Asset]) -> None:
        self.assets = {a.id: a for a in assets}
        self.derivatives: dict[str, int] = {}

    def usage(self) -> dict[str, Any]:
        kinds: Counter[str] = Counter()
        sizes: Counter[str] = Counter()
        runs: Counter[str] = Counter()
        for a in self.assets.values():
            kind = a.media_type.value if a.media_type else "unknown"
            kinds[kind] += 1
            sizes[kind] += a.size_bytes or 0
            runs.update(f"{f.value}.{fs.state.value}" for f, fs in a.features.items() if fs.state != "queued")
        return {
            "asset_count": len(self.assets),
            "assets_by_media_type": dict(kinds),
            "bytes_by_media_type": dict(sizes),
            "original_bytes": sum(sizes.values()),
            "derivative_bytes": sum(self.derivatives.values()),
            "feature_runs": dict(runs),
        }


def derivative(asset: Asset, size: int) -> Derivative:
    return Derivative(asset_id=asset.id, kind="poster", key="k", content_type="image/jpeg", size_bytes=size)


def write_through_repositories(stores: MetadataStores, index: Index, expected: Expected) -> None:
    """A create, derivatives of two assets (one replaced again), a pipeline update and a delete."""
    made = stores.assets.create(
        Asset(id=new_test_id("ast"), tenant_id=index.tenant_id, index_id=index.id, name="new", size_bytes=5)
    )
    expected.assets[made.id] = made
    first, second = list(expected.assets.values())[:2]
    for asset, size in ((first, 700), (second, 40), (second, 90)):
        stores.outputs.replace_derivatives(index.tenant_id, asset.id, ["poster"], [derivative(asset, size)])
        expected.derivatives[asset.id] = size
    probed = stores.assets.mutate(
        index.tenant_id,
        made.id,
        lambda a: a.model_copy(
            update={
                "media_type": MediaType.VIDEO,
                "size_bytes": 123_456,
                "features": {Feature.PREVIEW: FeatureState(state=FeatureStatus.COMPLETED)},
            }
        ),
    )
    expected.assets[made.id] = probed
    assert stores.assets.delete(index.tenant_id, first.id) is not None
    del expected.assets[first.id], expected.derivatives[first.id]


def over_quota(quotas: QuotaService, tenant_id: str, usage: dict[str, Any]) -> None:
    """The work routes are refused once the stored bytes reach the quota, counted from the counters."""
    quotas.set(tenant_id, Quotas(max_stored_bytes=stored_bytes(usage)))
    with pytest.raises(QuotaExceededError) as err:
        quotas.admit(tenant_id, "POST", "/v1/assets")
    assert err.value.field == "max_stored_bytes"
    quotas.set(tenant_id, Quotas(max_stored_bytes=stored_bytes(usage) + 1))
    quotas.admit(tenant_id, "POST", "/v1/assets")


# AWS: the HTTP API over DynamoDB under moto -------------------------------------------------------------
def load_counted(table: Table, assets: list[Asset]) -> None:
    """The asset items and counter shards that `assets`' create transactions would leave."""
    table.batch_put([asset_item(a) for a in assets])
    shards: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for a in assets:
        for tx in add_usage(table, a, asset_usage(a)):
            update = tx["Update"]
            where = (update["Key"]["pk"]["S"], update["Key"]["sk"]["S"])
            for mark, name in update["ExpressionAttributeNames"].items():
                shards[where][name] += int(update["ExpressionAttributeValues"][":" + mark[1:]]["N"])
    shard_items: list[Item] = []
    for (pk, sk), counts in shards.items():
        assert pk == tenant_pk(assets[0].tenant_id)
        shard_items.append({**key(pk, sk), **{name: n(v) for name, v in counts.items()}})
    table.batch_put(shard_items)


@pytest.fixture
def aws_runtime(tmp_path: Path) -> Iterator[Runtime]:
    aws = pytest.importorskip("tests.aws_runtime", reason="the AWS test runtime is not built yet")
    runtime = aws.build_aws_test_services(tmp_path)
    yield runtime
    runtime.close()


@pytest.mark.aws
@pytest.mark.slow
def test_usage_of_20k_assets_on_aws_costs_what_3_assets_cost(aws_runtime: Runtime) -> None:
    runtime = aws_runtime
    assert runtime.aws_clients is not None
    dynamodb = runtime.aws_clients.dynamodb
    big_tenant, _, big_key = runtime.services.keys.create_key("acme")
    small_tenant, _, small_key = runtime.services.keys.create_key("globex")
    big_index = runtime.stores.indexes.create(
        Index(id=new_test_id("idx"), tenant_id=big_tenant.id, name="all")
    )
    small_index = runtime.stores.indexes.create(
        Index(id=new_test_id("idx"), tenant_id=small_tenant.id, name="s")
    )
    table = Table(runtime.settings.table_name, dynamodb)
    big, small = Expected(make_assets(big_index, ASSETS)), Expected(make_assets(small_index, 3))
    load_counted(table, list(big.assets.values()))
    load_counted(table, list(small.assets.values()))

    calls: list[str] = []
    dynamodb.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))

    def served(api: Api) -> tuple[dict[str, Any], list[str]]:
        calls.clear()
        body = dict(api.ok("GET", "/v1/usage"))
        return {k: v for k, v in body.items() if k != "quotas"}, list(calls)

    with TestClient(build_app(runtime), base_url=BASE_URL, raise_server_exceptions=False) as client:
        big_api, small_api = Api(client, big_key), Api(client, small_key)
        # The first read of each tenant walks it once for assets an earlier release wrote (none)
        assert served(big_api)[0] == big.usage()
        assert served(small_api)[0] == small.usage()

        counted, big_calls = served(big_api)
        small_counted, small_calls = served(small_api)
        assert counted == big.usage() and counted["asset_count"] == ASSETS
        assert small_counted == small.usage()
        assert big_calls == small_calls and len(big_calls) <= 10, big_calls

        write_through_repositories(runtime.stores, big_index, big)
        counted, after_calls = served(big_api)
        assert counted == big.usage() and counted["derivative_bytes"] == 90
        assert after_calls == big_calls

        calls.clear()
        over_quota(runtime.services.quotas, big_tenant.id, counted)
        assert "Scan" not in calls and len(calls) <= 12, calls


# Local: the services over SQLite ---------------------------------------------------------------------------
def test_usage_of_20k_assets_on_sqlite_runs_the_statements_of_3_assets(tmp_path: Path) -> None:
    db = Database(tmp_path / "metadata.db")
    stores = sqlite.open_stores(db)
    usage = UsageService(stores.assets, stores.outputs, stores.indexes, stores.tasks)
    quotas = QuotaService(stores.keys, usage, Quotas())
    big_index = stores.indexes.create(Index(id=new_test_id("idx"), tenant_id="ten_big", name="all"))
    small_index = stores.indexes.create(Index(id=new_test_id("idx"), tenant_id="ten_small", name="s"))
    big, small = Expected(make_assets(big_index, ASSETS)), Expected(make_assets(small_index, 3))
    with db.transaction():  # one commit for the 20k creates (each is a savepoint inside it)
        for a in [*big.assets.values(), *small.assets.values()]:
            stores.assets.create(a.model_copy(update={"version": 0}))

    statements: list[str] = []
    db.connection().set_trace_callback(statements.append)

    def served(tenant_id: str) -> tuple[dict[str, Any], list[str]]:
        statements.clear()
        counted = usage.usage(tenant_id)
        quotas.uses(tenant_id, stored_bytes=stored_bytes(counted))
        return counted, list(statements)

    assert served("ten_big")[0] == big.usage()  # the first read of a tenant is its backfill
    assert served("ten_small")[0] == small.usage()
    counted, big_statements = served("ten_big")
    small_counted, small_statements = served("ten_small")
    assert counted == big.usage() and counted["asset_count"] == ASSETS and small_counted == small.usage()
    assert len(big_statements) == len(small_statements) <= 10, big_statements

    write_through_repositories(stores, big_index, big)
    counted, after = served("ten_big")
    assert counted == big.usage() and len(after) == len(big_statements)

    statements.clear()
    over_quota(quotas, "ten_big", counted)
    assert not any("FROM assets" in sql for sql in statements), statements
    db.close()
