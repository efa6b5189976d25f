"""Fusion: the ranked lists of each modality become one calibrated score per segment.

The lists only nominate candidates (the k-NN list by vector, the BM25 list by words); every candidate
is then scored on absolute evidence, the same on both backends:

    cos   cosine of the query's vector and the segment's. A candidate only the text list found gets
          the lowest cosine its k-NN list returned (its own is no higher).
    lex   share of the query's content words in the segment's text (mediaindex.domain.text_terms:
          stopwords dropped, numbers and suffixes folded); 0 where the modality has no text. It
          counts squared: the whole phrase said is strong evidence, one shared word barely any.
    p[m]  = sigmoid((w_cos * cos + w_lex * lex**2 - centre) / spread), per modality m and query kind
    score = 1 - prod over modalities of (1 - p[m])    a modality that did not find it adds nothing

p[m] is calibrated so that 0.5 is the line between an answer and a near miss (see CALIBRATIONS and
docs/api.md for how each was measured), so `score` reads as a confidence in [0, 1] and
DEFAULT_THRESHOLD drops results for queries about nothing in the index. Ranks never enter the score:
a segment 20th in both lists cannot beat one the vector list ranks first by a wide margin.

Then overlapping hits of one asset (a shot and a sentence spoken over it) merge into one answer with
the tightest range, and paging is by offset over that ranking (the cursor carries it, bound to the
request), at most MAX_CANDIDATES deep."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field, replace

from mediaindex.domain.errors import ValidationError
from mediaindex.domain.search import DEFAULT_THRESHOLD
from mediaindex.domain.text_terms import coverage
from mediaindex.ports.search import SearchHit

MAX_CANDIDATES = 1000
__all__ = ["DEFAULT_THRESHOLD"]  # re-exported: where the score is defined

TEXT_QUERY = "text"  # query_text, or the text of a more-like-this segment
IMAGE_QUERY = "image"  # query_image_url, or the keyframe of a more-like-this segment


@dataclass(frozen=True)
class Calibration:
    """p = sigmoid((w_cos * cos + w_lex * lex**2 - centre) / spread)."""

    w_cos: float
    w_lex: float
    centre: float
    spread: float

    def __call__(self, cos: float, lex: float) -> float:
        z = (self.w_cos * cos + self.w_lex * lex * lex - self.centre) / self.spread
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


# (query kind, modality) -> calibration. The transcription one is fitted by bench/relevance_fit.py
# on the dev split of the relevance bench, run with Whisper tiny.en and base (MiniLM sentence
# vectors against the sentences each recogniser heard): the
# lexical weight is the middle of the weights that rank best (a phrase said verbatim wins over a
# vaguely similar sentence; a stray shared word changes nothing), the centre the highest cut that
# still keeps 95% of real queries (dropping most queries about nothing in the corpus). The visual
# ones follow CLIP ViT-B/32's published similarity ranges (no CLIP weights ship in a package, so they are not
# measured here): text-to-image cosines of ~0.25 and up for a matching picture, image-to-image
# ~0.85 and up for the same scene.
CALIBRATIONS: dict[tuple[str, str], Calibration] = {
    (TEXT_QUERY, "transcription"): Calibration(w_cos=1.0, w_lex=0.4, centre=0.335, spread=0.104),
    (TEXT_QUERY, "visual"): Calibration(w_cos=1.0, w_lex=0.0, centre=0.24, spread=0.02),
    (IMAGE_QUERY, "visual"): Calibration(w_cos=1.0, w_lex=0.0, centre=0.80, spread=0.04),
}


@dataclass
class Fused:
    hit: SearchHit
    scores: dict[str, float] = field(default_factory=dict)  # modality -> p
    score: float = 0.0


@dataclass(frozen=True)
class ModalityLists:
    """One modality's candidates for one query: `vector` (k-NN, scores are cosines) and/or `text`
    (BM25, scores unused), with the calibration that turns evidence into p."""

    calibration: Calibration
    vector: list[SearchHit] | None = None
    text: list[SearchHit] | None = None
    model_id: str | None = None  # the encoder of the query vector (reported with the results)


def _modality_scores(lists: ModalityLists, wanted: set[str]) -> dict[str, tuple[SearchHit, float]]:
    vector = lists.vector or []
    cos = {h.segment_id: h.score for h in vector}
    floor = min(cos.values()) if cos else 0.0
    candidates: dict[str, SearchHit] = {}
    for h in [*vector, *(lists.text or [])]:
        prior = candidates.get(h.segment_id)
        if prior is None or (prior.text is None and h.text is not None):
            candidates[h.segment_id] = h
    out: dict[str, tuple[SearchHit, float]] = {}
    for sid, h in candidates.items():
        lex = coverage(wanted, h.text) if lists.text is not None else 0.0
        out[sid] = (h, lists.calibration(cos.get(sid, floor), lex))
    return out


def fuse(lists: dict[str, ModalityLists], *, wanted: set[str], operator: str = "or") -> list[Fused]:
    """`lists`: modality -> its candidates; `wanted`: the query's content terms (empty for an image).
    Returns hits by score (ties by segment id, so pages are stable)."""
    fused: dict[str, Fused] = {}
    for modality, ml in lists.items():
        for sid, (hit, p) in _modality_scores(ml, wanted).items():
            f = fused.setdefault(sid, Fused(hit))
            if f.hit.text is None and hit.text is not None:
                f.hit = hit
            f.scores[modality] = p
    out = []
    for f in fused.values():
        if operator == "and" and len(f.scores) < len(lists):
            continue
        f.score = 1.0 - math.prod(1.0 - p for p in f.scores.values())
        out.append(f)
    out.sort(key=lambda f: (-f.score, f.hit.segment_id))
    return out


def _overlap(a: SearchHit, b: SearchHit) -> bool:
    if a.start == a.end or b.start == b.end:  # an image's single instant
        return a.start <= b.end and b.start <= a.end
    return a.start < b.end and b.start < a.end


def merge_overlapping(ranked: list[Fused]) -> list[Fused]:
    """Folds each hit into a better-ranked hit of the same asset that it overlaps in time: the answer
    keeps the better score, the best score of each modality, and the tightest range with its text."""
    kept: list[Fused] = []
    by_asset: dict[str, list[Fused]] = {}
    for f in ranked:
        host = next((k for k in by_asset.get(f.hit.asset_id, []) if _overlap(k.hit, f.hit)), None)
        if host is None:
            kept.append(f)
            by_asset.setdefault(f.hit.asset_id, []).append(f)
            continue
        for m, p in f.scores.items():
            host.scores[m] = max(p, host.scores.get(m, 0.0))
        narrower = f.hit.end - f.hit.start < host.hit.end - host.hit.start
        if (narrower and f.hit.text is not None) or (host.hit.text is None and f.hit.text is not None):
            keyframe = f.hit.keyframe_key or host.hit.keyframe_key
            host.hit = replace(f.hit, keyframe_key=keyframe)
    return kept


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
