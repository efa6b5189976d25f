"""A thin test client of the public API: one tenant's key on a TestClient, JSON in and out."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.testclient import TestClient


class Api:
    def __init__(self, client: TestClient, key: str) -> None:
        self.client = client
        self.key = key
        self.headers = {"Authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kw)

    def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        resp = self.call(method, path, **kw)
        assert resp.status_code == status, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def index(self, name: str = "clips", **fields: Any) -> dict[str, Any]:
        return dict(self.ok("POST", "/v1/indexes", 201, json={"name": name, **fields}))

    def put(self, url: str, data: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        # Signed URLs carry their own authorisation: never send the API key to storage.
        return self.client.put(url, content=data, headers=headers or {})

    def upload(self, index_id: str, name: str, data: bytes, **fields: Any) -> dict[str, Any]:
        created = self.ok(
            "POST",
            "/v1/assets",
            201,
            json={"index_id": index_id, "name": name, "size_bytes": len(data), **fields},
        )
        up = created["upload"]
        resp = self.put(up["url"], data, up["headers"])
        assert resp.status_code == 200, resp.text
        return dict(created["asset"])


def error_code(resp: httpx.Response) -> str:
    body = resp.json()
    assert set(body) == {"error"}, body
    assert body["error"]["request_id"], body
    return str(body["error"]["code"])
