"""Search through the service (nomination by BM25 and k-NN, fusion, overlap merge, liveness checks,
paging) over the embedded index, at a given number of transcript segments; the raw k-NN call on
the same index beside it, so the ratio shows what the service adds.

    .venv/bin/python -m bench.search_service_bench [--segments 100000] [--queries 60]

Prints one JSON line: p50/p95 of the service and of the bare k-NN, their ratio, and the load."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "layers")]

from mediaindex.adapters.local.embedded_search import EmbeddedSearchIndex  # noqa: E402
from mediaindex.domain.models import Asset, Index, MediaType  # noqa: E402
from mediaindex.domain.search import SearchRequest  # noqa: E402
from mediaindex.ports.blobs import SignedRequest  # noqa: E402
from mediaindex.ports.query_encoder import ImageInput, QueryEncoder  # noqa: E402
from mediaindex.ports.search import SearchDoc, SearchFilter  # noqa: E402
from mediaindex.services.search import SearchService  # noqa: E402

DIM = 384
MODEL = "minilm:bench"
WORDS = [f"word{i}" for i in range(3000)]
PER_ASSET = 120  # segments per asset


class Metadata:
    def __init__(self) -> None:
        self.index = Index(id="idx_bench", tenant_id="ten_bench", name="bench")

    def get(self, tenant_id: str, some_id: str) -> Any:
        if some_id.startswith("idx_"):
            return self.index
        return Asset(
            id=some_id, tenant_id=tenant_id, index_id="idx_bench", name="a", media_type=MediaType.VIDEO
        )

    def get_many(self, tenant_id: str, asset_ids: list[str]) -> dict[str, Asset]:
        return {a: self.get(tenant_id, a) for a in asset_ids}


class Blobs:
    def presign_get(self, key: str, expires_s: int, **_: Any) -> SignedRequest:
        return SignedRequest("GET", f"https://blobs/{key}", datetime(2030, 1, 1, tzinfo=UTC))


class Encoder(QueryEncoder):
    """No CLIP; a random unit vector for each transcript query."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def visual_text(self, text: str) -> None:
        return None

    def visual_image(self, image: ImageInput) -> None:
        return None

    def transcript_text(self, text: str) -> tuple[str, list[float]]:
        v = self.rng.normal(size=DIM)
        return MODEL, [float(x) for x in v / np.linalg.norm(v)]


def build(path: Path, n: int, rng: np.random.Generator) -> EmbeddedSearchIndex:
    index = EmbeddedSearchIndex(path)
    centres = rng.normal(size=(200, DIM)).astype(np.float32)
    for start in range(0, n, 5000):
        count = min(5000, n - start)
        vecs = centres[rng.integers(0, 200, size=count)] + 0.5 * rng.normal(size=(count, DIM)).astype(
            np.float32
        )
        docs = []
        for i in range(count):
            seg = start + i
            text = " ".join(WORDS[j] for j in rng.integers(0, len(WORDS), size=12))
            docs.append(
                SearchDoc(
                    f"seg_{seg:08d}", "ten_bench", "idx_bench", f"ast_{seg // PER_ASSET:06d}", "video",
                    float(seg % PER_ASSET) * 5, float(seg % PER_ASSET) * 5 + 4.5, text, None, {},
                    vectors={"transcription": (MODEL, vecs[i].tolist())},
                )
            )  # fmt: skip
        index.upsert(docs)
    return index


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--segments", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument(
        "--reopen",
        action="store_true",
        help="close and open the index before measuring (as after a restart: its blocks compacted)",
    )
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        index = build(Path(tmp), args.segments, rng)
        if args.reopen:
            index.close()
            index = EmbeddedSearchIndex(Path(tmp))
        meta = Metadata()
        encoder = Encoder(rng)
        service = SearchService(
            indexes=meta,
            assets=meta,
            outputs=meta,
            index=index,
            encoder=encoder,
            blobs=Blobs(),  # type: ignore[arg-type]
        )
        flt = SearchFilter(tenant_id="ten_bench", index_id="idx_bench")
        svc, knn = [], []
        for q in range(args.queries):
            words = " ".join(WORDS[j] for j in rng.integers(0, len(WORDS), size=3))
            # threshold 0: the same work whatever the scores, so releases compare like for like
            request = SearchRequest(
                index_id="idx_bench",
                query_text=f"{words} {q}",
                search_options=["transcription"],
                threshold=0.0,
            )
            t0 = time.perf_counter()
            service.search("ten_bench", request)
            svc.append(time.perf_counter() - t0)
            _, vec = encoder.transcript_text(words)
            t0 = time.perf_counter()
            index.knn(flt, modality="transcription", model_id=MODEL, vector=vec, k=100)
            knn.append(time.perf_counter() - t0)
        index.close()
    svc_p50, knn_p50 = statistics.median(svc), statistics.median(knn)
    out = {
        "bench": "search_service",
        "segments": args.segments,
        "reopened": args.reopen,
        "service_p50_ms": round(svc_p50 * 1000, 2),
        "service_p95_ms": round(sorted(svc)[int(len(svc) * 0.95) - 1] * 1000, 2),
        "knn_p50_ms": round(knn_p50 * 1000, 2),
        "ratio_service_to_knn": round(svc_p50 / knn_p50, 2),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
