"""Embedded search benchmark: k-NN latency (p50/p99), recall@10 against exact numpy search, BM25
latency and indexing rate, at the sizes asked for; plain numpy exact search beside it as the floor.

    .venv/bin/python bench/search_bench.py --sizes 10000 100000 --dims 384 512
    .venv/bin/python bench/search_bench.py --sizes 1000000 --dims 384      # slow on 2 cores

Prints one JSON object. The data: unit vectors around 200 random centres (so neighbours are not
all ties), spread over two tenants (90% / 10%), so every query also pays for the tenant filter."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from mediaindex.adapters.local.embedded_search import EmbeddedSearchIndex
from mediaindex.ports.search import SearchDoc, SearchFilter

WORDS = [f"w{i}" for i in range(2000)]


def make_vectors(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.normal(size=(200, dim)).astype(np.float32)
    v = centres[rng.integers(0, 200, size=n)] + 0.5 * rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def pct(xs: list[float], p: float) -> float:
    return round(float(np.percentile(np.asarray(xs) * 1000, p)), 3)


def run(n: int, dim: int, queries: int, seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    vecs = make_vectors(n, dim, rng)
    tenants = np.where(rng.random(n) < 0.9, "ten_a", "ten_b")
    with tempfile.TemporaryDirectory() as tmp:
        index = EmbeddedSearchIndex(Path(tmp))
        t0 = time.perf_counter()
        batch = 1000
        for i in range(0, n, batch):
            docs = [
                SearchDoc(
                    segment_id=f"seg_{j}",
                    tenant_id=str(tenants[j]),
                    index_id="idx_1",
                    asset_id=f"ast_{j // 20}",
                    media_type="video",
                    start=float(j % 20),
                    end=float(j % 20 + 1),
                    text=" ".join(rng.choice(WORDS, size=12)),
                    vectors={"visual": ("model", vecs[j])},
                )
                for j in range(i, min(n, i + batch))
            ]
            index.upsert(docs)
        index_s = time.perf_counter() - t0

        flt = SearchFilter(tenant_id="ten_a", index_id="idx_1")
        mask = tenants == "ten_a"
        own = vecs[mask]
        own_ids = np.flatnonzero(mask)
        qs = make_vectors(queries, dim, rng)
        lat, floor, recalls, text_lat = [], [], [], []
        for q in qs:
            t = time.perf_counter()
            hits = index.knn(flt, modality="visual", model_id="model", vector=q, k=10)
            lat.append(time.perf_counter() - t)
            t = time.perf_counter()
            s = own @ q
            top = np.argpartition(-s, 10)[:10]
            exact = set(own_ids[top[np.argsort(-s[top])]].tolist())
            floor.append(time.perf_counter() - t)
            got = {int(h.segment_id[4:]) for h in hits}
            recalls.append(len(got & exact) / 10)
        for _ in range(min(queries, 50)):
            t = time.perf_counter()
            index.text(flt, query=" ".join(rng.choice(WORDS, size=3)), k=10)
            text_lat.append(time.perf_counter() - t)
        index.close()
        # Reopening loads every vector back from SQLite: the start-up cost of the embedded index.
        t = time.perf_counter()
        EmbeddedSearchIndex(Path(tmp)).close()
        load_s = time.perf_counter() - t
    return {
        "segments": n,
        "dim": dim,
        "searched_rows": int(mask.sum()),
        "index_docs_per_s": round(n / index_s),
        "load_s": round(load_s, 2),
        "knn_p50_ms": pct(lat, 50),
        "knn_p99_ms": pct(lat, 99),
        "recall_at_10": round(float(np.mean(recalls)), 4),
        "numpy_floor_p50_ms": pct(floor, 50),
        "numpy_floor_p99_ms": pct(floor, 99),
        "bm25_p50_ms": pct(text_lat, 50),
        "bm25_p99_ms": pct(text_lat, 99),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--dims", type=int, nargs="+", default=[384, 512])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    results = [run(n, d, args.queries, args.seed) for n in args.sizes for d in args.dims]
    targets = {"knn_p50_ms_at_100k": 20, "recall_at_10": 0.95}
    print(json.dumps({"results": results, "targets": targets}, indent=2))


if __name__ == "__main__":
    main()
