"""A keyed multipart create, on both runtimes: its idempotency record keeps the asset id and part
numbers, not the signed part URLs (~1.7 KB each on S3, which took a 5 GiB create's record toward
DynamoDB's 400 KB item limit); a replay re-signs the same parts. Records the previous release
wrote whole still replay as stored."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import botocore.auth
import pytest

from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.local import DATABASE_FILE
from mediaindex.services.idempotency import request_fingerprint
from tests.apiclient import Api, error_code

GiB = 1024**3
MiB = 1024**2
FIXTURES = Path(__file__).parents[1] / "fixtures" / "metadata"
RECORD_LIMIT = 4 * 1024  # "well under" DynamoDB's 400 KB item limit


def _create(api: Api, body: dict[str, Any], key: str) -> Any:
    # Sent as exact bytes, so a test can fingerprint the same body.
    return api.call(
        "POST",
        "/v1/assets",
        content=json.dumps(body).encode(),
        headers={"Idempotency-Key": key, "Content-Type": "application/json"},
    )


def _tenant(runtime: Runtime, api: Api) -> str:
    return runtime.services.keys.authenticate(api.key).tenant_id


def _dynamo_key(runtime: Runtime, tenant: str, key: str) -> dict[str, Any]:
    return {"pk": {"S": f"IDEMPOTENCY#{tenant}#{tenant}:{key}"}, "sk": {"S": "IDEMPOTENCY"}}


def _stored_size(runtime: Runtime, tenant: str, key: str) -> int:
    """Bytes the stored record takes: a DynamoDB item's names and values, or the SQLite row."""
    if runtime.aws_clients is not None:
        item = runtime.aws_clients.dynamodb.get_item(
            TableName=runtime.settings.table_name, Key=_dynamo_key(runtime, tenant, key), ConsistentRead=True
        )["Item"]
        return sum(len(name) + len(str(next(iter(value.values())))) for name, value in item.items())
    with sqlite3.connect(runtime.settings.data_dir / DATABASE_FILE) as db:
        row = db.execute(
            "SELECT tenant_id, key, doc FROM idempotency WHERE tenant_id = ? AND key = ?",
            (tenant, f"{tenant}:{key}"),
        ).fetchone()
    return sum(len(str(col)) for col in row) + 8


def _write_old_record(runtime: Runtime, tenant: str, key: str, request_hash: str, body: Any) -> None:
    """A completed record as the previous release stored it (the shape of the old-release fixtures):
    the whole response body in its doc."""
    doc = json.dumps(
        {
            "tenant_id": tenant,
            "key": f"{tenant}:{key}",
            "request_hash": request_hash,
            "status_code": 201,
            "body": body,
            "created_at": "2026-01-01T12:00:00Z",
            "expires_at": "2099-01-01T00:00:00Z",
        }
    )
    if runtime.aws_clients is not None:
        items = json.loads((FIXTURES / "dynamo_old_release.json").read_text(encoding="utf-8"))["items"]
        old = next(i for i in items if i["sk"]["S"] == "IDEMPOTENCY")
        item = {**old, **_dynamo_key(runtime, tenant, key), "doc": {"S": doc}}
        runtime.aws_clients.dynamodb.put_item(TableName=runtime.settings.table_name, Item=item)
        return
    with sqlite3.connect(runtime.settings.data_dir / DATABASE_FILE) as db:
        db.execute(
            "INSERT INTO idempotency VALUES (?, ?, ?, ?)", (tenant, f"{tenant}:{key}", 4070908800.0, doc)
        )


