"""Scores the raw material of runner.collect against the ground truth, per query type and split.

- top-1 asset accuracy (hybrid, BM25 alone, vector alone): the first hit's asset is the truth file;
  beside it, for reference, the mean reciprocal rank of the truth file's first hit;
- midpoint-in-top-hit (hybrid; queries that name a sentence): the truth sentence's midpoint lies in
  the top hit's [start, end] (of the right asset);
- overlapping hits: pairs of hits of one asset on the first page whose time ranges overlap;
- threshold behaviour at the service's default threshold: share of real queries whose top hit
  scores at least the threshold (kept), share of off-corpus queries with no hit that does (dropped);
- for reference, the same separation by the vector baseline's raw cosine: the cut that best
  balances keep and drop on the dev split, then keep and drop at that cut on each split.

Pure functions of the raw dict, so a saved run can be re-scored offline."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mediaindex.services import search_fusion

SYSTEMS = ("hybrid", "bm25", "vector")
REAL_TYPES = ("exact", "paraphrase", "topic", "variant")
SPLITS = ("dev", "test", "all")
# The service's default threshold where it has one; the scale is the service's own score.
DEFAULT_THRESHOLD = float(getattr(search_fusion, "DEFAULT_THRESHOLD", 0.5))

Row = dict[str, Any]


def in_split(rows: Iterable[Row], split: str) -> list[Row]:
    return [r for r in rows if split == "all" or r["split"] == split]


def _rate(rows: list[Row], ok: Callable[[Row], bool]) -> float | None:
    return round(sum(ok(r) for r in rows) / len(rows), 4) if rows else None


def right_asset(row: Row, hit: Row) -> bool:
    return bool(hit["asset_id"] == row["truth"]["asset_id"])


def midpoint_inside(row: Row, hit: Row) -> bool:
    """The hit is in the truth asset and holds the spoken sentence's midpoint."""
    t = row["truth"]
    return right_asset(row, hit) and bool(hit["start"] <= (t["start"] + t["end"]) / 2 <= hit["end"])


def top1_correct(row: Row, system: str) -> bool:
    hits = row[system]
    return bool(hits) and right_asset(row, hits[0])


def reciprocal_rank(row: Row, system: str) -> float:
    """1 / the rank of the first hit of the truth asset in `system`'s list (0 when absent)."""
    for rank, h in enumerate(row[system], start=1):
        if h["asset_id"] == row["truth"]["asset_id"]:
            return 1.0 / rank
    return 0.0


def _top1_rate(rows: list[Row], system: str) -> float | None:
    return _rate(rows, lambda r: top1_correct(r, system))


def midpoint_in_top(row: Row) -> bool:
    hits = row["hybrid"]
    return bool(hits) and midpoint_inside(row, hits[0])


def overlapping_pairs(hits: list[Row]) -> int:
    """Pairs of hits of one asset whose time ranges overlap (touching ends do not count)."""
    n = 0
    for i, a in enumerate(hits):
        for b in hits[i + 1 :]:
            if a["asset_id"] == b["asset_id"] and a["start"] < b["end"] and b["start"] < a["end"]:
                n += 1
    return n


def top_score(row: Row, system: str) -> float | None:
    return float(row[system][0]["score"]) if row[system] else None


def kept(row: Row, system: str, threshold: float) -> bool:
    s = top_score(row, system)
    return s is not None and s >= threshold


def best_cut(real: list[float | None], off: list[float | None]) -> float:
    """The threshold that maximises min(keep, drop) over these tops (ties: the mean of both)."""
    candidates = sorted({s for s in real + off if s is not None})
    if not candidates:
        return 0.0

    def balance(cut: float) -> tuple[float, float]:
        keep = sum(s is not None and s >= cut for s in real) / max(1, len(real))
        drop = sum(s is None or s < cut for s in off) / max(1, len(off))
        return min(keep, drop), keep + drop

    return max(candidates, key=balance)


