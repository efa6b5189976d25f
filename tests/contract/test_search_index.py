"""One contract for the SearchIndex port, run against both adapters: the embedded index always, and
OpenSearch when OPENSEARCH_URL points at a live cluster (skipped, with that reason, otherwise)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mediaindex.adapters.local.embedded_search import EmbeddedSearchIndex
from mediaindex.domain.errors import ValidationError
from mediaindex.ports.search import SearchDoc, SearchFilter, SearchIndex

OPENSEARCH_URL = os.environ.get("OPENSEARCH_URL")
DIM = 8
MODEL = "clip:test"
TEXT_MODEL = "minilm:test"


def unit(seed: int, dim: int = DIM) -> list[float]:
    v = np.random.default_rng(seed).normal(size=dim)
    return [float(x) for x in v / np.linalg.norm(v)]


def near(base: list[float], seed: int, eps: float) -> list[float]:
    v = np.asarray(base) + eps * np.asarray(unit(seed, len(base)))
    return [float(x) for x in v / np.linalg.norm(v)]


def doc(
    seg: str,
    *,
    tenant: str = "ten_a",
    index: str = "idx_one",
    asset: str = "ast_1",
    vec: list[float] | None = None,
    text: str | None = None,
    media_type: str = "video",
    meta: dict[str, object] | None = None,
    model: str = MODEL,
) -> SearchDoc:
    vectors = {"visual": (model, vec)} if vec is not None else {}
    return SearchDoc(
        segment_id=seg,
        tenant_id=tenant,
        index_id=index,
        asset_id=asset,
        media_type=media_type,
        start=1.0,
        end=2.0,
        text=text,
        keyframe_key=f"derived/{tenant}/{asset}/{seg}.jpg",
        user_metadata=meta or {},
        vectors=vectors,
    )


@pytest.fixture(params=["embedded", "opensearch"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchIndex]:
    if request.param == "embedded":
        idx = EmbeddedSearchIndex(tmp_path)
        yield idx
        idx.close()
        return
    if not OPENSEARCH_URL:
        pytest.skip(
            "OPENSEARCH_URL is not set: the OpenSearch adapter runs this contract only against a live cluster"
        )
    from mediaindex.adapters.aws.opensearch_index import OpenSearchIndex, make_client

    client = make_client(OPENSEARCH_URL)
    prefix = f"mi-test-{uuid.uuid4().hex[:8]}"
    yield OpenSearchIndex(
        client, prefix=prefix, engine=os.environ.get("OPENSEARCH_ENGINE", "faiss"), refresh=True
    )
    client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)


A = SearchFilter(tenant_id="ten_a", index_id="idx_one")


def test_knn_returns_nearest_first_with_cosine_scores(index: SearchIndex) -> None:
    # Given three segments at growing distance from a query vector
    q = unit(1)
    index.upsert([doc("seg_far", vec=unit(2)), doc("seg_near", vec=near(q, 3, 0.1)), doc("seg_same", vec=q)])
    # When searching by that vector
    hits = index.knn(A, modality="visual", model_id=MODEL, vector=q, k=2)
    # Then the closest come first, scored by cosine similarity
    assert [h.segment_id for h in hits] == ["seg_same", "seg_near"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)
    assert 0.9 < hits[1].score < 1.0
    assert hits[0].asset_id == "ast_1" and (hits[0].start, hits[0].end) == (1.0, 2.0)
    assert hits[0].keyframe_key == "derived/ten_a/ast_1/seg_same.jpg"


def test_another_tenant_or_index_is_never_returned(index: SearchIndex) -> None:
    # Given the same vector and text in two tenants and two indexes
    q = unit(5)
    index.upsert(
        [
            doc("seg_mine", vec=near(q, 1, 0.3), text="red bicycle"),
            doc("seg_theirs", tenant="ten_b", vec=q, text="red bicycle red bicycle"),
            doc("seg_other_index", index="idx_two", vec=q, text="red bicycle red bicycle"),
        ]
    )
    # When tenant A searches its index
    knn = index.knn(A, modality="visual", model_id=MODEL, vector=q, k=10)
    text = index.text(A, query="bicycle", k=10)
    # Then only its own segment comes back, though the others match better
    assert [h.segment_id for h in knn] == ["seg_mine"]
    assert [h.segment_id for h in text] == ["seg_mine"]


def test_text_search_ranks_by_bm25_with_english_stemming(index: SearchIndex) -> None:
    index.upsert(
        [
            doc("seg_1", text="the dog runs across the park"),
            doc("seg_2", text="a cat sleeps"),
            doc("seg_3", text="running dogs and more running dogs"),
        ]
    )
    hits = index.text(A, query="running dog", k=10)
    # "runs"/"running" and "dog"/"dogs" share stems; the segment with more matches ranks first.
    assert [h.segment_id for h in hits] == ["seg_3", "seg_1"]
    assert hits[0].score > hits[1].score > 0
    assert hits[0].text == "running dogs and more running dogs"
    # FTS syntax in user text is inert, not an error
    assert index.text(A, query='"zebra NEAR( * OR', k=10) == []


def test_stopwords_alone_never_make_a_text_match(index: SearchIndex) -> None:
    index.upsert([doc("seg_1", text="we went to the shop and up the hill"), doc("seg_2", text="bake bread")])
    # "how to ... up" share only stopwords with seg_1: only the content word finds anything.
    assert [h.segment_id for h in index.text(A, query="how to bake it up", k=10)] == ["seg_2"]


def test_upsert_replaces_a_segment(index: SearchIndex) -> None:
    index.upsert([doc("seg_1", vec=unit(1), text="old words")])
    index.upsert([doc("seg_1", vec=unit(2), text="new words")])
    assert [h.segment_id for h in index.knn(A, modality="visual", model_id=MODEL, vector=unit(2), k=5)] == [
        "seg_1"
    ]
    assert index.knn(A, modality="visual", model_id=MODEL, vector=unit(2), k=5)[0].score == pytest.approx(
        1, abs=1e-3
    )
    assert index.text(A, query="old", k=5) == []
    assert [h.segment_id for h in index.text(A, query="new", k=5)] == ["seg_1"]


def test_filters_apply_inside_the_query(index: SearchIndex) -> None:
    # Given the nearest neighbours are audio or tagged otherwise, and one far video tagged "cats"
    q = unit(9)
    docs = [doc(f"seg_a{i}", vec=near(q, i, 0.05), media_type="audio", text="cats") for i in range(10)]
    docs += [
        doc(f"seg_t{i}", vec=near(q, 20 + i, 0.05), meta={"topic": "dogs"}, text="cats") for i in range(10)
    ]
    docs.append(doc("seg_far", vec=unit(99), meta={"topic": "cats", "year": 2024}, text="cats"))
    index.upsert(docs)
    flt = SearchFilter(
        tenant_id="ten_a", index_id="idx_one", media_type="video", user_metadata={"topic": "cats"}
    )
    # When asking for the top 3 with the filter
    knn = index.knn(flt, modality="visual", model_id=MODEL, vector=q, k=3)
    text = index.text(flt, query="cats", k=3)
    # Then the one matching segment is found, not an empty post-filtered page
    assert [h.segment_id for h in knn] == ["seg_far"]
    assert [h.segment_id for h in text] == ["seg_far"]
    # And a typed value must match its type
    typed = SearchFilter(tenant_id="ten_a", index_id="idx_one", user_metadata={"year": 2024})
    assert [h.segment_id for h in index.text(typed, query="cats", k=3)] == ["seg_far"]


def test_vectors_of_another_model_never_mix(index: SearchIndex) -> None:
    q = unit(4)
    index.upsert([doc("seg_clip", vec=q), doc("seg_other", vec=q, model="clip:other")])
    hits = index.knn(A, modality="visual", model_id=MODEL, vector=q, k=5)
    assert [h.segment_id for h in hits] == ["seg_clip"]


def test_delete_asset_and_index(index: SearchIndex) -> None:
    q = unit(7)
    index.upsert(
        [
            doc("seg_1", asset="ast_1", vec=q, text="hello"),
            doc("seg_2", asset="ast_2", vec=q, text="hello"),
            doc("seg_3", asset="ast_3", index="idx_two", vec=q, text="hello"),
        ]
    )
    index.delete_asset("ten_a", "ast_1")
    assert [h.segment_id for h in index.knn(A, modality="visual", model_id=MODEL, vector=q, k=5)] == ["seg_2"]
    assert [h.segment_id for h in index.text(A, query="hello", k=5)] == ["seg_2"]
    index.delete_index("ten_a", "idx_one")
    assert index.knn(A, modality="visual", model_id=MODEL, vector=q, k=5) == []
    assert index.text(A, query="hello", k=5) == []
    two = SearchFilter(tenant_id="ten_a", index_id="idx_two")
    assert [h.segment_id for h in index.text(two, query="hello", k=5)] == ["seg_3"]


def test_empty_index_and_wrong_dimensions(index: SearchIndex) -> None:
    assert index.knn(A, modality="visual", model_id=MODEL, vector=unit(1), k=5) == []
    assert index.text(A, query="anything", k=5) == []
    index.upsert([doc("seg_1", vec=unit(1))])
    with pytest.raises(ValidationError):
        index.knn(A, modality="visual", model_id=MODEL, vector=unit(1, dim=DIM + 1), k=5)


# Embedded only: persistence in the data dir.


def test_embedded_index_survives_a_restart(tmp_path: Path) -> None:
    # Given an index written, with one delete, then closed
    first = EmbeddedSearchIndex(tmp_path)
    first.upsert([doc("seg_1", vec=unit(1), text="sunset beach"), doc("seg_2", asset="ast_2", vec=unit(2))])
    first.delete_asset("ten_a", "ast_2")
    first.close()
    # When it is opened again from the same directory
    second = EmbeddedSearchIndex(tmp_path)
    # Then vectors and text are back, and the deleted asset stays deleted
    hits = second.knn(A, modality="visual", model_id=MODEL, vector=unit(2), k=5)
    assert [h.segment_id for h in hits] == ["seg_1"]
    assert [h.segment_id for h in second.text(A, query="beaches", k=5)] == ["seg_1"]
    assert (tmp_path / "search.db").exists()
    second.close()


def test_a_batch_may_name_a_segment_twice_and_the_last_wins(index: SearchIndex) -> None:
    index.upsert([doc("seg_1", vec=unit(1), text="first"), doc("seg_1", vec=unit(2), text="second")])
    assert [h.segment_id for h in index.text(A, query="second", k=5)] == ["seg_1"]
    assert index.text(A, query="first", k=5) == []
