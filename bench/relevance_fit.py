"""Fits the transcription calibration of mediaindex.services.search_fusion on the relevance bench's
dev split, from raw runs saved by `python -m bench.relevance.runner RAW.json` (one per Whisper model,
say, pooled so the constants do not depend on one recogniser's mistakes):

    python -m bench.relevance_fit RAW.json [RAW2.json ...]

For each weight of lexical coverage it ranks every query's candidates (the BM25 and k-NN lists the
service saw) by `cos + w_lex * lex**2` and counts top-1 asset hits and sentence midpoints inside the top
hit; of the weights with the best dev count, the middle one wins (the centre of the flat optimum:
the least sensitive to the set). The centre is the cut on the top hit's value
that drops the most off-corpus queries while still keeping KEEP_TARGET of the real ones on dev
(missing a real answer is the costlier mistake for a search product, and a dev set holds few
off-corpus queries, so their count alone would overfit the cut); the spread puts the median real
query's top hit at p = 0.9. It prints the constants and
how they do on the test split, which played no part in choosing them."""

from __future__ import annotations

import itertools
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "layers")]

from bench.relevance.metrics import midpoint_inside, right_asset  # noqa: E402
from mediaindex.domain.text_terms import coverage, query_terms  # noqa: E402

KEEP_TARGET = 0.95
WEIGHTS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
Candidate = tuple[dict[str, Any], float, float]  # hit, cos, lex


def candidates(q: dict[str, Any]) -> list[Candidate]:
    cos = {h["segment_id"]: h["score"] for h in q["vector"]}
    floor = min(cos.values()) if cos else 0.0
    hits: dict[str, dict[str, Any]] = {}
    for h in q["vector"] + q["bm25"]:
        hits.setdefault(h["segment_id"], h)
    wanted = query_terms(q["text"])
    return [(h, cos.get(sid, floor), coverage(wanted, h["text"])) for sid, h in hits.items()]


def sentence_or_asset(q: dict[str, Any], h: dict[str, Any]) -> bool:
    """The sentence's midpoint inside the hit; for a topic query (no sentence), the right asset."""
    return midpoint_inside(q, h) if q["truth"]["start"] is not None else right_asset(q, h)


def top(cands: list[Candidate], w_lex: float) -> tuple[dict[str, Any] | None, float]:
    if not cands:
        return None, -1.0
    h, cos, lex = max(cands, key=lambda c: c[1] + w_lex * c[2] ** 2)
    return h, cos + w_lex * lex**2


def ranking_score(queries: list[dict[str, Any]], w_lex: float) -> tuple[int, int]:
    hits = mids = 0
    for q in queries:
        if q["type"] == "off_corpus":
            continue
        h, _ = top(q["_cands"], w_lex)
        hits += h is not None and right_asset(q, h)
        mids += h is not None and sentence_or_asset(q, h)
    return hits, mids


def best_cut(real: list[float], off: list[float]) -> tuple[float, float, float]:
    """The highest cut (midway between neighbouring values) that keeps KEEP_TARGET of `real`."""
    best = (0.0, 1.0, 0.0)
    for lo, hi in itertools.pairwise(sorted(set(real + off))):
        cut = (lo + hi) / 2
        keep = sum(x >= cut for x in real) / len(real)
        if keep >= KEEP_TARGET:
            best = (cut, keep, sum(x < cut for x in off) / len(off))
    return best


def main(raw_paths: list[str]) -> None:
    queries = []
    for run, path in enumerate(raw_paths):
        for q in json.loads(Path(path).read_text())["queries"]:
            q["id"] = f"{run}:{q['id']}"
            q["_cands"] = candidates(q)
            queries.append(q)
    dev = [q for q in queries if q["split"] == "dev"]
    test = [q for q in queries if q["split"] == "test"]
    scored = [(ranking_score(dev, w), w) for w in WEIGHTS]
    best = max(h + m for (h, m), _ in scored)
    plateau = [(hm, w) for hm, w in scored if sum(hm) == best]
    (hits, mids), w_lex = plateau[(len(plateau) - 1) // 2]
    tops = {q["id"]: top(q["_cands"], w_lex)[1] for q in queries}

    def split_values(qs: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
        real = [tops[q["id"]] for q in qs if q["type"] != "off_corpus"]
        off = [tops[q["id"]] for q in qs if q["type"] == "off_corpus"]
        return real, off

    real, off = split_values(dev)
    centre, keep, drop = best_cut(real, off)
    spread = (statistics.median(real) - centre) / math.log(9)
    t_real, t_off = split_values(test)
    t_keep = sum(x >= centre for x in t_real) / len(t_real)
    t_drop = sum(x < centre for x in t_off) / len(t_off)
    print(f"w_lex={w_lex} (dev top-1 {hits}, midpoints {mids} of {len(real)})")
    print(f"centre={centre:.3f} spread={spread:.3f}")
    print(f"dev:  keep {keep:.2f} drop {drop:.2f}")
    print(f"test: keep {t_keep:.2f} drop {t_drop:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
