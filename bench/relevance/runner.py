"""Runs the relevance queries against a fresh local runtime and collects the raw material a fusion
designer needs, as one JSON-able dict:

- the hybrid API results: POST /v1/search, transcription only, limit 20, threshold 0 (nothing cut);
- BM25 alone: the runtime's SearchIndex `.text(flt, query, k=100)`;
- vector alone: `.knn(flt, modality="transcription", ...)` of the runtime's own query encoder;

all three over the very segments the service indexed. The runtime is built in-process in a temp data
dir with the default models (Whisper, MiniLM), every corpus file is ingested through the public API
(create asset, PUT to the signed URL, wait until ready), and the data dir is deleted afterwards:
nothing of mediaindex's state is reused between runs, only the generated media (corpus.py)."""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from bench.relevance.corpus import DEFAULT_CACHE, Corpus, load_or_build
from bench.relevance.queries import QUERIES, Query
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from mediaindex.ml.query_encoder import ModelQueryEncoder
from mediaindex.ports.query_encoder import QueryEncoder
from mediaindex.ports.search import SearchFilter, SearchHit, SearchIndex
from mediaindex.settings import Settings

HOST, PORT = "127.0.0.1", 8000  # signed URLs name the app's base URL; the TestClient answers it
API_LIMIT = 20
BASELINE_K = 100
READY_TIMEOUT_S = 900.0


class IngestError(RuntimeError):
    pass


class _Api:
    """The public API over an in-process TestClient, as one tenant."""

    def __init__(self, client: TestClient, key: str) -> None:
        self._client = client
        self._headers = {"Authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        resp = self._client.request(method, path, headers=self._headers, **kw)
        if resp.status_code != expect:
            raise IngestError(f"{method} {path}: {resp.status_code} {resp.text[:500]}")
        return resp.json() if resp.content else None

    def put(self, url: str, data: bytes, headers: dict[str, str]) -> None:
        resp = self._client.put(url, content=data, headers=headers)  # signed: no API key
        if resp.status_code != 200:
            raise IngestError(f"PUT to the signed URL: {resp.status_code} {resp.text[:500]}")


def collect(
    corpus: Corpus | None = None, queries: tuple[Query, ...] = QUERIES, *, workers: int = 2
) -> dict[str, Any]:
    """Ingests the corpus into a fresh runtime and runs every query three ways (module docstring)."""
    corpus = corpus or load_or_build()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="relevance-") as tmp:
        settings = Settings(
            data_dir=Path(tmp), host=HOST, port=PORT, workers=workers, rate_limit_per_minute=0
        )
        runtime = build_local(settings, start_workers=True)
        try:
            with TestClient(build_app(runtime), base_url=settings.base_url) as client:
                tenant, _, key = runtime.services.keys.create_key("relevance")
                api = _Api(client, key)
                index = api.call(
                    "POST",
                    "/v1/indexes",
                    201,
                    json={"name": "relevance", "default_features": ["transcription", "embedding"]},
                )
                assets = _ingest(api, index["id"], corpus)
                ingest_s = time.perf_counter() - t0
                flt = SearchFilter(tenant_id=tenant.id, index_id=index["id"])
                assert runtime.runner is not None  # the local runtime runs its pipeline in-process
                # The encoder the service is built with, over the same loaded models.
                encoder = ModelQueryEncoder(runtime.runner.models)
                t1 = time.perf_counter()
                rows = [
                    _query(api, runtime.search_index, encoder, flt, index["id"], q, assets) for q in queries
                ]
                query_s = time.perf_counter() - t1
        finally:
            runtime.close()
    return {
        "meta": {
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "corpus_hash": corpus.spec_hash,
            "corpus_files": len(corpus.files),
            "corpus_duration_s": round(corpus.duration, 1),
            "whisper_model": settings.whisper_model,
            "ingest_s": round(ingest_s, 1),
            "query_s": round(query_s, 1),
            "queries": len(queries),
            "api_limit": API_LIMIT,
            "baseline_k": BASELINE_K,
            "machine": platform.node(),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        },
        "assets": assets,
        "queries": rows,
    }


