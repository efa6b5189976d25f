"""SearchService over the embedded index, with deterministic fake encoders and in-memory metadata."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mediaindex.adapters.local.embedded_search import EmbeddedSearchIndex
from mediaindex.domain.errors import NotFoundError, ValidationError
from mediaindex.domain.models import Asset, Index, IndexModels, MediaType, Page, Reindex, Segment
from mediaindex.domain.search import SearchRequest
from mediaindex.domain.text_terms import coverage, query_terms
from mediaindex.ports.blobs import SignedRequest
from mediaindex.ports.query_encoder import QueryEncoder, Vec
from mediaindex.ports.search import SearchDoc, SearchHit
from mediaindex.services.search import SearchService
from mediaindex.services.search_fusion import (
    CALIBRATIONS,
    DEFAULT_THRESHOLD,
    TEXT_QUERY,
    Fused,
    ModalityLists,
    fuse,
    merge_overlapping,
)

CLIP = "clip:fake"
MINILM = "minilm:fake"


def vec(key: str, dim: int = 16) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    v = np.random.default_rng(seed).normal(size=dim)
    return [float(x) for x in v / np.linalg.norm(v)]


class FakeEncoders(QueryEncoder):
    """Text -> a vector keyed on the text, so a doc stored with vec("v:sunset") is the exact match
    of the query "sunset". Images: keyed on their bytes. Counts the text round trips."""

    def __init__(self, *, clip: bool = True) -> None:
        self.clip = clip
        self.text_round_trips = 0

    def text_vectors(self, text: str, *, visual: bool, transcript: bool) -> tuple[Vec | None, Vec | None]:
        self.text_round_trips += 1
        return super().text_vectors(text, visual=visual, transcript=transcript)

    def visual_text(self, text: str) -> tuple[str, list[float]] | None:
        return (CLIP, vec(f"v:{text}")) if self.clip else None

    def transcript_text(self, text: str) -> tuple[str, list[float]]:
        return MINILM, vec(f"t:{text}")

    def visual_image(self, image: bytes | Path) -> tuple[str, list[float]] | None:
        data = image.read_bytes() if isinstance(image, Path) else image
        return CLIP, vec(f"v:{data.decode()}")


class FakeMetadata:
    """The three repositories search reads, in memory (indexes.get, assets.get, outputs.list_segments)."""

    def __init__(self) -> None:
        self.indexes: dict[tuple[str, str], Index] = {}
        self.assets: dict[str, Asset] = {}
        self.segments: dict[str, list[Segment]] = {}
        self.asset_reads = 0
        self.batch_reads: list[list[str]] = []

    def get(self, tenant_id: str, some_id: str) -> Any:
        if some_id.startswith("idx_"):
            return self.indexes.get((tenant_id, some_id))
        self.asset_reads += 1
        a = self.assets.get(some_id)
        return a if a is not None and a.tenant_id == tenant_id else None

    def get_many(self, tenant_id: str, asset_ids: list[str]) -> dict[str, Asset]:
        """One batched read (as the stores do it): counted once in `batch_reads`."""
        self.batch_reads.append(list(asset_ids))
        found = {a: self.assets.get(a) for a in asset_ids}
        return {a: v for a, v in found.items() if v is not None and v.tenant_id == tenant_id}

    def list_segments(
        self, tenant_id: str, asset_id: str, *, limit: int, cursor: str | None
    ) -> Page[Segment]:
        return Page[Segment](data=self.segments.get(asset_id, []) if self.get(tenant_id, asset_id) else [])


class FakeBlobs:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def presign_get(self, key: str, expires_s: int, **_: Any) -> SignedRequest:
        return SignedRequest(
            "GET", f"https://blobs.test/{key}?ttl={expires_s}", datetime(2030, 1, 1, tzinfo=UTC)
        )

    def get_bytes(self, key: str) -> bytes:
        return self.objects[key]


class World:
    def __init__(self, tmp_path: Path, *, clip: bool = True) -> None:
        self.meta = FakeMetadata()
        self.blobs = FakeBlobs()
        self.index = EmbeddedSearchIndex(tmp_path)
        self.images: dict[str, bytes] = {}
        self.encoder = FakeEncoders(clip=clip)
        self.service = SearchService(
            indexes=self.meta,  # type: ignore[arg-type]
            assets=self.meta,  # type: ignore[arg-type]
            outputs=self.meta,  # type: ignore[arg-type]
            index=self.index,
            encoder=self.encoder,
            blobs=self.blobs,  # type: ignore[arg-type]
            image_loader=lambda url: self.images[url],
        )
        for tenant, idx in (("ten_a", "idx_1"), ("ten_a", "idx_2"), ("ten_b", "idx_b")):
            self.meta.indexes[(tenant, idx)] = Index(id=idx, tenant_id=tenant, name=idx)

    def add(
        self,
        seg: str,
        asset: str,
        *,
        visual: str | None = None,
        text: str | None = None,
        tenant: str = "ten_a",
        index: str = "idx_1",
        media_type: str = "video",
        meta: dict[str, Any] | None = None,
        start: float = 0.0,
    ) -> None:
        self.meta.assets.setdefault(
            asset,
            Asset(
                id=asset,
                tenant_id=tenant,
                index_id=index,
                name=f"{asset}.mp4",
                media_type=MediaType(media_type),
            ),
        )
        key = f"derived/{tenant}/{asset}/{seg}.jpg" if visual else None
        if key and visual:
            self.blobs.objects[key] = visual.encode()
        self.meta.segments.setdefault(asset, []).append(
            Segment(
                id=seg, asset_id=asset, start=start, end=start + 5, kind="shot", text=text, keyframe_key=key
            )
        )
        vectors: dict[str, tuple[str, list[float]]] = {}
        if visual:
            vectors["visual"] = (CLIP, vec(f"v:{visual}"))
        if text:
            vectors["transcription"] = (MINILM, vec(f"t:{text}"))
        self.index.upsert(
            [
                SearchDoc(
                    seg,
                    tenant,
                    index,
                    asset,
                    media_type,
                    start,
                    start + 5,
                    text,
                    key,
                    meta or {},
                    vectors=vectors,
                )
            ]
        )

    def search(self, tenant: str = "ten_a", **kw: Any) -> list[dict[str, Any]]:
        """Random fake vectors of unrelated texts sit near cosine 0: threshold 0 keeps every
        candidate unless a test is about the threshold."""
        kw.setdefault("index_id", "idx_1")
        kw.setdefault("threshold", 0.0)
        resp = self.service.search(tenant, SearchRequest(**kw))
        return [r.model_dump(exclude_none=True) for r in resp.data]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def ids(results: list[dict[str, Any]]) -> list[str]:
    return [r["segment_id"] for r in results]


def test_a_segment_matching_in_both_modalities_scores_near_one_and_says_why(world: World) -> None:
    # Given one segment that looks like and talks about a sunset, and two that match one modality
    world.add("seg_both", "ast_1", visual="sunset", text="sunset")
    world.add("seg_seen", "ast_2", visual="sunset")
    world.add("seg_said", "ast_3", visual="city", text="sunset")
    # When searching for "sunset" in both modalities
    results = world.search(query_text="sunset")
    by_id = {r["segment_id"]: r for r in results}
    # Then each exact match scores near 1 in its own modality, with its scores saying why
    top = by_id["seg_both"]
    assert top["score"] > 0.99
    assert top["scores"]["visual"] > 0.99 and top["scores"]["transcription"] > 0.99
    assert top["thumbnail_url"] == "https://blobs.test/derived/ten_a/ast_1/seg_both.jpg?ttl=3600"
    assert top["text"] == "sunset"
    # And a modality that does not find a segment does not cap it: seen-only still scores near 1
    assert by_id["seg_seen"]["score"] > 0.99
    assert by_id["seg_said"]["scores"]["transcription"] > 0.99
    # And agreeing modalities add up: both is more certain than either alone
    assert top["score"] >= by_id["seg_said"]["score"]
    assert set(ids(results)) == {"seg_both", "seg_seen", "seg_said"}
    # And both query vectors came from one round trip to the encoder (on AWS: one Lambda invoke)
    assert world.encoder.text_round_trips == 1


def hit(sid: str, score: float, text: str | None = None, asset: str | None = None) -> SearchHit:
    return SearchHit(sid, asset or f"ast_{sid}", 0.0, 1.0, score, text)


TRANSCRIPT_CAL = CALIBRATIONS[TEXT_QUERY, "transcription"]


def test_scores_are_absolute_so_rank_in_both_lists_cannot_beat_a_strong_vector_hit() -> None:
    # The vector list's top hit is a clear paraphrase (cos 0.75, no shared word); a weak segment
    # sits 20th in both lists and shares one stray word with the query.
    filler = [hit(f"f{i:02d}", 0.25 - i * 0.001, "other words") for i in range(19)]
    weak = hit("weak", 0.2, "we use it up")
    strong = hit("strong", 0.75, "ocean waves after an earthquake")
    lists = {
        "transcription": ModalityLists(
            TRANSCRIPT_CAL, vector=[strong, *filler, weak], text=[*filler[:19], weak]
        )
    }
    ranked = fuse(lists, wanted=query_terms("how to use giant sea waves"))
    assert ranked[0].hit.segment_id == "strong"
    assert ranked[0].score > 0.9
    # And the score means something: the weak one is below the default threshold.
    assert next(f.score for f in ranked if f.hit.segment_id == "weak") < DEFAULT_THRESHOLD


def test_stopwords_do_not_count_as_matching_words() -> None:
    assert query_terms("how to use it") == {"use"}
    assert coverage(query_terms("the history of tsunamis"), "A tsunami has a long history.") == 1.0
    assert coverage(query_terms("the history of tsunamis"), "the story of it") == 0.0
    assert coverage(query_terms("three bees"), "3 bee") == 1.0  # numbers and plurals fold
    assert query_terms("to be or not to be") == {"to", "be", "or", "not"}  # all stopwords: keep them


def test_overlapping_hits_of_one_asset_merge_into_the_tightest_range() -> None:
    shot = Fused(SearchHit("shot", "ast_1", 0.0, 10.0, 0.3, None, "k1.jpg"), {"visual": 0.9}, 0.9)
    said = Fused(SearchHit("said", "ast_1", 3.0, 6.5, 0.7, "the words", None), {"transcription": 0.8}, 0.8)
    later = Fused(SearchHit("later", "ast_1", 12.0, 15.0, 0.6, "more"), {"transcription": 0.7}, 0.7)
    other = Fused(SearchHit("other", "ast_2", 3.0, 6.0, 0.6, "x"), {"transcription": 0.6}, 0.6)
    merged = merge_overlapping([shot, said, later, other])
    assert [f.hit.segment_id for f in merged] == ["said", "later", "other"]
    first = merged[0]
    assert (first.hit.start, first.hit.end, first.hit.text) == (3.0, 6.5, "the words")
    assert first.hit.keyframe_key == "k1.jpg"  # the shot's picture, for a thumbnail
    assert first.score == 0.9 and first.scores == {"visual": 0.9, "transcription": 0.8}


def test_default_threshold_drops_queries_about_nothing_in_the_index(world: World) -> None:
    world.add("seg_1", "ast_1", visual="harbour", text="boats in the harbour")
    # Random vectors for an unrelated query sit near cosine 0: nothing passes the default threshold.
    assert world.service.search("ten_a", SearchRequest(index_id="idx_1", query_text="quantum")).data == []
    # An explicit threshold of 0 returns every candidate, still ranked.
    assert ids(world.search(query_text="quantum", threshold=0.0)) == ["seg_1"]


def test_operator_and_keeps_segments_found_by_every_modality(world: World) -> None:
    world.add("seg_both", "ast_1", visual="dog", text="a dog barks")
    world.add("seg_seen", "ast_2", visual="dog")
    world.add("seg_said", "ast_3", text="my dog")
    # Vectors find everything with a vector of that modality, so "and" means: has both kinds and
    # was in both result lists.
    assert ids(world.search(query_text="dog", operator="and")) == ["seg_both"]
    assert len(world.search(query_text="dog", operator="or")) == 3


def test_search_options_limit_the_modalities(world: World) -> None:
    world.add("seg_both", "ast_1", visual="dog", text="a dog barks")
    world.add("seg_seen", "ast_2", visual="dog")
    results = world.search(query_text="dog", search_options=["transcription"])
    assert ids(results) == ["seg_both"]
    assert set(results[0]["scores"]) == {"transcription"}


def test_threshold_is_on_the_fused_score(world: World) -> None:
    world.add("seg_both", "ast_1", visual="sun", text="sun")
    world.add("seg_seen", "ast_2", visual="moon")
    all_hits = world.search(query_text="sun")
    assert len(all_hits) == 2
    assert ids(world.search(query_text="sun", threshold=0.9)) == ["seg_both"]
    assert ids(world.search(query_text="sun", threshold=None)) == ["seg_both"]  # the default
    assert world.search(query_text="zzz", threshold=0.5, search_options=["transcription"]) == []


def test_group_by_asset_collapses_to_best_segment_with_segments_inside(world: World) -> None:
    world.add("seg_1a", "ast_1", visual="cat", text="cat", start=0)
    world.add("seg_1b", "ast_1", visual="cat nap", text="cat nap", start=5)
    world.add("seg_2a", "ast_2", visual="cat toy", text="a cat toy")
    results = world.search(query_text="cat", group_by="asset")
    assert [r["asset_id"] for r in results] == ["ast_1", "ast_2"]
    assert results[0]["segment_id"] == "seg_1a"
    assert [s["segment_id"] for s in results[0]["segments"]] == ["seg_1a", "seg_1b"]
    assert results[0]["segments"][0]["score"] == results[0]["score"]


def test_filters_media_type_and_user_metadata(world: World) -> None:
    world.add("seg_v", "ast_1", visual="car", text="car", meta={"team": "red"})
    world.add("seg_a", "ast_2", text="car", media_type="audio", meta={"team": "red"})
    world.add("seg_b", "ast_3", visual="car", text="car", meta={"team": "blue"})
    assert ids(world.search(query_text="car", filter={"media_type": "audio"})) == ["seg_a"]
    assert ids(world.search(query_text="car", filter={"user_metadata": {"team": "blue"}})) == ["seg_b"]
    red_video = world.search(
        query_text="car", filter={"media_type": "video", "user_metadata": {"team": "red"}}
    )
    assert ids(red_video) == ["seg_v"]


def test_another_tenants_segments_are_never_returned(world: World) -> None:
    # Given tenant B holds better matches, and a second index of tenant A too
    world.add("seg_mine", "ast_1", visual="boat")
    world.add("seg_b", "ast_b", visual="ship", text="ship", tenant="ten_b", index="idx_b")
    world.add("seg_a2", "ast_a2", visual="ship", text="ship", index="idx_2")
    assert ids(world.search(query_text="ship")) == ["seg_mine"]
    # And B's index is not found for A (404, never 403), nor a missing one
    for index_id in ("idx_b", "idx_nope"):
        with pytest.raises(NotFoundError) as err:
            world.search(query_text="ship", index_id=index_id)
        assert err.value.code == "index_not_found"


def test_pages_follow_cursors_without_repeats(world: World) -> None:
    for i in range(7):
        world.add(f"seg_{i}", f"ast_{i}", visual=f"tree {i}", text=f"tree number {i}")
    everything = ids(world.search(query_text="tree", limit=100))
    seen: list[str] = []
    cursor = None
    while True:
        resp = world.service.search(
            "ten_a", SearchRequest(index_id="idx_1", query_text="tree", limit=3, cursor=cursor, threshold=0.0)
        )
        seen += [r.segment_id for r in resp.data]
        cursor = resp.next_cursor
        if cursor is None:
            break
    assert seen == everything and len(seen) == 7
    # A cursor belongs to its search
    first = world.service.search(
        "ten_a", SearchRequest(index_id="idx_1", query_text="tree", limit=3, threshold=0.0)
    )
    assert first.next_cursor is not None
    with pytest.raises(ValidationError) as err:
        world.search(query_text="bush", limit=3, cursor=first.next_cursor)
    assert err.value.code == "cursor_invalid"


def test_deleted_asset_vanishes_at_once(world: World) -> None:
    world.add("seg_1", "ast_1", visual="fox", text="fox")
    world.add("seg_2", "ast_2", visual="fox", text="fox")
    # When the asset row is gone but the index has not caught up (eventual consistency)
    del world.meta.assets["ast_1"]
    assert ids(world.search(query_text="fox")) == ["seg_2"]


def test_hits_are_checked_against_their_assets_in_one_batched_read(world: World) -> None:
    for i in range(40):
        world.add(f"seg_{i:02d}", f"ast_{i:02d}", text=f"harbour ferry {i}")
    del world.meta.assets["ast_03"]  # gone, the index not caught up yet
    world.meta.batch_reads.clear()
    page = world.search(query_text="harbour ferry", limit=10)
    # One read of the assets the page may need (never one per hit), and the gone one is left out
    assert len(world.meta.batch_reads) == 1 and len(world.meta.batch_reads[0]) >= 11
    assert len(page) == 10 and "ast_03" not in {r["asset_id"] for r in page}
    assert world.meta.asset_reads == 0


def test_a_search_that_meets_a_reindex_swap_answers_from_the_new_generation(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver writes the swap and then drops the old generation; a search that read the index
    row before the swap must not answer from the dropped one (an empty page)."""
    world.add("seg_old", "ast_1", text="ferry harbour morning")
    world.add("seg_new", "ast_1", text="ferry harbour morning", index="idx_1-g2")
    index = world.meta.indexes[("ten_a", "idx_1")]
    index.reindex = Reindex(id="rdx_1", models=IndexModels(transcription="base"), generation=2)
    real_text = world.index.text

    def swap_lands_now(flt: Any, **kw: Any) -> Any:
        if flt.index_id == "idx_1" and index.generation == 1:
            world.meta.indexes[("ten_a", "idx_1")] = index.model_copy(update={"generation": 2})
            world.index.delete_index("ten_a", "idx_1")
        return real_text(flt, **kw)

    monkeypatch.setattr(world.index, "text", swap_lands_now)
    resp = world.service.search(
        "ten_a", SearchRequest(index_id="idx_1", query_text="ferry harbour", threshold=0)
    )
    assert resp.generation == 2 and [r.segment_id for r in resp.data] == ["seg_new"]


