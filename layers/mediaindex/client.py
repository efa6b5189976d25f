"""A small client of the public API, used by the CLI (`ingest`, `status`, `demo`). It uploads the
way any client should: straight to the signed URLs, multipart for large files."""

from __future__ import annotations

import concurrent.futures as cf
import mimetypes
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

Progress = Callable[[int, int], None]


class ApiError(Exception):
    """An error answer: the HTTP status and the API's error `code` and `message` (docs/api.md)."""

    def __init__(self, status: int, body: Any) -> None:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        err = err if isinstance(err, dict) else {}
        self.status = status
        self.code: str | None = err.get("code")
        self.message = str(err.get("message") or body or f"HTTP {status}")
        super().__init__(f"HTTP {status} {self.code or ''}: {self.message}")


class Client:
    def __init__(self, base_url: str, api_key: str, *, timeout_s: float = 60.0) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout_s
        )
        self._blob_http = httpx.Client(timeout=timeout_s)  # signed URLs carry their own auth

    def close(self) -> None:
        self._http.close()
        self._blob_http.close()

    def request(self, method: str, path: str, **kw: Any) -> Any:
        resp = self._http.request(method, path, **kw)
        body = (
            _json(resp) if resp.headers.get("content-type", "").startswith("application/json") else resp.text
        )
        if resp.status_code >= 400:
            raise ApiError(resp.status_code, body)
        return body

    def index_by_name(self, name: str, *, create: bool = True) -> dict[str, Any]:
        cursor = None
        while True:
            page = self.request(
                "GET", "/v1/indexes", params={"limit": 100, **({"cursor": cursor} if cursor else {})}
            )
            for idx in page["data"]:
                if idx["name"] == name:
                    return dict(idx)
            cursor = page["next_cursor"]
            if not cursor:
                break
        if not create:
            raise ApiError(404, {"error": {"code": "index_not_found", "message": f"no index named {name!r}"}})
        return dict(self.request("POST", "/v1/indexes", json={"name": name}))

    def find_index(self, name_or_id: str) -> dict[str, Any]:
        """The index with this id (`idx_...`) or, failing that, this name; ApiError 404 when none."""
        if name_or_id.startswith("idx_"):
            try:
                return dict(self.request("GET", f"/v1/indexes/{name_or_id}"))
            except ApiError as e:
                if e.status != 404:
                    raise
        return self.index_by_name(name_or_id, create=False)

    def list_assets(self, index_id: str) -> list[dict[str, Any]]:
        """Every asset of an index, all pages."""
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"index_id": index_id, "limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = self.request("GET", "/v1/assets", params=params)
            found += page["data"]
            cursor = page["next_cursor"]
            if not cursor:
                return found

    def get_assets(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The assets with these ids by id (batch-get, 100 a call); ids that are gone are left out."""
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), 100):
            page = self.request("POST", "/v1/assets/batch-get", json={"ids": ids[i : i + 100]})
            found.update({a["id"]: a for a in page["data"]})
        return found

    def search(self, index_id: str, query: str, *, limit: int = 10) -> list[dict[str, Any]]:
        """A text search; each hit gains `asset_name` (None for an asset deleted meanwhile)."""
        hits = self.request(
            "POST", "/v1/search", json={"index_id": index_id, "query_text": query, "limit": limit}
        )["data"]
        names = {i: a["name"] for i, a in self.get_assets(sorted({h["asset_id"] for h in hits})).items()}
        return [{**h, "asset_name": names.get(h["asset_id"])} for h in hits]

    def upload(
        self,
        index_id: str,
        path: Path,
        *,
        user_metadata: dict[str, Any] | None = None,
        progress: Progress | None = None,
        parallel_parts: int = 4,
    ) -> dict[str, Any]:
        size = path.stat().st_size
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        body = {"index_id": index_id, "name": path.name, "size_bytes": size, "content_type": ctype}
        if user_metadata:
            body["user_metadata"] = user_metadata
        created = self.request("POST", "/v1/assets", json=body)
        asset, up = created["asset"], created["upload"]
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, size)

        if up.get("multipart") is None:
            with path.open("rb") as f:
                resp = self._blob_http.put(
                    up["url"], content=_chunks(f, 0, size, advance), headers=up["headers"]
                )
            if resp.status_code >= 400:
                raise ApiError(resp.status_code, _json(resp))
            return dict(asset)
        mp = up["multipart"]
        part_size = int(mp["part_size"])
        signer = _PartSigner(self, asset["id"], mp)

        def put_part(n: int) -> dict[str, Any]:
            start = (n - 1) * part_size
            length = min(part_size, size - start)
            with path.open("rb") as f:
                resp = self._blob_http.put(
                    signer.url(n),
                    content=_chunks(f, start, length, advance),
                    headers={"Content-Length": str(length)},
                )
            if resp.status_code >= 400:
                raise ApiError(resp.status_code, _json(resp))
            return {"part_number": n, "etag": resp.headers["etag"]}

        with cf.ThreadPoolExecutor(max_workers=parallel_parts) as pool:
            parts = list(pool.map(put_part, range(1, int(mp["part_count"]) + 1)))
        return dict(self.request("POST", f"/v1/assets/{asset['id']}/upload/complete", json={"parts": parts}))

    def wait_settled(self, asset_id: str, *, timeout_s: float = 600.0, poll_s: float = 0.5) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            asset = self.request("GET", f"/v1/assets/{asset_id}")
            if asset["status"] in ("ready", "failed") or time.monotonic() > deadline:
                return dict(asset)
            time.sleep(poll_s)


class _PartSigner:
    """Part URLs as the API hands them out: the first ones come with the asset, the rest are signed
    on demand, up to 100 a call, just before their parts are sent (so none expires waiting)."""

    BATCH = 100

    def __init__(self, client: Client, asset_id: str, multipart: dict[str, Any]) -> None:
        self._client = client
        self._asset_id = asset_id
        self._count = int(multipart["part_count"])
        self._urls = {int(p["part_number"]): str(p["url"]) for p in multipart["parts"]}
        self._lock = threading.Lock()

    def url(self, n: int) -> str:
        with self._lock:
            if n not in self._urls:
                wanted = list(range(n, min(n + self.BATCH, self._count + 1)))
                signed = self._client.request(
                    "POST", f"/v1/assets/{self._asset_id}/upload/parts", json={"part_numbers": wanted}
                )
                self._urls.update({int(p["part_number"]): str(p["url"]) for p in signed["parts"]})
            return self._urls.pop(n)


def _chunks(f: Any, start: int, length: int, advance: Callable[[int], None], size: int = 1024 * 1024) -> Any:
    f.seek(start)
    left = length
    while left > 0:
        chunk = f.read(min(size, left))
        if not chunk:
            break
        left -= len(chunk)
        advance(len(chunk))
        yield chunk


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text
