"""The OpenSearch adapter's exact requests, recorded by a tiny fake client (no server here)."""

from __future__ import annotations

from typing import Any

import pytest
from opensearchpy.client.utils import _bulk_body
from opensearchpy.serializer import JSONSerializer

from mediaindex.adapters.aws.opensearch_bodies import (
    cosine_from_score,
    delete_by_asset_body,
    doc_source,
    filter_clauses,
    knn_query_body,
    text_query_body,
)
from mediaindex.adapters.aws.opensearch_bulk import MAX_BULK_BYTES
from mediaindex.adapters.aws.opensearch_index import OpenSearchIndex
from mediaindex.adapters.aws.opensearch_mapping import (
    VectorField,
    mapped_vectors,
    mapping_body,
    metadata_term,
)
from mediaindex.domain.errors import UnavailableError
from mediaindex.ports.search import SearchDoc, SearchFilter


class StatusError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"status {status_code}")
        self.status_code = status_code


class Recorder:
    """Records (method, kwargs) and answers from queues of canned responses per method."""

    def __init__(self, answers: dict[str, list[Any]] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answers = answers or {}
        self.indices = _Indices(self)

    def answer(self, method: str, kwargs: dict[str, Any]) -> Any:
        self.calls.append((method, kwargs))
        queue = self.answers.get(method)
        out = queue.pop(0) if queue else None
        if isinstance(out, Exception):
            raise out
        return out

    def bulk(self, **kw: Any) -> Any:
        return self.answer("bulk", kw) or {"errors": False, "items": []}

    def search(self, **kw: Any) -> Any:
        return self.answer("search", kw)

    def delete_by_query(self, **kw: Any) -> Any:
        return self.answer("delete_by_query", kw)


class _Indices:
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def get_mapping(self, **kw: Any) -> Any:
        return self.rec.answer("indices.get_mapping", kw)

    def create(self, **kw: Any) -> Any:
        return self.rec.answer("indices.create", kw)

    def put_mapping(self, **kw: Any) -> Any:
        return self.rec.answer("indices.put_mapping", kw)

    def get_alias(self, **kw: Any) -> Any:
        return self.rec.answer("indices.get_alias", kw)

    def update_aliases(self, **kw: Any) -> Any:
        return self.rec.answer("indices.update_aliases", kw)

    def delete(self, **kw: Any) -> Any:
        return self.rec.answer("indices.delete", kw)

    def refresh(self, **kw: Any) -> Any:
        return self.rec.answer("indices.refresh", kw)


FLT = SearchFilter(tenant_id="ten_a", index_id="idx_one", media_type="video", user_metadata={"topic": "cats"})
DOC = SearchDoc(
    segment_id="seg_1",
    tenant_id="ten_a",
    index_id="idx_one",
    asset_id="ast_1",
    media_type="video",
    start=0.0,
    end=2.5,
    text="hello world",
    keyframe_key="derived/ten_a/ast_1/kf/0.jpg",
    user_metadata={"topic": "cats"},
    vectors={"visual": ("clip:b32", [0.6, 0.8]), "transcription": ("minilm", [1.0, 0.0, 0.0])},
)
HNSW = {"m": 16, "ef_construction": 128}
# A key written before pools: its alias points at an index of its own, with no filter.
LEGACY = {"mi-idx_one-g1": {"aliases": {"mi-idx_one": {}}}}


def test_mapping_body_managed_domain() -> None:
    body = mapping_body({"visual": 512, "transcription": 384}, engine="faiss", alias="mediaindex-idx_one")
    assert body == {
        "settings": {
            "index": {
                "knn": True,
                "number_of_shards": 1,
                # One data node: no replica (it could never be allocated); more nodes: one.
                "auto_expand_replicas": "0-1",
                "knn.algo_param.ef_search": 128,
            }
        },
        "mappings": {
            "dynamic": "strict",
            # Vectors are indexed but not stored: hits never read them back.
            "_source": {"excludes": ["vec_*"]},
            "properties": {
                "segment_id": {"type": "keyword"},
                "tenant_id": {"type": "keyword"},
                "index_id": {"type": "keyword"},
                "asset_id": {"type": "keyword"},
                "media_type": {"type": "keyword"},
                "start": {"type": "float"},
                "end": {"type": "float"},
                "text": {"type": "text", "analyzer": "english"},
                "keyframe_key": {"type": "keyword", "index": False},
                # Free-form metadata adds no field per key: kept in _source, filtered by its pairs.
                "user_metadata": {"type": "object", "enabled": False},
                "user_metadata_terms": {"type": "keyword"},
                "vec_transcription": {
                    "type": "knn_vector",
                    "dimension": 384,
                    "method": {
                        "name": "hnsw",
                        "engine": "faiss",
                        "space_type": "innerproduct",
                        "parameters": HNSW,
                    },
                },
                "model_transcription": {"type": "keyword"},
                "vec_visual": {
                    "type": "knn_vector",
                    "dimension": 512,
                    "method": {
                        "name": "hnsw",
                        "engine": "faiss",
                        "space_type": "innerproduct",
                        "parameters": HNSW,
                    },
                },
                "model_visual": {"type": "keyword"},
            },
        },
        "aliases": {"mediaindex-idx_one": {}},
    }


def test_mapping_body_serverless_leaves_shards_to_the_service() -> None:
    body = mapping_body({"visual": 4}, engine="lucene", serverless=True)
    assert body["settings"] == {"index": {"knn": True}}
    assert body["mappings"]["properties"]["vec_visual"]["method"]["engine"] == "lucene"
    assert "aliases" not in body


def test_knn_query_body_filters_inside_the_knn_clause() -> None:
    assert knn_query_body(FLT, modality="visual", model_id="clip:b32", vector=[0.6, 0.8], k=5) == {
        "size": 5,
        "_source": ["segment_id", "asset_id", "start", "end", "text", "keyframe_key"],
        "query": {
            "knn": {
                "vec_visual": {
                    "vector": [0.6, 0.8],
                    "k": 5,
                    "filter": {
                        "bool": {
                            "filter": [
                                {"term": {"tenant_id": "ten_a"}},
                                {"term": {"index_id": "idx_one"}},
                                {"term": {"media_type": "video"}},
                                {"term": {"user_metadata_terms": '["topic","cats"]'}},
                                {"term": {"model_visual": "clip:b32"}},
                            ]
                        }
                    },
                }
            }
        },
    }


def test_text_query_body() -> None:
    flt = SearchFilter(tenant_id="ten_a", index_id="idx_one")
    # Stopwords ("how", "to", "up") are dropped before OpenSearch sees the query, as the embedded index does.
    assert text_query_body(flt, query="How to fix up a red car", k=7) == {
        "size": 7,
        "_source": ["segment_id", "asset_id", "start", "end", "text", "keyframe_key"],
        "query": {
            "bool": {
                "must": [{"match": {"text": {"query": "fix red car"}}}],
                "filter": [{"term": {"tenant_id": "ten_a"}}, {"term": {"index_id": "idx_one"}}],
            }
        },
    }


def test_with_pools_off_a_first_upsert_creates_an_index_of_its_own_then_bulk_writes() -> None:
    # Given no alias yet, and pools off (an index per key, as releases before pools)
    client = Recorder({"indices.get_alias": [StatusError(404)]})
    index = OpenSearchIndex(client, prefix="mi", refresh=True, pools=0)
    # When a doc is upserted
    index.upsert([DOC])
    # Then the physical index is created with its alias, and one bulk replaces the doc by id
    assert client.calls == [
        ("indices.get_alias", {"name": "mi-idx_one"}),
        (
            "indices.create",
            {
                "index": "mi-idx_one-g1",
                "body": mapping_body({"visual": 2, "transcription": 3}, engine="faiss", alias="mi-idx_one"),
            },
        ),
        (
            "bulk",
            {
                "refresh": "true",
                "body": [
                    {"index": {"_index": "mi-idx_one", "_id": "seg_1"}},
                    {
                        "segment_id": "seg_1",
                        "tenant_id": "ten_a",
                        "index_id": "idx_one",
                        "asset_id": "ast_1",
                        "media_type": "video",
                        "start": 0.0,
                        "end": 2.5,
                        "text": "hello world",
                        "keyframe_key": "derived/ten_a/ast_1/kf/0.jpg",
                        "user_metadata": {"topic": "cats"},
                        "user_metadata_terms": ['["topic","cats"]'],
                        "vec_transcription": [1.0, 0.0, 0.0],
                        "model_transcription": "minilm",
                        "vec_visual": [0.6, 0.8],
                        "model_visual": "clip:b32",
                    },
                ],
            },
        ),
    ]


def test_bulk_retries_only_items_answered_429_with_bounded_backoff() -> None:
    # Given a cluster that throttles the whole request once, then one item once
    second = {"errors": True, "items": [{"index": {"status": 201}}, {"index": {"status": 429}}]}
    client = Recorder({"indices.get_alias": [LEGACY], "bulk": [StatusError(429), second]})
    client.answers["indices.get_mapping"] = [
        {
            "mi-idx_one-g1": {
                "mappings": {"properties": {"vec_visual": {"type": "knn_vector", "dimension": 2}}}
            }
        }
    ]
    sleeps: list[float] = []
    index = OpenSearchIndex(client, prefix="mi", sleep=sleeps.append, backoff_s=0.5)
    docs = [
        SearchDoc("seg_1", "ten_a", "idx_one", "ast_1", "image", 0, 0, vectors={"visual": ("m", [1.0, 0.0])}),
        SearchDoc("seg_2", "ten_a", "idx_one", "ast_1", "image", 0, 0, vectors={"visual": ("m", [0.0, 1.0])}),
    ]
    # When upserting
    index.upsert(docs)
    # Then three bulks went out, the last carrying only the throttled doc, after 0.5 s and 1 s waits
    bulks = [kw["body"] for m, kw in client.calls if m == "bulk"]
    assert len(bulks) == 3
    assert [line["index"]["_id"] for line in bulks[2] if "index" in line] == ["seg_2"]
    assert sleeps == [0.5, 1.0]


def test_bulk_gives_up_after_max_retries() -> None:
    client = Recorder({"indices.get_alias": [LEGACY], "bulk": [StatusError(429)] * 4})
    client.answers["indices.get_mapping"] = [{"x": {"mappings": {"properties": {}}}}]
    sleeps: list[float] = []
    index = OpenSearchIndex(client, prefix="mi", sleep=sleeps.append, max_retries=3, max_backoff_s=1.0)
    with pytest.raises(UnavailableError):
        index.upsert([SearchDoc("seg_1", "ten_a", "idx_one", "ast_1", "audio", 0, 1, text="x")])
    assert sleeps == [0.5, 1.0, 1.0]


def test_delete_asset_managed_uses_delete_by_query() -> None:
    # Without an index (legacy callers): every index of the prefix, and no forced refresh by default
    client = Recorder()
    OpenSearchIndex(client, prefix="mi").delete_asset("ten_a", "ast_9")
    assert client.calls == [
        (
            "delete_by_query",
            {
                "index": "mi-*",
                "body": delete_by_asset_body("ten_a", "ast_9"),
                "conflicts": "proceed",
                "ignore_unavailable": True,
            },
        )
    ]
    assert delete_by_asset_body("ten_a", "ast_9") == {
        "query": {"bool": {"filter": [{"term": {"tenant_id": "ten_a"}}, {"term": {"asset_id": "ast_9"}}]}}
    }


def test_delete_asset_serverless_searches_ids_then_bulk_deletes() -> None:
    client = Recorder(
        {
            "search": [
                {
                    "hits": {
                        "hits": [
                            {"_index": "mi-idx_one-g1", "_id": "seg_1"},
                            {"_index": "mi-idx_two-g1", "_id": "seg_2"},
                        ]
                    }
                }
            ]
        }
    )
    OpenSearchIndex(client, prefix="mi", serverless=True, refresh=True).delete_asset("ten_a", "ast_9")
    assert client.calls == [
        (
            "search",
            {
                "index": "mi-*",
                "body": {
                    "size": 500,
                    "_source": False,
                    "query": delete_by_asset_body("ten_a", "ast_9")["query"],
                },
                "ignore_unavailable": True,
            },
        ),
        # No refresh on Serverless, even when asked for.
        (
            "bulk",
            {
                "body": [
                    {"delete": {"_index": "mi-idx_one-g1", "_id": "seg_1"}},
                    {"delete": {"_index": "mi-idx_two-g1", "_id": "seg_2"}},
                ]
            },
        ),
    ]


def test_delete_index_drops_the_physical_indexes_behind_the_alias() -> None:
    client = Recorder({"indices.get_alias": [{"mi-idx_one-g1": {}, "mi-idx_one-g2": {}}]})
    OpenSearchIndex(client, prefix="mi").delete_index("ten_a", "idx_one")
    assert client.calls == [
        ("indices.get_alias", {"name": "mi-idx_one"}),
        ("indices.delete", {"index": "mi-idx_one-g1", "ignore_unavailable": True}),
        ("indices.delete", {"index": "mi-idx_one-g2", "ignore_unavailable": True}),
    ]


def test_knn_search_sends_the_body_and_reports_cosine() -> None:
    hit = {
        "_id": "seg_1",
        "_score": 1.8,
        "_source": {"segment_id": "seg_1", "asset_id": "ast_1", "start": 0, "end": 2.5, "text": None},
    }
    client = Recorder(
        {
            "indices.get_alias": [LEGACY],
            "indices.get_mapping": [
                {
                    "mi-idx_one-g1": {
                        "mappings": {"properties": {"vec_visual": {"type": "knn_vector", "dimension": 2}}}
                    }
                }
            ],
            "search": [{"hits": {"hits": [hit]}}],
        }
    )
    hits = OpenSearchIndex(client, prefix="mi").knn(
        FLT, modality="visual", model_id="clip:b32", vector=[0.6, 0.8], k=5
    )
    assert client.calls[-1] == (
        "search",
        {
            "index": "mi-idx_one",
            "body": knn_query_body(FLT, modality="visual", model_id="clip:b32", vector=[0.6, 0.8], k=5),
        },
    )
    assert [(h.segment_id, round(h.score, 6)) for h in hits] == [("seg_1", 0.8)]


def test_cosine_from_innerproduct_score() -> None:
    assert cosine_from_score(2.0) == 1.0
    assert cosine_from_score(1.0) == 0.0
    assert cosine_from_score(0.5) == -1.0


def test_metadata_filters_match_typed_pairs_and_map_no_field_per_key() -> None:
    # Given metadata of several types, as a document and as a filter
    meta = {"year": 2024, "label": "2024", "ok": True, "ratio": 1.0, "tags": ["a", "b"], "k=v": "x"}
    src = doc_source(SearchDoc("s", "t", "i", "a", "video", 0, 1, user_metadata=meta))
    flt = SearchFilter(tenant_id="t", index_id="i", user_metadata=meta)
    terms = [c["term"]["user_metadata_terms"] for c in filter_clauses(flt)[2:]]
    # Then each pair is one keyword, the same on both sides, with its JSON type kept (2024 is not
    # "2024", true is not 1), integral floats read as ints, and a key holding "=" stays unambiguous
    assert (
        src["user_metadata_terms"]
        == terms
        == [
            '["k=v","x"]',
            '["label","2024"]',
            '["ok",true]',
            '["ratio",1]',
            '["tags",["a","b"]]',
            '["year",2024]',
        ]
    )
    assert src["user_metadata"] == meta  # still returned as given
    assert metadata_term("year", 2024) != metadata_term("year", "2024")


def big_doc(i: int, text_bytes: int) -> SearchDoc:
    return SearchDoc(f"seg_{i}", "ten_a", "idx_one", "ast_1", "audio", 0, 1, text="x" * text_bytes)


def test_bulk_is_cut_by_bytes_as_well_as_by_count() -> None:
    # Given 30 documents of about 1 MiB each (30 MiB, far under 500 documents)
    client = Recorder({"indices.get_alias": [LEGACY], "indices.get_mapping": [{"x": {"mappings": {}}}]})
    index = OpenSearchIndex(client, prefix="mi")
    index.upsert([big_doc(i, 1024 * 1024) for i in range(30)])
    # Then every request stays under 9 MiB as opensearch-py serializes it, and all 30 are sent once
    bulks = [kw["body"] for m, kw in client.calls if m == "bulk"]
    assert len(bulks) == 4
    assert all(len(_bulk_body(JSONSerializer(), b).encode()) < MAX_BULK_BYTES for b in bulks)
    assert [line["index"]["_id"] for b in bulks for line in b if "index" in line] == [
        f"seg_{i}" for i in range(30)
    ]


def test_a_request_answered_413_is_split_until_it_fits() -> None:
    # Given a cluster whose limit is lower than ours: it refuses requests of more than 2 documents
    class Small(Recorder):
        def bulk(self, **kw: Any) -> Any:
            self.calls.append(("bulk", kw))
            if len(kw["body"]) > 4:
                raise StatusError(413)
            return {"errors": False, "items": [{"index": {"status": 201}}] * (len(kw["body"]) // 2)}

    client = Small({"indices.get_alias": [LEGACY], "indices.get_mapping": [{"x": {"mappings": {}}}]})
    OpenSearchIndex(client, prefix="mi").upsert([big_doc(i, 10) for i in range(5)])
    # Then the 5 documents are halved into 2 + 3, the 3 again into 1 + 2, each sent once that fits
    sent = [
        [line["index"]["_id"] for line in kw["body"] if "index" in line]
        for m, kw in client.calls
        if m == "bulk"
    ]
    accepted = [ids for ids in sent if len(ids) <= 2]
    assert accepted == [["seg_0", "seg_1"], ["seg_2"], ["seg_3", "seg_4"]]


def test_a_single_document_answered_413_fails_the_write() -> None:
    client = Recorder({"indices.get_alias": [LEGACY], "bulk": [StatusError(413)]})
    client.answers["indices.get_mapping"] = [{"x": {"mappings": {}}}]
    with pytest.raises(UnavailableError, match="too large"):
        OpenSearchIndex(client, prefix="mi").upsert([big_doc(0, 10)])


# Scale: precision, refresh, scoped deletes, shards


def vec_mapping(precision: str, engine: str = "faiss") -> dict[str, Any]:
    body = mapping_body({"visual": 4}, engine=engine, precision=precision)
    field: dict[str, Any] = body["mappings"]["properties"]["vec_visual"]
    return field


def test_vector_mapping_per_precision() -> None:
    method = {"name": "hnsw", "engine": "faiss", "space_type": "innerproduct"}
    assert vec_mapping("fp32") == {
        "type": "knn_vector",
        "dimension": 4,
        "method": {**method, "parameters": HNSW},
    }
    # fp16: faiss's scalar quantizer, half the memory per dimension
    assert vec_mapping("fp16") == {
        "type": "knn_vector",
        "dimension": 4,
        "method": {
            **method,
            "parameters": {**HNSW, "encoder": {"name": "sq", "parameters": {"type": "fp16"}}},
        },
    }
    # byte: the field takes integers, on either engine
    assert vec_mapping("byte") == {
        "type": "knn_vector",
        "dimension": 4,
        "data_type": "byte",
        "method": {**method, "parameters": HNSW},
    }
    assert vec_mapping("byte", engine="lucene") == {
        "type": "knn_vector",
        "dimension": 4,
        "data_type": "byte",
        "method": {**method, "engine": "lucene", "parameters": HNSW},
    }


def test_shards_come_from_the_setting_and_serverless_leaves_them_out() -> None:
    assert mapping_body({}, shards=6)["settings"]["index"]["number_of_shards"] == 6
    assert "number_of_shards" not in mapping_body({}, shards=6, serverless=True)["settings"]["index"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": "lucene", "precision": "fp16"}, "fp16 needs the faiss engine"),
        ({"precision": "fp8"}, "vector precision must be one of fp32, fp16, byte, not 'fp8'"),
        ({"engine": "nmslib"}, "engine must be faiss or lucene, not 'nmslib'"),
        ({"refresh": "sometimes"}, "refresh must be one of false, wait_for, true, not 'sometimes'"),
        ({"shards": 0}, "shards must be at least 1, not 0"),
    ],
)
def test_a_layout_opensearch_cannot_build_fails_at_construction(kwargs: dict[str, Any], message: str) -> None:
    client = Recorder()
    with pytest.raises(ValueError, match=message):
        OpenSearchIndex(client, **kwargs)
    assert client.calls == []  # refused before any request


def test_start_up_refuses_fp16_on_lucene_and_passes_the_layout_settings() -> None:
    from mediaindex.bootstrap.search import build_search_index
    from mediaindex.settings import Settings

    url = "http://127.0.0.1:9"  # never contacted: the client is made on first use
    with pytest.raises(ValueError, match="fp16 needs the faiss engine"):
        build_search_index(
            Settings(opensearch_url=url, opensearch_engine="lucene", opensearch_vector_precision="fp16")
        )
    index, _ = build_search_index(
        Settings(
            opensearch_url=url,
            opensearch_engine="lucene",
            opensearch_vector_precision="byte",
            opensearch_refresh="wait_for",
            opensearch_shards=3,
        )
    )
    assert isinstance(index, OpenSearchIndex)
    assert (index.engine, index.precision, index.refresh, index.shards) == ("lucene", "byte", "wait_for", 3)


def test_byte_vectors_are_unit_vectors_scaled_to_127() -> None:
    doc = SearchDoc("s", "t", "i", "a", "image", 0, 0, vectors={"visual": ("m", [0.6, -0.8, 1.0, -1.0])})
    assert doc_source(doc, {"visual": "byte"})["vec_visual"] == [76, -102, 127, -127]
    assert doc_source(doc)["vec_visual"] == [0.6, -0.8, 1.0, -1.0]
    body = knn_query_body(FLT, modality="visual", model_id="m", vector=[0.6, -0.8], k=1, data_type="byte")
    assert body["query"]["knn"]["vec_visual"]["vector"] == [76, -102]


def test_a_byte_score_reads_back_as_cosine() -> None:
    # 127 * 127 = 16129 is a cosine of 1; rounding may overshoot it, and the clamp keeps it at 1
    assert cosine_from_score(16129 + 1.0, "byte") == 1.0
    assert cosine_from_score(16180 + 1.0, "byte") == 1.0
    assert cosine_from_score(8064.5 + 1.0, "byte") == 0.5
    assert cosine_from_score(1.0 / (1.0 + 16129), "byte") == pytest.approx(-1.0)
    assert cosine_from_score(1.5, "float") == 0.5


def mapping_of(**fields: dict[str, Any]) -> dict[str, Any]:
    return {"mi-idx_one-g1": {"mappings": {"properties": fields}}}


def test_mapped_vectors_reads_dimension_and_data_type_of_vector_fields_only() -> None:
    resp = mapping_of(
        vec_visual={"type": "knn_vector", "dimension": 512},
        vec_transcription={"type": "knn_vector", "dimension": 384, "data_type": "byte"},
        vec_note={"type": "keyword"},
        model_visual={"type": "keyword"},
    )
    assert mapped_vectors(resp) == {
        "visual": VectorField(512, "float"),
        "transcription": VectorField(384, "byte"),
    }


def test_new_index_takes_the_precision_and_shards_setting() -> None:
    client = Recorder({"indices.get_alias": [StatusError(404)]})
    index = OpenSearchIndex(client, prefix="mi", precision="byte", shards=4, pools=0)
    index.upsert(
        [
            SearchDoc(
                "seg_1", "ten_a", "idx_one", "ast_1", "image", 0, 0, vectors={"visual": ("m", [0.6, 0.8])}
            )
        ]
    )
    create = client.calls[1]
    assert create == (
        "indices.create",
        {
            "index": "mi-idx_one-g1",
            "body": mapping_body({"visual": 2}, precision="byte", alias="mi-idx_one", shards=4),
        },
    )
    assert client.calls[1][1]["body"]["settings"]["index"]["number_of_shards"] == 4
    source = client.calls[2][1]["body"][1]
    assert source["vec_visual"] == [76, 102]


def test_an_existing_index_is_written_and_queried_as_it_is_mapped() -> None:
    # Given an index mapped before the precision setting changed: float visual, byte transcription
    hit = {
        "_score": 16129.0 * 0.5 + 1.0,
        "_source": {"segment_id": "seg_1", "asset_id": "ast_1", "start": 0, "end": 1},
    }
    client = Recorder(
        {
            "indices.get_alias": [LEGACY],
            "indices.get_mapping": [
                mapping_of(
                    vec_visual={"type": "knn_vector", "dimension": 2},
                    vec_transcription={"type": "knn_vector", "dimension": 2, "data_type": "byte"},
                )
            ],
            "search": [{"hits": {"hits": [hit]}}],
        }
    )
    index = OpenSearchIndex(client, prefix="mi", precision="byte")
    # When a doc is upserted and the byte field searched
    index.upsert(
        [
            SearchDoc(
                "seg_1",
                "ten_a",
                "idx_one",
                "ast_1",
                "video",
                0,
                1,
                vectors={"visual": ("m", [0.6, 0.8]), "transcription": ("t", [0.8, 0.6])},
            )
        ]
    )
    hits = index.knn(FLT, modality="transcription", model_id="t", vector=[0.8, 0.6], k=1)
    # Then each vector went as its field is mapped, the query too, and the score reads back as cosine
    source = next(kw["body"][1] for m, kw in client.calls if m == "bulk")
    assert (source["vec_visual"], source["vec_transcription"]) == ([0.6, 0.8], [102, 76])
    assert client.calls[-1][1]["body"]["query"]["knn"]["vec_transcription"]["vector"] == [102, 76]
    assert [(h.segment_id, h.score) for h in hits] == [("seg_1", 0.5)]
    assert [m for m, _ in client.calls].count("indices.get_mapping") == 1  # read once, then cached


def test_a_new_modality_in_an_existing_index_takes_the_current_precision() -> None:
    client = Recorder(
        {
            "indices.get_alias": [LEGACY],
            "indices.get_mapping": [mapping_of(vec_visual={"type": "knn_vector", "dimension": 2})],
        }
    )
    index = OpenSearchIndex(client, prefix="mi", precision="fp16")
    index.upsert(
        [
            SearchDoc(
                "seg_1",
                "ten_a",
                "idx_one",
                "ast_1",
                "audio",
                0,
                1,
                vectors={"transcription": ("t", [1.0, 0.0, 0.0])},
            )
        ]
    )
    assert (
        "indices.put_mapping",
        {
            "index": "mi-idx_one",
            "body": {
                "properties": {
                    "vec_transcription": {
                        "type": "knn_vector",
                        "dimension": 3,
                        "method": {
                            "name": "hnsw",
                            "engine": "faiss",
                            "space_type": "innerproduct",
                            "parameters": {**HNSW, "encoder": {"name": "sq", "parameters": {"type": "fp16"}}},
                        },
                    },
                    "model_transcription": {"type": "keyword"},
                }
            },
        },
    ) in client.calls


@pytest.mark.parametrize(
    ("refresh", "bulk_refresh", "delete_refresh"),
    [
        (False, None, None),
        ("false", None, None),
        ("wait_for", "wait_for", True),  # _delete_by_query has no wait_for: it refreshes
        ("true", "true", True),
        (True, "true", True),
    ],
)
def test_refresh_per_setting_on_writes_and_deletes(
    refresh: bool | str, bulk_refresh: str | None, delete_refresh: bool | None
) -> None:
    client = Recorder({"indices.get_alias": [LEGACY], "indices.get_mapping": [mapping_of()]})
    index = OpenSearchIndex(client, prefix="mi", refresh=refresh)
    index.upsert([big_doc(0, 1)])
    index.delete_asset("ten_a", "ast_1", index_id="idx_one")
    bulk = next(kw for m, kw in client.calls if m == "bulk")
    delete = next(kw for m, kw in client.calls if m == "delete_by_query")
    assert bulk.get("refresh") == bulk_refresh
    assert delete.get("refresh") == delete_refresh


@pytest.mark.parametrize("refresh", ["wait_for", "true"])
def test_serverless_never_sends_refresh(refresh: str) -> None:
    client = Recorder({"indices.get_alias": [LEGACY], "indices.get_mapping": [mapping_of()]})
    OpenSearchIndex(client, prefix="mi", serverless=True, refresh=refresh).upsert([big_doc(0, 1)])
    assert [kw for m, kw in client.calls if m == "bulk"] == [
        {"body": [{"index": {"_index": "mi-idx_one", "_id": "seg_0"}}, doc_source(big_doc(0, 1))]}
    ]


def test_delete_asset_in_one_index_is_scoped_to_its_alias() -> None:
    client = Recorder()
    OpenSearchIndex(client, prefix="mi").delete_asset("ten_a", "ast_9", index_id="IDX_One")
    assert client.calls == [
        (
            "delete_by_query",
            {
                "index": "mi-idx_one",
                "body": {
                    "query": {
                        "bool": {
                            "filter": [
                                {"term": {"tenant_id": "ten_a"}},
                                {"term": {"asset_id": "ast_9"}},
                                {"term": {"index_id": "IDX_One"}},
                            ]
                        }
                    }
                },
                "conflicts": "proceed",
                "ignore_unavailable": True,
            },
        )
    ]


def test_serverless_delete_in_one_index_searches_only_its_alias() -> None:
    hits = {"hits": {"hits": [{"_index": "mi-idx_one-g1", "_id": "seg_1"}]}}
    client = Recorder({"search": [hits]})
    OpenSearchIndex(client, prefix="mi", serverless=True).delete_asset("ten_a", "ast_9", index_id="idx_one")
    assert client.calls == [
        (
            "search",
            {
                "index": "mi-idx_one",
                "body": {
                    "size": 500,
                    "_source": False,
                    "query": delete_by_asset_body("ten_a", "ast_9", "idx_one")["query"],
                },
                "ignore_unavailable": True,
            },
        ),
        ("bulk", {"body": [{"delete": {"_index": "mi-idx_one-g1", "_id": "seg_1"}}]}),
    ]


def test_delete_in_an_index_not_created_yet_is_a_no_op_and_other_errors_raise() -> None:
    # A 404 (no such alias: nothing was indexed) deletes nothing, quietly
    OpenSearchIndex(Recorder({"delete_by_query": [StatusError(404)]}), prefix="mi").delete_asset(
        "ten_a", "ast_9", index_id="idx_one"
    )
    # Any other failure is the index being unavailable
    with pytest.raises(UnavailableError, match="search index delete failed"):
        OpenSearchIndex(Recorder({"delete_by_query": [StatusError(503)]}), prefix="mi").delete_asset(
            "ten_a", "ast_9", index_id="idx_one"
        )


def test_make_visible_refreshes_the_keys_alias_before_a_swap() -> None:
    client = Recorder({"indices.refresh": [None, StatusError(404), StatusError(503)]})
    index = OpenSearchIndex(client, prefix="mi")
    index.make_visible("idx_one-g2")
    assert client.calls == [("indices.refresh", {"index": "mi-idx_one-g2"})]
    index.make_visible("idx_empty-g2")  # nothing written under it: nothing to do
    with pytest.raises(UnavailableError):
        index.make_visible("idx_one-g3")
    serverless = Recorder()
    OpenSearchIndex(serverless, prefix="mi", serverless=True).make_visible("idx_one-g2")
    assert serverless.calls == []  # Serverless has no _refresh
