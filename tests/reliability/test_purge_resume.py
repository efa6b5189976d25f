"""SIGKILL the real server in the middle of an index purge, start it again, and check that the
purge resumes and ends: no asset readable or counted, no file left, the name free again.

Before purges were durable jobs, a kill -9 during the delete of a 3,000-asset index left 1,616
assets readable and counted in usage, their files on disk, and the name answering 409 for good."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import LiveServer

ASSETS = 240
# Not media: probe fails it at once, so the pipeline's share of the one worker stays small.
PAYLOAD = b"mediaindex purge test " * 8


def _originals(data_dir: Path) -> list[Path]:
    root = data_dir / "blobs" / "objects" / "originals"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _count(server: LiveServer, sql: str, *args: Any) -> int:
    return int(server.db_rows(sql, *args)[0][0])


def _create(api: httpx.Client, index_id: str, i: int) -> str:
    resp = api.post(
        "/v1/assets", json={"index_id": index_id, "name": f"clip-{i:04d}.mp4", "size_bytes": len(PAYLOAD)}
    )
    assert resp.status_code == 201, resp.text
    out = resp.json()
    put = httpx.put(out["upload"]["url"], content=PAYLOAD, headers=out["upload"]["headers"], timeout=30)
    assert put.status_code == 200, put.text
    return str(out["asset"]["id"])


def _wait(cond: Any, timeout_s: float, what: str) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if cond():
            return time.monotonic() - t0
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.slow
def test_kill9_mid_purge_resumes_and_frees_everything(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    # Small batches: the purge claims its job many times, so the kill lands between two of them
    # or inside one, never before the first or after the last.
    server = LiveServer(tmp_path / "data", logs, MEDIAINDEX_PURGE_BATCH_ASSETS="4")
    try:
        server.start(create_key="acme")
        with server.client() as api:
            # Given an index of a few hundred assets, each with its original on disk
            idx = api.post("/v1/indexes", json={"name": "doomed", "default_features": ["proxy"]}).json()
            with ThreadPoolExecutor(8) as pool:
                ids = list(pool.map(lambda i: _create(api, idx["id"], i), range(ASSETS)))
            _wait(
                lambda: not api.get("/v1/tasks/active", params={"limit": 1}).json()["data"],
                120,
                "the pipeline to settle",
            )
            assert len(_originals(server.data_dir)) == ASSETS
            assert api.get("/v1/usage").json()["asset_count"] == ASSETS
            oldest = ids[0]  # listed last, so purged last

            # When the index is deleted
            assert api.delete(f"/v1/indexes/{idx['id']}").status_code == 202
            # Then at once its assets are neither readable, listed nor counted, though still stored
            assert _count(server, "SELECT count(*) FROM assets WHERE id = ?", oldest) == 1
            assert api.get(f"/v1/assets/{oldest}").status_code == 404
            assert api.post("/v1/assets/batch-get", json={"ids": [oldest]}).json()["not_found_ids"] == [
                oldest
            ]
            assert api.get("/v1/assets").json()["data"] == []
            assert api.get("/v1/usage").json()["asset_count"] == 0
            assert api.post("/v1/indexes", json={"name": "doomed"}).status_code == 409  # not yet free

        # And the server is killed with SIGKILL in the middle of the purge
        _wait(
            lambda: 0 < _count(server, "SELECT count(*) FROM assets") < ASSETS - 20,
            60,
            "the purge to get going",
        )
        server.kill9()
        left = _count(server, "SELECT count(*) FROM assets")
        files_left = len(_originals(server.data_dir))
        assert 0 < left < ASSETS, left
        assert _count(server, "SELECT count(*) FROM purge_jobs") == 1

        # Then a restart resumes the purge and finishes it
        t0 = time.monotonic()
        server.start()
        _wait(lambda: _count(server, "SELECT count(*) FROM purge_jobs") == 0, 120, "the purge to finish")
        resumed_s = time.monotonic() - t0
        assert _count(server, "SELECT count(*) FROM assets") == 0
        assert _count(server, "SELECT count(*) FROM indexes WHERE id = ?", idx["id"]) == 0
        assert _originals(server.data_dir) == []
        with server.client() as api:
            assert api.get(f"/v1/assets/{oldest}").status_code == 404
            assert api.get("/v1/usage").json()["asset_count"] == 0
            # And the name is free again
            again = api.post("/v1/indexes", json={"name": "doomed"})
            assert again.status_code == 201, again.text
        print(
            f"purge kill -9: {ASSETS} assets, killed with {left} assets and {files_left} originals left;"
            f" restart to purged: {resumed_s:.1f} s; 0 assets, 0 files, name free"
        )
    finally:
        server.stop()


def test_aws_purge_runs_in_bounded_batches_and_the_sweep_finishes_it(tmp_path: Path) -> None:
    """The deployed AWS path (no worker pool: DynamoDB, S3 under moto): DELETE purges inline for
    at most its budget, a ledger item remembers the rest, and the sweep (`resume_purges`, run at
    start-up) finishes it."""
    aws = pytest.importorskip("tests.aws_runtime")
    from starlette.testclient import TestClient

    from mediaindex.adapters.aws.dynamo.purges import DynamoPurgeLedger
    from mediaindex.adapters.aws.dynamo.table import Table
    from mediaindex.bootstrap.app import build_app
    from tests.apiclient import Api

    # A budget of 0 s: the DELETE request runs one batch of 5 and leaves the rest
    runtime = aws.build_aws_test_services(tmp_path, purge_inline_budget_s=0, purge_batch_assets=5)
    try:
        with TestClient(
            build_app(runtime, close_on_shutdown=False), base_url="http://127.0.0.1:8000"
        ) as client:
            api = Api(client, runtime.services.keys.create_key("acme")[2])
            tenant = runtime.services.keys.authenticate(api.key).tenant_id

            def originals_of(tenant_id: str) -> list[str]:  # in either key layout
                return [k for k in runtime.blobs.list_keys("originals/") if tenant_id in k.split("/")]

            idx = api.index("doomed")
            ids = [api.upload(idx["id"], f"a{i}.mp4", PAYLOAD)["id"] for i in range(23)]
            assert len(originals_of(tenant)) == 23
            ledger = DynamoPurgeLedger(Table(runtime.settings.table_name, runtime.aws_clients.dynamodb))

            assert api.call("DELETE", f"/v1/indexes/{idx['id']}").status_code == 202
            left = len(originals_of(tenant))
            assert left == 23 - 5
            assert [(p.tenant_id, p.index_id) for p in ledger.pending(limit=10)] == [(tenant, idx["id"])]
            # Hidden while the rest waits: not readable, listed or counted; the name still taken
            assert api.call("GET", f"/v1/assets/{ids[0]}").status_code == 404
            assert api.ok("GET", "/v1/assets")["data"] == []
            assert api.ok("GET", "/v1/usage")["asset_count"] == 0
            assert api.call("POST", "/v1/indexes", json={"name": "doomed"}).status_code == 409

            # The sweep finishes it
            assert runtime.services.indexes.resume_purges(budget_s=60) == 1
            assert ledger.pending(limit=10) == []
            assert originals_of(tenant) == []
            assert runtime.stores.indexes.get(tenant, idx["id"]) is None
            assert all(runtime.stores.assets.get(tenant, a) is None for a in ids)
            api.index("doomed")  # the name is free again
            print(f"aws purge: 23 assets, 5 inline, {left} left to the sweep, swept to 0")
    finally:
        runtime.close()
