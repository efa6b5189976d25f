"""Search: a query by text, image or example segment -> ranked segments (or assets) of one index.

Each selected modality nominates candidates through the SearchIndex port: `visual` a k-NN list over
CLIP vectors; `transcription` a BM25 list over sentence text and a k-NN list over sentence vectors.
mediaindex.services.search_fusion scores them (a calibrated confidence in [0, 1], the same for both
backends), merges overlapping hits of one asset and defines the cursor. Without a `threshold` in the
request, DEFAULT_THRESHOLD applies; `threshold: 0` returns every candidate.

The tenant and index are part of every index query (SearchFilter), and hits whose asset no longer
exists are dropped, so a deleted asset vanishes at once even while an eventually consistent backend
(OpenSearch Serverless) still returns it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace

from mediaindex.domain.errors import NotFoundError, ValidationError
from mediaindex.domain.models import Asset, ReindexState, Segment
from mediaindex.domain.search import (
    TRANSCRIPTION,
    VISUAL,
    Modality,
    ModalityScores,
    SearchRequest,
    SearchResponse,
    SearchResult,
    SearchResultSegment,
    search_key,
)
from mediaindex.domain.text_terms import query_terms
from mediaindex.ports.assets import AssetRepository
from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.indexes import IndexRepository
from mediaindex.ports.outputs import OutputRepository
from mediaindex.ports.query_encoder import ImageInput, QueryEncoder, Vec
from mediaindex.ports.search import SearchFilter, SearchIndex
from mediaindex.services.search_fusion import (
    CALIBRATIONS,
    DEFAULT_THRESHOLD,
    IMAGE_QUERY,
    MAX_CANDIDATES,
    TEXT_QUERY,
    Fused,
    ModalityLists,
    decode_cursor,
    encode_cursor,
    fuse,
    merge_overlapping,
)

MAX_GROUP_SEGMENTS = 10
_MIN_BATCH = 25  # assets read at once while checking hits: most pages need fewer
ImageLoader = Callable[[str], ImageInput]


class SearchService:
    def __init__(
        self,
        *,
        indexes: IndexRepository,
        assets: AssetRepository,
        outputs: OutputRepository,
        index: SearchIndex,
        encoder: QueryEncoder,
        blobs: BlobStore,
        image_loader: ImageLoader | None = None,
        url_ttl_s: int = 3600,
        default_transcription: str = "",
    ) -> None:
        self._default_transcription = default_transcription
        self._indexes = indexes
        self._assets = assets
        self._outputs = outputs
        self._index = index
        self._encoder = encoder
        self._blobs = blobs
        # Fetching query_image_url (and its SSRF guard) is the API's job; this only gets the bytes.
        self._image_loader = image_loader
        self._url_ttl_s = url_ttl_s

    def search(self, tenant_id: str, request: SearchRequest) -> SearchResponse:
        kinds = [
            k
            for k, v in (
                ("query_text", request.query_text),
                ("query_asset_id", request.query_asset_id),
                ("query_image_url", request.query_image_url),
            )
            if v is not None and (not isinstance(v, str) or v.strip())
        ]
        if not kinds:
            raise ValidationError(
                "one of query_text, query_asset_id or query_image_url is required", code="query_required"
            )
        if len(kinds) > 1:
            raise ValidationError(
                f"give only one of {', '.join(kinds)}", code="query_conflict", field=kinds[1]
            )
        if request.query_start is not None and request.query_asset_id is None:
            raise ValidationError("query_start goes with query_asset_id", field="query_start")
        index = self._indexes.get(tenant_id, request.index_id)
        if index is None or index.deleting:
            raise NotFoundError(f"index {request.index_id} not found", code="index_not_found")

        fingerprint = hashlib.sha256(
            request.model_dump_json(exclude={"cursor", "limit"}).encode() + tenant_id.encode()
        ).hexdigest()[:16]
        offset = decode_cursor(request.cursor, fingerprint) if request.cursor else 0
        depth = min(MAX_CANDIDATES, max(100, 3 * (offset + request.limit)))
        if request.group_by == "asset":
            depth = MAX_CANDIDATES

        base = SearchFilter(
            tenant_id=tenant_id,
            index_id=request.index_id,
            media_type=request.filter.media_type.value
            if request.filter and request.filter.media_type
            else None,
            user_metadata=dict(request.filter.user_metadata) if request.filter else {},
        )
        # The searchable generation's key: a re-index builds the next one beside it.
        lists, exclude, wanted = self._lists(
            tenant_id, request, replace(base, index_id=search_key(index.id, index.generation)), depth
        )
        rebuilding = index.reindex is not None and index.reindex.state == ReindexState.RUNNING
        if (rebuilding and index.reindex is not None and not index.reindex.swapped) or _empty(lists):
            # A swap may have landed while the lists were read, and the old generation may be gone
            # with it: the row read again says which generation answered (it is dropped only after
            # the swap is written), and the lists are read again from the new one if it moved.
            now = self._indexes.get(tenant_id, request.index_id)
            if now is not None and not now.deleting and now.generation != index.generation:
                index = now
                flt = replace(base, index_id=search_key(index.id, index.generation))
                lists, exclude, wanted = self._lists(tenant_id, request, flt, depth)

        ranked = fuse(lists, wanted=wanted, operator=request.operator)
        ranked = [f for f in ranked if f.hit.segment_id != exclude]
        threshold = DEFAULT_THRESHOLD if request.threshold is None else request.threshold
        fused = merge_overlapping([f for f in ranked if f.score >= threshold])
        # Enough live hits (or assets) to fill this page and tell whether another follows.
        want = offset + request.limit + 1
        live = self._live(tenant_id, request.index_id, fused, want=want, by_asset=request.group_by == "asset")
        end = offset + request.limit
        if request.group_by == "asset":
            groups = self._groups(live)
            page = [self._grouped_result(g) for g in groups[offset:end]]
            total = len(groups)
        else:
            page = [self._result(f) for f in live[offset:end]]
            total = len(live)
        more = total > end and end < MAX_CANDIDATES
        for hit in page:
            hit.generation = index.generation
        models: dict[str, str] = {}
        if TRANSCRIPTION in lists:
            models["transcription"] = index.models.transcription or self._default_transcription
        for modality, name in ((TRANSCRIPTION, "text"), (VISUAL, "visual")):
            if modality in lists and (model_id := lists[modality].model_id):
                models[name] = model_id
        return SearchResponse(
            data=page,
            next_cursor=encode_cursor(end, fingerprint) if more else None,
            generation=index.generation,
            models=models,
        )

    # Lists per query kind

    def _lists(
        self, tenant_id: str, request: SearchRequest, flt: SearchFilter, depth: int
    ) -> tuple[dict[str, ModalityLists], str | None, set[str]]:
        """The query's candidate lists, the example segment to leave out (more like this), and the
        query's content words."""
        if request.query_text is not None:
            lists = self._text_lists(flt, request.query_text, request.search_options, depth)
            return lists, None, query_terms(request.query_text)
        if request.query_image_url is not None:
            return self._image_lists(flt, request.query_image_url, request.search_options, depth), None, set()
        assert request.query_asset_id is not None
        lists, exclude, example_text = self._asset_lists(
            tenant_id, flt, request.query_asset_id, request.query_start, request.search_options, depth
        )
        return lists, exclude, query_terms(example_text or "")

    def _text_lists(
        self, flt: SearchFilter, text: str, options: list[Modality], k: int
    ) -> dict[str, ModalityLists]:
        lists: dict[str, ModalityLists] = {}
        # One round trip to the encoder for both vectors (on AWS, one encoder Lambda invoke).
        v, t = self._encoder.text_vectors(text, visual=VISUAL in options, transcript=TRANSCRIPTION in options)
        if v is not None:
            lists[VISUAL] = ModalityLists(
                CALIBRATIONS[TEXT_QUERY, VISUAL],
                vector=self._index.knn(flt, modality=VISUAL, model_id=v[0], vector=v[1], k=k),
                model_id=v[0],
            )
        if TRANSCRIPTION in options:
            lists[TRANSCRIPTION] = self._transcript_lists(flt, text, t, k)
        return self._require(lists)

    def _transcript_lists(self, flt: SearchFilter, text: str, t: Vec | None, k: int) -> ModalityLists:
        """The transcript's lists: by meaning with the query's vector `t` (if any), and by words."""
        vector = None
        if t is not None:
            vector = self._index.knn(flt, modality=TRANSCRIPTION, model_id=t[0], vector=t[1], k=k)
        words = self._index.text(flt, query=text, k=k)
        return ModalityLists(
            CALIBRATIONS[TEXT_QUERY, TRANSCRIPTION], vector=vector, text=words, model_id=t[0] if t else None
        )

    def _image_lists(
        self, flt: SearchFilter, url: str, options: list[Modality], k: int
    ) -> dict[str, ModalityLists]:
        if VISUAL not in options:
            raise ValidationError(
                "an image query searches the visual modality",
                code="search_option_unsupported",
                field="search_options",
            )
        if self._image_loader is None:
            raise ValidationError("image queries are not enabled here", field="query_image_url")
        v = self._encoder.visual_image(self._image_loader(url))
        lists: dict[str, ModalityLists] = {}
        if v is not None:
            lists[VISUAL] = ModalityLists(
                CALIBRATIONS[IMAGE_QUERY, VISUAL],
                vector=self._index.knn(flt, modality=VISUAL, model_id=v[0], vector=v[1], k=k),
                model_id=v[0],
            )
        return self._require(lists)

    def _asset_lists(
        self,
        tenant_id: str,
        flt: SearchFilter,
        asset_id: str,
        start: float | None,
        options: list[Modality],
        k: int,
    ) -> tuple[dict[str, ModalityLists], str, str | None]:
        """More like this: the segment at `start` (else the first) is re-encoded from its keyframe
        and its text, so both backends serve it the same way without reading vectors back. Returns
        the lists, the example's own segment id (left out of the results) and its text."""
        asset = self._assets.get(tenant_id, asset_id)
        if asset is None:
            raise NotFoundError(f"asset {asset_id} not found", code="asset_not_found")
        seg = self._segment_at(asset, start)
        if seg is None:
            raise ValidationError(
                f"asset {asset_id} has no indexed segments yet",
                code="query_asset_not_indexed",
                field="query_asset_id",
            )
        lists: dict[str, ModalityLists] = {}
        if VISUAL in options and seg.keyframe_key:
            v = self._encoder.visual_image(self._blobs.get_bytes(seg.keyframe_key))
            if v is not None:
                lists[VISUAL] = ModalityLists(
                    CALIBRATIONS[IMAGE_QUERY, VISUAL],
                    vector=self._index.knn(flt, modality=VISUAL, model_id=v[0], vector=v[1], k=k + 1),
                    model_id=v[0],
                )
        if TRANSCRIPTION in options and seg.text and seg.text.strip():
            t = self._encoder.transcript_text(seg.text)
            lists[TRANSCRIPTION] = self._transcript_lists(flt, seg.text, t, k + 1)
        return self._require(lists), seg.id, seg.text

    def _segment_at(self, asset: Asset, start: float | None) -> Segment | None:
        best: Segment | None = None
        cursor: str | None = None
        while True:
            page = self._outputs.list_segments(asset.tenant_id, asset.id, limit=100, cursor=cursor)
            for s in page.data:
                if start is None:
                    if best is None or s.start < best.start:
                        best = s
                elif s.start <= start < s.end:
                    return s
                elif best is None or abs(s.start - start) < abs(best.start - start):
                    best = s
            if not page.next_cursor:
                return best
            cursor = page.next_cursor

    @staticmethod
    def _require(lists: dict[str, ModalityLists]) -> dict[str, ModalityLists]:
        if not lists:
            raise ValidationError(
                "none of the requested search_options can serve this query here (is the model configured?)",
                code="search_option_unavailable",
                field="search_options",
            )
        return lists

    # Results

    def _live(
        self, tenant_id: str, index_id: str, fused: list[Fused], *, want: int, by_asset: bool
    ) -> list[Fused]:
        """Drops hits of assets that are gone (or not in this index), reading the assets in batches
        (one BatchGetItem each on DynamoDB) of the next ones the ranking needs, and stops once
        `want` hits (or assets, by_asset) are live: later ones are never served on this page. With
        by_asset it goes on through the candidates so each kept asset has all its segments."""
        order = list(dict.fromkeys(f.hit.asset_id for f in fused))
        place = {aid: n for n, aid in enumerate(order)}
        alive: dict[str, bool] = {}  # read so far
        met: set[str] = set()  # reached in the ranking
        out: list[Fused] = []
        live_assets = 0
        for f in fused:
            aid = f.hit.asset_id
            if aid not in met:
                if (live_assets if by_asset else len(out)) >= want:
                    if not by_asset:
                        break
                    continue  # an asset past the page: its segments are not needed
                if aid not in alive:
                    batch = [
                        a for a in order[place[aid] : place[aid] + max(want, _MIN_BATCH)] if a not in alive
                    ]
                    found = self._assets.get_many(tenant_id, batch)
                    alive |= {a: a in found and found[a].index_id == index_id for a in batch}
                met.add(aid)
                live_assets += alive[aid]
            if alive[aid]:
                out.append(f)
        return out

    def _thumb(self, key: str | None) -> str | None:
        return self._blobs.presign_get(key, self._url_ttl_s).url if key else None

    def _result(self, f: Fused) -> SearchResult:
        h = f.hit
        return SearchResult(
            asset_id=h.asset_id,
            segment_id=h.segment_id,
            start=h.start,
            end=h.end,
            score=round(f.score, 6),
            scores=ModalityScores(**{m: round(s, 6) for m, s in f.scores.items()}),
            text=h.text,
            thumbnail_url=self._thumb(h.keyframe_key),
        )

    @staticmethod
    def _groups(live: list[Fused]) -> list[list[Fused]]:
        groups: dict[str, list[Fused]] = {}
        for f in live:  # already best first, so each group's first is its best segment
            groups.setdefault(f.hit.asset_id, []).append(f)
        return list(groups.values())

    def _grouped_result(self, members: list[Fused]) -> SearchResult:
        first = self._result(members[0])
        first.segments = [
            SearchResultSegment(**self._result(m).model_dump(exclude={"asset_id", "segments"}))
            for m in members[:MAX_GROUP_SEGMENTS]
        ]
        return first


def _empty(lists: dict[str, ModalityLists]) -> bool:
    return not any(lst.vector or lst.text for lst in lists.values())