def _ingest(api: _Api, index_id: str, corpus: Corpus) -> dict[str, Any]:
    """Uploads every file (all at once, as a user would), then waits for each to be ready."""
    pending: dict[str, str] = {}
    for f in corpus.files:
        data = f.path.read_bytes()
        created = api.call(
            "POST",
            "/v1/assets",
            201,
            json={
                "index_id": index_id,
                "name": f.path.name,
                "size_bytes": len(data),
                "content_type": f.content_type,
                "user_metadata": {"corpus_key": f.key},
            },
        )
        api.put(created["upload"]["url"], data, created["upload"]["headers"])
        pending[f.key] = created["asset"]["id"]
    deadline = time.monotonic() + READY_TIMEOUT_S
    out: dict[str, Any] = {}
    for f in corpus.files:
        asset_id = pending[f.key]
        while (asset := api.call("GET", f"/v1/assets/{asset_id}"))["status"] == "processing":
            if time.monotonic() > deadline:
                raise IngestError(f"{f.key} ({asset_id}) not ready after {READY_TIMEOUT_S:.0f} s")
            time.sleep(0.5)
        if asset["status"] != "ready":
            raise IngestError(f"{f.key} ({asset_id}) ended {asset['status']}: {asset['features']}")
        transcript = api.call("GET", f"/v1/assets/{asset_id}/transcript")
        out[f.key] = {
            "asset_id": asset_id,
            "file": f.path.name,
            "content_type": f.content_type,
            "voice": f.voice,
            "speed": f.speed,
            "duration": f.duration,
            "sentences": [asdict(s) for s in f.sentences],
            "transcript": " ".join(s["text"].strip() for s in transcript["segments"]),
            "segments": _segments(api, asset_id),
        }
    return out


def _segments(api: _Api, asset_id: str) -> list[dict[str, Any]]:
    segs: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", f"/v1/assets/{asset_id}/segments", params=params)
        segs += [{k: s.get(k) for k in ("id", "start", "end", "kind", "text")} for s in page["data"]]
        if not (cursor := page.get("next_cursor")):
            return segs


def _hit(h: SearchHit) -> dict[str, Any]:
    return {
        "asset_id": h.asset_id,
        "segment_id": h.segment_id,
        "start": h.start,
        "end": h.end,
        "score": round(h.score, 6),
        "text": h.text,
    }


def _query(
    api: _Api,
    search_index: SearchIndex,
    encoder: QueryEncoder,
    flt: SearchFilter,
    index_id: str,
    q: Query,
    assets: dict[str, Any],
) -> dict[str, Any]:
    body = {
        "index_id": index_id,
        "query_text": q.text,
        "search_options": ["transcription"],
        "limit": API_LIMIT,
        "threshold": 0,
    }
    hybrid = api.call("POST", "/v1/search", json=body)["data"]
    bm25 = search_index.text(flt, query=q.text, k=BASELINE_K)
    encoded = encoder.transcript_text(q.text)
    vector = (
        search_index.knn(flt, modality="transcription", model_id=encoded[0], vector=encoded[1], k=BASELINE_K)
        if encoded
        else []
    )
    truth: dict[str, Any] = {"asset_id": None, "start": None, "end": None}
    if q.file is not None:
        asset = assets[q.file]
        truth["asset_id"] = asset["asset_id"]
        if q.sentence is not None:
            s = asset["sentences"][q.sentence]
            truth.update(start=s["start"], end=s["end"], text=s["text"])
    return {
        **asdict(q),
        "truth": truth,
        "hybrid": [
            {k: h.get(k) for k in ("asset_id", "segment_id", "start", "end", "score", "scores", "text")}
            for h in hybrid
        ],
        "bm25": [_hit(h) for h in bm25],
        "vector": [_hit(h) for h in vector],
    }


def save(raw: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(raw, indent=1))


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def main(argv: list[str] | None = None) -> None:
    """`python -m bench.relevance.runner [OUT.json] [--cache DIR]`: writes the raw material only."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("out", nargs="?", type=Path, default=Path("/tmp/relevance-raw.json"))
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = ap.parse_args(argv)
    raw = collect(load_or_build(args.cache))
    save(raw, args.out)
    print(json.dumps({"raw": str(args.out), **raw["meta"]}))


if __name__ == "__main__":
    main()
