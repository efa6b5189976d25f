"""Pooled OpenSearch layout: the exact names and bodies (pure functions, no client)."""

from __future__ import annotations

from collections import Counter

from mediaindex.adapters.aws.opensearch_bodies import (
    add_alias_body,
    delete_by_asset_body,
    drop_key_body,
    knn_query_body,
    remove_alias_body,
    text_query_body,
)
from mediaindex.adapters.aws.opensearch_mapping import (
    AliasTarget,
    alias_target,
    layout_name,
    mapping_body,
    pool_name,
)
from mediaindex.ports.search import SearchFilter

DIMS = {"visual": 512, "transcription": 384}
KEY = "idx_one-g2"


def test_a_pool_is_named_by_its_layout_and_the_keys_hash() -> None:
    name = pool_name("mi", KEY, DIMS, engine="faiss", precision="fp32", pools=1)
    assert name == "mi-pool-faiss-fp32-transcription384-visual512-0"
    # What the mapping holds decides the pool: other dims, engine or precision never share one.
    others = {
        pool_name(
            "mi", KEY, {"visual": 768, "transcription": 384}, engine="faiss", precision="fp32", pools=1
        ),
        pool_name("mi", KEY, DIMS, engine="lucene", precision="fp32", pools=1),
        pool_name("mi", KEY, DIMS, engine="faiss", precision="byte", pools=1),
        pool_name("mi", KEY, {"transcription": 384}, engine="faiss", precision="fp32", pools=1),
    }
    assert len(others) == 4 and name not in others


def test_the_pool_of_a_key_is_stable_and_keys_spread_over_the_pools() -> None:
    keys = [f"idx_{i:04d}" for i in range(400)]
    first = [pool_name("mi", k, DIMS, engine="faiss", precision="fp32", pools=8) for k in keys]
    again = [pool_name("mi", k, DIMS, engine="faiss", precision="fp32", pools=8) for k in keys]
    assert first == again
    counts = Counter(int(name.rsplit("-", 1)[1]) for name in first)
    assert set(counts) == set(range(8))
    assert max(counts.values()) < 2 * 400 / 8  # no pool takes twice its share
    # The alias lowercases the key, so the pool does not depend on its case either.
    assert pool_name("mi", "IDX_One", DIMS, engine="faiss", precision="fp32", pools=8) == pool_name(
        "mi", "idx_one", DIMS, engine="faiss", precision="fp32", pools=8
    )


def test_a_layout_name_keeps_only_what_an_index_name_may_hold() -> None:
    assert layout_name({"Visual.Clip": 4}, engine="faiss", precision="fp16") == "faiss-fp16-visualclip4"
    assert layout_name({}, engine="lucene", precision="byte") == "lucene-byte"


def test_a_pool_is_born_with_the_first_keys_filtered_routed_alias() -> None:
    body = mapping_body(DIMS, engine="faiss", alias="mi-idx_one-g2", shards=3, routed_key=KEY)
    assert body["aliases"] == {
        "mi-idx_one-g2": {"filter": {"term": {"index_id": "idx_one-g2"}}, "routing": "idx_one-g2"}
    }
    assert body["settings"]["index"]["number_of_shards"] == 3
    # The key is the documents' index_id: a mapped keyword, so no field is added for pools.
    assert body["mappings"]["properties"]["index_id"] == {"type": "keyword"}
    assert body == {
        **mapping_body(DIMS, engine="faiss", alias="mi-idx_one-g2", shards=3),
        "aliases": body["aliases"],
    }


def test_a_key_joins_and_leaves_a_pool_by_its_alias() -> None:
    pool = "mi-pool-faiss-fp32-transcription384-visual512-0"
    assert add_alias_body(pool, "mi-idx_one-g2", KEY) == {
        "actions": [
            {
                "add": {
                    "index": pool,
                    "alias": "mi-idx_one-g2",
                    "filter": {"term": {"index_id": "idx_one-g2"}},
                    "routing": "idx_one-g2",
                }
            }
        ]
    }
    assert remove_alias_body(pool, "mi-idx_one-g2") == {
        "actions": [{"remove": {"index": pool, "alias": "mi-idx_one-g2"}}]
    }


def test_the_key_is_filtered_inside_the_knn_clause_and_the_text_query() -> None:
    flt = SearchFilter(tenant_id="ten_a", index_id=KEY)
    knn = knn_query_body(flt, modality="visual", model_id="clip", vector=[1.0, 0.0], k=3)
    assert knn["query"] == {
        "knn": {
            "vec_visual": {
                "vector": [1.0, 0.0],
                "k": 3,
                # Efficient filtering: the k nearest are found among this key's documents.
                "filter": {
                    "bool": {
                        "filter": [
                            {"term": {"tenant_id": "ten_a"}},
                            {"term": {"index_id": "idx_one-g2"}},
                            {"term": {"model_visual": "clip"}},
                        ]
                    }
                },
            }
        }
    }
    assert text_query_body(flt, query="red car", k=3)["query"]["bool"]["filter"] == [
        {"term": {"tenant_id": "ten_a"}},
        {"term": {"index_id": "idx_one-g2"}},
    ]


def test_deletes_of_an_asset_and_of_a_key() -> None:
    assert delete_by_asset_body("ten_a", "ast_1", KEY) == {
        "query": {
            "bool": {
                "filter": [
                    {"term": {"tenant_id": "ten_a"}},
                    {"term": {"asset_id": "ast_1"}},
                    {"term": {"index_id": "idx_one-g2"}},
                ]
            }
        }
    }
    assert drop_key_body("ten_a", KEY) == {
        "query": {
            "bool": {"filter": [{"term": {"tenant_id": "ten_a"}}, {"term": {"index_id": "idx_one-g2"}}]}
        }
    }


def test_the_get_alias_answer_tells_a_pooled_key_from_one_with_its_own_index() -> None:
    pooled = {
        "mi-pool-faiss-fp32-visual2-0": {
            "aliases": {
                "mi-idx_one": {
                    "filter": {"term": {"index_id": "idx_one"}},
                    "index_routing": "idx_one",
                    "search_routing": "idx_one",
                }
            }
        }
    }
    assert alias_target(pooled, "mi-idx_one") == AliasTarget(["mi-pool-faiss-fp32-visual2-0"], True)
    legacy = {"mi-idx_one-g1": {"aliases": {"mi-idx_one": {}}}}
    assert alias_target(legacy, "mi-idx_one") == AliasTarget(["mi-idx_one-g1"], False)