def test_query_kind_must_be_exactly_one(world: World) -> None:
    with pytest.raises(ValidationError) as err:
        world.search()
    assert err.value.code == "query_required"
    with pytest.raises(ValidationError) as err:
        world.search(query_text="x", query_image_url="https://x.test/a.jpg")
    assert err.value.code == "query_conflict"
    with pytest.raises(ValidationError) as err:
        world.search(query_text="x", query_start=3.0)
    assert err.value.field == "query_start"


def test_query_by_image_uses_the_injected_loader(world: World) -> None:
    world.add("seg_1", "ast_1", visual="lighthouse")
    world.add("seg_2", "ast_2", visual="harbour")
    world.images["https://img.test/q.jpg"] = b"lighthouse"
    results = world.search(query_image_url="https://img.test/q.jpg")
    assert ids(results)[0] == "seg_1"
    assert set(results[0]["scores"]) == {"visual"}
    with pytest.raises(ValidationError) as err:
        world.search(query_image_url="https://img.test/q.jpg", search_options=["transcription"])
    assert err.value.code == "search_option_unsupported"


def test_more_like_this_from_an_asset_segment(world: World) -> None:
    # Given an asset whose second segment shows and says "goal", and another asset like it
    world.add("seg_q0", "ast_q", visual="kickoff", text="kickoff", start=0)
    world.add("seg_q1", "ast_q", visual="goal", text="what a goal", start=5)
    world.add("seg_like", "ast_2", visual="goal", text="what a goal")
    world.add("seg_unlike", "ast_3", visual="crowd", text="the crowd sings")
    # When asking for more like ast_q at 6 s
    results = world.search(query_asset_id="ast_q", query_start=6.0)
    # Then the like segment is first, and the query segment itself is not returned
    assert ids(results)[0] == "seg_like"
    assert "seg_q1" not in ids(results)
    with pytest.raises(NotFoundError) as err:
        world.search(query_asset_id="ast_b_nope")
    assert err.value.code == "asset_not_found"


def test_without_clip_text_search_still_serves_transcripts(tmp_path: Path) -> None:
    world = World(tmp_path, clip=False)
    world.add("seg_1", "ast_1", visual="rain", text="rain")
    results = world.search(query_text="rain")
    assert ids(results) == ["seg_1"]
    assert set(results[0]["scores"]) == {"transcription"}
    with pytest.raises(ValidationError) as err:
        world.search(query_text="rain", search_options=["visual"])
    assert err.value.code == "search_option_unavailable"


def test_request_contract_limits() -> None:
    with pytest.raises(ValueError):
        SearchRequest(index_id="idx_1", query_text="x", limit=101)
    with pytest.raises(ValueError):
        SearchRequest(index_id="idx_1", query_text="x", search_options=["smell"])
    req = SearchRequest(index_id="idx_1", query_text="x")
    assert (req.search_options, req.operator, req.group_by, req.limit) == (
        ["visual", "transcription"],
        "or",
        "segment",
        20,
    )