def score(raw: dict[str, Any], threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """Every figure of the report, by split: {"top1": {split: {system: {type|overall: rate}}}, ...}."""
    rows: list[Row] = raw["queries"]
    out: dict[str, Any] = {"threshold": threshold, "counts": {}, "top1": {}, "mrr": {}, "midpoint": {}}
    out |= {"overlap_pairs": {}, "overlap_queries": {}, "keep": {}, "drop": {}}
    out |= {"cosine_keep": {}, "cosine_drop": {}}
    dev_real = [r for r in in_split(rows, "dev") if r["type"] != "off_corpus"]
    dev_off = [r for r in in_split(rows, "dev") if r["type"] == "off_corpus"]
    cut = best_cut([top_score(r, "vector") for r in dev_real], [top_score(r, "vector") for r in dev_off])
    out["cosine_cut_dev"] = round(cut, 4)
    for split in SPLITS:
        here = in_split(rows, split)
        real = [r for r in here if r["type"] != "off_corpus"]
        off = [r for r in here if r["type"] == "off_corpus"]
        by_type = {t: [r for r in real if r["type"] == t] for t in REAL_TYPES}
        out["counts"][split] = {t: len(v) for t, v in by_type.items()} | {"off_corpus": len(off)}
        out["top1"][split] = {
            system: {t: _top1_rate(v, system) for t, v in {"overall": real, **by_type}.items()}
            for system in SYSTEMS
        }
        out["mrr"][split] = {
            system: round(sum(reciprocal_rank(r, system) for r in real) / len(real), 4) if real else None
            for system in SYSTEMS
        }
        named = [r for r in real if r["truth"]["start"] is not None]
        out["midpoint"][split] = {"overall": _rate(named, midpoint_in_top)} | {
            t: _rate([r for r in v if r["truth"]["start"] is not None], midpoint_in_top)
            for t, v in by_type.items()
            if t != "topic"
        }
        pairs = [overlapping_pairs(r["hybrid"]) for r in here]
        out["overlap_pairs"][split] = sum(pairs)
        out["overlap_queries"][split] = sum(p > 0 for p in pairs)
        out["keep"][split] = _rate(real, lambda r: kept(r, "hybrid", threshold))
        out["drop"][split] = _rate(off, lambda r: not kept(r, "hybrid", threshold))
        out["cosine_keep"][split] = _rate(real, lambda r: kept(r, "vector", cut))
        out["cosine_drop"][split] = _rate(off, lambda r: not kept(r, "vector", cut))
    return out


GOALS = {
    "top1_overall": 0.92,
    "top1_paraphrase": 0.85,
    "midpoint": 0.90,
    "keep": 0.95,
    "drop": 0.95,
}


def goals(m: dict[str, Any], split: str) -> dict[str, bool | None]:
    """Pass/fail of each goal on `split` (None where the split has no query to judge by)."""
    top1 = m["top1"][split]

    def at_least(value: float | None, goal: float) -> bool | None:
        return None if value is None else value >= goal

    out: dict[str, bool | None] = {
        "top1_overall": at_least(top1["hybrid"]["overall"], GOALS["top1_overall"]),
        "top1_paraphrase": at_least(top1["hybrid"]["paraphrase"], GOALS["top1_paraphrase"]),
        "midpoint": at_least(m["midpoint"][split]["overall"], GOALS["midpoint"]),
        "no_overlapping_hits": m["overlap_pairs"][split] == 0,
        "keep": at_least(m["keep"][split], GOALS["keep"]),
        "drop": at_least(m["drop"][split], GOALS["drop"]),
    }
    for t in REAL_TYPES:
        singles = [top1[s][t] for s in ("bm25", "vector") if top1[s][t] is not None]
        hybrid = top1["hybrid"][t]
        out[f"hybrid_ge_best_single_{t}"] = None if hybrid is None else hybrid >= max(singles, default=0.0)
    return out
