"""Reciprocal rank fusion of the ranked lists of each modality, and the offset cursor over the fused
ranking (how scores are defined: see mediaindex.services.search)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from mediaindex.domain.errors import ValidationError
from mediaindex.ports.search import SearchHit

RRF_K = 60
MAX_CANDIDATES = 1000


@dataclass
class Fused:
    hit: SearchHit
    per_list: dict[str, float] = field(default_factory=dict)  # list name -> normalised rrf
    scores: dict[str, float] = field(default_factory=dict)
    score: float = 0.0


def rrf_fuse(lists: dict[str, dict[str, list[SearchHit]]], *, operator: str = "or") -> list[Fused]:
    """`lists`: modality -> list name -> ranked hits. Returns hits by fused score (ties by segment id,
    so pages are stable), with per-modality scores, as the module docstring defines."""
    top = 1.0 / (RRF_K + 1)
    fused: dict[str, Fused] = {}
    for modality, named in lists.items():
        for name, hits in named.items():
            for rank, h in enumerate(hits, start=1):
                f = fused.setdefault(h.segment_id, Fused(h))
                if f.hit.text is None and h.text is not None:
                    f.hit = h
                f.per_list[f"{modality}/{name}"] = (1.0 / (RRF_K + rank)) / top
    out = []
    for f in fused.values():
        for modality, named in lists.items():
            contributions = [f.per_list.get(f"{modality}/{n}", 0.0) for n in named]
            if any(f"{modality}/{n}" in f.per_list for n in named):
                f.scores[modality] = sum(contributions) / len(named)
        if operator == "and" and len(f.scores) < len(lists):
            continue
        f.score = sum(f.scores.values()) / len(lists)
        out.append(f)
    out.sort(key=lambda f: (-f.score, f.hit.segment_id))
    return out


def encode_cursor(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "f": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        offset = int(data["o"])
        ok = data["f"] == fingerprint and 0 <= offset <= MAX_CANDIDATES
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as e:  # deep nesting: Recursion
        raise ValidationError("cursor is not valid", code="cursor_invalid", field="cursor") from e
    if not ok:
        raise ValidationError("cursor belongs to another search", code="cursor_invalid", field="cursor")
    return offset