def _assert_signed(runtime: Runtime, api: Api, asset_id: str, multipart: dict[str, Any]) -> None:
    """Every part URL is a valid signature for its part: S3's recomputed at the URL's own signing
    time (moto checks none), the local store's by sending parts to it."""
    asset = runtime.services.assets.get(_tenant(runtime, api), asset_id)
    assert asset.upload is not None
    ttl, size = runtime.settings.upload_url_ttl_s, multipart["part_size"]
    if runtime.aws_clients is not None:
        for part in multipart["parts"]:
            signed_at = parse_qs(urlsplit(part["url"]).query)["X-Amz-Date"][0]
            at = datetime.strptime(signed_at, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(botocore.auth, "get_current_datetime", lambda at=at: at)
                again = runtime.blobs.presign_part(
                    asset.upload.key, multipart["upload_id"], part["part_number"], ttl, expected_size=size
                )
            assert again.url == part["url"], part["part_number"]
        return
    data = b"\0" * size
    first = multipart["parts"][0]["url"]
    forged = first[:-1] + ("A" if first[-1] != "A" else "B")
    assert api.put(forged, data).status_code == 403
    for part in (multipart["parts"][0], multipart["parts"][-1]):
        resp = api.put(part["url"], data)
        assert resp.status_code == 200, resp.text
        assert resp.headers["etag"]


def test_a_5_gib_keyed_multipart_create_keeps_ids_and_replays_fresh_part_urls(
    api: Api, runtime: Runtime
) -> None:
    idx = api.index("big")
    body = {"index_id": idx["id"], "name": "film.mp4", "size_bytes": 5 * GiB}
    # Given a 5 GiB multipart create sent with an Idempotency-Key
    first = _create(api, body, "big-1")
    assert first.status_code == 201, first.text
    created = first.json()
    multipart = created["upload"]["multipart"]
    assert multipart["part_count"] == 5 * GiB // multipart["part_size"]
    assert [p["part_number"] for p in multipart["parts"]] == list(range(1, 101))
    # Then its record holds ids only: far smaller than the answer, and well under 400 KB
    tenant = _tenant(runtime, api)
    size = _stored_size(runtime, tenant, "big-1")
    answer = len(first.content)
    assert size < RECORD_LIMIT < answer, (size, answer)
    print(f"idempotency record {runtime.settings.runtime}: {size} B stored for a {answer} B answer")
    # When the same create is sent again with the key
    replay = _create(api, body, "big-1")
    # Then it replays: the same asset and upload, the same parts, each URL signed anew
    assert replay.status_code == 201, replay.text
    assert replay.headers["idempotent-replayed"] == "true"
    again = replay.json()
    assert again["asset"]["id"] == created["asset"]["id"]
    assert again["asset"]["status"] == "awaiting_upload"
    replayed = again["upload"]["multipart"]
    assert {k: replayed[k] for k in ("upload_id", "part_size", "part_count")} == {
        k: multipart[k] for k in ("upload_id", "part_size", "part_count")
    }
    assert [p["part_number"] for p in replayed["parts"]] == list(range(1, 101))
    assert again["upload"]["expires_at"] >= created["upload"]["expires_at"]
    _assert_signed(runtime, api, again["asset"]["id"], replayed)
    # And the index holds one asset
    listed = api.ok("GET", "/v1/assets", params={"index_id": idx["id"]})["data"]
    assert [a["id"] for a in listed] == [created["asset"]["id"]]


def test_the_key_with_another_body_is_still_refused(api: Api) -> None:
    idx = api.index("big")
    body = {"index_id": idx["id"], "name": "film.mp4", "size_bytes": 5 * GiB}
    assert _create(api, body, "big-2").status_code == 201
    other = _create(api, {**body, "name": "other.mp4"}, "big-2")
    assert other.status_code == 409 and error_code(other) == "idempotency_key_reused"
    assert len(api.ok("GET", "/v1/assets", params={"index_id": idx["id"]})["data"]) == 1


def test_a_replay_answers_what_signing_parts_would_once_the_upload_ended(api: Api) -> None:
    idx = api.index("big")
    body = {"index_id": idx["id"], "name": "clip.mp4", "size_bytes": 100 * MiB}
    created = _create(api, body, "ended").json()
    asset_id = created["asset"]["id"]
    # Aborted: no part can be signed any more
    api.ok("DELETE", f"/v1/assets/{asset_id}/upload", 204)
    aborted = _create(api, body, "ended")
    assert aborted.status_code == 409 and error_code(aborted) == "upload_not_multipart"
    # Deleted: the asset the key created is gone
    api.ok("DELETE", f"/v1/assets/{asset_id}", 204)
    deleted = _create(api, body, "ended")
    assert deleted.status_code == 404 and error_code(deleted) == "asset_not_found"
    # And no replay created another asset
    assert api.ok("GET", "/v1/assets", params={"index_id": idx["id"]})["data"] == []


def test_a_whole_body_record_of_the_previous_release_still_replays(api: Api, runtime: Runtime) -> None:
    idx = api.index("big")
    body = {"index_id": idx["id"], "name": "film.mp4", "size_bytes": 5 * GiB}
    # Given a multipart create the previous release answered, and its record of the whole answer
    old_answer = api.ok("POST", "/v1/assets", 201, json=body)
    raw = json.dumps(body).encode()
    fingerprint = request_fingerprint("POST", "/v1/assets", raw)
    _write_old_record(runtime, _tenant(runtime, api), "old-1", fingerprint, old_answer)
    # When the client retries with that key
    replay = _create(api, body, "old-1")
    # Then the stored answer comes back as it was, and nothing runs again
    assert replay.status_code == 201, replay.text
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == old_answer
    assert len(api.ok("GET", "/v1/assets", params={"index_id": idx["id"]})["data"]) == 1
    # And another body on that key is still refused
    other = _create(api, {**body, "name": "other.mp4"}, "old-1")
    assert other.status_code == 409 and error_code(other) == "idempotency_key_reused"
