"""The readable table of metrics.score and its one-line JSON twin."""

from __future__ import annotations

import json
import os
from typing import Any

from bench.relevance.metrics import GOALS, REAL_TYPES, SPLITS, SYSTEMS, goals


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _mark(ok: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[ok]


def table(raw: dict[str, Any], m: dict[str, Any], judge: str) -> str:
    meta = raw["meta"]
    verdict = goals(m, judge)
    rows: list[tuple[str, str, list[str], str, str]] = []  # figure, system, per split, goal, pass

    def add(figure: str, system: str, values: list[str], goal: str = "", ok: str = "") -> None:
        rows.append((figure, system, values, goal, ok))

    for t in ("overall", *REAL_TYPES):
        for system in SYSTEMS:
            goal_key = {"overall": "top1_overall", "paraphrase": "top1_paraphrase"}.get(t)
            hybrid_goal = system == "hybrid" and goal_key is not None
            add(
                f"top-1 asset, {t}",
                system,
                [_f(m["top1"][s][system][t]) for s in SPLITS],
                f">= {GOALS[goal_key]:.2f}" if hybrid_goal and goal_key else "",
                _mark(verdict[goal_key]) if hybrid_goal and goal_key else "",
            )
    for system in SYSTEMS:
        add("MRR of the truth asset, overall", system, [_f(m["mrr"][s][system]) for s in SPLITS], "ref.")
    for t in REAL_TYPES:
        add(
            f"hybrid >= best single, {t}",
            "hyb/best",
            [f"{_f(m['top1'][s]['hybrid'][t])}/{_f(max_single(m, s, t))}" for s in SPLITS],
            "hybrid >= best",
            _mark(verdict[f"hybrid_ge_best_single_{t}"]),
        )
    for t in m["midpoint"]["all"]:
        add(
            f"midpoint in top hit, {t}",
            "hybrid",
            [_f(m["midpoint"][s][t]) for s in SPLITS],
            f">= {GOALS['midpoint']:.2f}" if t == "overall" else "",
            _mark(verdict["midpoint"]) if t == "overall" else "",
        )
    add(
        "overlapping hits of one asset (pairs/queries)",
        "hybrid",
        [f"{m['overlap_pairs'][s]}/{m['overlap_queries'][s]}" for s in SPLITS],
        "0",
        _mark(verdict["no_overlapping_hits"]),
    )
    thr = m["threshold"]
    add(
        f"kept: real top >= {thr:g}",
        "hybrid",
        [_f(m["keep"][s]) for s in SPLITS],
        ">= 0.95",
        _mark(verdict["keep"]),
    )
    add(
        f"dropped: off-corpus < {thr:g}",
        "hybrid",
        [_f(m["drop"][s]) for s in SPLITS],
        ">= 0.95",
        _mark(verdict["drop"]),
    )
    cut = m["cosine_cut_dev"]
    add(
        f"kept at raw cosine {cut:.3f} (dev cut)", "vector", [_f(m["cosine_keep"][s]) for s in SPLITS], "ref."
    )
    add(f"dropped at raw cosine {cut:.3f}", "vector", [_f(m["cosine_drop"][s]) for s in SPLITS], "ref.")

    counts = m["counts"]
    head = [
        f"Relevance bench: {sum(counts['all'].values())} queries "
        f"(dev {sum(counts['dev'].values())} / test {sum(counts['test'].values())}; "
        + ", ".join(f"{k} {v}" for k, v in counts["all"].items())
        + ")",
        f"corpus {meta['corpus_files']} files, {meta['corpus_duration_s']} s ({meta['corpus_hash']}); "
        f"whisper {meta['whisper_model']}; ingest {meta['ingest_s']} s, queries {meta['query_s']} s",
        f"threshold {thr:g}; pass/fail judged on the {judge} split; "
        f"load during run {meta['loadavg']}, now {[round(x, 2) for x in os.getloadavg()]}",
        "",
    ]
    w = max(len(r[0]) for r in rows)
    cols = [
        f"{'figure':<{w}}  {'system':<8}  " + "  ".join(f"{s:>11}" for s in SPLITS) + "  goal            pass"
    ]
    for figure, system, values, goal, ok in rows:
        cols.append(
            (
                f"{figure:<{w}}  {system:<8}  "
                + "  ".join(f"{v:>11}" for v in values)
                + f"  {goal:<14}  {ok}"
            ).rstrip()
        )
    failed = [k for k, v in verdict.items() if v is False]
    tail = ["", f"goals: {sum(v is True for v in verdict.values())} pass, {len(failed)} fail"
            + (f" ({', '.join(failed)})" if failed else "")]  # fmt: skip
    return "\n".join(head + cols + tail)


def max_single(m: dict[str, Any], split: str, t: str) -> float | None:
    values = [m["top1"][split][s][t] for s in ("bm25", "vector") if m["top1"][split][s][t] is not None]
    return max(values) if values else None


def json_line(raw: dict[str, Any], m: dict[str, Any], judge: str) -> str:
    verdict = goals(m, judge)
    return json.dumps(
        {
            "bench": "relevance",
            "judged_on": judge,
            "goals": verdict,
            "passed": sum(v is True for v in verdict.values()),
            "failed": sum(v is False for v in verdict.values()),
            "metrics": m,
            "meta": raw["meta"],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        },
        separators=(",", ":"),
    )
