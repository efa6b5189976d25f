"""Deleting an index of 5,000 assets on AWS (under moto): DELETE answers 202 at once with as many
AWS calls as for an index of three assets (no purge in the request: the purge ledger noted, the
search documents dropped, the purge job kicked with an asynchronous invoke), the index and its
assets read as gone at once, and the job (functions/reconcile's purge event) finishes the purge in
budgeted runs, resuming after a crash: no item of the index or its assets left in the table, no
object under their prefixes, and the name free again.

The 5,000 assets are loaded with batch writes of the items this release writes (as
test_usage_scale.py does: a transaction per asset under moto would take minutes); three more are
made through the repositories with derivatives, segments, a running task, objects and search
documents."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ClientError
from starlette.testclient import TestClient

from functions.reconcile import handler as reconcile_handler
from mediaindex.adapters.aws.dynamo.purges import DynamoPurgeLedger
from mediaindex.adapters.aws.dynamo.table import Table
from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.aws import PURGE_EVENT
from mediaindex.bootstrap.reconcile import build_aws_purges, build_aws_reconciler
from mediaindex.domain.blob_keys import NEW_KEY_LAYOUT, derived_key, original_key
from mediaindex.domain.errors import UnavailableError
from mediaindex.domain.models import Asset, Derivative, Index, Segment, TaskState
from mediaindex.ports.search import SearchDoc, SearchFilter
from mediaindex.services.cleanup import CleanupService
from tests.apiclient import Api
from tests.aws_runtime import build_aws_test_services
from tests.contract.metadata_factories import new_test_id, start_task
from tests.functional.conftest import BASE_URL
from tests.functional.test_lambda_handlers import CTX
from tests.functional.test_usage_scale import load_counted, make_assets

pytestmark = [pytest.mark.aws, pytest.mark.slow]

ASSETS = 5_000
JOB = "mediaindex-test-reconcile"
SERVICES = ("dynamodb", "s3", "lambda", "stepfunctions")
_ASSET_ID = re.compile(r"ast_[0-9a-z]+")


class Calls:
    """Every botocore call of the runtime's clients, and the purge job's invokes (answered as Lambda
    answers an asynchronous invoke: 202, nothing run)."""

    def __init__(self, runtime: Runtime) -> None:
        assert runtime.aws_clients is not None
        self.clients = {s: runtime.aws_clients.get(s) for s in SERVICES}
        self.made: list[str] = []
        self.invokes: list[dict[str, Any]] = []
        self.fail_invoke = False
        self._hooks: list[tuple[Any, str, Callable[..., Any]]] = [
            (c, f"before-call.{c.meta.service_model.endpoint_prefix}", self._count)
            for c in self.clients.values()
        ]
        self._hooks += [
            (self.clients["lambda"], "provide-client-params.lambda.Invoke", self._invoked),
            (self.clients["lambda"], "before-call.lambda.Invoke", self._answer),
        ]
        for client, event, hook in self._hooks:
            client.meta.events.register(event, hook)

    def close(self) -> None:
        for client, event, hook in self._hooks:
            client.meta.events.unregister(event, hook)

    def _count(self, model: Any, **_: Any) -> None:
        self.made.append(f"{model.service_model.service_name}.{model.name}")

    def _invoked(self, params: dict[str, Any], **_: Any) -> None:
        self.invokes.append({**params, "Payload": json.loads(params["Payload"])})

    def _answer(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        if self.fail_invoke:
            raise ClientError({"Error": {"Code": "TooManyRequestsException"}}, "Invoke")
        return AWSResponse(params["url"], 202, HTTPHeaders(), None), {"StatusCode": 202}


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_aws_test_services(tmp_path, purge_function=JOB)
    yield runtime
    runtime.close()


@pytest.fixture
def calls(runtime: Runtime) -> Iterator[Calls]:
    calls = Calls(runtime)
    yield calls
    calls.close()


def real_assets(runtime: Runtime, index: Index, count: int) -> list[Asset]:
    """Assets made through the repositories, each with a derivative, a segment, an original and a
    derived object and a search document; the first with a running task."""
    stores, blobs = runtime.stores, runtime.blobs
    made = []
    for i in range(count):
        asset = stores.assets.create(
            Asset(
                id=new_test_id("ast"),
                tenant_id=index.tenant_id,
                index_id=index.id,
                name=f"r{i}",
                key_layout=NEW_KEY_LAYOUT,
            )
        )
        poster = derived_key(asset, "poster.jpg")
        blobs.put_bytes(
            original_key(asset.tenant_id, asset.id, "mp4", asset.key_layout), b"original", "video/mp4"
        )
        blobs.put_bytes(poster, b"poster", "image/jpeg")
        stores.outputs.replace_derivatives(
            asset.tenant_id,
            asset.id,
            ["poster"],
            [
                Derivative(
                    asset_id=asset.id, kind="poster", key=poster, content_type="image/jpeg", size_bytes=6
                )
            ],
        )
        segment = Segment(id=new_test_id("seg"), asset_id=asset.id, start=0, end=1, kind="window", text="fox")
        stores.outputs.replace_segments(asset.tenant_id, asset.id, [segment])
        runtime.search_index.upsert(
            [SearchDoc(segment.id, asset.tenant_id, index.id, asset.id, "video", 0, 1, text="quick fox")]
        )
        if i == 0:
            start_task(stores, asset, TaskState.PROCESSING)
        made.append(asset)
    return made


def table_items(runtime: Runtime) -> list[dict[str, Any]]:
    assert runtime.aws_clients is not None
    paginator = runtime.aws_clients.dynamodb.get_paginator("scan")
    return [i for page in paginator.paginate(TableName=runtime.settings.table_name) for i in page["Items"]]


def leftovers(runtime: Runtime, index: Index, asset_ids: set[str]) -> list[str]:
    """Every item naming the index or one of its assets still in the table (its keys or document:
    tasks, pointers, derivatives, counters, guards, the ledger), every object of theirs in S3."""
    found = []
    for item in table_items(runtime):
        text = repr(item)
        if index.id in text or asset_ids & set(_ASSET_ID.findall(text)):
            found.append(f"{item['pk']['S']} {item['sk']['S']}")
    for prefix in ("originals/", "derived/"):
        found += [k for k in runtime.blobs.list_keys(prefix) if asset_ids & set(k.split("/"))]
    return found


def run_job(runtime: Runtime, budget_s: float, event: dict[str, Any] | None = None) -> dict[str, Any]:
    assert runtime.aws_clients is not None
    reconcile_handler.configure(
        build_aws_reconciler(runtime.settings, clients=runtime.aws_clients),
        build_aws_purges(runtime.settings, clients=runtime.aws_clients),
        budget_s=budget_s,
    )
    result: dict[str, Any] = reconcile_handler.handler(event or dict(PURGE_EVENT), CTX)
    return result


def pending(runtime: Runtime) -> int:
    assert runtime.aws_clients is not None
    return len(
        DynamoPurgeLedger(Table(runtime.settings.table_name, runtime.aws_clients.dynamodb)).pending(limit=10)
    )


def big_index(runtime: Runtime, tenant_id: str, name: str, count: int) -> tuple[Index, set[str]]:
    index = runtime.stores.indexes.create(Index(id=new_test_id("idx"), tenant_id=tenant_id, name=name))
    loaded = make_assets(index, count)
    assert runtime.aws_clients is not None
    load_counted(Table(runtime.settings.table_name, runtime.aws_clients.dynamodb), loaded)
    real = real_assets(runtime, index, 3)
    return index, {a.id for a in loaded} | {a.id for a in real}


def test_deleting_5000_assets_answers_at_once_and_finishes_as_a_job(runtime: Runtime, calls: Calls) -> None:
    tenant, _, key = runtime.services.keys.create_key("acme")
    small, small_ids = big_index(runtime, tenant.id, "small", 0)
    index, asset_ids = big_index(runtime, tenant.id, "all", ASSETS)
    one = sorted(asset_ids)[0]
    with TestClient(build_app(runtime), base_url=BASE_URL, raise_server_exceptions=False) as client:
        api = Api(client, key)
        assert api.ok("GET", f"/v1/assets?index_id={index.id}&limit=1")["data"]

        def deleted(target: Index) -> list[str]:
            calls.made.clear()
            api.ok("DELETE", f"/v1/indexes/{target.id}", 202)
            return list(calls.made)

        small_calls, big_calls = deleted(small), deleted(index)
        # No per-asset work: as many calls as for three assets, and few.
        assert big_calls == small_calls and len(big_calls) <= 12, big_calls
        assert not {"dynamodb.BatchWriteItem", "dynamodb.Query", "s3.ListObjectsV2"} & set(big_calls), (
            big_calls
        )
        kicks = [(i["FunctionName"], i["InvocationType"], i["Payload"]) for i in calls.invokes]
        assert kicks == [(JOB, "Event", PURGE_EVENT)] * 2
        # Gone at once: the index, its assets and its search documents.
        api.ok("GET", f"/v1/indexes/{index.id}", 404)
        api.ok("GET", f"/v1/assets/{one}", 404)
        assert all(a["index_id"] != index.id for a in api.ok("GET", "/v1/assets?limit=100")["data"])
        assert runtime.search_index.text(SearchFilter(tenant.id, index.id), query="fox", k=10) == []
        assert pending(runtime) == 2

        runs = []
        while pending(runtime):
            runs.append(run_job(runtime, budget_s=5.0))
            assert len(runs) < 20, runs
        assert sum(r["purged"] for r in runs) == 2
        assert leftovers(runtime, index, asset_ids) == [] and leftovers(runtime, small, small_ids) == []
        # The name is free again.
        api.index("all")


def test_a_purge_job_that_crashes_resumes_where_it_stopped(runtime: Runtime, calls: Calls) -> None:
    """The first run ends part-way (its budget spent after one batch), the second dies mid-batch
    (S3 fails after 50 assets' listings): the next run finishes, nothing left behind. The kick failed too: the
    DELETE still answered 202, and the (scheduled) job finished it."""
    tenant, _, key = runtime.services.keys.create_key("acme")
    index, asset_ids = big_index(runtime, tenant.id, "all", 1_200)
    calls.fail_invoke = True
    with TestClient(build_app(runtime), base_url=BASE_URL, raise_server_exceptions=False) as client:
        Api(client, key).ok("DELETE", f"/v1/indexes/{index.id}", 202)
        assert len(calls.invokes) == 1 and pending(runtime) == 1  # tried, refused

        assert run_job(runtime, budget_s=0.001) == {"purged": 0}  # one batch, then out of time
        left = runtime.stores.assets.list(tenant.id, index_id=index.id, limit=2000, cursor=None).data
        assert 0 < len(left) < len(asset_ids) and pending(runtime) == 1

        listed = []

        def refuse(**_: Any) -> None:  # some assets' objects listed and deleted, then S3 fails
            listed.append(1)
            if len(listed) > 100:
                raise ClientError({"Error": {"Code": "InternalError"}}, "ListObjectsV2")

        s3 = calls.clients["s3"]
        s3.meta.events.register("before-call.s3.ListObjectsV2", refuse)
        try:
            with pytest.raises(UnavailableError):
                run_job(runtime, budget_s=60.0)
        finally:
            s3.meta.events.unregister("before-call.s3.ListObjectsV2", refuse)
        assert pending(runtime) == 1 and runtime.stores.indexes.get(tenant.id, index.id) is not None

        # The scheduled run (its sweep, then the ledger) finishes it.
        swept = run_job(
            runtime, budget_s=60.0, event={"source": "aws.events", "detail-type": "Scheduled Event"}
        )
        assert swept["purged"] == 1 and "counts" in swept
        assert pending(runtime) == 0 and leftovers(runtime, index, asset_ids) == []


def test_a_search_backend_failure_leaves_the_purge_to_the_job(
    runtime: Runtime, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropping the documents fails (logged): the DELETE still answers 202 and kicks the job."""
    tenant, _, key = runtime.services.keys.create_key("acme")
    index, asset_ids = big_index(runtime, tenant.id, "all", 10)

    def down(*_: Any) -> None:
        raise UnavailableError("search is down")

    monkeypatch.setattr(runtime.search_index, "delete_index", down)
    with TestClient(build_app(runtime), base_url=BASE_URL, raise_server_exceptions=False) as client:
        Api(client, key).ok("DELETE", f"/v1/indexes/{index.id}", 202)
        assert len(calls.invokes) == 1 and pending(runtime) == 1
        assert run_job(runtime, budget_s=60.0) == {"purged": 1}
        assert leftovers(runtime, index, asset_ids) == []


def test_the_job_needs_the_state_machine(runtime: Runtime) -> None:
    settings = runtime.settings.model_copy(update={"state_machine_arn": None})
    with pytest.raises(ValueError, match="state machine"):
        build_aws_purges(settings, clients=runtime.aws_clients)


def test_only_the_bulk_purge_runs_without_a_search_index(runtime: Runtime) -> None:
    stores = runtime.stores
    with pytest.raises(ValueError, match="bulk"):
        CleanupService(
            assets=stores.assets,
            indexes=stores.indexes,
            tasks=stores.tasks,
            blobs=runtime.blobs,
            search=None,
            orchestrator=runtime.orchestrator,
        )
